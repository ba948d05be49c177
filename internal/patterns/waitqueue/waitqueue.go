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

// Package waitqueue is the bounded wait queue of the rate limiter's Delay mode: at most Capacity
// requests wait at once, each for exactly the time its token reservation asked, and a request
// that would find the queue full, or would wait longer than MaxDelay, is refused at once.
//
// It composes with ratelimit's reservations in three steps, so that a refused request never
// spends a token:
//
//	t, err := q.Enter()                 // ErrQueueFull at once: nothing reserved yet
//	if err != nil { ... 429 ... }
//	now := clk.Now()
//	out := ratelimit.ReserveAll(now, refs, 1, q.MaxDelay(), rs)
//	if !out.OK { t.Leave(); ... 429 ... }
//	err = t.Wait(ctx, now.Add(out.Wait), func(now time.Time) { ratelimit.CancelAll(now, rs) })
//	if err != nil { ... the client went away: its tokens were given back ... }
//
// The order is FIFO because the reservations are: a token bucket hands out release times that
// never decrease in the order the reservations were made, and each waiter is released exactly at
// its own time (waiters released at the same instant go together; clock.Fake fires them in the
// order they started waiting). The queue itself holds no list, only a count of the places taken,
// so entering and leaving cost one atomic operation and no lock.
package waitqueue

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"resilience.dev/operator/internal/patterns/clock"
)

var (
	// ErrQueueFull is returned by Enter when Capacity requests are already waiting.
	ErrQueueFull = errors.New("waitqueue: queue full")
	// ErrTooLong is returned by Wait when the release time is more than MaxDelay away.
	ErrTooLong = errors.New("waitqueue: wait longer than the maximum delay")
	// ErrTicketUsed is returned by Wait on a Ticket that has already waited or left.
	ErrTicketUsed = errors.New("waitqueue: ticket already used")
)

// Queue is a bounded wait queue. It is safe for concurrent use.
type Queue struct {
	clk      clock.Clock
	capacity int64
	maxDelay time.Duration
	waiting  atomic.Int64
}

// New returns a queue holding at most capacity waiters, none waiting longer than maxDelay, timed
// by clk.
func New(clk clock.Clock, capacity int, maxDelay time.Duration) (*Queue, error) {
	switch {
	case clk == nil:
		return nil, errors.New("new wait queue: nil clock")
	case capacity < 1:
		return nil, fmt.Errorf("new wait queue: capacity %d: must be at least 1", capacity)
	case maxDelay <= 0:
		return nil, fmt.Errorf("new wait queue: maxDelay %v: must be positive", maxDelay)
	}
	return &Queue{clk: clk, capacity: int64(capacity), maxDelay: maxDelay}, nil
}

// Capacity returns the most waiters the queue holds.
func (q *Queue) Capacity() int { return int(q.capacity) }

// MaxDelay returns the longest a waiter may wait: the maxWait to reserve tokens with.
func (q *Queue) MaxDelay() time.Duration { return q.maxDelay }

// Waiting returns the number of places taken (entered and neither released nor left).
func (q *Queue) Waiting() int { return int(q.waiting.Load()) }

// Enter takes a place in the queue, or returns ErrQueueFull at once. The Ticket must then be used
// exactly once, by Wait or Leave, to give the place back.
func (q *Queue) Enter() (Ticket, error) {
	for {
		n := q.waiting.Load()
		if n >= q.capacity {
			return Ticket{}, ErrQueueFull
		}
		if q.waiting.CompareAndSwap(n, n+1) {
			return Ticket{q: q}, nil
		}
	}
}

// Ticket is a place in a Queue. Keep it in a variable and call Wait or Leave through it once.
type Ticket struct{ q *Queue }

// Leave gives the place back without waiting, for a request refused by the rate limiter after it
// entered. A second call does nothing.
func (t *Ticket) Leave() {
	if t.q != nil {
		t.q.waiting.Add(-1)
		t.q = nil
	}
}

// Wait holds the place until release (the reservation's time: the time it was made plus its
// delay), then gives it back and returns nil; a release time already reached returns at once. If
// ctx ends first, the waiter leaves the queue at once: refund (when not nil) is called with the
// current time to give back the reservation, and Wait returns an error wrapping the context's
// cause (errors.Is(err, context.Canceled) or context.DeadlineExceeded). A release more than
// MaxDelay away is refused with ErrTooLong, also after calling refund.
func (t *Ticket) Wait(ctx context.Context, release time.Time, refund func(now time.Time)) error {
	q := t.q
	if q == nil {
		return ErrTicketUsed
	}
	defer t.Leave()
	now := q.clk.Now()
	d := release.Sub(now)
	if d > q.maxDelay {
		if refund != nil {
			refund(now)
		}
		return fmt.Errorf("%w: %v > %v", ErrTooLong, d, q.maxDelay)
	}
	if d <= 0 {
		return nil
	}
	tm := q.clk.NewTimer(d)
	select {
	case <-tm.C():
		return nil
	case <-ctx.Done():
		tm.Stop()
		left := q.clk.Now()
		if refund != nil {
			refund(left)
		}
		return fmt.Errorf("waitqueue: left after %v of %v: %w", left.Sub(now), d, context.Cause(ctx))
	}
}
