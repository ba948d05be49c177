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

package bulkhead

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"resilience.dev/operator/internal/patterns/clock"
)

var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

// waitFor spins (yielding, never sleeping) until cond holds; the deadline only turns a hang into a failure.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		runtime.Gosched()
	}
}

func mustNew(t testing.TB, clk clock.Clock, cfg Config) *Bulkhead {
	t.Helper()
	b, err := New(clk, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

type outcome struct {
	name string
	err  error
}

// queue starts a waiter named name and returns once it is parked in the queue (with its timer set,
// when the bulkhead has a timeout).
func queue(t *testing.T, b *Bulkhead, clk *clock.Fake, ctx context.Context, name string, out chan<- outcome) {
	t.Helper()
	q, p := b.Queued(), clk.Pending()
	go func() { out <- outcome{name, b.Acquire(ctx)} }()
	waitFor(t, name+" queued", func() bool { return b.Queued() == q+1 })
	if b.timeout > 0 {
		waitFor(t, name+" timer", func() bool { return clk.Pending() == p+1 })
	}
}

func TestNewValidates(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		desc string
		cfg  Config
		ok   bool
	}{
		{desc: "minimal", cfg: Config{MaxConcurrent: 1}, ok: true},
		{desc: "full", cfg: Config{MaxConcurrent: 100, MaxQueued: 50, QueueTimeout: time.Second}, ok: true},
		{desc: "zero concurrency", cfg: Config{}},
		{desc: "negative queue", cfg: Config{MaxConcurrent: 1, MaxQueued: -1}},
		{desc: "negative timeout", cfg: Config{MaxConcurrent: 1, QueueTimeout: -time.Second}},
		{desc: "concurrency beyond 32 bits", cfg: Config{MaxConcurrent: 1 << 32}},
		{desc: "queue beyond 32 bits", cfg: Config{MaxConcurrent: 1, MaxQueued: 1 << 32}},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			_, err := New(clock.Real{}, tc.cfg)
			if (err == nil) != tc.ok {
				t.Errorf("New(%+v) error = %v, want ok=%v", tc.cfg, err, tc.ok)
			}
		})
	}
	if _, err := New(nil, Config{MaxConcurrent: 1}); err == nil {
		t.Error("New with a nil clock succeeded")
	}
}

func TestLimitsAndFull(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		desc               string
		maxConc, maxQueued int
	}{
		{desc: "no queue", maxConc: 3, maxQueued: 0},
		{desc: "with queue", maxConc: 2, maxQueued: 2},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			clk := clock.NewFake(t0)
			b := mustNew(t, clk, Config{MaxConcurrent: tc.maxConc, MaxQueued: tc.maxQueued})
			ctx := context.Background()
			for i := range tc.maxConc {
				if err := b.Acquire(ctx); err != nil {
					t.Fatalf("Acquire %d: %v", i, err)
				}
			}
			out := make(chan outcome, tc.maxQueued)
			for i := range tc.maxQueued {
				queue(t, b, clk, ctx, fmt.Sprint(i), out)
			}
			if err := b.Acquire(ctx); !errors.Is(err, ErrFull) {
				t.Fatalf("Acquire beyond queue = %v, want ErrFull", err)
			}
			if b.InFlight() != tc.maxConc || b.Queued() != tc.maxQueued {
				t.Fatalf("InFlight, Queued = %d, %d; want %d, %d", b.InFlight(), b.Queued(), tc.maxConc, tc.maxQueued)
			}
			for range tc.maxQueued {
				b.Release()
				if o := <-out; o.err != nil {
					t.Fatalf("waiter %s: %v", o.name, o.err)
				}
			}
			for range tc.maxConc {
				b.Release()
			}
			if b.InFlight() != 0 || b.Queued() != 0 {
				t.Fatalf("after all releases InFlight, Queued = %d, %d", b.InFlight(), b.Queued())
			}
		})
	}
}

func TestFIFOHandoffNoBarging(t *testing.T) {
	t.Parallel()
	clk := clock.NewFake(t0)
	b := mustNew(t, clk, Config{MaxConcurrent: 1, MaxQueued: 3})
	ctx := context.Background()
	if err := b.Acquire(ctx); err != nil {
		t.Fatal(err)
	}
	out := make(chan outcome, 4)
	for _, n := range []string{"a", "b", "c"} {
		queue(t, b, clk, ctx, n, out)
	}
	var got []string
	b.Release() // to a
	got = append(got, (<-out).name)
	// A newcomer while b and c wait must queue behind them, not take the next free slot.
	queue(t, b, clk, ctx, "d", out)
	for range 3 {
		b.Release()
		got = append(got, (<-out).name)
	}
	if want := []string{"a", "b", "c", "d"}; !slices.Equal(got, want) {
		t.Errorf("grant order %q, want %q", got, want)
	}
	b.Release()
	if b.InFlight() != 0 {
		t.Errorf("InFlight = %d, want 0", b.InFlight())
	}
}

func TestQueueTimeoutExact(t *testing.T) {
	t.Parallel()
	clk := clock.NewFake(t0)
	b := mustNew(t, clk, Config{MaxConcurrent: 1, MaxQueued: 2, QueueTimeout: time.Second})
	ctx := context.Background()
	if err := b.Acquire(ctx); err != nil {
		t.Fatal(err)
	}
	out := make(chan outcome, 2)
	queue(t, b, clk, ctx, "a", out) // queued at t0, expires at t0+1s
	clk.Advance(500 * time.Millisecond)
	queue(t, b, clk, ctx, "b", out) // queued at t0+500ms, expires at t0+1.5s
	for _, step := range []struct {
		desc    string
		advance time.Duration
		want    string // who times out; "" nobody
		queued  int    // waiters left afterwards
	}{
		{desc: "t0+999ms: nobody", advance: 499 * time.Millisecond, queued: 2},
		{desc: "t0+1s: a, exactly", advance: time.Millisecond, want: "a", queued: 1},
		{desc: "t0+1.499s: nobody", advance: 499 * time.Millisecond, queued: 1},
		{desc: "t0+1.5s: b", advance: time.Millisecond, want: "b", queued: 0},
	} {
		clk.Advance(step.advance)
		if step.want == "" {
			if b.Queued() != step.queued {
				t.Fatalf("%s: queued %d, want %d", step.desc, b.Queued(), step.queued)
			}
			select {
			case o := <-out:
				t.Fatalf("%s: %s returned %v", step.desc, o.name, o.err)
			default:
			}
			continue
		}
		o := <-out
		if o.name != step.want || !errors.Is(o.err, ErrQueueTimeout) {
			t.Fatalf("%s: got %s %v, want %s ErrQueueTimeout", step.desc, o.name, o.err, step.want)
		}
		// A waiter that timed out has left the queue before its Acquire returns.
		if b.Queued() != step.queued {
			t.Fatalf("%s: queued %d, want %d", step.desc, b.Queued(), step.queued)
		}
	}
	if b.Queued() != 0 || b.InFlight() != 1 || clk.Pending() != 0 {
		t.Fatalf("Queued, InFlight, Pending = %d, %d, %d; want 0, 1, 0", b.Queued(), b.InFlight(), clk.Pending())
	}
	// The slot is free for a newcomer once released.
	b.Release()
	if err := b.Acquire(ctx); err != nil {
		t.Fatalf("Acquire after timeouts: %v", err)
	}
}

func TestGrantStopsTimer(t *testing.T) {
	t.Parallel()
	clk := clock.NewFake(t0)
	b := mustNew(t, clk, Config{MaxConcurrent: 1, MaxQueued: 1, QueueTimeout: time.Second})
	ctx := context.Background()
	if err := b.Acquire(ctx); err != nil {
		t.Fatal(err)
	}
	out := make(chan outcome, 1)
	queue(t, b, clk, ctx, "a", out)
	clk.Advance(999 * time.Millisecond)
	b.Release()
	if o := <-out; o.err != nil {
		t.Fatalf("a: %v", o.err)
	}
	if clk.Pending() != 0 {
		t.Errorf("queue timer not stopped: %d pending", clk.Pending())
	}
}

func TestCancelLeavesQueue(t *testing.T) {
	t.Parallel()
	clk := clock.NewFake(t0)
	b := mustNew(t, clk, Config{MaxConcurrent: 1, MaxQueued: 3})
	bg := context.Background()
	if err := b.Acquire(bg); err != nil {
		t.Fatal(err)
	}
	out := make(chan outcome, 3)
	ctxB, cancelB := context.WithCancel(bg)
	queue(t, b, clk, bg, "a", out)
	queue(t, b, clk, ctxB, "b", out)
	queue(t, b, clk, bg, "c", out)
	cancelB()
	if o := <-out; o.name != "b" || !errors.Is(o.err, context.Canceled) {
		t.Fatalf("got %s %v, want b context.Canceled", o.name, o.err)
	}
	if b.Queued() != 2 {
		t.Fatalf("Queued = %d, want 2", b.Queued())
	}
	var got []string
	for range 2 {
		b.Release()
		got = append(got, (<-out).name)
	}
	if !slices.Equal(got, []string{"a", "c"}) {
		t.Errorf("grant order %q, want [a c]", got)
	}
	done, cancel := context.WithCancel(bg)
	cancel()
	if err := b.Acquire(done); !errors.Is(err, context.Canceled) {
		t.Errorf("Acquire with a done context and no free slot = %v, want context.Canceled", err)
	}
	if b.Queued() != 0 {
		t.Errorf("Queued = %d, want 0", b.Queued())
	}
}

func TestReleaseWithoutAcquirePanics(t *testing.T) {
	t.Parallel()
	b := mustNew(t, clock.Real{}, Config{MaxConcurrent: 1})
	defer func() {
		if recover() == nil {
			t.Error("Release without Acquire did not panic")
		}
	}()
	b.Release()
}

// TestHammer runs 64 goroutines against a small bulkhead with random cancellations and queue
// timeouts, and checks the invariants: never more than MaxConcurrent in flight, never more than
// MaxQueued waiting, slots handed to waiters strictly in queue order, and nothing left at the end.
func TestHammer(t *testing.T) {
	t.Parallel()
	const workers, rounds, maxConc, maxQueued = 64, 300, 4, 8
	clk := clock.NewFake(t0)
	b := mustNew(t, clk, Config{MaxConcurrent: maxConc, MaxQueued: maxQueued, QueueTimeout: time.Second})
	var lastSeq uint64
	var grants int
	var orderErr error
	b.onGrant = func(seq uint64) { // under b.mu
		grants++
		if seq <= lastSeq && orderErr == nil {
			orderErr = fmt.Errorf("slot handed to waiter %d after waiter %d", seq, lastSeq)
		}
		lastSeq = seq
		// Waiters are enqueued in seq order, so every one still queued is younger than this one.
		if b.head != nil && b.head.seq <= seq {
			orderErr = fmt.Errorf("waiter %d still queued after %d was served", b.head.seq, seq)
		}
	}
	var inFlight, maxSeen atomic.Int32
	var counts [4]atomic.Int64 // ok, full, timeout, cancelled
	errs := make(chan error, workers+1)
	stop := make(chan struct{})
	var ticker sync.WaitGroup
	ticker.Go(func() { // makes queue timeouts happen
		for {
			select {
			case <-stop:
				return
			default:
				runtime.Gosched()
				clk.Advance(100 * time.Millisecond)
			}
		}
	})
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(w), 2))
			for range rounds {
				ctx, cancel := context.WithCancel(context.Background())
				if rng.IntN(8) == 0 {
					go func() { runtime.Gosched(); cancel() }()
				}
				err := b.Acquire(ctx)
				if q := b.Queued(); q > maxQueued {
					errs <- fmt.Errorf("%d queued, max %d", q, maxQueued)
				}
				switch {
				case err == nil:
					counts[0].Add(1)
					n := inFlight.Add(1)
					if n > maxConc {
						errs <- fmt.Errorf("%d in flight, max %d", n, maxConc)
					}
					for m := maxSeen.Load(); n > m && !maxSeen.CompareAndSwap(m, n); m = maxSeen.Load() {
					}
					for range rng.IntN(3) {
						runtime.Gosched()
					}
					inFlight.Add(-1)
					b.Release()
				case errors.Is(err, ErrFull):
					counts[1].Add(1)
				case errors.Is(err, ErrQueueTimeout):
					counts[2].Add(1)
				case errors.Is(err, context.Canceled):
					counts[3].Add(1)
				default:
					errs <- fmt.Errorf("unexpected error %v", err)
				}
				cancel()
			}
		})
	}
	wg.Wait()
	close(stop)
	ticker.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if orderErr != nil {
		t.Fatal(orderErr)
	}
	t.Logf("ok %d, full %d, timeout %d, cancelled %d, handed to waiters %d, max in flight %d",
		counts[0].Load(), counts[1].Load(), counts[2].Load(), counts[3].Load(), grants, maxSeen.Load())
	if counts[0].Load() == 0 || counts[1].Load() == 0 || grants == 0 {
		t.Fatal("the hammer did not reach the queue and the full bulkhead")
	}
	if s := b.state.Load(); s != 0 || b.head != nil || b.tail != nil {
		t.Fatalf("left state %#x, head %v, tail %v; want all empty", s, b.head, b.tail)
	}
}
