/*
Copyright 2026 The resilience operator authors.

Licensed under the Apache License, Version 2.0 (the "License");
you may not use this file except in compliance with the License.
You may obtain a copy of the License at

    http://www.apache.org/licenses/LICENSE-2.0

Unless required by applicable law or agreed to in writing, software
distributed under the License is distributed on an "AS IS" BASIS,
WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
See the License for the specific language governing permissions and
limitations under the License.
*/

package server

import (
	"fmt"
	"strconv"
	"strings"

	"resilience.dev/operator/api/v1alpha1"
	"resilience.dev/operator/internal/distribution"
)

// BreakerKey names one breaker of one gateway replica: a CircuitBreaker's breaker for one Service port,
// and one endpoint of it when the breaker's scope is Endpoint ("" for scope Service).
type BreakerKey struct {
	Namespace, Name string // the CircuitBreaker
	Service         string
	Port            int32
	Endpoint        string
}

// keyOf is the breaker a transition is about.
func keyOf(b distribution.BreakerChange) BreakerKey {
	return BreakerKey{Namespace: b.Namespace, Name: b.Name, Service: b.Service, Port: b.Port, Endpoint: b.Endpoint}
}

// String is the key as the shared gateway states store it: "namespace/name|service:port|endpoint".
// No part holds "|" (names are DNS labels, endpoints address:port).
func (k BreakerKey) String() string {
	return fmt.Sprintf("%s/%s|%s:%d|%s", k.Namespace, k.Name, k.Service, k.Port, k.Endpoint)
}

// ParseBreakerKey reads what String wrote.
func ParseBreakerKey(s string) (BreakerKey, error) {
	parts := strings.SplitN(s, "|", 3)
	if len(parts) != 3 {
		return BreakerKey{}, fmt.Errorf("breaker key %q: want namespace/name|service:port|endpoint", s)
	}
	ns, name, ok1 := strings.Cut(parts[0], "/")
	svc, port, ok2 := strings.Cut(parts[1], ":")
	p, err := strconv.ParseInt(port, 10, 32)
	if !ok1 || !ok2 || err != nil {
		return BreakerKey{}, fmt.Errorf("breaker key %q: want namespace/name|service:port|endpoint", s)
	}
	return BreakerKey{Namespace: ns, Name: name, Service: svc, Port: int32(p), Endpoint: parts[2]}, nil
}

// breakerStates holds a replica's breakers that are not closed.
type breakerStates map[BreakerKey]v1alpha1.CircuitState

// record applies a transition: a closed breaker leaves the map.
func (m breakerStates) record(b distribution.BreakerChange) {
	to := v1alpha1.CircuitState(b.To)
	if to == v1alpha1.CircuitClosed || to == "" {
		delete(m, keyOf(b))
		return
	}
	m[keyOf(b)] = to
}

// BreakerStatus aggregates a CircuitBreaker's live state across the connected replicas: the worst
// state (Open, then HalfOpen, then Closed), the replicas where a Service-scope breaker is open, and the
// distinct endpoints whose breaker is open on some replica.
func (s *Server) BreakerStatus(namespace, name string) (state v1alpha1.CircuitState, openReplicas, openEndpoints int) {
	state = v1alpha1.CircuitClosed
	endpoints := map[BreakerKey]bool{}
	for _, gs := range s.liveStates() {
		replicaOpen := false
		for k, st := range gs.Breakers {
			if k.Namespace != namespace || k.Name != name {
				continue
			}
			switch {
			case st == v1alpha1.CircuitOpen:
				state = v1alpha1.CircuitOpen
				if k.Endpoint == "" {
					replicaOpen = true
				} else {
					endpoints[k] = true
				}
			case st == v1alpha1.CircuitHalfOpen && state == v1alpha1.CircuitClosed:
				state = v1alpha1.CircuitHalfOpen
			}
		}
		if replicaOpen {
			openReplicas++
		}
	}
	return state, openReplicas, len(endpoints)
}
