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

// Package ratelimit holds the rate-limiting algorithms of the gateway: a lock-free token bucket
// (GCRA), a keyed limiter with bounded memory, and all-or-nothing takes across several limits.
//
// Every decision takes the current time as a parameter, like golang.org/x/time/rate's AllowN(now, n):
// callers pass one clock's readings (clock.Real in production, clock.Fake in tests), so every
// result can be checked exactly. Times should come from one clock; a take whose time is older than
// another caller's is treated conservatively (it sees fewer tokens), never generously.
package ratelimit

import (
	"fmt"
	"sync/atomic"
	"time"
)

// Bucket is a token bucket with the semantics of golang.org/x/time/rate: tokens refill
// continuously at Requests per Period up to Burst, a new bucket starts full, and a request for n
// tokens passes when n tokens are there. It is implemented as the generic cell rate algorithm
// (GCRA), which is exactly a continuous-refill token bucket: its whole state is one theoretical
// arrival time in an atomic int64, updated by compare-and-swap. It is safe for concurrent use,
// takes no lock and does not allocate.
type Bucket struct {
	// tat is the theoretical arrival time in ticks: the bucket holds
	// Burst - (max(tat, now) - now)/tokenTicks tokens, and is full when tat <= now.
	tat atomic.Int64
	p   *params
}

// NewBucket returns a full bucket for l.
func NewBucket(l Limit) (*Bucket, error) {
	p, err := newParams(l)
	if err != nil {
		return nil, fmt.Errorf("new bucket: %w", err)
	}
	return &Bucket{p: p}, nil
}

// Limit returns the bucket's limit.
func (b *Bucket) Limit() Limit { return b.p.limit }

// Allow reports whether one token is available at now, and takes it if so.
func (b *Bucket) Allow(now time.Time) bool { return b.AllowN(now, 1) }

// AllowN reports whether n tokens are available at now, and takes them if so. n == 0 is always
// allowed; n < 0 and n > Burst never are.
func (b *Bucket) AllowN(now time.Time, n int) bool {
	p := b.p
	if n <= 0 || n > p.limit.Burst {
		return n == 0
	}
	need := int64(n) * p.tokenTicks
	v := p.ticks(elapsed(now))
	// The request conforms when max(tat, v) + need - v <= burstTicks; as need <= burstTicks that is
	// tat <= limit.
	limit := v + p.burstTicks - need
	for {
		old := b.tat.Load()
		if old > limit {
			return false
		}
		if b.tat.CompareAndSwap(old, max(old, v)+need) {
			return true
		}
	}
}

// ReserveN takes n tokens if they are available at now or will be within maxWait. When it does,
// it returns ok and a Reservation whose Delay is how long the caller must wait before it goes on
// (zero when the tokens are there now); the tokens are spent as of that moment, and later
// reservations queue behind it. When they are not, it returns !ok and spends nothing, so a
// Delay-mode request is either admitted to wait exactly Delay or refused at once. n > Burst is
// never admitted, however long maxWait is (maxWait is capped at MaxWindow).
func (b *Bucket) ReserveN(now time.Time, n int, maxWait time.Duration) (Reservation, bool) {
	e := elapsed(now)
	r, ok := b.reserve(e, e, n, clampWait(maxWait))
	if !ok {
		return Reservation{}, false
	}
	return r, true
}

// Tokens returns the tokens available at now, between 0 and Burst (fractional: the gateway floors
// it for X-RateLimit-Remaining). While reservations wait it is 0.
func (b *Bucket) Tokens(now time.Time) float64 {
	p := b.p
	v := p.ticks(elapsed(now))
	debt := max(b.tat.Load(), v) - v
	if debt >= p.burstTicks {
		return 0
	}
	return float64(p.burstTicks-debt) / float64(p.tokenTicks)
}

// NextToken returns how long after now one token will be available: zero when one is available
// now. It is the basis of Retry-After and of the t= parameter of the RateLimit header.
func (b *Bucket) NextToken(now time.Time) time.Duration {
	e := elapsed(now)
	return time.Duration(b.until(e, 1))
}

// until returns the nanoseconds from e until n (capped at Burst) tokens are available at once.
func (b *Bucket) until(e int64, n int) int64 {
	p := b.p
	v := p.ticks(e)
	act := max(b.tat.Load(), v) + int64(min(max(n, 0), p.limit.Burst))*p.tokenTicks - p.burstTicks
	if act <= v {
		return 0
	}
	return p.nanos(act) - e
}

// reserve takes n tokens for a request that goes at eAt (eNow <= eAt <= eNow+maxWait, in
// nanoseconds since the epoch), provided they are available by eNow+maxWait. On success the
// reservation's wait is counted from eNow and is at least eAt-eNow. On refusal the returned
// Reservation holds nothing but names the bucket that refused.
func (b *Bucket) reserve(eNow, eAt int64, n int, maxWait int64) (Reservation, bool) {
	p := b.p
	if n <= 0 || n > p.limit.Burst {
		return Reservation{b: b}, n == 0
	}
	need := int64(n) * p.tokenTicks
	v := p.ticks(eAt)
	for {
		old := b.tat.Load()
		end := max(old, v) + need
		wait := eAt - eNow
		// act is the first tick at which the request conforms.
		if act := end - p.burstTicks; act > v {
			wait = p.nanos(act) - eNow
			if wait > maxWait {
				return Reservation{b: b}, false
			}
		}
		if b.tat.CompareAndSwap(old, end) {
			return Reservation{b: b, n: n, end: end, wait: time.Duration(wait)}, true
		}
	}
}

// refund gives back the part of a reservation of need ticks ending at end that is still ahead of
// e: what is behind it has been refilled meanwhile, and giving it back would let through more than
// the limit. The bucket never ends above Burst.
func (b *Bucket) refund(e, need, end int64) {
	v := b.p.ticks(e)
	back := min(need, end-v)
	if back <= 0 {
		return
	}
	for {
		old := b.tat.Load()
		nt := max(old-back, v)
		if nt >= old || b.tat.CompareAndSwap(old, nt) {
			return
		}
	}
}

// Reservation is tokens taken from a bucket for a request, by Bucket.ReserveN, Keyed.ReserveN or
// ReserveAll. The zero Reservation holds nothing. It is a small value: keep it in a variable (or a
// slice the caller owns) and call its methods through that.
type Reservation struct {
	b    *Bucket
	n    int
	end  int64 // tat right after the reservation, in ticks
	wait time.Duration
}

// Delay returns how long after the reservation's time the request may go on.
func (r *Reservation) Delay() time.Duration { return r.wait }

// Bucket returns the bucket the tokens were taken from (the keyed limiter's own bucket for the key,
// or its overflow bucket), for reading Tokens and NextToken; nil for the zero Reservation.
func (r *Reservation) Bucket() *Bucket { return r.b }

// Cancel gives the tokens back because the request will not go on (its waiter left, or another
// limit refused it). Only the part of the reservation still ahead of now is returned: tokens whose
// time has passed were refilled anyway. The bucket never ends above Burst. Cancel empties r, so a
// second call does nothing. Pass the current time: the check above is only as good as now is
// fresh relative to the times other callers pass.
func (r *Reservation) Cancel(now time.Time) { r.cancel(elapsed(now)) }

func (r *Reservation) cancel(e int64) {
	if r.b != nil && r.n > 0 {
		r.b.refund(e, int64(r.n)*r.b.p.tokenTicks, r.end)
	}
	*r = Reservation{}
}
