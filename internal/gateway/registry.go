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
	"maps"
	"strings"

	"resilience.dev/operator/internal/patterns/budget"
	"resilience.dev/operator/internal/patterns/bulkhead"
	"resilience.dev/operator/internal/patterns/ratelimit"
	"resilience.dev/operator/internal/patterns/waitqueue"
)

// limitState is the bucket, or keyed buckets, of one limit.
type limitState struct {
	bucket *ratelimit.Bucket
	keyed  *ratelimit.Keyed
	global *globalState // a Global limit's limiter (bucket or keyed then hold its Local fallback)
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
