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

// Package breaker is a circuit breaker: it stops calls to a failing target for a while, then lets
// a few probes through to see whether it has recovered.
//
// States and transitions:
//
//   - Closed: every call is allowed. It opens on the ConsecutiveFailures-th failure in a row (a
//     success resets the count), or, with FailureRatio, when after any call at least
//     MinimumRequests calls are in the window and at least Percent of them failed.
//   - Open: every call is refused until the open duration has passed; the first Allow or State at
//     or after that moment makes it half-open. The open duration is OpenDuration, doubled for each
//     further trip in a row (half-open back to open) up to MaxOpenDuration when that is set; closing
//     resets the streak.
//   - HalfOpen: at most HalfOpenMaxRequests probes are in flight at once; more are refused. A probe
//     failure reopens it; SuccessThreshold probe successes close it.
//
// Use is two-step: Allow returns a Permit, and the caller reports the call's end exactly once with
// Permit.Success, Permit.Failure or Permit.Cancel. A success slower than SlowCallDuration counts as
// a failure; a cancelled call counts as neither and frees its half-open slot. Each state has its
// own generation (era): a permit reports only into the era that issued it, so a late result from
// an earlier state never counts in the current one.
//
// The closed state is lock-free: Allow is one atomic load and allocates nothing, and in
// consecutive mode a success that changes nothing writes nothing. Transitions take a mutex.
package breaker

import (
	"errors"
	"fmt"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"resilience.dev/operator/internal/patterns/window"
)

// State is a breaker's state.
type State int32

// The states; their String forms are the contract's status values.
const (
	Closed State = iota
	Open
	HalfOpen
)

func (s State) String() string {
	switch s {
	case Closed:
		return "Closed"
	case Open:
		return "Open"
	case HalfOpen:
		return "HalfOpen"
	}
	return fmt.Sprintf("State(%d)", int32(s))
}

// FailureRatio trips the breaker on the share of failed calls in a sliding window.
//
// The window is a ring of Buckets buckets of width Window/Buckets, aligned to the moment the
// breaker closed; it holds the bucket containing now and the Buckets-1 before it, so it spans
// between Window*(Buckets-1)/Buckets and Window.
type FailureRatio struct {
	Percent         int           // 1..100: open when at least this share of calls failed
	MinimumRequests int           // >= 1: calls needed in the window before it can open
	Window          time.Duration // > 0
	Buckets         int           // 1..1000; 0 means 10
}

// Config describes a breaker. Set exactly one of ConsecutiveFailures and FailureRatio.
type Config struct {
	ConsecutiveFailures int           // > 0: open on this many failures in a row
	FailureRatio        *FailureRatio // or open on a failure ratio
	OpenDuration        time.Duration // > 0
	MaxOpenDuration     time.Duration // 0, or >= OpenDuration: trips in a row double the open duration up to this
	HalfOpenMaxRequests int           // probes in flight at once while half-open; 0 means 1
	SuccessThreshold    int           // probe successes that close it; 0 means 1
	SlowCallDuration    time.Duration // > 0: a success slower than this counts as a failure; 0: off

	// OnStateChange, if set, is called once per transition, in transition order, never with the
	// breaker's lock held (it may call the breaker). Calls are serialised; one may run on the
	// goroutine of a later transition. It should return quickly: it delays that caller.
	OnStateChange func(Transition)
}

// Transition describes a change of state.
type Transition struct {
	From, To  State
	At        time.Time // the now of the call that caused it
	OpenUntil time.Time // when To is Open: when it may become half-open
	Cause     string    // human-readable, e.g. "5 consecutive failures"
}

// Breaker is a circuit breaker. Create it with New; it is safe for concurrent use.
type Breaker struct {
	consecutive   int64
	ratio         *FailureRatio
	width         time.Duration // ratio bucket width
	openDuration  time.Duration
	maxOpen       time.Duration
	maxProbes     int32
	successes     int32
	slow          time.Duration
	onStateChange func(Transition)

	cur atomic.Pointer[era]

	mu        sync.Mutex // guards the fields below and every change of cur
	streak    int        // trips since the breaker last closed
	pending   []Transition
	notifying bool
}

// era is one stretch of one state. Its fixed fields never change; permits issued in it report
// into it, and once replaced it is garbage that no one reads.
type era struct {
	b         *Breaker
	state     State
	start     time.Time
	openUntil time.Time // Open

	consec        atomic.Int64 // Closed, consecutive mode
	total, failed window.Ring  // Closed, ratio mode
	inflight, oks atomic.Int32 // HalfOpen: probes in flight, probe successes
}

// New validates cfg and returns a closed breaker; now starts its first closed era.
func New(cfg Config, now time.Time) (*Breaker, error) {
	if cfg.FailureRatio != nil { // a copy: validate fills in defaults, and later changes must not reach us
		r := *cfg.FailureRatio
		cfg.FailureRatio = &r
	}
	if err := validate(&cfg); err != nil {
		return nil, fmt.Errorf("circuit breaker: %w", err)
	}
	b := &Breaker{
		consecutive:   int64(cfg.ConsecutiveFailures),
		ratio:         cfg.FailureRatio,
		openDuration:  cfg.OpenDuration,
		maxOpen:       cfg.MaxOpenDuration,
		maxProbes:     int32(cfg.HalfOpenMaxRequests),
		successes:     int32(cfg.SuccessThreshold),
		slow:          cfg.SlowCallDuration,
		onStateChange: cfg.OnStateChange,
	}
	if r := cfg.FailureRatio; r != nil {
		b.width = r.Window / time.Duration(r.Buckets)
	}
	b.cur.Store(b.newEra(Closed, now))
	return b, nil
}

const maxBuckets = 1000

// validate checks cfg and fills in the defaults of zero fields.
func validate(cfg *Config) error {
	hasCount, hasRatio := cfg.ConsecutiveFailures != 0, cfg.FailureRatio != nil
	switch {
	case hasCount == hasRatio:
		return errors.New("set exactly one of consecutiveFailures and failureRatio")
	case cfg.ConsecutiveFailures < 0:
		return fmt.Errorf("consecutiveFailures %d is negative", cfg.ConsecutiveFailures)
	}
	if r := cfg.FailureRatio; r != nil {
		if r.Buckets == 0 {
			r.Buckets = 10
		}
		switch {
		case r.Percent < 1 || r.Percent > 100:
			return fmt.Errorf("failureRatio percent %d is outside 1..100", r.Percent)
		case r.MinimumRequests < 1 || int64(r.MinimumRequests) > math.MaxUint32:
			return fmt.Errorf("failureRatio minimumRequests %d is outside 1..%d", r.MinimumRequests, uint32(math.MaxUint32))
		case r.Buckets < 1 || r.Buckets > maxBuckets:
			return fmt.Errorf("failureRatio buckets %d is outside 1..%d", r.Buckets, maxBuckets)
		case r.Window < time.Duration(r.Buckets):
			return fmt.Errorf("failureRatio window %v must be at least %d ns (one per bucket)", r.Window, r.Buckets)
		}
	}
	if cfg.HalfOpenMaxRequests == 0 {
		cfg.HalfOpenMaxRequests = 1
	}
	if cfg.SuccessThreshold == 0 {
		cfg.SuccessThreshold = 1
	}
	switch {
	case cfg.OpenDuration <= 0:
		return fmt.Errorf("openDuration %v is not positive", cfg.OpenDuration)
	case cfg.MaxOpenDuration != 0 && cfg.MaxOpenDuration < cfg.OpenDuration:
		return fmt.Errorf("maxOpenDuration %v is less than openDuration %v", cfg.MaxOpenDuration, cfg.OpenDuration)
	case cfg.HalfOpenMaxRequests < 0 || cfg.HalfOpenMaxRequests > math.MaxInt32:
		return fmt.Errorf("halfOpen maxRequests %d is outside 1..%d", cfg.HalfOpenMaxRequests, math.MaxInt32)
	case cfg.SuccessThreshold < 0 || cfg.SuccessThreshold > math.MaxInt32:
		return fmt.Errorf("halfOpen successThreshold %d is outside 1..%d", cfg.SuccessThreshold, math.MaxInt32)
	case cfg.SlowCallDuration < 0:
		return fmt.Errorf("slowCallDuration %v is negative", cfg.SlowCallDuration)
	}
	return nil
}

func (b *Breaker) newEra(s State, now time.Time) *era {
	e := &era{b: b, state: s, start: now}
	if s == Closed && b.ratio != nil {
		e.total = window.New(b.ratio.Buckets)
		e.failed = window.New(b.ratio.Buckets)
	}
	return e
}

// Allow reports whether a call may start at now. When ok, the caller must end the returned permit
// exactly once. When not, wait is how long the breaker stays open (for Retry-After), or 0 when it
// is half-open with every probe slot taken. Allow allocates only when it makes a transition.
func (b *Breaker) Allow(now time.Time) (p Permit, wait time.Duration, ok bool) {
	for {
		e := b.cur.Load()
		switch e.state {
		case Closed:
			return Permit{e: e, start: now}, 0, true
		case Open:
			if now.Before(e.openUntil) {
				return Permit{}, e.openUntil.Sub(now), false
			}
			b.move(e, HalfOpen, now, "open duration elapsed")
			// and look again: half-open now, unless another caller moved it on meanwhile
		default:
			for {
				n := e.inflight.Load()
				if n >= b.maxProbes {
					return Permit{}, 0, false
				}
				if e.inflight.CompareAndSwap(n, n+1) {
					return Permit{e: e, start: now}, 0, true
				}
			}
		}
	}
}

// State returns the state at now, first making an open breaker whose open duration has passed
// half-open (which reports a transition) as Allow would.
func (b *Breaker) State(now time.Time) State {
	e := b.cur.Load()
	if e.state == Open && !now.Before(e.openUntil) {
		b.move(e, HalfOpen, now, "open duration elapsed")
		e = b.cur.Load()
	}
	return e.state
}

// Permit is the right to make one call, from Allow. End it exactly once with Success, Failure or
// Cancel; the zero Permit (from a refused Allow) ignores them. It is a small value: copy it freely.
type Permit struct {
	e     *era
	start time.Time
}

// Success reports that the call succeeded at now; if it took longer than SlowCallDuration it
// counts as a failure instead.
func (p Permit) Success(now time.Time) {
	failed := p.e != nil && p.e.b.slow > 0 && now.Sub(p.start) > p.e.b.slow
	p.end(now, failed, failed)
}

// Failure reports that the call failed at now.
func (p Permit) Failure(now time.Time) { p.end(now, true, false) }

// Cancel reports that the call was abandoned by the caller (a lost hedge, a deadline, a client
// gone): it counts as neither success nor failure and frees its half-open slot.
func (p Permit) Cancel() {
	if e := p.e; e != nil && e.state == HalfOpen {
		e.inflight.Add(-1)
	}
}

func (p Permit) end(now time.Time, failed, slow bool) {
	e := p.e
	if e == nil {
		return
	}
	b := e.b
	switch e.state {
	case Closed:
		if b.consecutive > 0 {
			if !failed {
				if e.consec.Load() != 0 { // writing only on change keeps successes contention-free
					e.consec.Store(0)
				}
				return
			}
			if e.consec.Add(1) >= b.consecutive && b.cur.Load() == e {
				b.move(e, Open, now, fmt.Sprintf("%d consecutive failures", b.consecutive))
			}
			return
		}
		epoch := window.Epoch(e.start, now, b.width)
		e.total.Add(epoch)
		if failed {
			e.failed.Add(epoch)
		}
		f := e.failed.Sum(epoch)
		if f == 0 {
			return
		}
		if t := e.total.Sum(epoch); t >= uint64(b.ratio.MinimumRequests) && f*100 >= t*uint64(b.ratio.Percent) && b.cur.Load() == e {
			b.move(e, Open, now, fmt.Sprintf("%d of %d calls failed in the last %v (threshold %d%%)", f, t, b.ratio.Window, b.ratio.Percent))
		}
	case HalfOpen:
		if failed {
			cause := "probe failed"
			if slow {
				cause = fmt.Sprintf("probe slower than %v", b.slow)
			}
			b.move(e, Open, now, cause)
			return
		}
		e.inflight.Add(-1)
		if e.oks.Add(1) >= b.successes {
			cause := "the probe succeeded"
			if b.successes > 1 {
				cause = fmt.Sprintf("%d probes succeeded in a row", b.successes)
			}
			b.move(e, Closed, now, cause)
		}
	}
}

// move replaces era from by a new era in state to, unless from is no longer current (another
// caller moved first), and reports the transition.
func (b *Breaker) move(from *era, to State, now time.Time, cause string) {
	b.mu.Lock()
	if b.cur.Load() != from {
		b.mu.Unlock()
		return
	}
	next := b.newEra(to, now)
	switch to {
	case Open:
		b.streak++
		d := b.openFor(b.streak)
		next.openUntil = now.Add(d)
		cause += fmt.Sprintf("; open for %v", d)
	case Closed:
		b.streak = 0
	}
	b.cur.Store(next)
	if b.onStateChange == nil {
		b.mu.Unlock()
		return
	}
	b.pending = append(b.pending, Transition{From: from.state, To: to, At: now, OpenUntil: next.openUntil, Cause: cause})
	if b.notifying { // the goroutine delivering callbacks will deliver this one too, in order
		b.mu.Unlock()
		return
	}
	b.notifying = true
	for len(b.pending) > 0 {
		batch := b.pending
		b.pending = nil
		b.mu.Unlock()
		for _, t := range batch {
			b.onStateChange(t)
		}
		b.mu.Lock()
	}
	b.notifying = false
	b.mu.Unlock()
}

// openFor returns the open duration of the streak-th trip in a row: OpenDuration doubled for each
// trip after the first, up to MaxOpenDuration (no doubling when that is 0).
func (b *Breaker) openFor(streak int) time.Duration {
	d := b.openDuration
	if b.maxOpen == 0 {
		return d
	}
	for i := 1; i < streak && d < b.maxOpen; i++ {
		if d > b.maxOpen/2 {
			return b.maxOpen
		}
		d *= 2
	}
	return min(d, b.maxOpen)
}
