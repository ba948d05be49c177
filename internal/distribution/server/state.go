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
	"context"
	"maps"
	"slices"
	"sort"
	"time"

	"resilience.dev/operator/api/v1alpha1"
	"resilience.dev/operator/internal/snapshot"
)

// Start writes the states of this replica's gateways to the store as they change, refreshes their
// heartbeats, and removes states whose manager died, until ctx ends.
func (s *Server) Start(ctx context.Context) error {
	flush := time.NewTicker(50 * time.Millisecond)
	defer flush.Stop()
	beat := time.NewTicker(StaleAfter / 3)
	defer beat.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-beat.C:
			s.mu.Lock()
			for _, c := range s.conns {
				c.dirty = true
			}
			s.mu.Unlock()
			s.collectStale(ctx)
		case <-flush.C:
		}
		s.flush(ctx)
	}
}

// flush writes the states that changed, backing off while the store fails.
func (s *Server) flush(ctx context.Context) {
	now := s.clock.Now()
	if now.Before(s.retryAt) {
		return
	}
	s.mu.Lock()
	var states []GatewayState
	for _, c := range s.conns {
		if !c.dirty {
			continue
		}
		c.dirty = false
		states = append(states, GatewayState{Replica: c.replica, Manager: s.manager, Heartbeat: now,
			Policies: maps.Clone(c.policies), Breakers: maps.Clone(c.breakers), Store: cloneHealth(c.store)})
	}
	s.mu.Unlock()
	failed := false
	for _, st := range states {
		if err := s.store.Put(ctx, st); err != nil {
			failed = true
			if s.putFailures == 0 {
				s.log.Error(err, "share gateway state; retrying with backoff", "replica", st.Replica)
			}
			s.markDirty(st.Replica)
		}
	}
	switch {
	case failed:
		// 100 ms, doubling to at most 5 s: an API outage must not turn into a hot retry loop.
		s.putFailures++
		s.retryAt = s.clock.Now().Add(min(100*time.Millisecond<<min(s.putFailures-1, 6), 5*time.Second))
	case s.putFailures > 0 && len(states) > 0:
		s.log.Info("sharing gateway state again", "failedAttempts", s.putFailures)
		s.putFailures = 0
	}
}

func (s *Server) markDirty(replica string) {
	s.mu.Lock()
	if c := s.conns[replica]; c != nil {
		c.dirty = true
	}
	s.mu.Unlock()
}

// collectStale removes the states of gateways whose manager replica stopped refreshing them.
func (s *Server) collectStale(ctx context.Context) {
	states, err := s.store.List(ctx)
	if err != nil {
		return
	}
	for _, st := range states {
		if s.since(st.Heartbeat) > 4*StaleAfter {
			_ = s.store.Delete(ctx, st.Replica, st.Manager)
		}
	}
}

// liveStates lists the gateway states whose heartbeat is fresh.
func (s *Server) liveStates() []GatewayState {
	states, err := s.store.List(context.Background())
	if err != nil {
		s.log.Error(err, "read gateway states")
		return nil
	}
	live := states[:0]
	for _, st := range states {
		if s.since(st.Heartbeat) <= StaleAfter {
			live = append(live, st)
		}
	}
	sort.Slice(live, func(i, j int) bool { return live[i].Replica < live[j].Replica })
	return live
}

// StoreChanged is called when the shared gateway states changed (the manager's informer on them, or
// a MemoryStore): it recounts the live replicas and requeues the policies.
func (s *Server) StoreChanged() {
	states := s.liveStates()
	view := make(map[string]GatewayState, len(states))
	for _, st := range states {
		view[st.Replica] = st
	}
	s.mu.Lock()
	old := s.view
	s.view = view
	s.mu.Unlock()

	if len(old) != len(view) || !sameReplicas(old, view) {
		metricReplicas.Set(float64(len(view)))
		if s.OnReplicas != nil {
			s.OnReplicas(len(view))
		}
		s.changed(nil) // every policy's N/M count moved
		return
	}
	if storeFlipped(old, view) {
		s.changed(nil) // every RateLimit with a Global limit shows StoreAvailable
		return
	}
	if keys := changedKeys(old, view); len(keys) > 0 { // a heartbeat alone changes nothing
		s.changed(keys)
	}
}

func (s *Server) changed(keys []snapshot.PolicyKey) {
	if s.OnChange != nil {
		s.OnChange(keys)
	}
}

func sameReplicas(a, b map[string]GatewayState) bool {
	for r := range a {
		if _, ok := b[r]; !ok {
			return false
		}
	}
	return true
}

// changedKeys lists the policies whose generation on some replica, or whose breaker state, differs
// between two views of the same replicas.
func changedKeys(old, cur map[string]GatewayState) []snapshot.PolicyKey {
	set := map[snapshot.PolicyKey]bool{}
	for r, n := range cur {
		o := old[r]
		for k, g := range n.Policies {
			if o.Policies[k] != g {
				set[k] = true
			}
		}
		for k := range o.Policies {
			if _, ok := n.Policies[k]; !ok {
				set[k] = true
			}
		}
		for _, pair := range [2][2]breakerStates{{n.Breakers, o.Breakers}, {o.Breakers, n.Breakers}} {
			for k, st := range pair[0] {
				if pair[1][k] != st {
					set[snapshot.PolicyKey{Kind: v1alpha1.KindCircuitBreaker, Namespace: k.Namespace, Name: k.Name}] = true
				}
			}
		}
	}
	keys := make([]snapshot.PolicyKey, 0, len(set))
	for k := range set {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, snapshot.PolicyKey.Compare)
	return keys
}
