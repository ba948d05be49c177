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

package backoff

import (
	"math"
	"math/rand/v2"
	"sync"
	"testing"
	"time"
)

const ms = time.Millisecond

// fixed is a Source that always returns the same value.
type fixed float64

func (f fixed) Float64() float64 { return float64(f) }

// almostOne is the largest float64 below 1, the top of a Source's range.
var almostOne = math.Nextafter(1, 0)

func mustNew(t testing.TB, cfg Config) *Backoff {
	t.Helper()
	b, err := New(cfg)
	if err != nil {
		t.Fatalf("New(%+v): %v", cfg, err)
	}
	return b
}

func TestSequencesWithoutJitter(t *testing.T) {
	t.Parallel()
	tests := []struct {
		desc string
		cfg  Config
		want []time.Duration
	}{
		{desc: "exponential doubles up to max", cfg: Config{Strategy: Exponential, Jitter: None, Base: 1 * ms, Max: 10 * ms},
			want: []time.Duration{1 * ms, 2 * ms, 4 * ms, 8 * ms, 10 * ms, 10 * ms}},
		{desc: "linear grows by base up to max", cfg: Config{Strategy: Linear, Jitter: None, Base: 3 * ms, Max: 10 * ms},
			want: []time.Duration{3 * ms, 6 * ms, 9 * ms, 10 * ms, 10 * ms}},
		{desc: "fixed stays at base", cfg: Config{Strategy: Fixed, Jitter: None, Base: 25 * ms, Max: time.Second},
			want: []time.Duration{25 * ms, 25 * ms, 25 * ms}},
		{desc: "exponential at max from the start", cfg: Config{Strategy: Exponential, Jitter: None, Base: 5 * ms, Max: 5 * ms},
			want: []time.Duration{5 * ms, 5 * ms}},
		{desc: "zero base means no wait", cfg: Config{Strategy: Exponential, Jitter: None, Base: 0, Max: time.Second},
			want: []time.Duration{0, 0, 0}},
		{desc: "zero base linear", cfg: Config{Strategy: Linear, Jitter: None, Base: 0, Max: time.Second},
			want: []time.Duration{0, 0}},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			b := mustNew(t, tc.cfg)
			seq := b.Start(nil)
			for i, w := range tc.want {
				if got := seq.Next(); got != w {
					t.Errorf("retry %d: Next() = %v, want %v", i+1, got, w)
				}
				if got := b.Delay(i+1, 0, nil); got != w {
					t.Errorf("Delay(%d) = %v, want %v", i+1, got, w)
				}
			}
		})
	}
}

// TestJitterExactDraws pins each jitter's formula with chosen random values.
func TestJitterExactDraws(t *testing.T) {
	t.Parallel()
	tests := []struct {
		desc    string
		jitter  Jitter
		attempt int
		prev    time.Duration
		u       float64
		want    time.Duration
	}{
		{desc: "full at 0 waits nothing", jitter: Full, attempt: 3, u: 0, want: 0},
		{desc: "full at half", jitter: Full, attempt: 3, u: 0.5, want: 2 * ms},
		{desc: "full at top stays below d", jitter: Full, attempt: 3, u: almostOne, want: 4*ms - 1},
		{desc: "equal at 0 waits half", jitter: Equal, attempt: 3, u: 0, want: 2 * ms},
		{desc: "equal at half", jitter: Equal, attempt: 3, u: 0.5, want: 3 * ms},
		{desc: "equal at top", jitter: Equal, attempt: 3, u: almostOne, want: 4*ms - 1},
		{desc: "none ignores the draw", jitter: None, attempt: 3, u: 0.3, want: 4 * ms},
		{desc: "decorrelated first retry in [base, 3 base]", jitter: Decorrelated, attempt: 1, prev: 0, u: 0.5, want: 2 * ms},
		{desc: "decorrelated from prev", jitter: Decorrelated, attempt: 2, prev: 2 * ms, u: 0.5, want: 3500 * time.Microsecond},
		{desc: "decorrelated at 0 is base", jitter: Decorrelated, attempt: 5, prev: 9 * ms, u: 0, want: 1 * ms},
		{desc: "decorrelated capped at max", jitter: Decorrelated, attempt: 5, prev: 9 * ms, u: 0.9, want: 10 * ms},
		{desc: "decorrelated prev above max is clamped", jitter: Decorrelated, attempt: 5, prev: time.Hour, u: 0.1, want: 3900 * time.Microsecond},
		{desc: "out-of-range draw is clamped below", jitter: Full, attempt: 3, u: -1, want: 0},
		{desc: "NaN draw counts as 0", jitter: Full, attempt: 3, u: math.NaN(), want: 0},
		{desc: "out-of-range draw is clamped above", jitter: Full, attempt: 3, u: 7, want: 4*ms - 1},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			b := mustNew(t, Config{Strategy: Exponential, Jitter: tc.jitter, Base: 1 * ms, Max: 10 * ms})
			if got := b.Delay(tc.attempt, tc.prev, fixed(tc.u)); got != tc.want {
				t.Errorf("Delay(%d, %v, %v) = %v, want %v", tc.attempt, tc.prev, tc.u, got, tc.want)
			}
		})
	}
}

func TestDecorrelatedSequenceFeedsPrev(t *testing.T) {
	t.Parallel()
	b := mustNew(t, Config{Strategy: Exponential, Jitter: Decorrelated, Base: 1 * ms, Max: 10 * ms})
	seq := b.Start(fixed(0.5))
	// 1+0.5*(3-1) = 2; 1+0.5*(6-1) = 3.5; 1+0.5*(10.5-1) = 5.75; 1+0.5*(17.25-1) = 9.125; then capped.
	want := []time.Duration{2 * ms, 3500 * time.Microsecond, 5750 * time.Microsecond, 9125 * time.Microsecond, 10 * ms, 10 * ms}
	for i, w := range want {
		if got := seq.Next(); got != w {
			t.Errorf("retry %d: %v, want %v", i+1, got, w)
		}
	}
}

// TestBounds draws many delays for every strategy and jitter, including the extreme draws and huge
// attempt numbers, and checks each stays within its jitter's bounds.
func TestBounds(t *testing.T) {
	t.Parallel()
	configs := []struct{ base, max time.Duration }{
		{1 * ms, 10 * ms},
		{25 * ms, time.Second},
		{7, 7},
		{1, math.MaxInt64},
		{math.MaxInt64 / 3, math.MaxInt64},
		{math.MaxInt64, math.MaxInt64},
	}
	attempts := []int{math.MinInt, -1, 0, 1, 2, 3, 10, 30, 62, 63, 64, 65, 1000, math.MaxInt}
	for _, strategy := range []Strategy{Exponential, Linear, Fixed} {
		for _, jitter := range []Jitter{None, Full, Equal, Decorrelated} {
			t.Run(strategy.String()+"/"+jitter.String(), func(t *testing.T) {
				t.Parallel()
				rng := rand.New(rand.NewPCG(1, 2))
				for _, c := range configs {
					b := mustNew(t, Config{Strategy: strategy, Jitter: jitter, Base: c.base, Max: c.max})
					for _, k := range attempts {
						d := b.Nominal(k)
						if d < 0 || d > c.max || d < min(c.base, c.max) && strategy != Fixed {
							t.Fatalf("%+v: Nominal(%d) = %v out of [base, max]", c, k, d)
						}
						if strategy == Fixed && d != c.base {
							t.Fatalf("%+v: fixed Nominal(%d) = %v, want base", c, k, d)
						}
						for _, prev := range []time.Duration{0, -1, c.base, c.max / 2, c.max} {
							draws := []float64{0, almostOne, 0.5}
							for range 200 {
								draws = append(draws, rng.Float64())
							}
							for _, u := range draws {
								got := b.Delay(k, prev, fixed(u))
								lo, hi := d, d
								switch jitter {
								case Full:
									lo = 0
								case Equal:
									lo = d - d/2
								case Decorrelated:
									p := min(max(prev, c.base), c.max)
									lo, hi = c.base, c.max
									if p <= c.max/3 {
										hi = 3 * p
									}
								}
								if got < lo || got > hi {
									t.Fatalf("%+v: Delay(%d, %v, %v) = %v, want in [%v, %v]", c, k, prev, u, got, lo, hi)
								}
							}
						}
					}
				}
			})
		}
	}
}

// TestJitterSpreads checks that jitter uses the whole range: with real random draws both the lower
// and the upper tenth of the range are reached.
func TestJitterSpreads(t *testing.T) {
	t.Parallel()
	for _, jitter := range []Jitter{Full, Equal, Decorrelated} {
		b := mustNew(t, Config{Strategy: Fixed, Jitter: jitter, Base: 100 * ms, Max: time.Second})
		lo, hi := map[Jitter]time.Duration{Full: 0, Equal: 50 * ms, Decorrelated: 100 * ms}[jitter],
			map[Jitter]time.Duration{Full: 100 * ms, Equal: 100 * ms, Decorrelated: 300 * ms}[jitter]
		tenth := (hi - lo) / 10
		rng := rand.New(rand.NewPCG(3, 4))
		low, high := false, false
		for range 1000 {
			d := b.Delay(1, 0, rng)
			low = low || d < lo+tenth
			high = high || d > hi-tenth
		}
		if !low || !high {
			t.Errorf("%v: 1000 draws reached the low tenth %v, the high tenth %v; want both", jitter, low, high)
		}
	}
}

func TestNewValidates(t *testing.T) {
	t.Parallel()
	tests := []struct {
		desc string
		cfg  Config
		ok   bool
	}{
		{desc: "contract default", cfg: Config{Strategy: Exponential, Jitter: Full, Base: 25 * ms, Max: time.Second}, ok: true},
		{desc: "base equals max", cfg: Config{Strategy: Linear, Jitter: Equal, Base: time.Second, Max: time.Second}, ok: true},
		{desc: "all zero durations", cfg: Config{Strategy: Fixed, Jitter: None}, ok: true},
		{desc: "strategy unset", cfg: Config{Jitter: Full, Base: ms, Max: time.Second}},
		{desc: "jitter unset", cfg: Config{Strategy: Fixed, Base: ms, Max: time.Second}},
		{desc: "unknown strategy", cfg: Config{Strategy: 9, Jitter: Full, Base: ms, Max: time.Second}},
		{desc: "negative base", cfg: Config{Strategy: Fixed, Jitter: Full, Base: -ms, Max: time.Second}},
		{desc: "max below base", cfg: Config{Strategy: Fixed, Jitter: Full, Base: time.Second, Max: ms}},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			b, err := New(tc.cfg)
			if tc.ok != (err == nil) || (b != nil) != tc.ok {
				t.Fatalf("New(%+v) = %v, %v; want ok=%v", tc.cfg, b, err, tc.ok)
			}
			if tc.ok && b.Config() != tc.cfg {
				t.Errorf("Config() = %+v, want %+v", b.Config(), tc.cfg)
			}
		})
	}
}

func TestParseNames(t *testing.T) {
	t.Parallel()
	for _, s := range []Strategy{Exponential, Linear, Fixed} {
		if got, err := ParseStrategy(s.String()); got != s || err != nil {
			t.Errorf("ParseStrategy(%q) = %v, %v", s.String(), got, err)
		}
	}
	for _, j := range []Jitter{None, Full, Equal, Decorrelated} {
		if got, err := ParseJitter(j.String()); got != j || err != nil {
			t.Errorf("ParseJitter(%q) = %v, %v", j.String(), got, err)
		}
	}
	for _, bad := range []string{"", "exponential", "Quadratic"} {
		if _, err := ParseStrategy(bad); err == nil {
			t.Errorf("ParseStrategy(%q) accepted", bad)
		}
		if _, err := ParseJitter(bad); err == nil {
			t.Errorf("ParseJitter(%q) accepted", bad)
		}
	}
}

// TestConcurrentGlobalSource runs 64 goroutines on one Backoff with the default (nil) source: no
// data race, and every delay within bounds.
func TestConcurrentGlobalSource(t *testing.T) {
	t.Parallel()
	b := mustNew(t, Config{Strategy: Exponential, Jitter: Equal, Base: ms, Max: time.Second})
	var wg sync.WaitGroup
	errs := make(chan time.Duration, 64)
	for range 64 {
		wg.Go(func() {
			for k := 1; k <= 500; k++ {
				if d, n := b.Delay(k, 0, nil), b.Nominal(k); d < n-n/2 || d > n {
					errs <- d
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for d := range errs {
		t.Errorf("delay %v out of bounds", d)
	}
}

var sinkD time.Duration

func BenchmarkDelay(b *testing.B) {
	bo := mustNew(b, Config{Strategy: Exponential, Jitter: Full, Base: 25 * ms, Max: time.Second})
	b.Run("ours", func(b *testing.B) {
		b.ReportAllocs()
		var d time.Duration
		for i := 0; b.Loop(); i++ {
			d += bo.Delay(1+i%8, 0, nil)
		}
		sinkD = d
	})
}

func BenchmarkDelayParallel(b *testing.B) {
	bo := mustNew(b, Config{Strategy: Exponential, Jitter: Full, Base: 25 * ms, Max: time.Second})
	b.Run("ours", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			var d time.Duration
			for i := 0; pb.Next(); i++ {
				d += bo.Delay(1+i%8, 0, nil)
			}
			if d < 0 {
				b.Error("negative delay")
			}
		})
	})
}

// FuzzParseNames checks the enum parsers: any accepted name round-trips through String, and only
// the contract's exact names are accepted.
func FuzzParseNames(f *testing.F) {
	for _, seed := range []string{"Exponential", "Linear", "Fixed", "Full", "Equal", "Decorrelated", "None", "", "full", " Full", "Strategy(0)"} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, name string) {
		if s, err := ParseStrategy(name); err == nil {
			if s.String() != name || strategyNames[s] != name {
				t.Fatalf("ParseStrategy(%q) = %v", name, s)
			}
		} else if s != 0 {
			t.Fatalf("ParseStrategy(%q) failed but returned %v", name, s)
		}
		if j, err := ParseJitter(name); err == nil {
			if j.String() != name || jitterNames[j] != name {
				t.Fatalf("ParseJitter(%q) = %v", name, j)
			}
		} else if j != 0 {
			t.Fatalf("ParseJitter(%q) failed but returned %v", name, j)
		}
	})
}
