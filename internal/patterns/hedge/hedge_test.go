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

package hedge

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

const delay = 50 * time.Millisecond

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

// rig runs calls whose behaviour the test scripts per attempt and records what happened to them.
type rig struct {
	clk      *clock.Fake
	behave   func(ctx context.Context, attempt int) (string, error)
	running  atomic.Int32 // calls that have started and not yet returned
	started  atomic.Int32
	mu       sync.Mutex
	ctxs     map[int]context.Context
	ctxErrs  map[int]error // ctx.Err() seen by each call when it returned
	discards []string
}

func newRig(behave func(ctx context.Context, attempt int) (string, error)) *rig {
	return &rig{clk: clock.NewFake(t0), behave: behave, ctxs: map[int]context.Context{}, ctxErrs: map[int]error{}}
}

func (r *rig) call(ctx context.Context, attempt int) (string, error) {
	r.running.Add(1)
	defer r.running.Add(-1)
	r.mu.Lock()
	r.ctxs[attempt] = ctx
	r.mu.Unlock()
	r.started.Add(1)
	v, err := r.behave(ctx, attempt)
	r.mu.Lock()
	r.ctxErrs[attempt] = ctx.Err()
	r.mu.Unlock()
	return v, err
}

func (r *rig) discard(v string) {
	r.mu.Lock()
	r.discards = append(r.discards, v)
	r.mu.Unlock()
}

func (r *rig) ctxErr(attempt int) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.ctxErrs[attempt]
}

type result struct {
	v        string
	attempts int
	err      error
	running  int32 // calls still running when Do returned: must be 0
}

// goDo runs Do in a goroutine; the result arrives on the returned channel.
func (r *rig) goDo(ctx context.Context, p Policy) <-chan result {
	ch := make(chan result, 1)
	go func() {
		v, n, err := Do(ctx, r.clk, p, r.call, isGood, r.discard)
		ch <- result{v, n, err, r.running.Load()}
	}()
	return ch
}

func isGood(v string, err error) bool { return err == nil && v == "ok" }

// blockUntilCancelled is a call that returns only when its context ends.
func blockUntilCancelled(ctx context.Context) (string, error) {
	<-ctx.Done()
	return "", ctx.Err()
}

// advanceWhenArmed waits for Do to arm its hedge timer, then fires it.
func (r *rig) advanceWhenArmed(t *testing.T) {
	t.Helper()
	waitFor(t, "hedge timer", func() bool { return r.clk.Pending() == 1 })
	r.clk.Advance(delay)
}

func TestSlowFirstCallLosesToHedge(t *testing.T) {
	t.Parallel()
	r := newRig(func(ctx context.Context, attempt int) (string, error) {
		if attempt == 0 {
			return blockUntilCancelled(ctx)
		}
		return "ok", nil
	})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := r.goDo(ctx, Policy{Delay: delay, MaxHedges: 1})
	r.advanceWhenArmed(t)
	got := <-done
	if got.v != "ok" || got.attempts != 2 || got.err != nil || got.running != 0 {
		t.Fatalf("Do = %+v, want ok, 2 attempts, nil error, 0 running", got)
	}
	if err := r.ctxErr(0); !errors.Is(err, context.Canceled) {
		t.Errorf("loser's context error = %v, want context.Canceled", err)
	}
	// The winner's context stays usable (a body may still be read) until the parent ends.
	r.mu.Lock()
	winner := r.ctxs[1]
	r.mu.Unlock()
	if winner.Err() != nil {
		t.Errorf("winner's context was cancelled: %v", winner.Err())
	}
	cancel()
	if winner.Err() == nil {
		t.Error("winner's context outlived its parent")
	}
	if r.clk.Pending() != 0 {
		t.Errorf("%d timers left pending", r.clk.Pending())
	}
}

func TestFastFirstCallStartsNoHedge(t *testing.T) {
	t.Parallel()
	r := newRig(func(context.Context, int) (string, error) { return "ok", nil })
	v, n, err := Do(context.Background(), r.clk, Policy{Delay: delay, MaxHedges: 3}, r.call, isGood, r.discard)
	if v != "ok" || n != 1 || err != nil {
		t.Fatalf("Do = %q, %d, %v; want ok, 1, nil", v, n, err)
	}
	if got := r.started.Load(); got != 1 {
		t.Errorf("%d calls started, want 1", got)
	}
	if r.clk.Pending() != 0 {
		t.Errorf("hedge timer not stopped: %d pending", r.clk.Pending())
	}
	if len(r.discards) != 0 {
		t.Errorf("discarded %q, want nothing", r.discards)
	}
}

func TestMaxHedgesAndMayHedge(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		desc      string
		maxHedges int
		allow     int // hedges MayHedge allows; -1: no MayHedge
		want      int // calls started
		wantAsked int
	}{
		{desc: "no hedges", maxHedges: 0, allow: -1, want: 1},
		{desc: "one hedge", maxHedges: 1, allow: -1, want: 2},
		{desc: "three hedges", maxHedges: 3, allow: -1, want: 4},
		{desc: "MayHedge allows all", maxHedges: 2, allow: 5, want: 3, wantAsked: 2},
		{desc: "MayHedge allows one of three", maxHedges: 3, allow: 1, want: 2, wantAsked: 2},
		{desc: "MayHedge refuses", maxHedges: 2, allow: 0, want: 1, wantAsked: 1},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			r := newRig(func(ctx context.Context, _ int) (string, error) { return blockUntilCancelled(ctx) })
			p := Policy{Delay: delay, MaxHedges: tc.maxHedges}
			var asked atomic.Int32
			if tc.allow >= 0 {
				p.MayHedge = func() bool { return int(asked.Add(1)) <= tc.allow }
			}
			ctx, cancel := context.WithCancel(context.Background())
			done := r.goDo(ctx, p)
			for i := 1; i < tc.want; i++ {
				r.advanceWhenArmed(t)
				waitFor(t, fmt.Sprintf("call %d", i), func() bool { return int(r.started.Load()) == i+1 })
			}
			if tc.want <= tc.maxHedges && tc.allow >= 0 {
				// MayHedge refuses the next hedge: the timer fires, nothing starts, no timer is re-armed.
				r.advanceWhenArmed(t)
				waitFor(t, "MayHedge", func() bool { return int(asked.Load()) == tc.wantAsked })
			}
			// Firing more delays must start nothing more.
			for range 3 {
				runtime.Gosched()
				r.clk.Advance(delay)
			}
			cancel()
			got := <-done
			if got.attempts != tc.want || int(r.started.Load()) != tc.want {
				t.Errorf("attempts = %d, started = %d, want %d", got.attempts, r.started.Load(), tc.want)
			}
			if !errors.Is(got.err, context.Canceled) || got.running != 0 {
				t.Errorf("Do = %+v, want context.Canceled and 0 running", got)
			}
			if int(asked.Load()) != tc.wantAsked {
				t.Errorf("MayHedge asked %d times, want %d", asked.Load(), tc.wantAsked)
			}
		})
	}
}

func TestParentCancelled(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		desc  string
		late  bool // calls return a good result after seeing the cancellation
		wantD []string
	}{
		{desc: "calls return the context error"},
		{desc: "good results arriving after cancellation are discarded", late: true, wantD: []string{"ok", "ok", "ok"}},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			r := newRig(func(ctx context.Context, _ int) (string, error) {
				<-ctx.Done()
				if tc.late {
					return "ok", nil
				}
				return "", ctx.Err()
			})
			ctx, cancel := context.WithCancel(context.Background())
			done := r.goDo(ctx, Policy{Delay: delay, MaxHedges: 2})
			r.advanceWhenArmed(t)
			r.advanceWhenArmed(t)
			waitFor(t, "three calls", func() bool { return r.started.Load() == 3 })
			cancel()
			got := <-done
			if got.v != "" || got.attempts != 3 || !errors.Is(got.err, context.Canceled) || got.running != 0 {
				t.Fatalf("Do = %+v, want \"\", 3, context.Canceled, 0 running", got)
			}
			for i := range 3 {
				if err := r.ctxErr(i); !errors.Is(err, context.Canceled) {
					t.Errorf("call %d saw %v, want context.Canceled", i, err)
				}
			}
			if !slices.Equal(r.discards, tc.wantD) {
				t.Errorf("discarded %q, want %q", r.discards, tc.wantD)
			}
		})
	}
}

func TestAlreadyCancelledStartsNothing(t *testing.T) {
	t.Parallel()
	r := newRig(func(context.Context, int) (string, error) { return "ok", nil })
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, n, err := Do(ctx, r.clk, Policy{Delay: delay, MaxHedges: 1}, r.call, isGood, r.discard)
	if n != 0 || !errors.Is(err, context.Canceled) || r.started.Load() != 0 {
		t.Fatalf("Do = %d, %v with %d started; want 0, context.Canceled, 0", n, err, r.started.Load())
	}
}

var (
	errReset = errors.New("reset")
	errRefus = errors.New("refused")
)

type reply struct {
	v   string
	err error
}

func TestAllBad(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		desc    string
		replies []reply // per attempt
		order   []int   // order in which the calls are released
		want    reply
		wantD   []string
	}{
		{desc: "two responses: the later attempt", replies: []reply{{v: "503a"}, {v: "503b"}}, order: []int{0, 1},
			want: reply{v: "503b"}, wantD: []string{"503a"}},
		{desc: "two responses released the other way: same pick", replies: []reply{{v: "503a"}, {v: "503b"}}, order: []int{1, 0},
			want: reply{v: "503b"}, wantD: []string{"503a"}},
		{desc: "two errors: the later attempt", replies: []reply{{err: errReset}, {err: errRefus}}, order: []int{1, 0},
			want: reply{err: errRefus}},
		{desc: "a response beats a later error", replies: []reply{{v: "503"}, {err: errReset}}, order: []int{0, 1},
			want: reply{v: "503"}},
		{desc: "a response beats an earlier error", replies: []reply{{err: errReset}, {v: "429"}}, order: []int{1, 0},
			want: reply{v: "429"}},
		{desc: "three: responses kept over errors", replies: []reply{{v: "500"}, {err: errReset}, {v: "502"}}, order: []int{2, 1, 0},
			want: reply{v: "502"}, wantD: []string{"500"}},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			release := make([]chan struct{}, len(tc.replies))
			for i := range release {
				release[i] = make(chan struct{})
			}
			r := newRig(func(_ context.Context, attempt int) (string, error) {
				<-release[attempt]
				return tc.replies[attempt].v, tc.replies[attempt].err
			})
			done := r.goDo(context.Background(), Policy{Delay: delay, MaxHedges: len(tc.replies) - 1})
			for i := 1; i < len(tc.replies); i++ {
				r.advanceWhenArmed(t)
			}
			waitFor(t, "all calls", func() bool { return int(r.started.Load()) == len(tc.replies) })
			for _, i := range tc.order {
				close(release[i])
			}
			got := <-done
			if got.v != tc.want.v || got.err != tc.want.err || got.attempts != len(tc.replies) || got.running != 0 {
				t.Errorf("Do = %+v, want %+v after %d attempts, 0 running", got, tc.want, len(tc.replies))
			}
			if !slices.Equal(r.discards, tc.wantD) {
				t.Errorf("discarded %q, want %q", r.discards, tc.wantD)
			}
		})
	}
}

func TestBadResultDoesNotTriggerHedge(t *testing.T) {
	t.Parallel()
	r := newRig(func(context.Context, int) (string, error) { return "", errReset })
	_, n, err := Do(context.Background(), r.clk, Policy{Delay: delay, MaxHedges: 2}, r.call, isGood, r.discard)
	if n != 1 || !errors.Is(err, errReset) {
		t.Fatalf("Do = %d, %v; want 1 attempt, errReset", n, err)
	}
	if r.clk.Pending() != 0 {
		t.Errorf("%d timers left pending", r.clk.Pending())
	}
}

func TestLosingGoodResultIsDiscarded(t *testing.T) {
	t.Parallel()
	r := newRig(func(ctx context.Context, attempt int) (string, error) {
		if attempt == 0 {
			<-ctx.Done() // finishes anyway, after losing
			return "ok", nil
		}
		return "ok", nil
	})
	got := <-func() <-chan result {
		ch := r.goDo(context.Background(), Policy{Delay: delay, MaxHedges: 1})
		r.advanceWhenArmed(t)
		return ch
	}()
	if got.v != "ok" || got.attempts != 2 || got.err != nil || got.running != 0 {
		t.Fatalf("Do = %+v", got)
	}
	if !slices.Equal(r.discards, []string{"ok"}) {
		t.Errorf("discarded %q, want the loser's ok", r.discards)
	}
}

func TestZeroDelayStartsAllAtOnce(t *testing.T) {
	t.Parallel()
	var seen sync.WaitGroup
	seen.Add(3)
	r := newRig(func(_ context.Context, attempt int) (string, error) {
		seen.Done()
		seen.Wait() // returns only once all three run concurrently, with no clock advance
		if attempt == 2 {
			return "ok", nil
		}
		return "", errReset
	})
	v, n, err := Do(context.Background(), r.clk, Policy{MaxHedges: 2}, r.call, isGood, r.discard)
	if v != "ok" || n != 3 || err != nil {
		t.Fatalf("Do = %q, %d, %v; want ok, 3, nil", v, n, err)
	}
}

func TestInvalid(t *testing.T) {
	t.Parallel()
	call := func(context.Context, int) (int, error) { return 0, nil }
	good := func(int, error) bool { return true }
	for _, tc := range []struct {
		desc string
		p    Policy
		clk  clock.Clock
		call func(context.Context, int) (int, error)
		good func(int, error) bool
	}{
		{desc: "negative delay", p: Policy{Delay: -1}, clk: clock.Real{}, call: call, good: good},
		{desc: "negative hedges", p: Policy{MaxHedges: -1}, clk: clock.Real{}, call: call, good: good},
		{desc: "nil clock", call: call, good: good},
		{desc: "nil call", clk: clock.Real{}, good: good},
		{desc: "nil good", clk: clock.Real{}, call: call},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			if _, n, err := Do(context.Background(), tc.clk, tc.p, tc.call, tc.good, nil); !errors.Is(err, ErrInvalid) || n != 0 {
				t.Errorf("Do = %d, %v; want 0, ErrInvalid", n, err)
			}
		})
	}
}

// TestHammer runs many hedged calls at once with random outcomes on the real clock and checks, for
// each, that no call outlived Do and that every response produced was either returned or discarded,
// exactly once (no leaked or doubly closed bodies).
func TestHammer(t *testing.T) {
	t.Parallel()
	const workers, rounds, maxHedges = 64, 50, 2
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(w), 1))
			for round := range rounds {
				var running atomic.Int32
				var mu sync.Mutex
				produced := map[string]int{} // responses (nil error) made
				handed := map[string]int{}   // returned or discarded
				kinds := make([]int, 1+maxHedges)
				for i := range kinds {
					kinds[i] = rng.IntN(5)
				}
				kinds[maxHedges] %= 3 // the last call never waits, so every Do ends
				lastDone := make(chan struct{})
				call := func(ctx context.Context, attempt int) (string, error) {
					running.Add(1)
					defer running.Add(-1)
					k := kinds[attempt]
					if attempt == maxHedges {
						defer close(lastDone)
					}
					if k >= 3 {
						// Slow: returns when it loses or when the last call has returned
						// (like a real call, it does not wait forever).
						select {
						case <-ctx.Done():
						case <-lastDone:
						}
						k -= 3
					}
					var v string
					var err error
					switch k {
					case 0:
						v = fmt.Sprintf("ok%d", attempt)
					case 1:
						v = fmt.Sprintf("bad%d", attempt)
					default:
						return "", errReset
					}
					mu.Lock()
					produced[v]++
					mu.Unlock()
					return v, err
				}
				good := func(v string, err error) bool { return err == nil && v[0] == 'o' }
				discard := func(v string) {
					mu.Lock()
					handed[v]++
					mu.Unlock()
				}
				v, n, err := Do(context.Background(), clock.Real{}, Policy{Delay: time.Microsecond, MaxHedges: maxHedges}, call, good, discard)
				if running.Load() != 0 {
					errs <- fmt.Errorf("worker %d round %d: %d calls outlived Do", w, round, running.Load())
					return
				}
				if err == nil {
					handed[v]++
				}
				if n < 1 || n > 1+maxHedges {
					errs <- fmt.Errorf("worker %d round %d: %d attempts", w, round, n)
					return
				}
				for k, c := range handed {
					if c != 1 || produced[k] != 1 {
						errs <- fmt.Errorf("worker %d round %d: %q produced %d times, handed back %d times", w, round, k, produced[k], c)
						return
					}
				}
				if len(handed) != len(produced) {
					errs <- fmt.Errorf("worker %d round %d: produced %v, handed back %v", w, round, produced, handed)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}
