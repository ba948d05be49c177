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

// Package hedge sends hedged requests (fan-out/fan-in): it starts one call and, while no good result
// has arrived, starts another copy every Delay, up to MaxHedges extra copies. The first good result
// wins and every other call in flight is cancelled through its context. Do returns only after every
// call it started has returned, so no goroutine outlives it.
//
// Hedging answers slowness, not failure: a call that returns a bad result does not start a new copy.
// When every started call has returned a bad result, Do returns one of them and the caller (a retry
// loop, say) decides whether to try again.
package hedge

import (
	"context"
	"errors"
	"fmt"
	"time"

	"resilience.dev/operator/internal/patterns/clock"
)

// ErrInvalid is wrapped by the error Do returns for a bad Policy or missing functions.
var ErrInvalid = errors.New("hedge: invalid arguments")

// Policy says when to start hedges.
type Policy struct {
	// Delay is how long Do waits for a good result before it starts the next copy; 0 starts all
	// copies at once. It must not be negative.
	Delay time.Duration
	// MaxHedges is the number of copies Do may start beyond the first call (>= 0).
	MaxHedges int
	// MayHedge, when set, is asked just before each hedge (never before the first call) whether it
	// may start, e.g. to spend a retry budget or an attempt allowance. When it returns false no
	// further hedge is started by this Do. It is called from the goroutine that called Do.
	MayHedge func() bool
}

// Validate reports whether p can be used.
func (p Policy) Validate() error {
	if p.Delay < 0 {
		return fmt.Errorf("%w: delay %v is negative", ErrInvalid, p.Delay)
	}
	if p.MaxHedges < 0 {
		return fmt.Errorf("%w: maxHedges %d is negative", ErrInvalid, p.MaxHedges)
	}
	return nil
}

type outcome[T any] struct {
	v       T
	err     error
	attempt int
}

// Do runs call as described in the package comment and returns the result it picked, the number of
// calls it started (the first one included) and the error of that result.
//
// call is invoked in its own goroutine with attempt = 0, 1, ... and a context derived from ctx that
// Do cancels when that call loses. good judges a result: true means acceptable (it wins at once),
// false means a failure that a hedge may beat.
//
// The result Do returns is picked as follows:
//   - the first result that good accepts;
//   - else, once ctx is done (even when a good result arrives afterwards), nothing: Do returns the
//     zero T and ctx.Err();
//   - else, when every started call has returned a bad result: among those with a nil error (a
//     response, say a 503), or else among all of them, the one of the latest-started call (the
//     highest attempt). The rule depends only on the results, not on the order they arrived in.
//
// discard, when set, receives every result with a nil error that Do does not return (a loser that
// finished anyway, or a bad result passed over), so the caller can release it (close an HTTP body).
//
// The context of the call whose result Do returns is not cancelled by Do, so that the caller may go
// on using the result (read a response body) after Do returns; it ends with ctx. Give Do a context
// that ends when the caller is done with the result. Do returns only after every call it started
// has returned. A call must therefore return once its context is cancelled.
func Do[T any](ctx context.Context, clk clock.Clock, p Policy,
	call func(ctx context.Context, attempt int) (T, error),
	good func(T, error) bool,
	discard func(T),
) (T, int, error) {
	var zero T
	if err := p.Validate(); err != nil {
		return zero, 0, err
	}
	if clk == nil || call == nil || good == nil {
		return zero, 0, fmt.Errorf("%w: clock, call and good are required", ErrInvalid)
	}
	if err := ctx.Err(); err != nil {
		return zero, 0, err
	}
	limit := 1 + p.MaxHedges
	// Buffered for every call, so a call's goroutine never blocks on sending its result.
	results := make(chan outcome[T], limit)
	var r round[T]
	j := judge[T]{good: good, discard: discard}
	start := func() {
		actx, cancel := context.WithCancel(ctx)
		attempt := r.add(cancel)
		go func() {
			v, err := call(actx, attempt)
			results <- outcome[T]{v: v, err: err, attempt: attempt}
		}()
	}
	r.wait(ctx, clk, p, limit, j, start, results)
	r.settle(ctx, j, results)
	if r.ctxDone {
		return zero, r.started, ctx.Err()
	}
	return r.picked.v, r.started, r.picked.err
}

// judge holds the caller's functions that judge and release results. They stay apart from round:
// escape analysis does not tell one field of a struct from another, and round's results reach the
// heap (discard), which would take the caller's good function (a method value, say) along with them.
type judge[T any] struct {
	good    func(T, error) bool
	discard func(T)
}

// round is the bookkeeping of one Do: the calls started and the result picked so far. Only the
// goroutine of Do touches it.
type round[T any] struct {
	// The cancel functions of the calls started, by attempt: the first ones in few, the rest in more.
	few      [4]context.CancelFunc
	more     []context.CancelFunc
	started  int
	inflight int

	picked  outcome[T]
	have    bool // picked holds a result
	won     bool // picked was accepted by good
	ctxDone bool
}

// add records a call started with its cancel function and returns its attempt number.
func (r *round[T]) add(cancel context.CancelFunc) int {
	attempt := r.started
	if attempt < len(r.few) {
		r.few[attempt] = cancel
	} else {
		r.more = append(r.more, cancel)
	}
	r.started++
	r.inflight++
	return attempt
}

// cancel cancels the context of call attempt.
func (r *round[T]) cancel(attempt int) {
	if attempt < len(r.few) {
		r.few[attempt]()
		return
	}
	r.more[attempt-len(r.few)]()
}

// wait starts the first call, then a hedge each Delay, and takes results until one wins, every call
// has returned or ctx is done.
func (r *round[T]) wait(ctx context.Context, clk clock.Clock, p Policy, limit int, j judge[T], start func(), results <-chan outcome[T]) {
	start()
	var timer clock.Timer
	var tick <-chan time.Time
	arm := func() {
		if r.started < limit {
			timer = clk.NewTimer(p.Delay)
			tick = timer.C()
		} else {
			timer, tick = nil, nil
		}
	}
	arm()
	for r.inflight > 0 && !r.won && !r.ctxDone {
		select {
		case <-tick:
			switch {
			case ctx.Err() != nil:
				r.ctxDone = true
				timer, tick = nil, nil
			case p.MayHedge != nil && !p.MayHedge():
				timer, tick = nil, nil
			default:
				start()
				arm()
			}
		case o := <-results:
			r.inflight--
			r.take(ctx, j, o)
		case <-ctx.Done():
			r.ctxDone = true
		}
	}
	if timer != nil {
		timer.Stop()
	}
}

// drop releases a result Do will not return and cancels its call.
func (r *round[T]) drop(j judge[T], o outcome[T]) {
	if o.err == nil && j.discard != nil {
		j.discard(o.v)
	}
	r.cancel(o.attempt)
}

// take judges one result: it wins, replaces the bad result picked so far, or is dropped.
func (r *round[T]) take(ctx context.Context, j judge[T], o outcome[T]) {
	switch {
	case ctx.Err() != nil:
		// A result that arrives once ctx is done never wins, so the outcome does not depend on
		// which of the two select saw first.
		r.drop(j, o)
		r.ctxDone = true
	case j.good(o.v, o.err):
		if r.have {
			r.drop(j, r.picked)
		}
		r.picked, r.have, r.won = o, true, true
	case !r.have || better(o, r.picked):
		if r.have {
			r.drop(j, r.picked)
		}
		r.picked, r.have = o, true
	default:
		r.drop(j, o)
	}
}

// settle drops the pick when ctx is done, then cancels the losers and waits for them, so that no
// call outlives Do.
func (r *round[T]) settle(ctx context.Context, j judge[T], results <-chan outcome[T]) {
	if !r.won && ctx.Err() != nil {
		r.ctxDone = true
	}
	if r.ctxDone && r.have {
		r.drop(j, r.picked)
		r.have = false
	}
	for i := range r.started {
		if !r.have || i != r.picked.attempt {
			r.cancel(i)
		}
	}
	for ; r.inflight > 0; r.inflight-- {
		r.drop(j, <-results)
	}
}

// better reports whether bad result a is preferred to bad result b: a response (nil error) beats an
// error, then the later attempt wins.
func better[T any](a, b outcome[T]) bool {
	if (a.err == nil) != (b.err == nil) {
		return a.err == nil
	}
	return a.attempt > b.attempt
}
