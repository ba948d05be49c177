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

// Package bulkhead limits the calls in flight to a target: at most MaxConcurrent run at once, up to
// MaxQueued more wait in FIFO order, each for at most QueueTimeout, and the rest are rejected at once.
//
// A released slot goes straight to the oldest waiter (no barging: while anyone waits, a newcomer
// queues behind them). The uncontended path is one atomic compare-and-swap and allocates nothing;
// the queue is guarded by a mutex that only callers that must wait, and releases that hand a slot
// to a waiter, take.
package bulkhead

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"resilience.dev/operator/internal/patterns/clock"
)

var (
	// ErrFull is returned at once when every slot is taken and the queue is full.
	ErrFull = errors.New("bulkhead: full")
	// ErrQueueTimeout is returned to a caller that waited QueueTimeout in the queue without a slot.
	ErrQueueTimeout = errors.New("bulkhead: queue timeout")
)

// Config sizes a Bulkhead.
type Config struct {
	// MaxConcurrent is the number of calls in flight at once (1..2^31-1).
	MaxConcurrent int
	// MaxQueued is the number of callers that may wait for a slot (0..2^31-1); 0 rejects at once.
	MaxQueued int
	// QueueTimeout is the longest a caller waits in the queue; 0 means until its context ends.
	QueueTimeout time.Duration
}

// Validate reports whether c can build a Bulkhead.
func (c Config) Validate() error {
	if c.MaxConcurrent < 1 || c.MaxConcurrent > math.MaxInt32 {
		return fmt.Errorf("bulkhead: maxConcurrent %d out of range 1..%d", c.MaxConcurrent, math.MaxInt32)
	}
	if c.MaxQueued < 0 || c.MaxQueued > math.MaxInt32 {
		return fmt.Errorf("bulkhead: maxQueued %d out of range 0..%d", c.MaxQueued, math.MaxInt32)
	}
	if c.QueueTimeout < 0 {
		return fmt.Errorf("bulkhead: queueTimeout %v is negative", c.QueueTimeout)
	}
	return nil
}

const (
	queuedOne  = 1 << 32
	dequeueOne = ^uint64(queuedOne - 1) // adding it subtracts queuedOne
)

// Bulkhead is a concurrency limiter with a bounded FIFO queue. It is safe for concurrent use.
// Every successful Acquire must be paired with exactly one Release.
type Bulkhead struct {
	// state packs the slots in use (low 32 bits) and the waiters (high 32 bits) in one word, so the
	// fast paths can check "a slot is free and nobody waits" and take it in one atomic step.
	// Invariant: waiters > 0 implies every slot is in use, so no waiter is ever stranded.
	// The waiter count changes only under mu.
	state     atomic.Uint64
	max       uint64
	maxQueued uint64
	timeout   time.Duration
	clk       clock.Clock

	mu         sync.Mutex
	head, tail *waiter // the queue, oldest first
	seq        uint64
	onGrant    func(seq uint64) // test hook, called under mu when a slot is handed to a waiter
}

type waiter struct {
	ready      chan struct{} // receives once the slot is handed over
	granted    bool          // under mu
	prev, next *waiter
	seq        uint64
}

// New returns a Bulkhead; clk provides the queue timers.
func New(clk clock.Clock, cfg Config) (*Bulkhead, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if clk == nil {
		return nil, errors.New("bulkhead: nil clock")
	}
	return &Bulkhead{max: uint64(cfg.MaxConcurrent), maxQueued: uint64(cfg.MaxQueued), timeout: cfg.QueueTimeout, clk: clk}, nil
}

// Acquire takes a slot, waiting in the queue when none is free. It returns nil (the caller must
// call Release later), ErrFull, ErrQueueTimeout, or ctx.Err() when ctx ends while it waits. Like
// golang.org/x/sync/semaphore, a free slot is taken even when ctx is already done.
func (b *Bulkhead) Acquire(ctx context.Context) error {
	for {
		s := b.state.Load()
		if s>>32 != 0 || uint32(s) >= uint32(b.max) {
			return b.acquireSlow(ctx)
		}
		if b.state.CompareAndSwap(s, s+1) {
			return nil
		}
	}
}

func (b *Bulkhead) acquireSlow(ctx context.Context) error {
	b.mu.Lock()
	for {
		s := b.state.Load()
		if s>>32 == 0 && uint32(s) < uint32(b.max) {
			// A fast-path Release freed a slot meanwhile.
			if b.state.CompareAndSwap(s, s+1) {
				b.mu.Unlock()
				return nil
			}
			continue
		}
		if s>>32 >= b.maxQueued {
			b.mu.Unlock()
			return ErrFull
		}
		if err := ctx.Err(); err != nil {
			b.mu.Unlock()
			return err
		}
		// Join the queue in the same step that checked all slots are taken, so that a concurrent
		// fast-path Release either happened before (and the CAS fails) or sees the waiter.
		if b.state.CompareAndSwap(s, s+queuedOne) {
			break
		}
	}
	b.seq++
	w := &waiter{ready: make(chan struct{}, 1), seq: b.seq}
	b.push(w)
	b.mu.Unlock()

	var expired <-chan time.Time
	if b.timeout > 0 {
		t := b.clk.NewTimer(b.timeout)
		defer t.Stop()
		expired = t.C()
	}
	select {
	case <-w.ready:
		return nil
	case <-ctx.Done():
		if b.leave(w) {
			return ctx.Err()
		}
		// The slot was handed over as ctx ended: the caller is gone, so pass it on.
		b.Release()
		return ctx.Err()
	case <-expired:
		if b.leave(w) {
			return ErrQueueTimeout
		}
		return nil // the slot arrived in time after all
	}
}

// leave takes w out of the queue; it reports false when w was already granted a slot.
func (b *Bulkhead) leave(w *waiter) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if w.granted {
		return false
	}
	b.remove(w)
	b.state.Add(dequeueOne)
	return true
}

// Release frees the slot taken by a successful Acquire, handing it to the oldest waiter if any.
// Releasing more than was acquired is a programming error and panics, like sync.Mutex.Unlock.
func (b *Bulkhead) Release() {
	for {
		s := b.state.Load()
		if s>>32 != 0 {
			b.releaseSlow()
			return
		}
		if uint32(s) == 0 {
			panic("bulkhead: Release without Acquire")
		}
		if b.state.CompareAndSwap(s, s-1) {
			return
		}
	}
}

func (b *Bulkhead) releaseSlow() {
	b.mu.Lock()
	defer b.mu.Unlock()
	for {
		s := b.state.Load()
		if s>>32 == 0 { // the waiters left meanwhile
			if uint32(s) == 0 {
				panic("bulkhead: Release without Acquire")
			}
			if b.state.CompareAndSwap(s, s-1) {
				return
			}
			continue
		}
		// Hand the slot over: the in-flight count stays, one waiter fewer. Only mu holders change
		// the state while waiters exist, so a plain add is exact.
		w := b.head
		b.remove(w)
		w.granted = true
		b.state.Add(dequeueOne)
		w.ready <- struct{}{}
		if b.onGrant != nil {
			b.onGrant(w.seq)
		}
		return
	}
}

// InFlight returns the number of slots in use.
func (b *Bulkhead) InFlight() int { return int(uint32(b.state.Load())) }

// Queued returns the number of callers waiting for a slot.
func (b *Bulkhead) Queued() int { return int(b.state.Load() >> 32) }

func (b *Bulkhead) push(w *waiter) {
	w.prev = b.tail
	if b.tail == nil {
		b.head = w
	} else {
		b.tail.next = w
	}
	b.tail = w
}

func (b *Bulkhead) remove(w *waiter) {
	if w.prev == nil {
		b.head = w.next
	} else {
		w.prev.next = w.next
	}
	if w.next == nil {
		b.tail = w.prev
	} else {
		w.next.prev = w.prev
	}
	w.prev, w.next = nil, nil
}
