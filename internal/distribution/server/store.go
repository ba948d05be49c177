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
	"sync"
	"time"

	"resilience.dev/operator/api/v1alpha1"
	"resilience.dev/operator/internal/distribution"
	"resilience.dev/operator/internal/snapshot"
)

// GatewayState is what one gateway replica runs, as every manager replica sees it: the generation of
// each policy in the snapshot it last applied, and its breakers that are not closed. The manager
// serving the gateway writes it; the leader reads every replica's, so Programmed and breaker status
// count all gateways whichever manager replica they are connected to.
type GatewayState struct {
	Replica  string
	Manager  string
	Policies map[snapshot.PolicyKey]int64         // policy -> generation
	Breakers map[BreakerKey]v1alpha1.CircuitState // CircuitOpen or CircuitHalfOpen
	// Store is the replica's view of the store of Global rate limits (nil: not reported yet).
	Store     *distribution.StoreHealth
	Heartbeat time.Time
}

// StateStore keeps the gateways' states where every manager replica can read them.
type StateStore interface {
	Put(ctx context.Context, s GatewayState) error
	// Delete removes a replica's state if manager still owns it (a reconnect elsewhere took it over).
	Delete(ctx context.Context, replica, manager string) error
	List(ctx context.Context) ([]GatewayState, error)
}

// MemoryStore is a StateStore for a single manager process (tests, and a manager without a cluster).
type MemoryStore struct {
	mu sync.Mutex
	m  map[string]GatewayState
	// OnChange is called after every change.
	OnChange func()
}

// Put implements StateStore.
func (m *MemoryStore) Put(_ context.Context, s GatewayState) error {
	m.mu.Lock()
	if m.m == nil {
		m.m = map[string]GatewayState{}
	}
	m.m[s.Replica] = s
	m.mu.Unlock()
	m.changed()
	return nil
}

// Delete implements StateStore.
func (m *MemoryStore) Delete(_ context.Context, replica, manager string) error {
	m.mu.Lock()
	if s, ok := m.m[replica]; ok && s.Manager == manager {
		delete(m.m, replica)
	}
	m.mu.Unlock()
	m.changed()
	return nil
}

// List implements StateStore.
func (m *MemoryStore) List(context.Context) ([]GatewayState, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]GatewayState, 0, len(m.m))
	for _, s := range m.m {
		out = append(out, s)
	}
	return out, nil
}

func (m *MemoryStore) changed() {
	if m.OnChange != nil {
		m.OnChange()
	}
}
