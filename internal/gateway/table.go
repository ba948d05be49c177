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
	"maps"
	"slices"
	"strings"

	"github.com/prometheus/client_golang/prometheus"

	"resilience.dev/operator/internal/patterns/budget"
	"resilience.dev/operator/internal/patterns/bulkhead"
	"resilience.dev/operator/internal/patterns/ratelimit"
	"resilience.dev/operator/internal/patterns/waitqueue"
	"resilience.dev/operator/internal/snapshot"
)

// table is one routing table: built from a snapshot, then read-only. The routes of Services whose
// encoding did not change are taken over from the table before, as they are.
type table struct {
	services map[svcKey]*serviceRoute
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

// keyedEntry is one entry of a registry map.
type keyedEntry[T any] struct {
	key string
	v   T
}

// regEntries are the registry entries of one Service's routes, compact: a route kept by the next
// table brings them into that table's registry, as building it again would.
type regEntries struct {
	limits    []keyedEntry[*limitState]
	breakers  []keyedEntry[*breakerState]
	metas     []breakerMeta // of breakers, one each
	bulkheads []keyedEntry[*bulkhead.Bulkhead]
	budgets   []keyedEntry[*budget.Budget]
	queues    []keyedEntry[*waitqueue.Queue]
}

func entriesOf[T any](m map[string]T) []keyedEntry[T] {
	if len(m) == 0 {
		return nil
	}
	out := make([]keyedEntry[T], 0, len(m))
	for k, v := range m {
		out = append(out, keyedEntry[T]{k, v})
	}
	return out
}

func putEntries[T any](m map[string]T, es []keyedEntry[T]) {
	for _, e := range es {
		m[e.key] = e.v
	}
}

// entries lists the entries of r (a registry holding one Service's state).
func (r *registry) entries() *regEntries {
	e := &regEntries{limits: entriesOf(r.limitMap), breakers: entriesOf(r.breakerMap),
		bulkheads: entriesOf(r.bulkheadMap), budgets: entriesOf(r.budgetMap), queues: entriesOf(r.queueMap)}
	for _, b := range e.breakers {
		e.metas = append(e.metas, r.metas[b.v])
	}
	return e
}

// add puts e into r.
func (r *registry) add(e *regEntries) {
	putEntries(r.limitMap, e.limits)
	putEntries(r.breakerMap, e.breakers)
	for i, b := range e.breakers {
		r.metas[b.v] = e.metas[i]
	}
	putEntries(r.bulkheadMap, e.bulkheads)
	putEntries(r.budgetMap, e.budgets)
	putEntries(r.queueMap, e.queues)
}

// clone copies r's maps (not its metas or list).
func (r *registry) clone() *registry {
	c := newRegistry()
	if r != nil {
		c.limitMap, c.breakerMap = maps.Clone(r.limitMap), maps.Clone(r.breakerMap)
		c.bulkheadMap, c.budgetMap, c.queueMap = maps.Clone(r.bulkheadMap), maps.Clone(r.budgetMap), maps.Clone(r.queueMap)
	}
	return c
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

	hasRetry      bool // responses carry X-Resilience-Attempts
	replay        bool // request bodies are buffered to be sent again
	tryTimeoutMsg string

	latency    prometheus.Observer
	noEndpoint prometheus.Counter
}

// limitState is the bucket, or keyed buckets, of one limit.
type limitState struct {
	bucket *ratelimit.Bucket
	keyed  *ratelimit.Keyed
}

// registry holds the pattern state of one table, by state key (the compiler's StateKey plus the
// parameters the gateway builds the state from). A new table takes over the entries of the old one
// whose keys it still has; the others are dropped with the old table.
type registry struct {
	limitMap    map[string]*limitState
	breakerMap  map[string]*breakerState
	bulkheadMap map[string]*bulkhead.Bulkhead
	budgetMap   map[string]*budget.Budget
	queueMap    map[string]*waitqueue.Queue
	breakerList []*breakerState // sorted by key
	metas       map[*breakerState]breakerMeta
}

// commit gives every breaker of r the names of r's snapshot; Apply calls it once r is in force.
func (r *registry) commit() {
	for bs, m := range r.metas {
		bs.meta.Store(&m)
	}
}

func newRegistry() *registry {
	return &registry{
		limitMap:    map[string]*limitState{},
		breakerMap:  map[string]*breakerState{},
		bulkheadMap: map[string]*bulkhead.Bulkhead{},
		budgetMap:   map[string]*budget.Budget{},
		queueMap:    map[string]*waitqueue.Queue{},
		metas:       map[*breakerState]breakerMeta{},
	}
}

// The accessors read a nil registry (before the first table) as an empty one.
func (r *registry) limits() map[string]*limitState {
	if r == nil {
		return nil
	}
	return r.limitMap
}

func (r *registry) breakers() map[string]*breakerState {
	if r == nil {
		return nil
	}
	return r.breakerMap
}

func (r *registry) bulkheads() map[string]*bulkhead.Bulkhead {
	if r == nil {
		return nil
	}
	return r.bulkheadMap
}

func (r *registry) budgets() map[string]*budget.Budget {
	if r == nil {
		return nil
	}
	return r.budgetMap
}

func (r *registry) queues() map[string]*waitqueue.Queue {
	if r == nil {
		return nil
	}
	return r.queueMap
}

// reuse returns the state under key in next, else takes it over from prev, else creates it.
func reuse[T any](prev, next map[string]T, key string, create func() (T, error)) (T, error) {
	if v, ok := next[key]; ok {
		return v, nil
	}
	if v, ok := prev[key]; ok {
		next[key] = v
		return v, nil
	}
	v, err := create()
	if err != nil {
		var zero T
		return zero, err
	}
	next[key] = v
	return v, nil
}

// dropUnused forgets the breakers of r that keep does not hold: their events stop and their gauge
// series go (unless a breaker of keep has the same labels). The other state needs nothing: it is
// garbage once no table holds it.
func (r *registry) dropUnused(keep *registry, m *metrics) {
	labels := map[string]bool{}
	for _, b := range keep.breakers() {
		labels[strings.Join(b.labels, "\x00")] = true
	}
	for k, b := range r.breakerMap {
		if _, ok := keep.breakers()[k]; ok {
			continue
		}
		b.dropped.Store(true)
		if !labels[strings.Join(b.labels, "\x00")] {
			m.breakerState.DeleteLabelValues(b.labels...)
		}
	}
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
	for _, b := range reg.breakerMap {
		reg.breakerList = append(reg.breakerList, b)
	}
	slices.SortFunc(reg.breakerList, func(a, b *breakerState) int { return strings.Compare(a.key, b.key) })
	return t, nil
}
