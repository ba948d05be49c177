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
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"golang.org/x/time/rate"
)

// t0 is a whole second, so that every limit's tick grid is aligned with it and the expected
// values below are exact.
var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func mustBucket(t testing.TB, l Limit) *Bucket {
	t.Helper()
	b, err := NewBucket(l)
	if err != nil {
		t.Fatalf("NewBucket(%v): %v", l, err)
	}
	return b
}

// debt returns max(tat, now) - now in ticks: Burst*tokenTicks minus the tokens held, unclamped.
func debt(b *Bucket, now time.Time) int64 {
	v := b.p.ticks(elapsed(now))
	return max(b.tat.Load(), v) - v
}

func TestLimitValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		desc    string
		limit   Limit
		wantErr string
	}{
		{desc: "contract example", limit: Limit{100, time.Second, 20}},
		{desc: "one per day", limit: Limit{1, 24 * time.Hour, 1}},
		{desc: "one per nanosecond", limit: Limit{1000, time.Microsecond, 1}},
		{desc: "split over 3 replicas", limit: Limit{100, 3 * time.Second, 6}},
		{desc: "zero requests", limit: Limit{0, time.Second, 1}, wantErr: "requests 0"},
		{desc: "negative requests", limit: Limit{-1, time.Second, 1}, wantErr: "requests -1"},
		{desc: "zero period", limit: Limit{1, 0, 1}, wantErr: "period 0s"},
		{desc: "negative period", limit: Limit{1, -time.Second, 1}, wantErr: "period -1s"},
		{desc: "faster than one per nanosecond", limit: Limit{1001, time.Microsecond, 1}, wantErr: "more than one per nanosecond"},
		{desc: "zero burst", limit: Limit{1, time.Second, 0}, wantErr: "burst 0"},
		{desc: "window over 50 years", limit: Limit{1, 24 * time.Hour, 20000}, wantErr: "longer than"},
		{desc: "burst times period overflows", limit: Limit{1, 24 * time.Hour, 1 << 62}, wantErr: "longer than"},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			_, err := NewBucket(tc.limit)
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("NewBucket(%v) = %v, want no error", tc.limit, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("NewBucket(%v) = %v, want an error containing %q", tc.limit, err, tc.wantErr)
			}
		})
	}
}

// TestBucketEvenSpread offers requests evenly spaced, much faster than the limit: the bucket
// admits exactly its burst plus every token refilled by the last arrival, as an exact continuous
// token bucket does, and x/time/rate agrees within one.
func TestBucketEvenSpread(t *testing.T) {
	t.Parallel()
	tests := []struct {
		desc  string
		limit Limit
		count int
		step  time.Duration
		want  int
	}{
		// 10 + floor(100 * 0.999)
		{desc: "100/s burst 10, 1000 requests over 1s", limit: Limit{100, time.Second, 10}, count: 1000, step: time.Millisecond, want: 109},
		// 1 + floor(3 * 9.999): 3 does not divide 1s, the rational path
		{desc: "3/s burst 1, 10000 requests over 10s", limit: Limit{3, time.Second, 1}, count: 10000, step: time.Millisecond, want: 30},
		// 3 + floor(7 * 6.999)
		{desc: "7/s burst 3, 7000 requests over 7s", limit: Limit{7, time.Second, 3}, count: 7000, step: time.Millisecond, want: 51},
		// 50 + floor(1000 * 99.999 / 60)
		{desc: "1000/min burst 50, 100000 requests over 100s", limit: Limit{1000, time.Minute, 50}, count: 100000, step: time.Millisecond, want: 1716},
		// 1 + floor(1e6 * 0.0999999): 1 token per microsecond, offered every 100ns
		{desc: "1e6/s burst 1, 1e6 requests over 0.1s", limit: Limit{1000000, time.Second, 1}, count: 1000000, step: 100 * time.Nanosecond, want: 100000},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			b := mustBucket(t, tc.limit)
			x := rate.NewLimiter(rate.Limit(float64(tc.limit.Requests)/tc.limit.Period.Seconds()), tc.limit.Burst)
			got, gotX := 0, 0
			for i := range tc.count {
				now := t0.Add(time.Duration(i) * tc.step)
				if b.Allow(now) {
					got++
				}
				if x.AllowN(now, 1) {
					gotX++
				}
			}
			if got != tc.want {
				t.Errorf("admitted %d, want %d", got, tc.want)
			}
			if d := got - gotX; d < -1 || d > 1 {
				t.Errorf("admitted %d, x/time/rate admitted %d: more than one apart", got, gotX)
			}
		})
	}
}

func TestBucketInstant(t *testing.T) {
	t.Parallel()
	tests := []struct {
		desc  string
		limit Limit
		n     int
		want  int
	}{
		{desc: "100/s burst 10, n=1", limit: Limit{100, time.Second, 10}, n: 1, want: 10},
		{desc: "100/s burst 10, n=3", limit: Limit{100, time.Second, 10}, n: 3, want: 3},
		{desc: "3/s burst 7, n=1", limit: Limit{3, time.Second, 7}, n: 1, want: 7},
		{desc: "1/day burst 1", limit: Limit{1, 24 * time.Hour, 1}, n: 1, want: 1},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			b := mustBucket(t, tc.limit)
			got := 0
			for range 1000 {
				if b.AllowN(t0, tc.n) {
					got++
				}
			}
			if got != tc.want {
				t.Errorf("admitted %d at one instant, want %d", got, tc.want)
			}
			if tok := b.Tokens(t0); tok != float64(tc.limit.Burst-tc.want*tc.n) {
				t.Errorf("Tokens = %v, want %d", tok, tc.limit.Burst-tc.want*tc.n)
			}
		})
	}
}

func TestBucketNOutOfRange(t *testing.T) {
	t.Parallel()
	tests := []struct {
		desc string
		n    int
		want bool
	}{
		{desc: "n = burst", n: 5, want: true},
		{desc: "n = burst+1", n: 6, want: false},
		{desc: "n huge", n: 1 << 40, want: false},
		{desc: "n = 0 takes nothing", n: 0, want: true},
		{desc: "n < 0", n: -1, want: false},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			l := Limit{1, time.Second, 5}
			// A full bucket, an hour later, and with every wait allowed.
			b := mustBucket(t, l)
			if got := b.AllowN(t0, tc.n); got != tc.want {
				t.Errorf("AllowN(%d) = %v, want %v", tc.n, got, tc.want)
			}
			b = mustBucket(t, l)
			_, ok := b.ReserveN(t0, tc.n, 100*year)
			if ok != tc.want {
				t.Errorf("ReserveN(%d, 100y) ok = %v, want %v", tc.n, ok, tc.want)
			}
			if !tc.want && b.Tokens(t0) != 5 {
				t.Errorf("a refused ReserveN spent tokens: %v left", b.Tokens(t0))
			}
		})
	}
}

// TestBucketAccuracy offers a steady load above the limit for T seconds: no window of the
// admitted requests holds more than burst + rate*window, and the total is within 1% of
// burst + rate*T.
func TestBucketAccuracy(t *testing.T) {
	t.Parallel()
	tests := []struct {
		desc    string
		limit   Limit
		seconds int
		factor  float64 // offered load / limit
		// jitter draws each arrival at random (seeded) within its slot instead of evenly. Such a
		// load is not steady: a small bucket loses the tokens that refill while no request comes,
		// so only the upper bound is checked.
		jitter bool
	}{
		{desc: "100/s burst 20, 2x, even", limit: Limit{100, time.Second, 20}, seconds: 30, factor: 2},
		// With burst 1 a token that refills between two arrivals waits, full, for the next one and
		// the refill meanwhile is lost (any token bucket does this, x/time/rate too); burst 2
		// absorbs it.
		{desc: "7/s burst 2, 1.5x, even", limit: Limit{7, time.Second, 2}, seconds: 100, factor: 1.5},
		{desc: "333/s burst 5, 1.1x, even", limit: Limit{333, time.Second, 5}, seconds: 20, factor: 1.1},
		{desc: "1000/min burst 10, 10x, even", limit: Limit{1000, time.Minute, 10}, seconds: 120, factor: 10},
		{desc: "100/s burst 20, 2x, jittered", limit: Limit{100, time.Second, 20}, seconds: 30, factor: 2, jitter: true},
		{desc: "7/s burst 1, 3x, jittered", limit: Limit{7, time.Second, 1}, seconds: 100, factor: 3, jitter: true},
		{desc: "1000/min burst 10, 10x, jittered", limit: Limit{1000, time.Minute, 10}, seconds: 120, factor: 10, jitter: true},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			b := mustBucket(t, tc.limit)
			l := tc.limit
			span := time.Duration(tc.seconds) * time.Second
			count := int(float64(l.Requests) * span.Seconds() / l.Period.Seconds() * tc.factor)
			rng := rand.New(rand.NewPCG(1, 2))
			var admitted []time.Duration // offsets from t0
			for i := range count {
				at := time.Duration(int64(span) * int64(i) / int64(count))
				if tc.jitter {
					slot := int64(span) / int64(count)
					at = time.Duration(int64(i)*slot + rng.Int64N(slot))
				}
				if b.Allow(t0.Add(at)) {
					admitted = append(admitted, at)
				}
			}
			// Every window [admitted[i], admitted[j]] holds at most burst + rate*window requests:
			// (j-i+1-burst)*Period <= Requests*window, exact integers.
			for i := range admitted {
				for j := i; j < len(admitted); j++ {
					n := int64(j - i + 1 - l.Burst)
					if n > 0 && n*int64(l.Period) > l.Requests*int64(admitted[j]-admitted[i]) {
						t.Fatalf("%d requests in [%v, %v]: more than burst %d + rate*window",
							j-i+1, admitted[i], admitted[j], l.Burst)
					}
				}
			}
			ideal := float64(l.Burst) + float64(l.Requests)*span.Seconds()/l.Period.Seconds()
			got := float64(len(admitted))
			if got > ideal {
				t.Errorf("admitted %v over %v, more than burst + rate*T = %v", got, span, ideal)
			}
			if !tc.jitter && got < 0.99*ideal {
				t.Errorf("admitted %v over %v, want within 1%% below %v", got, span, ideal)
			}
		})
	}
}

// TestBucketPeriodBoundary: after a drain, exactly Requests tokens come back after exactly one
// Period, on both arithmetic paths, and not a nanosecond earlier.
func TestBucketPeriodBoundary(t *testing.T) {
	t.Parallel()
	tests := []struct {
		desc  string
		limit Limit
	}{
		{desc: "5/s burst 5 (ticks are nanoseconds)", limit: Limit{5, time.Second, 5}},
		{desc: "3/s burst 3 (rational ticks)", limit: Limit{3, time.Second, 3}},
		{desc: "7/s burst 7", limit: Limit{7, time.Second, 7}},
		{desc: "999/1.5s burst 999", limit: Limit{999, 1500 * time.Millisecond, 999}},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			b := mustBucket(t, tc.limit)
			n := int(tc.limit.Requests)
			if !b.AllowN(t0, n) {
				t.Fatalf("a full bucket refused its burst")
			}
			end := t0.Add(tc.limit.Period)
			if b.AllowN(end.Add(-time.Nanosecond), n) {
				t.Fatalf("%d tokens were back 1ns before one period", n)
			}
			if got := b.Tokens(end); got != float64(n) {
				t.Errorf("Tokens after one period = %v, want %d", got, n)
			}
			if !b.AllowN(end, n) {
				t.Fatalf("%d tokens were not back after exactly one period", n)
			}
		})
	}
}

// TestBucketReserve checks that reservation waits are exact, and that a reservation over maxWait
// is refused without spending anything.
func TestBucketReserve(t *testing.T) {
	t.Parallel()
	type step struct {
		maxWait  time.Duration
		wantOK   bool
		wantWait time.Duration
	}
	tests := []struct {
		desc  string
		limit Limit
		steps []step
	}{
		{
			desc:  "10/s burst 1",
			limit: Limit{10, time.Second, 1},
			steps: []step{
				{maxWait: 0, wantOK: true, wantWait: 0},
				{maxWait: 0, wantOK: false},
				{maxWait: 250 * time.Millisecond, wantOK: true, wantWait: 100 * time.Millisecond},
				{maxWait: 250 * time.Millisecond, wantOK: true, wantWait: 200 * time.Millisecond},
				{maxWait: 250 * time.Millisecond, wantOK: false},
				{maxWait: 300*time.Millisecond - 1, wantOK: false},
				{maxWait: 300 * time.Millisecond, wantOK: true, wantWait: 300 * time.Millisecond},
			},
		},
		{
			desc:  "3/s burst 2 (rational)",
			limit: Limit{3, time.Second, 2},
			steps: []step{
				{maxWait: time.Second, wantOK: true, wantWait: 0},
				{maxWait: time.Second, wantOK: true, wantWait: 0},
				{maxWait: 333333333, wantOK: false},
				{maxWait: time.Second, wantOK: true, wantWait: 333333334},
				{maxWait: time.Second, wantOK: true, wantWait: 666666667},
				{maxWait: time.Second, wantOK: true, wantWait: time.Second},
				{maxWait: time.Second, wantOK: false},
				{maxWait: 2 * time.Second, wantOK: true, wantWait: 1333333334},
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			b := mustBucket(t, tc.limit)
			for i, s := range tc.steps {
				before := b.tat.Load()
				r, ok := b.ReserveN(t0, 1, s.maxWait)
				if ok != s.wantOK {
					t.Fatalf("step %d: ok = %v, want %v", i, ok, s.wantOK)
				}
				if !ok {
					if b.tat.Load() != before {
						t.Fatalf("step %d: a refused reservation changed the bucket", i)
					}
					continue
				}
				if r.Delay() != s.wantWait {
					t.Fatalf("step %d: Delay = %v, want %v", i, r.Delay(), s.wantWait)
				}
				if r.Bucket() != b {
					t.Fatalf("step %d: Bucket() is not the bucket", i)
				}
				// The reservation conforms exactly at its time: nothing more fits before it.
				if r.Delay() > 0 && b.NextToken(t0) <= r.Delay() {
					t.Fatalf("step %d: NextToken = %v, want after %v", i, b.NextToken(t0), r.Delay())
				}
			}
		})
	}
}

func TestBucketNextTokenAndTokens(t *testing.T) {
	t.Parallel()
	b := mustBucket(t, Limit{3, time.Second, 2})
	tests := []struct {
		desc       string
		take       int
		at         time.Duration
		wantTokens float64
		wantNext   time.Duration
	}{
		{desc: "full", at: 0, wantTokens: 2, wantNext: 0},
		{desc: "one taken", take: 1, at: 0, wantTokens: 1, wantNext: 0},
		{desc: "both taken", take: 1, at: 0, wantTokens: 0, wantNext: 333333334},
		{desc: "1ns before the token", at: 333333333, wantTokens: 0.999999999, wantNext: 1},
		{desc: "on the token", at: 333333334, wantTokens: 1, wantNext: 0},
		{desc: "full again", at: time.Second, wantTokens: 2, wantNext: 0},
		{desc: "stays full", at: time.Hour, wantTokens: 2, wantNext: 0},
	}
	for _, tc := range tests { // sequential: each step builds on the last
		now := t0.Add(tc.at)
		if tc.take > 0 && !b.AllowN(now, tc.take) {
			t.Fatalf("%s: AllowN(%d) refused", tc.desc, tc.take)
		}
		if got := b.Tokens(now); got < tc.wantTokens-1e-6 || got > tc.wantTokens+1e-6 {
			t.Errorf("%s: Tokens = %v, want %v", tc.desc, got, tc.wantTokens)
		}
		if got := b.NextToken(now); got != tc.wantNext {
			t.Errorf("%s: NextToken = %v, want %v", tc.desc, got, tc.wantNext)
		}
	}
}

func TestReservationCancel(t *testing.T) {
	t.Parallel()
	l := Limit{10, time.Second, 2} // one token per 100ms
	ms := time.Millisecond
	tests := []struct {
		desc string
		// run takes from b and cancels; it returns the tokens expected at t0+at, and at.
		run        func(t *testing.T, b *Bucket) (at time.Duration)
		wantTokens float64
		wantNext   time.Duration // NextToken at t0+at
	}{
		{
			desc: "an immediate take given back at once restores the bucket",
			run: func(t *testing.T, b *Bucket) time.Duration {
				r, _ := b.ReserveN(t0, 1, 0)
				r.Cancel(t0)
				return 0
			},
			wantTokens: 2,
		},
		{
			desc: "the last waiter's cancel frees its place for the next one",
			run: func(t *testing.T, b *Bucket) time.Duration {
				b.AllowN(t0, 2)
				b.ReserveN(t0, 1, time.Second) // waits 100ms
				r, _ := b.ReserveN(t0, 1, time.Second)
				if r.Delay() != 200*ms {
					t.Fatalf("second waiter Delay = %v, want 200ms", r.Delay())
				}
				r.Cancel(t0)
				if r2, _ := b.ReserveN(t0, 1, time.Second); r2.Delay() != 200*ms {
					t.Fatalf("after the cancel the next waiter waits %v, want 200ms", r2.Delay())
				}
				return 0
			},
			wantTokens: 0, wantNext: 300 * ms,
		},
		{
			desc: "a take whose tokens have refilled gives nothing back",
			run: func(t *testing.T, b *Bucket) time.Duration {
				r, _ := b.ReserveN(t0, 1, 0) // bucket 1 left
				b.AllowN(t0.Add(100*ms), 2)  // refilled to 2, both taken
				r.Cancel(t0.Add(100 * ms))
				return 100 * ms
			},
			wantTokens: 0, wantNext: 100 * ms,
		},
		{
			desc: "a partly refilled take gives back only what is still ahead, never above burst",
			run: func(t *testing.T, b *Bucket) time.Duration {
				r, _ := b.ReserveN(t0, 1, 0) // 1 left, refilling
				r.Cancel(t0.Add(50 * ms))    // 1.5 there; half the token is still ahead
				return 50 * ms
			},
			wantTokens: 2,
		},
		{
			desc: "cancel twice gives back once",
			run: func(t *testing.T, b *Bucket) time.Duration {
				b.AllowN(t0, 1)
				r, _ := b.ReserveN(t0, 1, 0)
				r.Cancel(t0)
				r.Cancel(t0)
				return 0
			},
			wantTokens: 1,
		},
		{
			desc: "a cancelled waiter in the middle shifts the bucket back by one token",
			run: func(t *testing.T, b *Bucket) time.Duration {
				b.AllowN(t0, 2)
				r1, _ := b.ReserveN(t0, 1, time.Second) // 100ms
				b.ReserveN(t0, 1, time.Second)          // 200ms, keeps its time
				r1.Cancel(t0.Add(10 * ms))
				return 10 * ms
			},
			wantTokens: 0, wantNext: 190 * ms,
		},
		{
			desc: "the zero Reservation cancels nothing",
			run: func(t *testing.T, b *Bucket) time.Duration {
				b.AllowN(t0, 1)
				var r Reservation
				r.Cancel(t0)
				return 0
			},
			wantTokens: 1,
		},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			b := mustBucket(t, l)
			at := tc.run(t, b)
			now := t0.Add(at)
			if got := b.Tokens(now); got != tc.wantTokens {
				t.Errorf("Tokens = %v, want %v", got, tc.wantTokens)
			}
			if got := b.NextToken(now); got != tc.wantNext {
				t.Errorf("NextToken = %v, want %v", got, tc.wantNext)
			}
		})
	}
}

func TestBucketTimeRange(t *testing.T) {
	t.Parallel()
	tests := []struct {
		desc string
		now  time.Time
	}{
		{desc: "zero time is pinned to the epoch", now: time.Time{}},
		{desc: "before the epoch", now: time.Date(1900, 1, 1, 0, 0, 0, 0, time.UTC)},
		{desc: "far future is pinned", now: time.Date(2500, 1, 1, 0, 0, 0, 0, time.UTC)},
		{desc: "the wall clock", now: time.Now()},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			b := mustBucket(t, Limit{1, time.Hour, 2})
			// Pinned times all read as one instant: the burst passes, then nothing, and the
			// arithmetic neither overflows nor panics.
			if !b.AllowN(tc.now, 2) || b.Allow(tc.now) {
				t.Fatalf("burst 2 at %v not admitted exactly", tc.now)
			}
			if r, ok := b.ReserveN(tc.now, 1, MaxWindow+time.Hour); !ok || r.Delay() != time.Hour {
				t.Fatalf("ReserveN = %v, %v; want 1h", r.Delay(), ok)
			}
		})
	}
}
