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
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"resilience.dev/operator/internal/patterns/clock"
)

const hammerers = 64

// checkDebt fails unless the bucket holds between 0 and Burst tokens at now, allowing slack ticks
// of tokens promised to waiting reservations.
func checkDebt(t *testing.T, name string, b *Bucket, now time.Time, slack int64) {
	if d := debt(b, now); d < 0 || d > b.p.burstTicks+slack {
		t.Errorf("%s: debt %d ticks outside [0, %d+%d]", name, d, b.p.burstTicks, slack)
	}
}

// TestHammerPhases runs 64 goroutines against shared buckets, one instant at a time: takes,
// all-or-nothing takes with refunds, reservations cancelled, keyed takes. After every operation
// no bucket is below zero (beyond the reservations still waiting) or above its burst; after each
// instant the buckets are drained. With time frozen during an instant, the total admitted by
// each limit must equal exactly burst + rate*T: a refund lost or given twice, or a take lost,
// shows up as a difference.
func TestHammerPhases(t *testing.T) {
	t.Parallel()
	const (
		phases = 60
		ops    = 40
		step   = 7 * time.Millisecond
	)
	a := mustBucket(t, Limit{1000, time.Second, 50}) // ticks are nanoseconds
	b := mustBucket(t, Limit{300, time.Second, 10})  // rational ticks
	k := mustKeyed(t, Limit{200, time.Second, 5}, 4)
	kx, ky := []byte("x"), []byte("y")
	var nA, nB, nX, nY atomic.Int64
	slackA := a.p.ticks(int64(20*time.Millisecond)) + a.p.burstTicks // ReserveN and ReserveAll waits
	slackB := b.p.ticks(int64(50 * time.Millisecond))
	for p := range phases {
		now := t0.Add(time.Duration(p) * step)
		var wg sync.WaitGroup
		for g := range hammerers {
			wg.Go(func() {
				var out [3]Reservation
				for i := range ops {
					switch (g + i) % 5 {
					case 0:
						if a.Allow(now) {
							nA.Add(1)
						}
					case 1:
						if TakeAll(now, []Ref{{Bucket: b}, {Bucket: a}}, 1, nil).OK {
							nA.Add(1)
							nB.Add(1)
						}
					case 2:
						if TakeAll(now, []Ref{{Bucket: a}, {Keyed: k, Key: kx}, {Bucket: b}}, 1, nil).OK {
							nA.Add(1)
							nX.Add(1)
							nB.Add(1)
						}
					case 3:
						if r, ok := a.ReserveN(now, 1, 20*time.Millisecond); ok {
							checkDebt(t, "a", a, now, slackA)
							r.Cancel(now)
						}
					case 4:
						if ReserveAll(now, []Ref{{Bucket: a}, {Bucket: b}}, 1, 50*time.Millisecond, out[:2]).OK {
							checkDebt(t, "b", b, now, slackB)
							CancelAll(now, out[:2])
						}
						if k.AllowN(now, ky, 1) {
							nY.Add(1)
						}
					}
					checkDebt(t, "a", a, now, slackA)
					checkDebt(t, "b", b, now, slackB)
				}
			})
		}
		wg.Wait()
		// Every reservation was cancelled: the buckets are within [0, burst] exactly.
		checkDebt(t, "a after the instant", a, now, 0)
		checkDebt(t, "b after the instant", b, now, 0)
		for a.Allow(now) {
			nA.Add(1)
		}
		for b.Allow(now) {
			nB.Add(1)
		}
		for k.AllowN(now, kx, 1) {
			nX.Add(1)
		}
		for k.AllowN(now, ky, 1) {
			nY.Add(1)
		}
	}
	span := time.Duration(phases-1) * step // 413ms
	tests := []struct {
		desc string
		got  int64
		l    Limit
	}{
		{desc: "a", got: nA.Load(), l: a.Limit()},
		{desc: "b", got: nB.Load(), l: b.Limit()},
		{desc: "keyed x", got: nX.Load(), l: k.Limit()},
		{desc: "keyed y", got: nY.Load(), l: k.Limit()},
	}
	for _, tc := range tests {
		want := int64(tc.l.Burst) + tc.l.Requests*int64(span)/int64(tc.l.Period)
		if tc.got != want {
			t.Errorf("%s admitted %d over %v, want exactly burst + rate*T = %d", tc.desc, tc.got, span, want)
		}
	}
}

// TestHammerLiveClock runs 64 goroutines against one bucket while the fake clock moves on under
// them, so that callers pass times out of order: whatever the interleaving, the bucket admits at
// most burst + rate*T over the run, waiting reservations cancelled included.
func TestHammerLiveClock(t *testing.T) {
	t.Parallel()
	clk := clock.NewFake(t0)
	l := Limit{1000, time.Second, 50}
	a := mustBucket(t, l)
	var admitted, done atomic.Int64
	var stop atomic.Bool
	var wg sync.WaitGroup
	for g := range hammerers {
		wg.Go(func() {
			for i := 0; !stop.Load(); i++ {
				runtime.Gosched() // lets the clock driver in: it waits on these operations
				done.Add(1)
				now := clk.Now()
				switch (g + i) % 3 {
				case 0, 1:
					if a.Allow(now) {
						admitted.Add(1)
					}
				case 2:
					// A Delay-mode waiter that leaves: it hands its tokens back.
					if r, ok := a.ReserveN(now, 1, 10*time.Millisecond); ok {
						if r.Delay() == 0 {
							admitted.Add(1)
							continue
						}
						r.Cancel(clk.Now())
					}
				}
			}
		})
	}
	// The clock moves on only after 32 more operations, so the offered load stays far above the
	// limit (a token per 5 steps) and the bound is tight.
	const steps = 1000
	for range steps {
		for target := done.Load() + 32; done.Load() < target; {
			runtime.Gosched()
		}
		clk.Advance(200 * time.Microsecond)
	}
	stop.Store(true)
	wg.Wait()
	span := clk.Now().Sub(t0)
	limit := int64(l.Burst) + l.Requests*int64(span)/int64(l.Period)
	got := admitted.Load()
	t.Logf("admitted %d over %v; limit %d", got, span, limit)
	if got > limit {
		t.Errorf("admitted %d over %v, more than burst + rate*T = %d", got, span, limit)
	}
	if got < limit*9/10 {
		t.Errorf("admitted %d, under 90%% of %d: the hammer did not saturate the bucket", got, limit)
	}
}

// TestHammerKeyed runs 64 goroutines on a keyed limiter capped at 64 keys: 4 hot keys drained at
// every instant, a stream of new keys that fill the cap, become idle and are dropped, and sweeps,
// all at once. It never holds more than the cap, and each hot key, never idle, keeps its bucket
// and admits exactly burst + rate*T.
func TestHammerKeyed(t *testing.T) {
	t.Parallel()
	const (
		maxKeys = 64
		phases  = 100
		ops     = 20
		step    = 30 * time.Millisecond // 3s in all: new keys become idle and are dropped
		hot     = 4
	)
	l := Limit{100, time.Second, 5}
	k := mustKeyed(t, l, maxKeys)
	hotKey := func(i int) []byte { return fmt.Appendf(nil, "hot-%d", i) }
	var counts [hot]atomic.Int64
	for h := range hot {
		if k.AllowN(t0, hotKey(h), 1) {
			counts[h].Add(1)
		}
	}
	var fresh atomic.Int64
	for p := range phases {
		now := t0.Add(time.Duration(p) * step)
		var wg sync.WaitGroup
		for g := range hammerers {
			wg.Go(func() {
				buf := make([]byte, 0, 32)
				for i := range ops {
					switch (g + i) % 4 {
					case 0, 1:
						h := (g + i) % hot
						if k.AllowN(now, hotKey(h), 1) {
							counts[h].Add(1)
						}
					case 2:
						buf = strconv.AppendInt(append(buf[:0], "new-"...), fresh.Add(1), 10)
						k.AllowN(now, buf, 1)
					case 3:
						if g == 0 && i%8 == 3 {
							k.Sweep(now)
						}
					}
					if n := k.Len(); n > maxKeys || n < 0 {
						t.Errorf("Len = %d outside [0, %d]", n, maxKeys)
					}
				}
			})
		}
		wg.Wait()
		for h := range hot {
			for k.AllowN(now, hotKey(h), 1) {
				counts[h].Add(1)
			}
		}
	}
	span := time.Duration(phases-1) * step
	want := int64(l.Burst) + l.Requests*int64(span)/int64(l.Period)
	for h := range hot {
		if _, ok := k.lookup(hotKey(h)); !ok {
			t.Errorf("hot key %d lost its bucket", h)
		}
		if got := counts[h].Load(); got != want {
			t.Errorf("hot key %d admitted %d over %v, want exactly %d", h, got, span, want)
		}
	}
	if st := k.Stats(); st.OverflowTakes == 0 || st.Keys > maxKeys {
		t.Errorf("Stats = %+v: want the cap reached and overflow used", st)
	}
}
