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
	"fmt"
	"sync"
	"time"

	"resilience.dev/operator/internal/patterns/clock"
)

// Options describe one Global bucket as a replica sees it.
type Options struct {
	// Key names the bucket in the store.
	Key  string
	Rate Rate
	// Replicas is how many gateway replicas share the bucket (at least 1): a batch is at most
	// 1/(2*Replicas) of what the store last said remains, so that batches shrink to one token as the
	// bucket empties and no replica can hoard the rest.
	Replicas int
	// Lapse is how long a replica may hold tokens it has not spent before they go back (default 1s).
	Lapse time.Duration
	// Fast is how quickly a batch must be spent for the next one to double (default Lapse/8).
	Fast time.Duration
}

// Decision is the answer to Take.
type Decision struct {
	Allowed bool
	// RetryAfter, when refused, is when the store said a token will be back.
	RetryAfter time.Duration
	// Remaining is this replica's best knowledge of the tokens left: what the store last said plus
	// what the replica holds.
	Remaining int64
	// Err is set (wrapping ErrUnavailable) when the store could not be asked: neither allowed nor
	// refused, the caller applies onStoreError.
	Err error
}

// Limiter spends one Global bucket's tokens on one replica. It is safe for concurrent use.
type Limiter struct {
	store Store
	clock clock.Clock
	o     Options

	mu       sync.Mutex
	tokens   int64     // granted, not yet spent
	deadline time.Time // when held tokens go back (the oldest grant held + Lapse)
	owed     int64     // lapsed tokens to give back on the next call
	remain   int64     // what the store last said remains
	refused  time.Time // refuse from memory until then
	batch    int64     // current batch size, adapted to local demand
	lastFill time.Time // when the last grant arrived
	lastTake time.Time // when Take was last called (a keyed limit forgets idle keys)
	inflight *refill

	spawn func(func()) // runs a prefetch: a goroutine; tests run it in line to stay deterministic
}

// refill is one store call in flight; others wait for it instead of calling too.
type refill struct {
	done chan struct{}
	err  error
}

// New returns a limiter for one bucket of store.
func New(store Store, clk clock.Clock, o Options) (*Limiter, error) {
	if err := o.Rate.Validate(); err != nil {
		return nil, fmt.Errorf("global limit %q: %w", o.Key, err)
	}
	o.Replicas = max(o.Replicas, 1)
	if o.Lapse <= 0 {
		o.Lapse = time.Second
	}
	if o.Fast <= 0 {
		o.Fast = o.Lapse / 8
	}
	return &Limiter{store: store, clock: clk, o: o, remain: o.Rate.Burst, batch: 1, spawn: func(f func()) { go f() }}, nil
}

// Take spends n tokens if the replica holds them, else asks the store (one call at a time; a call
// already in flight is joined). A refusal is remembered until the store's Retry-After.
func (l *Limiter) Take(ctx context.Context, n int64) Decision {
	for {
		l.mu.Lock()
		now := l.clock.Now()
		l.lastTake = now
		l.lapse(now)
		if l.tokens >= n {
			l.tokens -= n
			d := Decision{Allowed: true, Remaining: l.remain + l.tokens}
			prefetch, want := l.startPrefetch(now)
			l.mu.Unlock()
			if prefetch != nil {
				l.spawn(func() { l.run(context.WithoutCancel(ctx), prefetch, want) })
			}
			return d
		}
		if now.Before(l.refused) {
			d := Decision{RetryAfter: l.refused.Sub(now), Remaining: l.tokens}
			l.mu.Unlock()
			return d
		}
		c, mine := l.inflight, false
		if c == nil {
			c, mine = &refill{done: make(chan struct{})}, true
			l.inflight = c
		}
		want := max(n-l.tokens, l.batchSize())
		l.mu.Unlock()
		if mine {
			l.run(ctx, c, want)
		} else {
			select {
			case <-c.done:
			case <-ctx.Done():
				return Decision{Err: ctx.Err()}
			}
		}
		if c.err != nil {
			return Decision{Err: c.err}
		}
	}
}

// Return gives back n tokens that Take granted but the request did not spend (a later limit refused
// it): they stay on this replica for the next request.
func (l *Limiter) Return(n int64) {
	l.mu.Lock()
	l.tokens += n
	l.mu.Unlock()
}

// Sweep gives back to the store the tokens held longer than Lapse, so that an idle replica cannot
// hold them. The gateway calls it a few times per Lapse.
func (l *Limiter) Sweep(ctx context.Context) error {
	l.mu.Lock()
	l.lapse(l.clock.Now())
	if l.owed == 0 || l.inflight != nil {
		l.mu.Unlock()
		return nil
	}
	c := &refill{done: make(chan struct{})}
	l.inflight = c
	l.mu.Unlock()
	l.run(ctx, c, 0)
	return c.err
}

// Held is the number of tokens this replica holds, for tests and metrics.
func (l *Limiter) Held() int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.tokens
}

// idle reports whether the limiter can be forgotten: no Take for a Lapse, holding and owing nothing.
func (l *Limiter) idle(now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return now.Sub(l.lastTake) >= l.o.Lapse && l.tokens == 0 && l.owed == 0 && l.inflight == nil
}

// lapse moves held tokens past their deadline to owed. Called with mu held.
func (l *Limiter) lapse(now time.Time) {
	if l.tokens > 0 && !now.Before(l.deadline) {
		l.owed += l.tokens
		l.tokens = 0
		l.batch = max(l.batch/2, 1) // they were not needed: ask for fewer
	}
}

// batchSize is what a call asks for beyond the need: the adapted batch, capped so that replicas
// together take at most half of what remains. Called with mu held.
func (l *Limiter) batchSize() int64 {
	return max(min(l.batch, l.remain/(2*int64(l.o.Replicas))), 1)
}

// startPrefetch claims a call ahead of need when the replica is about to run out and the bucket is
// far from empty, so that the hot path finds tokens in hand. Called with mu held.
func (l *Limiter) startPrefetch(now time.Time) (*refill, int64) {
	if l.inflight != nil || l.batch < 2 || l.tokens >= l.batch/2 || l.remain < 2*int64(l.o.Replicas) ||
		now.Before(l.refused) {
		return nil, 0
	}
	l.inflight = &refill{done: make(chan struct{})}
	return l.inflight, l.batchSize()
}

// run makes the store call of c and records its answer.
func (l *Limiter) run(ctx context.Context, c *refill, want int64) {
	l.mu.Lock()
	giveBack := l.owed
	l.owed = 0
	l.mu.Unlock()

	g, err := l.store.Take(ctx, l.o.Key, l.o.Rate, want, giveBack)

	l.mu.Lock()
	now := l.clock.Now()
	if err != nil {
		l.owed += giveBack // not given back: try again on the next call
		c.err = err
	} else {
		l.record(now, want, g)
	}
	l.inflight = nil
	l.mu.Unlock()
	close(c.done)
}

// record applies a grant. Called with mu held.
func (l *Limiter) record(now time.Time, want int64, g Grant) {
	l.remain = g.Remaining
	if g.Granted == 0 {
		if want > 0 {
			l.refused = now.Add(g.RetryAfter)
		}
		return
	}
	if l.tokens == 0 {
		l.deadline = now.Add(l.o.Lapse)
	}
	if !l.lastFill.IsZero() && now.Sub(l.lastFill) < l.o.Fast {
		l.batch = min(l.batch*2, l.o.Rate.Burst) // spent quickly: ask for more next time
	}
	l.lastFill = now
	l.tokens += g.Granted
}
