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

package globallimit

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"resilience.dev/operator/internal/patterns/clock"
)

// Store holds the buckets of Global limits: one atomic step per call (see Take).
type Store interface {
	// Take gives back giveBack unspent tokens to the bucket key and takes up to want from it.
	Take(ctx context.Context, key string, r Rate, want, giveBack int64) (Grant, error)
}

// MemoryStore is a Store in this process, on an injected clock: the exact reference that tests run
// beside the real server, and the store of a single replica.
type MemoryStore struct {
	clock clock.Clock
	mu    sync.Mutex
	state map[string]State
}

// NewMemoryStore returns an empty store whose buckets follow clk.
func NewMemoryStore(clk clock.Clock) *MemoryStore {
	return &MemoryStore{clock: clk, state: map[string]State{}}
}

// Take implements Store.
func (m *MemoryStore) Take(ctx context.Context, key string, r Rate, want, giveBack int64) (Grant, error) {
	if err := ctx.Err(); err != nil {
		return Grant{}, err
	}
	if err := r.Validate(); err != nil {
		return Grant{}, err
	}
	now := m.clock.Now().UnixMicro()
	m.mu.Lock()
	defer m.mu.Unlock()
	s, g, full := Take(m.state[key], now, r, want, giveBack)
	if full {
		delete(m.state, key)
	} else {
		m.state[key] = s
	}
	return g, nil
}

// Len is the number of buckets that are not full.
func (m *MemoryStore) Len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.state)
}

// ErrUnavailable wraps every store failure a Guard reports; the caller applies onStoreError.
var ErrUnavailable = errors.New("store unavailable")

// Call is one store call as a Guard saw it, for metrics.
type Call struct {
	Latency          time.Duration
	Want, GiveBack   int64
	Granted          int64
	Err              error // nil, or the store's error
	SkippedWhileDown bool  // not sent: the store is down and it was not time to probe it
}

// GuardOptions configure a Guard.
type GuardOptions struct {
	// Budget bounds each call (contract default 5ms): a slow store is a failed store.
	Budget time.Duration
	// Probe is how often a down store is tried again by one caller while the others fail fast.
	Probe time.Duration
	// OnChange is called from the caller's goroutine when availability flips, in the order of the flips.
	OnChange func(available bool, err error)
	// Observe, when set, sees every call.
	Observe func(Call)
}

// Guard wraps a Store with the per-call budget and availability: after a failure the store is down,
// calls fail fast with ErrUnavailable, and one call per Probe tries it again, so a dead store costs
// requests nothing and its return is noticed without a restart.
type Guard struct {
	store  Store
	clock  clock.Clock
	opts   GuardOptions
	down   atomic.Bool
	probe  atomic.Int64 // unix nanos of the next probe while down
	mu     sync.Mutex   // guards last and the flip of down
	notify sync.Mutex   // keeps OnChange calls in the order of the flips
	last   error
}

// NewGuard wraps store. Zero options take the contract's defaults (5ms budget, 250ms probes).
func NewGuard(store Store, clk clock.Clock, o GuardOptions) *Guard {
	if o.Budget <= 0 {
		o.Budget = 5 * time.Millisecond
	}
	if o.Probe <= 0 {
		o.Probe = 250 * time.Millisecond
	}
	return &Guard{store: store, clock: clk, opts: o}
}

// Available reports whether the last call reached the store.
func (g *Guard) Available() bool { return !g.down.Load() }

// LastError is the error that took the store down, while it is down.
func (g *Guard) LastError() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if !g.down.Load() {
		return nil
	}
	return g.last
}

// Take implements Store.
func (g *Guard) Take(ctx context.Context, key string, r Rate, want, giveBack int64) (Grant, error) {
	if g.down.Load() {
		next := g.probe.Load()
		now := g.clock.Now().UnixNano()
		if now < next || !g.probe.CompareAndSwap(next, now+int64(g.opts.Probe)) {
			g.observe(Call{Want: want, GiveBack: giveBack, SkippedWhileDown: true})
			return Grant{}, fmt.Errorf("%w: %v", ErrUnavailable, g.LastError())
		}
	}
	ctx, cancel := context.WithTimeout(ctx, g.opts.Budget)
	defer cancel()
	start := time.Now()
	grant, err := g.store.Take(ctx, key, r, want, giveBack)
	g.observe(Call{Latency: time.Since(start), Want: want, GiveBack: giveBack, Granted: grant.Granted, Err: err})
	if err != nil {
		g.set(err)
		return Grant{}, fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	g.set(nil)
	return grant, nil
}

func (g *Guard) observe(c Call) {
	if g.opts.Observe != nil {
		g.opts.Observe(c)
	}
}

// Report records the outcome of a health check made beside the calls (err nil: the store answered),
// so that a store lost or back while no request asks it is noticed too.
func (g *Guard) Report(err error) {
	if err != nil {
		err = fmt.Errorf("health check: %w", err)
	}
	g.set(err)
}

// set records the outcome of a call (err nil: the store answered) and reports a flip.
func (g *Guard) set(err error) {
	available := err == nil
	if available && !g.down.Load() {
		return // the common case: still up, no lock
	}
	g.notify.Lock()
	defer g.notify.Unlock()
	g.mu.Lock()
	wasDown := g.down.Load()
	g.last = err
	g.down.Store(!available)
	if !available {
		g.probe.Store(g.clock.Now().UnixNano() + int64(g.opts.Probe))
	}
	g.mu.Unlock()
	if wasDown == available && g.opts.OnChange != nil {
		g.opts.OnChange(available, err)
	}
}
