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

package ratelimit

import (
	"fmt"
	"math"
	"math/bits"
	"time"
)

const (
	year = 8766 * time.Hour // 365.25 days

	// MaxWindow bounds the time a full bucket takes to refill from empty (Burst*Period/Requests) and
	// the wait of a reservation, so that every computation stays within int64 nanoseconds.
	MaxWindow = 50 * year

	// maxElapsed leaves room above the clamped time for a full window plus a maximal wait.
	maxElapsed = math.MaxInt64 - 2*int64(MaxWindow) - 1
)

// epoch is the origin of every bucket's time line: 1966-01-01 UTC on the wall clock, carrying the
// monotonic reading of that instant. Times from clock.Real are thus measured on the monotonic clock
// (immune to wall-clock steps), while fake times, which have no monotonic reading, are measured on
// their wall reading from a fixed origin, so that tests are deterministic to the nanosecond.
var epoch = func() time.Time {
	now := time.Now()
	return now.Add(time.Date(1966, 1, 1, 0, 0, 0, 0, time.UTC).Sub(now))
}()

// elapsed returns now as nanoseconds since the epoch, clamped to [0, maxElapsed]: times are usable
// from 1966 to about 2158.
func elapsed(now time.Time) int64 {
	d := int64(now.Sub(epoch))
	if d < 0 {
		return 0
	}
	return min(d, maxElapsed)
}

// clampWait bounds a caller's maximum wait to [0, MaxWindow].
func clampWait(d time.Duration) int64 {
	return int64(min(max(d, 0), MaxWindow))
}

// Limit describes a token bucket: Requests tokens are added per Period, continuously, to a bucket
// that holds at most Burst tokens. The contract's `requests`, `period` and `burst` map onto it
// directly; the Split distribution over N replicas is Limit{Requests, Period*N, max(Burst/N, 1)}.
type Limit struct {
	// Requests is the number of tokens added per Period, at least 1.
	Requests int64
	// Period is the time over which Requests tokens are added; at least one nanosecond per token.
	Period time.Duration
	// Burst is the bucket size, at least 1. A new bucket starts full.
	Burst int
}

// Validate reports whether l describes a usable bucket.
func (l Limit) Validate() error {
	switch {
	case l.Requests < 1:
		return fmt.Errorf("requests %d: must be at least 1", l.Requests)
	case l.Period <= 0:
		return fmt.Errorf("period %v: must be positive", l.Period)
	case l.Requests > int64(l.Period):
		return fmt.Errorf("%d requests per %v: more than one per nanosecond", l.Requests, l.Period)
	case l.Burst < 1:
		return fmt.Errorf("burst %d: must be at least 1", l.Burst)
	}
	hi, lo := bits.Mul64(uint64(l.Burst), uint64(l.Period))
	if hi != 0 || lo/uint64(l.Requests) > uint64(MaxWindow) {
		return fmt.Errorf("burst %d at %d per %v: refilling the bucket would take longer than %v",
			l.Burst, l.Requests, l.Period, MaxWindow)
	}
	return nil
}

// String renders the limit as "100/1s burst 20".
func (l Limit) String() string {
	return fmt.Sprintf("%d/%v burst %d", l.Requests, l.Period, l.Burst)
}

// params is the immutable arithmetic of a Limit, shared by every bucket of a keyed limiter.
//
// Time is kept in ticks, with one token worth tokenTicks ticks. When Requests divides Period a tick
// is a nanosecond and everything is exact integer arithmetic. Otherwise a tick is slightly longer
// than a nanosecond (mul/div of one, between 1/2 and 1) and the conversion from nanoseconds is an
// exact 128-bit rational product, so that after k periods exactly k*Requests tokens have been added,
// with no rounding drift. The only rounding is that "now" is floored to a whole tick, which can make
// a token available at most one tick (under 2 ns) early.
type params struct {
	limit      Limit
	tokenTicks int64  // ticks per token: floor(Period/Requests) >= 1
	burstTicks int64  // tokenTicks * Burst
	mul, div   uint64 // ticks = floor(ns * mul / div), reduced; mul <= div
	exact      bool   // mul == div: ticks are nanoseconds
}

func newParams(l Limit) (*params, error) {
	if err := l.Validate(); err != nil {
		return nil, fmt.Errorf("invalid limit %v: %w", l, err)
	}
	s := int64(l.Period) / l.Requests
	mul, div := uint64(l.Requests)*uint64(s), uint64(l.Period)
	g := gcd(mul, div)
	mul, div = mul/g, div/g
	return &params{
		limit:      l,
		tokenTicks: s,
		burstTicks: s * int64(l.Burst),
		mul:        mul,
		div:        div,
		exact:      mul == div,
	}, nil
}

// ticks converts nanoseconds since the epoch to ticks, rounding down.
func (p *params) ticks(ns int64) int64 {
	if p.exact {
		return ns
	}
	// ns*mul/div < 2^63 because mul <= div, so the quotient fits and Div64 cannot panic.
	hi, lo := bits.Mul64(uint64(ns), p.mul)
	q, _ := bits.Div64(hi, lo, p.div)
	return int64(q)
}

// nanos returns the first nanosecond at which ticks(ns) >= t: ceil(t*div/mul).
func (p *params) nanos(t int64) int64 {
	if p.exact || t <= 0 {
		return t
	}
	// div/mul < 2, so the quotient is below 2^64 and Div64 cannot panic.
	hi, lo := bits.Mul64(uint64(t), p.div)
	q, r := bits.Div64(hi, lo, p.mul)
	if r != 0 {
		q++
	}
	return int64(q)
}

func gcd(a, b uint64) uint64 {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}
