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

package breaker

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

const ms = time.Millisecond

type act int

const (
	callS  act = iota // Allow (must pass), then Success at at+took
	callF             // Allow (must pass), then Failure at at
	hold              // Allow (must pass), keep the permit in slot
	refuse            // Allow must be refused with wait
	endS              // Success of the permit in slot, at at+took
	endF              // Failure of the permit in slot
	endC              // Cancel of the permit in slot
)

func (a act) String() string {
	return [...]string{"callS", "callF", "hold", "refuse", "endS", "endF", "endC"}[a]
}

type step struct {
	at    time.Duration
	act   act
	slot  int
	took  time.Duration // callS, endS: how long the call took
	wait  time.Duration // refuse: the wait Allow must report
	state State         // the state after the step
}

// run plays steps on b, checking each; it looks at the state without State's side effect so the
// script alone decides when transitions happen.
func run(t *testing.T, b *Breaker, steps []step) {
	t.Helper()
	slots := map[int]Permit{}
	for i, s := range steps {
		now := t0.Add(s.at)
		where := fmt.Sprintf("step %d (%v %v slot %d)", i, s.at, s.act, s.slot)
		switch s.act {
		case callS, callF, hold:
			p, wait, ok := b.Allow(now)
			if !ok {
				t.Fatalf("%s: Allow refused (wait %v), want allowed", where, wait)
			}
			switch s.act {
			case callS:
				p.Success(now.Add(s.took))
			case callF:
				p.Failure(now)
			default:
				slots[s.slot] = p
			}
		case refuse:
			p, wait, ok := b.Allow(now)
			if ok || p != (Permit{}) {
				t.Fatalf("%s: Allow allowed, want refused", where)
			}
			if wait != s.wait {
				t.Errorf("%s: wait %v, want %v", where, wait, s.wait)
			}
		case endS:
			slots[s.slot].Success(now.Add(s.took))
		case endF:
			slots[s.slot].Failure(now)
		case endC:
			slots[s.slot].Cancel()
		}
		if got := b.cur.Load().state; got != s.state {
			t.Fatalf("%s: state %v, want %v", where, got, s.state)
		}
	}
}

func TestBreaker(t *testing.T) {
	t.Parallel()
	consecutive := func(n int) Config {
		return Config{ConsecutiveFailures: n, OpenDuration: 10 * time.Second}
	}
	ratio := Config{FailureRatio: &FailureRatio{Percent: 50, MinimumRequests: 5, Window: 10 * time.Second}, OpenDuration: 10 * time.Second}
	tests := []struct {
		desc  string
		cfg   Config
		steps []step
	}{
		{desc: "consecutive: opens on the 5th failure in a row", cfg: consecutive(5), steps: []step{
			{act: callF}, {act: callF}, {act: callF}, {act: callF}, {act: callF, state: Open},
			{act: refuse, wait: 10 * time.Second, state: Open},
		}},
		{desc: "consecutive: a success resets the count", cfg: consecutive(5), steps: []step{
			{act: callF}, {act: callF}, {act: callF}, {act: callF}, {act: callS},
			{act: callF}, {act: callF}, {act: callF}, {act: callF},
			{act: callF, state: Open},
		}},
		{desc: "consecutive: a cancel neither counts nor resets", cfg: consecutive(3), steps: []step{
			{act: callF}, {act: hold, slot: 0}, {act: callF}, {act: endC, slot: 0}, {act: callF, state: Open},
		}},
		{desc: "ratio: F,F,F,S stays closed, a 5th call S opens it at 3/5", cfg: ratio, steps: []step{
			{act: callF}, {act: callF}, {act: callF}, {act: callS}, {act: callS, state: Open},
		}},
		{desc: "ratio: 2/5 stays closed, 3/6 opens it (at least percent)", cfg: ratio, steps: []step{
			{act: callF}, {act: callF}, {act: callS}, {act: callS}, {act: callS}, {act: callF, state: Open},
		}},
		{desc: "ratio: the window still holds the oldest bucket just before it ends", cfg: ratio, steps: []step{
			{act: callF}, {act: callF}, {act: callF}, {act: callF},
			{at: 9999 * ms, act: callS, state: Open}, // 4 of 5 in buckets 0..9
		}},
		{desc: "ratio: old outcomes slide out of the window", cfg: ratio, steps: []step{
			{act: callF}, {act: callF}, {act: callF}, {act: callF},
			{at: 10 * time.Second, act: callF}, // buckets 1..10: 1 call
			{at: 10500 * ms, act: callF}, {at: 10500 * ms, act: callF}, {at: 10500 * ms, act: callF},
			{at: 19999 * ms, act: callS, state: Open}, // buckets 10..19: 4 of 5 failed
		}},
		{desc: "ratio: too few calls never open it", cfg: ratio, steps: []step{
			{act: callF}, {at: 3 * time.Second, act: callF}, {at: 6 * time.Second, act: callF}, {at: 9 * time.Second, act: callF},
			{at: 12 * time.Second, act: callF}, {at: 15 * time.Second, act: callF}, // never 5 in a window
		}},
		{desc: "open refuses until exactly openDuration, then half-open admits exactly maxRequests probes",
			cfg: Config{ConsecutiveFailures: 1, OpenDuration: 10 * time.Second, HalfOpenMaxRequests: 2, SuccessThreshold: 3},
			steps: []step{
				{act: callF, state: Open},
				{act: refuse, wait: 10 * time.Second, state: Open},
				{at: 9999 * ms, act: refuse, wait: ms, state: Open},
				{at: 10 * time.Second, act: hold, slot: 0, state: HalfOpen},
				{at: 10 * time.Second, act: hold, slot: 1, state: HalfOpen},
				{at: 10 * time.Second, act: refuse, wait: 0, state: HalfOpen},
				{at: 11 * time.Second, act: endS, slot: 0, state: HalfOpen}, // 1 success of 3; frees a slot
				{at: 11 * time.Second, act: hold, slot: 2, state: HalfOpen},
				{at: 11 * time.Second, act: refuse, wait: 0, state: HalfOpen},
				{at: 12 * time.Second, act: endS, slot: 1, state: HalfOpen},
				{at: 12 * time.Second, act: endS, slot: 2, state: Closed}, // the 3rd success closes it
				{at: 12 * time.Second, act: callS, state: Closed},
			}},
		{desc: "a probe failure reopens it; late probes of that half-open stretch are ignored",
			cfg: Config{ConsecutiveFailures: 1, OpenDuration: 10 * time.Second, HalfOpenMaxRequests: 3},
			steps: []step{
				{act: callF, state: Open},
				{at: 10 * time.Second, act: hold, slot: 0, state: HalfOpen},
				{at: 10 * time.Second, act: hold, slot: 1, state: HalfOpen},
				{at: 11 * time.Second, act: endF, slot: 0, state: Open},
				{at: 11 * time.Second, act: endS, slot: 1, state: Open},
				{at: 11 * time.Second, act: refuse, wait: 10 * time.Second, state: Open},
			}},
		{desc: "cancellation frees a half-open slot and counts as no success",
			cfg: Config{ConsecutiveFailures: 1, OpenDuration: time.Second},
			steps: []step{
				{act: callF, state: Open},
				{at: time.Second, act: hold, slot: 0, state: HalfOpen},
				{at: time.Second, act: refuse, state: HalfOpen},
				{at: time.Second, act: endC, slot: 0, state: HalfOpen},
				{at: time.Second, act: hold, slot: 1, state: HalfOpen},
				{at: time.Second, act: endS, slot: 1, state: Closed},
			}},
		{desc: "exponential open duration doubles up to max, and closing resets it",
			cfg: Config{ConsecutiveFailures: 1, OpenDuration: time.Second, MaxOpenDuration: 5 * time.Second},
			steps: []step{
				{act: callF, state: Open}, // open 1s
				{at: 999 * ms, act: refuse, wait: ms, state: Open},
				{at: 1 * time.Second, act: callF, state: Open}, // probe fails: open 2s
				{at: 1 * time.Second, act: refuse, wait: 2 * time.Second, state: Open},
				{at: 3 * time.Second, act: callF, state: Open}, // open 4s
				{at: 3 * time.Second, act: refuse, wait: 4 * time.Second, state: Open},
				{at: 7 * time.Second, act: callF, state: Open}, // 8s capped at 5s
				{at: 7 * time.Second, act: refuse, wait: 5 * time.Second, state: Open},
				{at: 12 * time.Second, act: callF, state: Open}, // stays at 5s
				{at: 12 * time.Second, act: refuse, wait: 5 * time.Second, state: Open},
				{at: 17 * time.Second, act: callS, state: Closed},
				{at: 17 * time.Second, act: callF, state: Open}, // a new streak: 1s
				{at: 17 * time.Second, act: refuse, wait: time.Second, state: Open},
			}},
		{desc: "no max open duration: every trip opens for openDuration",
			cfg: Config{ConsecutiveFailures: 1, OpenDuration: time.Second},
			steps: []step{
				{act: callF, state: Open},
				{at: time.Second, act: callF, state: Open},
				{at: time.Second, act: refuse, wait: time.Second, state: Open},
			}},
		{desc: "slow successes count as failures, a call exactly at the limit does not",
			cfg: Config{ConsecutiveFailures: 2, OpenDuration: time.Second, SlowCallDuration: time.Second},
			steps: []step{
				{act: callS, took: time.Second},
				{act: callS, took: time.Second + 1},
				{act: callS, took: 10 * ms}, // resets
				{act: callS, took: 2 * time.Second},
				{act: callS, took: 2 * time.Second, state: Open}, // opens when it ends, at 2s, until 3s
				{at: 2999 * ms, act: refuse, wait: ms, state: Open},
				{at: 3 * time.Second, act: hold, slot: 0, state: HalfOpen},
				{at: 3 * time.Second, act: endS, slot: 0, took: 1001 * ms, state: Open}, // a slow probe reopens
			}},
		{desc: "ratio counts slow successes as failures",
			cfg: Config{FailureRatio: &FailureRatio{Percent: 100, MinimumRequests: 2, Window: time.Second}, OpenDuration: time.Second, SlowCallDuration: 100 * ms},
			steps: []step{
				{act: callS, took: 101 * ms}, {act: callS, took: 200 * ms, state: Open},
			}},
		{desc: "a closed-era result arriving while half-open is not a probe result",
			cfg: Config{ConsecutiveFailures: 2, OpenDuration: 10 * time.Second, HalfOpenMaxRequests: 2, SuccessThreshold: 2},
			steps: []step{
				{act: hold, slot: 0},
				{act: callF}, {act: callF, state: Open},
				{at: 10 * time.Second, act: hold, slot: 1, state: HalfOpen},
				{at: 10 * time.Second, act: endS, slot: 0, state: HalfOpen}, // late: no success counted, no slot freed
				{at: 10 * time.Second, act: hold, slot: 2, state: HalfOpen},
				{at: 10 * time.Second, act: refuse, state: HalfOpen},
				{at: 10 * time.Second, act: endS, slot: 1, state: HalfOpen},
				{at: 10 * time.Second, act: endS, slot: 2, state: Closed},
			}},
		{desc: "an earlier closed era's failure does not count in the next closed era",
			cfg: Config{ConsecutiveFailures: 2, OpenDuration: 10 * time.Second},
			steps: []step{
				{act: hold, slot: 0}, {act: hold, slot: 1},
				{act: callF}, {act: callF, state: Open},
				{at: 10 * time.Second, act: callS, state: Closed},
				{at: 10 * time.Second, act: callF},
				{at: 10 * time.Second, act: endF, slot: 0}, // late: would be the 2nd failure in a row
				{at: 10 * time.Second, act: endC, slot: 1},
				{at: 10 * time.Second, act: callF, state: Open},
			}},
		{desc: "ratio: a new closed era starts with an empty window",
			cfg: Config{FailureRatio: &FailureRatio{Percent: 50, MinimumRequests: 4, Window: time.Minute}, OpenDuration: time.Second},
			steps: []step{
				{act: callS}, {act: callF}, {act: callF}, {act: callS, state: Open},
				{at: time.Second, act: callS, state: Closed},
				{at: time.Second, act: callF}, {at: time.Second, act: callS}, {at: time.Second, act: callS},
				{at: time.Second, act: callF, state: Open}, // 2 of 4, not 4 of 8 counting the old era
			}},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			b, err := New(tc.cfg, t0)
			if err != nil {
				t.Fatal(err)
			}
			run(t, b, tc.steps)
		})
	}
}

func TestTransitionsReported(t *testing.T) {
	t.Parallel()
	var got []Transition
	var b *Breaker
	b, err := New(Config{
		ConsecutiveFailures: 2, OpenDuration: time.Second, MaxOpenDuration: time.Minute, SuccessThreshold: 1,
		OnStateChange: func(tr Transition) {
			got = append(got, tr)
			b.State(tr.At) // the callback may call the breaker
		},
	}, t0)
	if err != nil {
		t.Fatal(err)
	}
	run(t, b, []step{
		{act: callF}, {act: callF, state: Open},
		{at: time.Second, act: callF, state: Open},
		{at: 3 * time.Second, act: callS, state: Closed},
	})
	if st := b.State(t0.Add(time.Hour)); st != Closed {
		t.Fatalf("State = %v, want Closed", st)
	}
	want := []Transition{
		{From: Closed, To: Open, At: t0, OpenUntil: t0.Add(time.Second), Cause: "2 consecutive failures; open for 1s"},
		{From: Open, To: HalfOpen, At: t0.Add(time.Second), Cause: "open duration elapsed"},
		{From: HalfOpen, To: Open, At: t0.Add(time.Second), OpenUntil: t0.Add(3 * time.Second), Cause: "probe failed; open for 2s"},
		{From: Open, To: HalfOpen, At: t0.Add(3 * time.Second), Cause: "open duration elapsed"},
		{From: HalfOpen, To: Closed, At: t0.Add(3 * time.Second), Cause: "the probe succeeded"},
	}
	if len(got) != len(want) {
		t.Fatalf("got %d transitions %+v, want %d", len(got), got, len(want))
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("transition %d = %+v, want %+v", i, got[i], want[i])
		}
	}
}

func TestRatioCause(t *testing.T) {
	t.Parallel()
	var cause string
	b, err := New(Config{
		FailureRatio: &FailureRatio{Percent: 50, MinimumRequests: 5, Window: 10 * time.Second},
		OpenDuration: 30 * time.Second, OnStateChange: func(tr Transition) { cause = tr.Cause },
	}, t0)
	if err != nil {
		t.Fatal(err)
	}
	run(t, b, []step{{act: callF}, {act: callF}, {act: callF}, {act: callS}, {act: callS, state: Open}})
	if want := "3 of 5 calls failed in the last 10s (threshold 50%); open for 30s"; cause != want {
		t.Errorf("cause %q, want %q", cause, want)
	}
}

func TestStateMakesHalfOpen(t *testing.T) {
	t.Parallel()
	var n atomic.Int32
	b, err := New(Config{ConsecutiveFailures: 1, OpenDuration: time.Second, OnStateChange: func(Transition) { n.Add(1) }}, t0)
	if err != nil {
		t.Fatal(err)
	}
	run(t, b, []step{{act: callF, state: Open}})
	for _, c := range []struct {
		at   time.Duration
		want State
	}{{0, Open}, {999 * ms, Open}, {time.Second, HalfOpen}, {time.Hour, HalfOpen}} {
		if got := b.State(t0.Add(c.at)); got != c.want {
			t.Errorf("State(+%v) = %v, want %v", c.at, got, c.want)
		}
	}
	if n.Load() != 2 {
		t.Errorf("%d transitions reported, want 2", n.Load())
	}
}

func TestZeroPermitIgnored(t *testing.T) {
	t.Parallel()
	var p Permit
	p.Success(t0)
	p.Failure(t0)
	p.Cancel()
}

func TestNewValidates(t *testing.T) {
	t.Parallel()
	ratio := func(p, m int, w time.Duration, n int) *FailureRatio {
		return &FailureRatio{Percent: p, MinimumRequests: m, Window: w, Buckets: n}
	}
	tests := []struct {
		desc string
		cfg  Config
		why  string // "" when valid
	}{
		{desc: "contract defaults", cfg: Config{ConsecutiveFailures: 5, OpenDuration: 30 * time.Second}},
		{desc: "ratio", cfg: Config{FailureRatio: ratio(50, 20, 30*time.Second, 0), OpenDuration: time.Second}},
		{desc: "everything set", cfg: Config{ConsecutiveFailures: 5, OpenDuration: time.Second, MaxOpenDuration: time.Minute,
			HalfOpenMaxRequests: 3, SuccessThreshold: 2, SlowCallDuration: time.Second}},
		{desc: "no trip", cfg: Config{OpenDuration: time.Second}, why: "exactly one"},
		{desc: "both trips", cfg: Config{ConsecutiveFailures: 5, FailureRatio: ratio(50, 20, time.Second, 0), OpenDuration: time.Second}, why: "exactly one"},
		{desc: "negative consecutive", cfg: Config{ConsecutiveFailures: -1, OpenDuration: time.Second}, why: "negative"},
		{desc: "percent 0", cfg: Config{FailureRatio: ratio(0, 20, time.Second, 0), OpenDuration: time.Second}, why: "percent 0"},
		{desc: "percent 101", cfg: Config{FailureRatio: ratio(101, 20, time.Second, 0), OpenDuration: time.Second}, why: "percent 101"},
		{desc: "minimum 0", cfg: Config{FailureRatio: ratio(50, 0, time.Second, 0), OpenDuration: time.Second}, why: "minimumRequests 0"},
		{desc: "zero window", cfg: Config{FailureRatio: ratio(50, 5, 0, 0), OpenDuration: time.Second}, why: "window"},
		{desc: "too many buckets", cfg: Config{FailureRatio: ratio(50, 5, time.Second, 1001), OpenDuration: time.Second}, why: "buckets 1001"},
		{desc: "zero open duration", cfg: Config{ConsecutiveFailures: 5}, why: "openDuration 0s"},
		{desc: "max below open", cfg: Config{ConsecutiveFailures: 5, OpenDuration: time.Minute, MaxOpenDuration: time.Second}, why: "maxOpenDuration 1s is less"},
		{desc: "negative probes", cfg: Config{ConsecutiveFailures: 5, OpenDuration: time.Second, HalfOpenMaxRequests: -1}, why: "maxRequests -1"},
		{desc: "negative threshold", cfg: Config{ConsecutiveFailures: 5, OpenDuration: time.Second, SuccessThreshold: -1}, why: "successThreshold -1"},
		{desc: "negative slow", cfg: Config{ConsecutiveFailures: 5, OpenDuration: time.Second, SlowCallDuration: -1}, why: "slowCallDuration"},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			b, err := New(tc.cfg, t0)
			if tc.why == "" {
				if err != nil || b == nil {
					t.Fatalf("New: %v", err)
				}
				return
			}
			if err == nil || b != nil || !strings.Contains(err.Error(), tc.why) {
				t.Fatalf("New = %v, %v; want an error saying %q", b, err, tc.why)
			}
		})
	}
}

func TestConfigNotAliased(t *testing.T) {
	t.Parallel()
	r := &FailureRatio{Percent: 50, MinimumRequests: 2, Window: time.Second}
	b, err := New(Config{FailureRatio: r, OpenDuration: time.Second}, t0)
	if err != nil {
		t.Fatal(err)
	}
	r.MinimumRequests = 1000 // a later change of the caller's value must not reach the breaker
	run(t, b, []step{{act: callF}, {act: callF, state: Open}})
	if r.Buckets != 0 {
		t.Errorf("New filled in the caller's FailureRatio: Buckets = %d", r.Buckets)
	}
}

// TestHammerHalfOpen drives one breaker from 64 goroutines through many trips and recoveries and
// checks that no half-open stretch ever has more than maxRequests probes in flight, and that
// transitions are reported in a consistent order.
func TestHammerHalfOpen(t *testing.T) {
	t.Parallel()
	const maxProbes = 3
	var (
		last        = Closed
		bad         atomic.Int32
		transitions atomic.Int32
		halfOpens   atomic.Int32
	)
	b, err := New(Config{
		ConsecutiveFailures: 3, OpenDuration: 5 * ms, MaxOpenDuration: 20 * ms,
		HalfOpenMaxRequests: maxProbes, SuccessThreshold: 3,
		OnStateChange: func(tr Transition) { // serialised by the breaker
			if tr.From != last {
				bad.Add(1)
			}
			last = tr.To
			transitions.Add(1)
			if tr.To == HalfOpen {
				halfOpens.Add(1)
			}
		},
	}, t0)
	if err != nil {
		t.Fatal(err)
	}
	var (
		tick     atomic.Int64
		inflight sync.Map // *era -> *atomic.Int32
		over     atomic.Int32
		peak     atomic.Int32 // most probes seen in flight in one stretch
		wg       sync.WaitGroup
	)
	// Each goroutine holds its last few permits while it takes the next, so many calls overlap; most
	// probes are cancelled so that half-open stretches last long enough to fill up.
	type held struct {
		p Permit
		c *atomic.Int32 // the probe counter of its half-open stretch, if a probe
	}
	start := make(chan struct{})
	for g := range 64 {
		wg.Go(func() {
			<-start // all at once, to maximise overlap
			rng := rand.New(rand.NewPCG(uint64(g), 7))
			var queue [4]held
			end := func(h held, now time.Time) {
				if h.c != nil {
					h.c.Add(-1) // before ending the permit, which frees its slot
				}
				r := rng.IntN(10)
				if h.c != nil && r < 6 {
					r = 9
				}
				switch {
				case r < 4:
					h.p.Failure(now)
				case r < 8:
					h.p.Success(now)
				default:
					h.p.Cancel()
				}
			}
			for i := range 3000 {
				now := t0.Add(time.Duration(tick.Add(1)) * 10 * time.Microsecond)
				p, _, ok := b.Allow(now)
				var cur held
				if ok {
					cur.p = p
					if p.e.state == HalfOpen {
						v, _ := inflight.LoadOrStore(p.e, new(atomic.Int32))
						cur.c = v.(*atomic.Int32)
						n := cur.c.Add(1)
						if n > maxProbes {
							over.Add(1)
						}
						for m := peak.Load(); n > m && !peak.CompareAndSwap(m, n); m = peak.Load() {
						}
					}
				}
				end(queue[i%len(queue)], now)
				queue[i%len(queue)] = cur
			}
			for _, h := range queue {
				end(h, t0)
			}
		})
	}
	close(start)
	wg.Wait()
	if over.Load() != 0 {
		t.Errorf("%d times more than %d probes were in flight in one half-open stretch", over.Load(), maxProbes)
	}
	if bad.Load() != 0 {
		t.Errorf("%d transitions did not start from the previous one's state", bad.Load())
	}
	if peak.Load() < maxProbes {
		t.Errorf("at most %d probes were ever in flight together: the hammer did not fill half-open", peak.Load())
	}
	t.Logf("%d transitions, %d half-open stretches, peak %d probes", transitions.Load(), halfOpens.Load(), peak.Load())
	if halfOpens.Load() < 10 {
		t.Errorf("only %d half-open stretches (%d transitions): the hammer did not exercise half-open", halfOpens.Load(), transitions.Load())
	}
}
