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
	"strings"

	"resilience.dev/operator/internal/distribution"
)

// Keys of the store health in a gateway state's ConfigMap.
const (
	keyStore      = "store"       // "available" or "unavailable"; absent: not reported
	keyStoreError = "store-error" // why not
)

func cloneHealth(h *distribution.StoreHealth) *distribution.StoreHealth {
	if h == nil {
		return nil
	}
	c := *h
	return &c
}

// storeFlipped reports whether some replica's store health differs between two views.
func storeFlipped(old, cur map[string]GatewayState) bool {
	for r, n := range cur {
		o := old[r]
		if (o.Store == nil) != (n.Store == nil) || (n.Store != nil && *o.Store != *n.Store) {
			return true
		}
	}
	return false
}

// StoreStatus reports whether every connected gateway replica reaches the store of Global rate limits
// (True, reason StoreAvailable), or which do not and why (False, StoreUnavailable), as the condition
// StoreAvailable of a RateLimit with a Global limit shows it.
func (s *Server) StoreStatus() (bool, string) {
	states := s.liveStates()
	if len(states) == 0 {
		return false, "no gateway replica is connected to report on the store"
	}
	var down []string
	reported := 0
	for _, st := range states {
		switch {
		case st.Store == nil:
		case st.Store.Available:
			reported++
		default:
			reported++
			down = append(down, fmt.Sprintf("%s (%s)", st.Replica, st.Store.Error))
		}
	}
	switch {
	case len(down) > 0:
		return false, fmt.Sprintf("%d/%d gateway replicas cannot reach the store, so Global limits follow onStoreError: %s",
			len(down), len(states), strings.Join(down, "; "))
	case reported < len(states):
		return false, fmt.Sprintf("%d/%d gateway replicas reported on the store", reported, len(states))
	}
	return true, fmt.Sprintf("%d/%d gateway replicas reach the store", len(states), len(states))
}

// storeData is the store health as ConfigMap data.
func storeData(h *distribution.StoreHealth, data map[string]string) {
	switch {
	case h == nil:
	case h.Available:
		data[keyStore] = "available"
	default:
		data[keyStore], data[keyStoreError] = "unavailable", h.Error
	}
}

// healthOf reads what storeData wrote.
func healthOf(data map[string]string) *distribution.StoreHealth {
	switch data[keyStore] {
	case "available":
		return &distribution.StoreHealth{Available: true}
	case "unavailable":
		return &distribution.StoreHealth{Error: data[keyStoreError]}
	}
	return nil
}
