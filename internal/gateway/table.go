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

package gateway

import (
	"fmt"
	"slices"
	"strings"

	"github.com/prometheus/client_golang/prometheus"

	"resilience.dev/operator/internal/snapshot"
)

// table is one routing table: built from a snapshot, then read-only. The routes of Services whose
// encoding did not change are taken over from the table before, as they are.
type table struct {
	services map[svcKey]*serviceRoute
	// capture maps each capture port to the front Service port it serves.
	capture  map[int32]*portRoute
	state    *registry
	policies []snapshot.PolicyRef // of the snapshot, for the "unchanged" test
}

type svcKey struct{ ns, name string }

// serviceRoute is a managed Service.
type serviceRoute struct {
	ns, name string
	ports    []*portRoute
	counters *codeCounters

	// Shared by the Service's ports, and by the next table's route of the Service when it stays.
	label      string // "ns/svc"
	latency    prometheus.Observer
	noEndpoint prometheus.Counter

	enc   string      // the Service's encoding in the snapshot it was built from
	state *regEntries // the state its routes use, carried into the next table with the route
}

// port returns the route of port p, or, without a port in the request, of the Service's only port
// (else port 80). nil when the Service has no such port.
func (s *serviceRoute) port(p int32, given bool) *portRoute {
	if !given {
		if len(s.ports) == 1 {
			return s.ports[0]
		}
		p = 80
	}
	for _, pr := range s.ports {
		if pr.port == p {
			return pr
		}
	}
	return nil
}

// portRoute is a Service port: its endpoints and its chain.
type portRoute struct {
	svc   *serviceRoute
	port  int32
	label string // "ns/svc", for messages
	chain stage
	eps   []*endpoint
	bal   balancer

	h2c      bool   // HTTP/2 cleartext to the endpoints (appProtocol kubernetes.io/h2c or grpc)
	portName string // the Service port's name, for messages ("" when it has none)

	hasRetry      bool // responses carry X-Resilience-Attempts
	replay        bool // request bodies are buffered to be sent again
	tryTimeoutMsg string

	latency    prometheus.Observer
	noEndpoint prometheus.Counter
}

// build makes the routing table of snapshot e, taking over from old the routes of the Services whose
// encoding is unchanged and, for the others, the state whose keys match. Each Service is built against
// a pool of the old table's state plus what the Services before it made, into a registry of its own,
// so the result is the same as building every Service again, in order, into one registry.
func (g *Gateway) build(e *snapshot.Encoded, old *table) (*table, error) {
	var prev *registry
	if old != nil {
		prev = old.state
	}
	reg := newRegistry()
	t := &table{services: make(map[svcKey]*serviceRoute, len(e.Services)), state: reg, policies: slices.Clone(e.Policies)}
	var pool *registry // made when the first Service is built
	for i := range e.Services {
		svc := &e.Services[i]
		key := svcKey{svc.Namespace, svc.Name}
		if old != nil {
			if o := old.services[key]; o != nil && o.enc == e.Encodings[i] {
				reg.add(o.state)
				t.services[key] = o
				continue
			}
		}
		if pool == nil {
			pool = prev.clone() // the routes kept so far use state of prev: the pool has it
		}
		sr := &serviceRoute{ns: svc.Namespace, name: svc.Name, enc: e.Encodings[i]}
		if old != nil { // keep the metrics of a Service that stays
			if o := old.services[key]; o != nil {
				sr.counters, sr.label, sr.latency, sr.noEndpoint = o.counters, o.label, o.latency, o.noEndpoint
			}
		}
		if sr.counters == nil {
			sr.counters = &codeCounters{vec: g.m.requests, ns: svc.Namespace, svc: svc.Name}
			sr.label = svc.Namespace + "/" + svc.Name
			sr.latency = g.m.latency.WithLabelValues(svc.Namespace, svc.Name)
			sr.noEndpoint = g.m.rejections.WithLabelValues(svc.Namespace, svc.Name, "", "", reasonNoEndpoint)
		}
		own := newRegistry()
		for _, p := range svc.Ports {
			pr, err := g.buildPort(sr, p, pool, own)
			if err != nil {
				reg.add(own.entries())
				reg.dropUnused(prev, g.m)
				return nil, fmt.Errorf("service %s/%s port %d: %w", svc.Namespace, svc.Name, p.Port, err)
			}
			sr.ports = append(sr.ports, pr)
		}
		sr.state = own.entries()
		reg.add(sr.state)
		pool.add(sr.state)
		t.services[key] = sr
	}
	t.capture = captureRoutes(e, t)
	for _, b := range reg.breakerMap {
		reg.breakerList = append(reg.breakerList, b)
	}
	slices.SortFunc(reg.breakerList, func(a, b *breakerState) int { return strings.Compare(a.key, b.key) })
	return t, nil
}

// captureRoutes maps the snapshot's capture ports to their port routes (a Service's routes are in
// the order of its ports in the snapshot).
func captureRoutes(e *snapshot.Encoded, t *table) map[int32]*portRoute {
	out := map[int32]*portRoute{}
	for _, svc := range e.Services {
		for j, p := range svc.Ports {
			if p.CapturePort != 0 {
				out[p.CapturePort] = t.services[svcKey{svc.Namespace, svc.Name}].ports[j]
			}
		}
	}
	return out
}
