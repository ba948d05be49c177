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

package budget

import (
	"math"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func at(d time.Duration) time.Time { return t0.Add(d) }

var contractDefaults = Config{Percent: 20, MinRetriesPerSecond: 10, Window: 10 * time.Second}

func mustNew(t testing.TB, cfg Config) *Budget {
	t.Helper()
	b, err := New(cfg, t0)
	if err != nil {
		t.Fatalf("New(%+v): %v", cfg, err)
	}
	return b
}

// step records requests at a time, then makes AllowRetry calls and checks how many were allowed.
type step struct {
	at       time.Duration
	requests int
	asks     int // AllowRetry calls: noAsk for none, 0 for as many as are allowed plus one
	retries  int // allowed retries expected
}

const noAsk = -1

func TestBudget(t *testing.T) {
	t.Parallel()
	noFloor := Config{Percent: 20, Window: 10 * time.Second}
	tests := []struct {
		desc  string
		cfg   Config
		steps []step
	}{
		{desc: "1000 requests allow 200 percent retries plus a burst of 10 from the floor",
			cfg: contractDefaults, steps: []step{{at: 500 * time.Millisecond, requests: 1000, retries: 210}}},
		{desc: "percent alone: 20% of 1000", cfg: noFloor,
			steps: []step{{at: 0, requests: 1000, retries: 200}}},
		{desc: "a fraction of a retry rounds down", cfg: noFloor,
			steps: []step{{at: 0, requests: 4, retries: 0}, {at: 0, requests: 1, retries: 1}, {at: 0, requests: 9, retries: 1}}},
		{desc: "percent allowance grows as requests arrive", cfg: noFloor,
			steps: []step{{at: 0, requests: 10, retries: 2}, {at: time.Second, requests: 10, retries: 2}}},
		{desc: "no traffic: the floor allows its rate per second", cfg: contractDefaults,
			steps: []step{{at: 0, retries: 10}, {at: 500 * time.Millisecond, retries: 5}, {at: 1500 * time.Millisecond, retries: 10},
				{at: 1599 * time.Millisecond, retries: 0}, {at: 1600 * time.Millisecond, retries: 1}, {at: time.Hour, retries: 10}}},
		{desc: "floor rate not dividing a second", cfg: Config{MinRetriesPerSecond: 3, Window: 10 * time.Second},
			steps: []step{{at: 0, retries: 3}, {at: time.Second, retries: 3}, {at: 2 * time.Second, retries: 3}, {at: 2500 * time.Millisecond, retries: 1}}},
		{desc: "percent 0 leaves only the floor", cfg: Config{MinRetriesPerSecond: 2, Window: 10 * time.Second},
			steps: []step{{at: 0, requests: 1000, retries: 2}}},
		{desc: "floor used only once the percent allowance is spent", cfg: contractDefaults,
			steps: []step{{at: 0, requests: 50, asks: 15, retries: 15}, {at: 0, requests: 25, retries: 10}}}, // 10 + 5 of the floor; then 15 - 10 percent and the floor's last 5
		{desc: "old requests slide out of the window", cfg: noFloor,
			steps: []step{{at: 0, requests: 100, asks: noAsk}, {at: 5 * time.Second, requests: 100, asks: noAsk},
				{at: 9999 * time.Millisecond, retries: 40},                // buckets 0..9: 200 requests
				{at: 10 * time.Second, retries: 0},                        // buckets 1..10: 100 requests, 40 retries
				{at: 19999 * time.Millisecond, requests: 5, retries: 1}}}, // buckets 10..19: 5 requests
		{desc: "old retries slide out too", cfg: Config{Percent: 50, Window: 10 * time.Second},
			steps: []step{{at: 0, requests: 100, asks: 10, retries: 10}, {at: 9 * time.Second, requests: 20, asks: noAsk},
				// buckets 1..10: 20 requests, no retries. Had the retries stayed: 0; the requests: 50.
				{at: 10 * time.Second, retries: 10}}},
		{desc: "window is the current bucket and the 9 before it", cfg: noFloor,
			steps: []step{{at: 999 * time.Millisecond, requests: 50, asks: noAsk}, {at: 10*time.Second + 999*time.Millisecond, retries: 0},
				{at: 9999 * time.Millisecond, retries: 10}}}, // a caller whose now lags still sees bucket 0
		{desc: "one bucket: a tumbling window", cfg: Config{Percent: 50, Window: time.Second, Buckets: 1},
			steps: []step{{at: 0, requests: 10, retries: 5}, {at: 999 * time.Millisecond, retries: 0}, {at: time.Second, requests: 2, retries: 1}}},
		{desc: "a time before start counts in the first bucket", cfg: noFloor,
			steps: []step{{at: -time.Hour, requests: 10, retries: 2}, {at: 0, retries: 0}}},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			b := mustNew(t, tc.cfg)
			for i, s := range tc.steps {
				now := at(s.at)
				for range s.requests {
					b.Request(now)
				}
				got := 0
				switch {
				case s.asks > 0:
					for range s.asks {
						if b.AllowRetry(now) {
							got++
						}
					}
				case s.asks == 0:
					for b.AllowRetry(now) {
						if got++; got > 100000 {
							t.Fatal("AllowRetry never refuses")
						}
					}
				}
				if got != s.retries {
					t.Errorf("step %d at %v: %d retries allowed, want %d", i, s.at, got, s.retries)
				}
			}
		})
	}
}

func TestCounts(t *testing.T) {
	t.Parallel()
	b := mustNew(t, contractDefaults)
	for range 50 {
		b.Request(at(time.Second))
	}
	for range 20 { // 10 from the percent allowance, 10 from the floor
		if !b.AllowRetry(at(2 * time.Second)) {
			t.Fatal("retry refused")
		}
	}
	if r, n := b.Counts(at(2 * time.Second)); r != 50 || n != 10 {
		t.Errorf("Counts = %d requests, %d retries; want 50, 10", r, n)
	}
	if r, n := b.Counts(at(11 * time.Second)); r != 0 || n != 10 {
		t.Errorf("Counts at 11s = %d requests, %d retries; want 0, 10", r, n)
	}
}

func TestNewValidates(t *testing.T) {
	t.Parallel()
	tests := []struct {
		desc string
		cfg  Config
		ok   bool
	}{
		{desc: "contract defaults", cfg: contractDefaults, ok: true},
		{desc: "no floor", cfg: Config{Percent: 20, Window: time.Second}, ok: true},
		{desc: "percent above 100 allowed", cfg: Config{Percent: 300, Window: time.Second}, ok: true},
		{desc: "negative percent", cfg: Config{Percent: -1, Window: time.Second}},
		{desc: "huge percent", cfg: Config{Percent: maxPercent + 1, Window: time.Second}},
		{desc: "negative floor", cfg: Config{Percent: 20, MinRetriesPerSecond: -1, Window: time.Second}},
		{desc: "floor too fast", cfg: Config{MinRetriesPerSecond: math.MaxInt, Window: time.Second}},
		{desc: "zero window", cfg: Config{Percent: 20}},
		{desc: "window shorter than the buckets", cfg: Config{Percent: 20, Window: 5, Buckets: 10}},
		{desc: "too many buckets", cfg: Config{Percent: 20, Window: time.Second, Buckets: maxBuckets + 1}},
		{desc: "negative buckets", cfg: Config{Percent: 20, Window: time.Second, Buckets: -1}},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			b, err := New(tc.cfg, t0)
			if (err == nil) != tc.ok || (b != nil) != tc.ok {
				t.Fatalf("New(%+v) = %v, %v; want ok=%v", tc.cfg, b, err, tc.ok)
			}
		})
	}
}

// TestHammerExact runs 64 goroutines recording requests and asking for retries at one instant:
// whatever the interleaving, the percent allowance is never exceeded, and once every request is
// in, serial draining reaches exactly 20% of them plus the floor's burst (no lost updates).
func TestHammerExact(t *testing.T) {
	t.Parallel()
	b := mustNew(t, contractDefaults)
	now := at(3 * time.Second)
	var requests, allowed atomic.Int64
	var over atomic.Int64
	var wg sync.WaitGroup
	start := make(chan struct{})
	for g := range 64 {
		wg.Go(func() {
			<-start // all at once, to maximise overlap
			for i := range 1000 {
				requests.Add(1) // first, so that it never counts fewer requests than the budget
				b.Request(now)
				if (g+i)%3 == 0 && b.AllowRetry(now) {
					// allowed retries beyond the floor's 10 must fit in 20% of the requests recorded by now.
					if a := allowed.Add(1); (a-10)*100 > requests.Load()*20 {
						over.Add(1)
					}
				}
			}
		})
	}
	close(start)
	wg.Wait()
	if over.Load() != 0 {
		t.Errorf("%d retries were allowed beyond the allowance", over.Load())
	}
	for b.AllowRetry(now) {
		allowed.Add(1)
	}
	if got, want := allowed.Load(), int64(64000*20/100+10); got != want {
		t.Errorf("allowed %d retries in all, want %d", got, want)
	}
}

// TestHammerSliding moves time forward across many windows from 64 goroutines: the ring rotates
// under contention, and retries stay within what the window and the floor allow.
func TestHammerSliding(t *testing.T) {
	t.Parallel()
	b := mustNew(t, Config{Percent: 10, MinRetriesPerSecond: 1, Window: time.Second})
	var tick, requests, retries atomic.Int64
	var wg sync.WaitGroup
	start := make(chan struct{})
	for range 64 {
		wg.Go(func() {
			<-start // all at once, to maximise overlap
			for range 2000 {
				now := at(time.Duration(tick.Add(1)) * time.Millisecond)
				b.Request(now)
				requests.Add(1)
				if b.AllowRetry(now) {
					retries.Add(1)
				}
			}
		})
	}
	close(start)
	wg.Wait()
	// Each retry fits in 10% of one window's requests, and windows overlap at most two ways:
	// at most 2*10% of all requests, plus the floor's burst and 1/s over the run.
	limit := 2*requests.Load()/10 + 1 + tick.Load()/1000 + 1
	if r := retries.Load(); r > limit || r < requests.Load()/20 {
		t.Errorf("%d retries for %d requests; want between 5%% and %d", r, requests.Load(), limit)
	}
}

func BenchmarkBudget(b *testing.B) {
	bu := mustNew(b, contractDefaults)
	now := at(time.Second)
	b.Run("ours", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			bu.Request(now)
			if i%10 == 0 {
				bu.AllowRetry(now)
			}
		}
	})
}

func BenchmarkBudgetParallel(b *testing.B) {
	bu := mustNew(b, contractDefaults)
	now := at(time.Second)
	b.Run("ours", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for i := 0; pb.Next(); i++ {
				bu.Request(now)
				if i%10 == 0 {
					bu.AllowRetry(now)
				}
			}
		})
	})
}
