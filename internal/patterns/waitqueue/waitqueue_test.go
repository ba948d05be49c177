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

package waitqueue

import (
	"context"
	"errors"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"resilience.dev/operator/internal/patterns/clock"
	"resilience.dev/operator/internal/patterns/ratelimit"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

const ms = time.Millisecond

// waitPending spins (without sleeping) until the fake clock has n timers parked, failing after a
// generous wall-clock bound instead of hanging.
func waitPending(t *testing.T, clk *clock.Fake, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for clk.Pending() != n {
		if time.Now().After(deadline) {
			t.Fatalf("Pending = %d, want %d", clk.Pending(), n)
		}
		runtime.Gosched()
	}
}

func mustQueue(t *testing.T, clk clock.Clock, capacity int, maxDelay time.Duration) *Queue {
	t.Helper()
	q, err := New(clk, capacity, maxDelay)
	if err != nil {
		t.Fatal(err)
	}
	return q
}

func mustBucket(t *testing.T, l ratelimit.Limit) *ratelimit.Bucket {
	t.Helper()
	b, err := ratelimit.NewBucket(l)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestNew(t *testing.T) {
	t.Parallel()
	tests := []struct {
		desc     string
		clk      clock.Clock
		capacity int
		maxDelay time.Duration
		wantErr  string
	}{
		{desc: "valid", clk: clock.Real{}, capacity: 10, maxDelay: 500 * ms},
		{desc: "nil clock", clk: nil, capacity: 10, maxDelay: 500 * ms, wantErr: "nil clock"},
		{desc: "zero capacity", clk: clock.Real{}, capacity: 0, maxDelay: 500 * ms, wantErr: "capacity 0"},
		{desc: "zero maxDelay", clk: clock.Real{}, capacity: 1, maxDelay: 0, wantErr: "maxDelay 0s"},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			q, err := New(tc.clk, tc.capacity, tc.maxDelay)
			if tc.wantErr == "" {
				if err != nil || q.Capacity() != tc.capacity || q.MaxDelay() != tc.maxDelay {
					t.Fatalf("New = %v, %v", q, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("New = %v, want an error containing %q", err, tc.wantErr)
			}
		})
	}
}

// request runs one Delay-mode request through the queue and the bucket as the gateway will. It
// returns false when the request was refused at once; otherwise a goroutine waits and then sends
// the request's index (or -1-index if it left) on done.
func request(ctx context.Context, t *testing.T, q *Queue, b *ratelimit.Bucket, now time.Time, i int, done chan<- int) (time.Duration, error) {
	t.Helper()
	tk, err := q.Enter()
	if err != nil {
		return 0, err
	}
	r, ok := b.ReserveN(now, 1, q.MaxDelay())
	if !ok {
		tk.Leave()
		return 0, errRefused
	}
	go func() {
		if err := tk.Wait(ctx, now.Add(r.Delay()), r.Cancel); err != nil {
			done <- -1 - i
			return
		}
		done <- i
	}()
	return r.Delay(), nil
}

var errRefused = errors.New("refused by the bucket")

// TestShapeBurst: a burst of 15 requests at one instant against a bucket of 10/s burst 2, with
// maxDelay 1s: the first 2 go at once, the next 10 are released one by one, each exactly at its
// time (not a nanosecond before) and in arrival order, and the last 3, which would wait more than
// 1s, are refused at once without spending a token.
func TestShapeBurst(t *testing.T) {
	t.Parallel()
	clk := clock.NewFake(t0)
	q := mustQueue(t, clk, 20, time.Second)
	b := mustBucket(t, ratelimit.Limit{Requests: 10, Period: time.Second, Burst: 2})
	done := make(chan int, 15)
	var refused []int
	for i := range 15 {
		d, err := request(t.Context(), t, q, b, t0, i, done)
		switch {
		case errors.Is(err, errRefused):
			refused = append(refused, i)
		case err != nil:
			t.Fatalf("request %d: %v", i, err)
		case i >= 2 && d != time.Duration(i-1)*100*ms:
			t.Fatalf("request %d waits %v, want %v", i, d, time.Duration(i-1)*100*ms)
		}
	}
	if len(refused) != 3 || refused[0] != 12 {
		t.Fatalf("refused %v, want [12 13 14]", refused)
	}
	if next := b.NextToken(t0); next != 1100*ms {
		t.Fatalf("refusals spent tokens: NextToken = %v, want 1.1s", next)
	}
	// The two immediate requests go at once, in either order.
	if got := <-done + <-done; got != 0+1 {
		t.Fatalf("immediate requests released %d, want 0 and 1", got)
	}
	waitPending(t, clk, 10)
	if q.Waiting() != 10 {
		t.Fatalf("Waiting = %d, want 10", q.Waiting())
	}
	for s := 1; s <= 10; s++ {
		at := t0.Add(time.Duration(s) * 100 * ms)
		clk.Set(at.Add(-time.Nanosecond))
		if clk.Pending() != 11-s {
			t.Fatalf("a waiter was released before %v", at)
		}
		clk.Set(at)
		if got := <-done; got != s+1 {
			t.Fatalf("at %v released request %d, want %d", at.Sub(t0), got, s+1)
		}
		waitPending(t, clk, 10-s) // nobody else went
		if q.Waiting() != 10-s {
			t.Fatalf("Waiting = %d, want %d", q.Waiting(), 10-s)
		}
	}
}

// TestQueueFull: with every place taken, a new request is refused at once, before it reserves
// anything; a released place can be taken again.
func TestQueueFull(t *testing.T) {
	t.Parallel()
	clk := clock.NewFake(t0)
	q := mustQueue(t, clk, 3, 10*time.Second)
	b := mustBucket(t, ratelimit.Limit{Requests: 1, Period: time.Second, Burst: 1})
	done := make(chan int, 10)
	for i := range 4 { // 0 goes at once, 1..3 wait 1s, 2s, 3s
		if _, err := request(t.Context(), t, q, b, t0, i, done); err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		if i == 0 {
			if got := <-done; got != 0 {
				t.Fatalf("released %d, want 0", got)
			}
		}
	}
	waitPending(t, clk, 3)
	if _, err := request(t.Context(), t, q, b, t0, 4, done); !errors.Is(err, ErrQueueFull) {
		t.Fatalf("request into a full queue: %v, want ErrQueueFull", err)
	}
	if next := b.NextToken(t0); next != 4*time.Second {
		t.Fatalf("the refused request spent a token: NextToken = %v, want 4s", next)
	}
	clk.Set(t0.Add(time.Second))
	if got := <-done; got != 1 {
		t.Fatalf("released %d, want 1", got)
	}
	if d, err := request(t.Context(), t, q, b, clk.Now(), 5, done); err != nil || d != 3*time.Second {
		t.Fatalf("request after a release: %v, %v; want a 3s wait", d, err)
	}
}

// TestCancel: a waiter whose context ends leaves at once, frees its place and gives its tokens
// back, so the next request waits less.
func TestCancel(t *testing.T) {
	t.Parallel()
	clk := clock.NewFake(t0)
	q := mustQueue(t, clk, 5, time.Second)
	b := mustBucket(t, ratelimit.Limit{Requests: 10, Period: time.Second, Burst: 1})
	done := make(chan int, 10)
	ctx2, cancel2 := context.WithCancelCause(t.Context())
	for i := range 4 { // 0 goes, 1, 2, 3 wait 100, 200, 300ms
		ctx := t.Context()
		if i == 2 {
			ctx = ctx2
		}
		if _, err := request(ctx, t, q, b, t0, i, done); err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
	}
	<-done
	waitPending(t, clk, 3)
	clk.Set(t0.Add(50 * ms))
	cause := errors.New("client went away")
	cancel2(cause)
	if got := <-done; got != -1-2 {
		t.Fatalf("got %d, want request 2 to leave", got)
	}
	if q.Waiting() != 2 || clk.Pending() != 2 {
		t.Fatalf("after the cancel Waiting = %d, Pending = %d; want 2, 2", q.Waiting(), clk.Pending())
	}
	// Without the refund the next request would wait until 400ms; with it, until 300ms.
	if d, err := request(t.Context(), t, q, b, clk.Now(), 4, done); err != nil || d != 250*ms {
		t.Fatalf("request after the cancel: %v, %v; want a 250ms wait", d, err)
	}
	waitPending(t, clk, 3)
	clk.Set(t0.Add(100 * ms))
	if got := <-done; got != 1 {
		t.Fatalf("released %d, want 1", got)
	}
	waitPending(t, clk, 2)
	clk.Set(t0.Add(300*ms - 1))
	if clk.Pending() != 2 {
		t.Fatal("a waiter was released before 300ms")
	}
	clk.Set(t0.Add(300 * ms))
	if got := <-done + <-done; got != 3+4 {
		t.Fatalf("released %d, want 3 and 4 together at 300ms", got)
	}
	if q.Waiting() != 0 || clk.Pending() != 0 {
		t.Fatalf("Waiting = %d, Pending = %d; want 0, 0", q.Waiting(), clk.Pending())
	}
}

func TestWaitErrors(t *testing.T) {
	t.Parallel()
	cause := errors.New("gone")
	cancelled, cancel := context.WithCancelCause(context.Background())
	cancel(cause)
	tests := []struct {
		desc       string
		ctx        context.Context
		release    time.Duration // after t0
		wantErr    error
		wantRefund bool
	}{
		{desc: "release reached", ctx: context.Background(), release: 0},
		{desc: "release passed", ctx: context.Background(), release: -time.Second},
		{desc: "release passed, context already done: goes on", ctx: cancelled, release: 0},
		{desc: "over maxDelay", ctx: context.Background(), release: time.Second + 1, wantErr: ErrTooLong, wantRefund: true},
		{desc: "context already done", ctx: cancelled, release: 10 * ms, wantErr: cause, wantRefund: true},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			clk := clock.NewFake(t0)
			q := mustQueue(t, clk, 1, time.Second)
			tk, err := q.Enter()
			if err != nil {
				t.Fatal(err)
			}
			refunded := false
			err = tk.Wait(tc.ctx, t0.Add(tc.release), func(now time.Time) {
				refunded = now.Equal(t0)
			})
			if !errors.Is(err, tc.wantErr) || (tc.wantErr == nil) != (err == nil) {
				t.Fatalf("Wait = %v, want %v", err, tc.wantErr)
			}
			if refunded != tc.wantRefund {
				t.Errorf("refunded at t0 = %v, want %v", refunded, tc.wantRefund)
			}
			if q.Waiting() != 0 || clk.Pending() != 0 {
				t.Errorf("Waiting = %d, Pending = %d after Wait; want 0, 0", q.Waiting(), clk.Pending())
			}
			if err := tk.Wait(tc.ctx, t0, nil); !errors.Is(err, ErrTicketUsed) {
				t.Errorf("second Wait = %v, want ErrTicketUsed", err)
			}
			tk.Leave()
			if q.Waiting() != 0 {
				t.Errorf("Leave after Wait changed Waiting to %d", q.Waiting())
			}
		})
	}
}

// TestHammer: 64 goroutines run Delay-mode requests through one queue and one bucket while the
// fake clock moves on, a third of them giving up part way. The queue never holds more than its
// capacity, no waiter is released before its time, and the released requests never exceed what
// the bucket allows: cancelled waiters' tokens were given back, not spent twice.
func TestHammer(t *testing.T) {
	t.Parallel()
	const (
		goroutines = 64
		each       = 30
		capacity   = 16
	)
	clk := clock.NewFake(t0)
	q := mustQueue(t, clk, capacity, 50*ms)
	l := ratelimit.Limit{Requests: 1000, Period: time.Second, Burst: 10}
	b := mustBucket(t, l)
	var released, finished atomic.Int64
	var mu sync.Mutex
	var times []time.Time // release times of the requests that went on
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			defer finished.Add(1)
			for i := range each {
				tk, err := q.Enter()
				if err != nil {
					continue
				}
				if n := q.Waiting(); n > capacity {
					t.Errorf("Waiting = %d > capacity %d", n, capacity)
				}
				now := clk.Now()
				r, ok := b.ReserveN(now, 1, q.MaxDelay())
				if !ok {
					tk.Leave()
					continue
				}
				ctx, cancel := context.WithCancel(context.Background())
				if (g+i)%3 == 0 {
					cancel() // gives up before its time, or goes on if it has come
				}
				release := now.Add(r.Delay())
				if err := tk.Wait(ctx, release, r.Cancel); err == nil {
					if after := clk.Now(); after.Before(release) {
						t.Errorf("released at %v, before its time %v", after, release)
					}
					released.Add(1)
					mu.Lock()
					times = append(times, release)
					mu.Unlock()
				}
				cancel()
			}
		})
	}
	for finished.Load() < goroutines {
		clk.Advance(100 * time.Microsecond)
		runtime.Gosched()
	}
	wg.Wait()
	if q.Waiting() != 0 || clk.Pending() != 0 {
		t.Fatalf("Waiting = %d, Pending = %d at the end", q.Waiting(), clk.Pending())
	}
	span := clk.Now().Sub(t0)
	limit := int64(l.Burst) + l.Requests*int64(span)/int64(l.Period)
	t.Logf("released %d over %v (limit %d)", released.Load(), span, limit)
	if released.Load() > limit {
		t.Errorf("released %d over %v, more than burst + rate*T = %d", released.Load(), span, limit)
	}
	if released.Load() == 0 {
		t.Error("nothing was released")
	}
}
