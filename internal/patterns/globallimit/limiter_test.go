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
	"errors"
	"sort"
	"sync/atomic"
	"testing"
	"time"

	"resilience.dev/operator/internal/patterns/clock"
)

var start = time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)

// countingStore counts the calls that reach the store.
type countingStore struct {
	Store
	calls atomic.Int64
}

func (c *countingStore) Take(ctx context.Context, key string, r Rate, want, giveBack int64) (Grant, error) {
	c.calls.Add(1)
	return c.Store.Take(ctx, key, r, want, giveBack)
}

// replicas returns n limiters on one bucket of one store, each running prefetches in line so that the
// simulation below is deterministic.
func replicas(t *testing.T, store Store, clk clock.Clock, n int, r Rate) []*Limiter {
	t.Helper()
	out := make([]*Limiter, n)
	for i := range out {
		l, err := New(store, clk, Options{Key: "rl:{ns/api/global}", Rate: r, Replicas: n})
		if err != nil {
			t.Fatal(err)
		}
		l.spawn = func(f func()) { f() }
		out[i] = l
	}
	return out
}

type arrival struct {
	at      time.Time
	replica int
}

// offer spreads rate requests per second over the replicas by share for d, evenly spaced on each.
func offer(rate float64, shares []float64, d time.Duration) []arrival {
	var out []arrival
	for i, share := range shares {
		gap := time.Duration(float64(time.Second) / (rate * share))
		for at := gap / 2; at < d; at += gap {
			out = append(out, arrival{start.Add(at), i})
		}
	}
	sort.SliceStable(out, func(a, b int) bool { return out[a].at.Before(out[b].at) })
	return out
}

// simulate plays the arrivals on the fake clock, sweeping every replica every 250ms as the gateway
// does, and returns how many were admitted.
func simulate(t *testing.T, clk *clock.Fake, ls []*Limiter, arrivals []arrival) (admitted int) {
	t.Helper()
	ctx := context.Background()
	nextSweep := start.Add(250 * time.Millisecond)
	for _, a := range arrivals {
		for !nextSweep.After(a.at) {
			clk.Set(nextSweep)
			for _, l := range ls {
				if err := l.Sweep(ctx); err != nil {
					t.Fatal(err)
				}
			}
			nextSweep = nextSweep.Add(250 * time.Millisecond)
		}
		clk.Set(a.at)
		d := ls[a.replica].Take(ctx, 1)
		if d.Err != nil {
			t.Fatal(d.Err)
		}
		if d.Allowed {
			admitted++
		}
	}
	return admitted
}

// TestExactAcrossReplicas is the contract's exactness (section 7): from a full bucket, at most
// burst + rate*T pass in T whatever the spread over replicas, and twice the limit gets at least 98%.
func TestExactAcrossReplicas(t *testing.T) {
	r := Rate{Requests: 100, PeriodMicros: 1_000_000, Burst: 10}
	const ceiling = 10 + 100*10 // burst + rate*T for T = 10s
	for _, tc := range []struct {
		name    string
		offered float64
		shares  []float64
	}{
		{"200/s over 70/20/10", 200, []float64{0.7, 0.2, 0.1}},
		{"600/s over 70/20/10", 600, []float64{0.7, 0.2, 0.1}},
		{"200/s even over 3", 200, []float64{1. / 3, 1. / 3, 1. / 3}},
		{"200/s on one replica of 3", 200, []float64{1, 0, 0}[:1]},
		{"5000/s over 70/20/10", 5000, []float64{0.7, 0.2, 0.1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clk := clock.NewFake(start)
			ls := replicas(t, NewMemoryStore(clk), clk, 3, r)
			got := simulate(t, clk, ls, offer(tc.offered, tc.shares, 10*time.Second))
			t.Logf("admitted %d of %d (ceiling %d)", got, int(tc.offered*10), ceiling)
			if got > ceiling || got < ceiling*98/100 {
				t.Errorf("admitted %d of %d offered, want between %d and %d", got,
					int(tc.offered*10), ceiling*98/100, ceiling)
			}
		})
	}
}

// TestStoreCallsFarFromEmpty checks that the store is off the hot path when the bucket has room:
// batches grow with local demand, so calls per request stay far under 0.1.
func TestStoreCallsFarFromEmpty(t *testing.T) {
	clk := clock.NewFake(start)
	store := &countingStore{Store: NewMemoryStore(clk)}
	ls := replicas(t, store, clk, 3, Rate{Requests: 10_000, PeriodMicros: 1_000_000, Burst: 10_000})
	arrivals := offer(1600, []float64{0.7, 0.2, 0.1}, 5*time.Second)
	if got := simulate(t, clk, ls, arrivals); got != len(arrivals) {
		t.Fatalf("admitted %d of %d under a limit far from empty", got, len(arrivals))
	}
	perRequest := float64(store.calls.Load()) / float64(len(arrivals))
	t.Logf("%d store calls for %d requests: %.4f per request", store.calls.Load(), len(arrivals), perRequest)
	if perRequest > 0.02 {
		t.Errorf("%d store calls for %d requests (%.3f per request), want under 0.02", store.calls.Load(),
			len(arrivals), perRequest)
	}
}

// TestHeldTokensGoBack: tokens a replica took and did not spend return to the store within Lapse
// (through Sweep), so that an idle replica cannot keep the bucket empty for the others.
func TestHeldTokensGoBack(t *testing.T) {
	clk := clock.NewFake(start)
	store := NewMemoryStore(clk)
	r := Rate{Requests: 1000, PeriodMicros: 1_000_000, Burst: 1000}
	ls := replicas(t, store, clk, 2, r)
	busy, idle := ls[0], ls[1]
	// A burst of demand on one replica grows its batch; then it stops.
	for i := 0; i < 200; i++ {
		clk.Advance(time.Millisecond)
		if d := busy.Take(context.Background(), 1); !d.Allowed {
			t.Fatalf("request %d refused: %+v", i, d)
		}
	}
	held := busy.Held()
	if held == 0 {
		t.Fatal("the busy replica holds no batch: nothing to test")
	}
	if err := busy.Sweep(context.Background()); err != nil || busy.Held() != held {
		t.Fatalf("swept before Lapse: held %d -> %d, %v", held, busy.Held(), err)
	}
	clk.Advance(time.Second) // Lapse runs from the oldest grant held, which is older than this
	if err := busy.Sweep(context.Background()); err != nil || busy.Held() != 0 {
		t.Fatalf("after Lapse: still holds %d (%v)", busy.Held(), err)
	}
	// Everything is back: the other replica can spend a whole burst at once.
	for i := range 1000 {
		if d := idle.Take(context.Background(), 1); !d.Allowed {
			t.Fatalf("token %d of the burst refused after the give-back: %+v", i, d)
		}
	}
	if d := idle.Take(context.Background(), 1); d.Allowed {
		t.Fatal("a token past the burst was granted")
	}
}

func TestRefusalIsRemembered(t *testing.T) {
	clk := clock.NewFake(start)
	store := &countingStore{Store: NewMemoryStore(clk)}
	l := replicas(t, store, clk, 1, Rate{Requests: 1, PeriodMicros: 1_000_000, Burst: 1})[0]
	ctx := context.Background()
	if d := l.Take(ctx, 1); !d.Allowed {
		t.Fatalf("first: %+v", d)
	}
	d := l.Take(ctx, 1)
	if d.Allowed || d.RetryAfter != time.Second {
		t.Fatalf("second: %+v, want refused with RetryAfter 1s", d)
	}
	calls := store.calls.Load()
	clk.Advance(999 * time.Millisecond)
	if d := l.Take(ctx, 1); d.Allowed || d.RetryAfter != time.Millisecond || store.calls.Load() != calls {
		t.Fatalf("within Retry-After: %+v after %d more store calls, want refused from memory", d,
			store.calls.Load()-calls)
	}
	clk.Advance(time.Millisecond)
	if d := l.Take(ctx, 1); !d.Allowed {
		t.Fatalf("after Retry-After: %+v", d)
	}
}

func TestReturnKeepsTokensLocal(t *testing.T) {
	clk := clock.NewFake(start)
	store := &countingStore{Store: NewMemoryStore(clk)}
	l := replicas(t, store, clk, 1, Rate{Requests: 1, PeriodMicros: 1_000_000, Burst: 1})[0]
	if d := l.Take(context.Background(), 1); !d.Allowed {
		t.Fatal(d)
	}
	l.Return(1) // a later limit refused the request
	calls := store.calls.Load()
	if d := l.Take(context.Background(), 1); !d.Allowed || store.calls.Load() != calls {
		t.Fatalf("the returned token was not spent locally: %+v, %d calls", d, store.calls.Load()-calls)
	}
}

// failingStore fails while down is set.
type failingStore struct {
	Store
	down  atomic.Bool
	calls atomic.Int64
}

func (f *failingStore) Take(ctx context.Context, key string, r Rate, want, giveBack int64) (Grant, error) {
	f.calls.Add(1)
	if f.down.Load() {
		return Grant{}, errors.New("connection refused")
	}
	return f.Store.Take(ctx, key, r, want, giveBack)
}

func TestGuardDownAndBack(t *testing.T) {
	clk := clock.NewFake(start)
	store := &failingStore{Store: NewMemoryStore(clk)}
	var flips []bool
	g := NewGuard(store, clk, GuardOptions{OnChange: func(up bool, _ error) { flips = append(flips, up) }})
	r := Rate{Requests: 1000, PeriodMicros: 1_000_000, Burst: 1000}
	ctx := context.Background()
	store.down.Store(true)
	if _, err := g.Take(ctx, "k", r, 1, 0); !errors.Is(err, ErrUnavailable) || g.Available() {
		t.Fatalf("first failure: %v, available %v", err, g.Available())
	}
	for range 100 { // fail fast: the store is not called again before the probe
		if _, err := g.Take(ctx, "k", r, 1, 0); !errors.Is(err, ErrUnavailable) {
			t.Fatal(err)
		}
	}
	if store.calls.Load() != 1 {
		t.Fatalf("%d calls reached a down store before its probe, want 1", store.calls.Load())
	}
	clk.Advance(250 * time.Millisecond)
	if _, err := g.Take(ctx, "k", r, 1, 0); err == nil || store.calls.Load() != 2 {
		t.Fatalf("probe: %v after %d calls", err, store.calls.Load())
	}
	store.down.Store(false)
	clk.Advance(250 * time.Millisecond)
	if gr, err := g.Take(ctx, "k", r, 1, 0); err != nil || gr.Granted != 1 || !g.Available() {
		t.Fatalf("recovery: %+v %v", gr, err)
	}
	if len(flips) != 2 || flips[0] || !flips[1] {
		t.Errorf("OnChange saw %v, want [false true]", flips)
	}
}

// TestStoreErrorReachesTheCaller: a limiter on a down store answers neither yes nor no, and keeps
// the tokens it meant to give back for the next call.
func TestStoreErrorReachesTheCaller(t *testing.T) {
	clk := clock.NewFake(start)
	store := &failingStore{Store: NewMemoryStore(clk)}
	l := replicas(t, NewGuard(store, clk, GuardOptions{}), clk, 1, Rate{Requests: 10, PeriodMicros: 1_000_000, Burst: 10})[0]
	store.down.Store(true)
	d := l.Take(context.Background(), 1)
	if d.Allowed || !errors.Is(d.Err, ErrUnavailable) {
		t.Fatalf("%+v, want ErrUnavailable", d)
	}
}
