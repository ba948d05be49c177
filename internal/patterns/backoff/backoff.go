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

// Package backoff computes the delays between the tries of a request: a growth strategy (Fixed,
// Linear, Exponential) capped at a maximum, spread by jitter (None, Full, Equal, Decorrelated).
//
// A Backoff is immutable and safe for concurrent use. Randomness comes from a Source that the
// caller passes on each call, so there is no shared random state and no lock: pass nil to use
// math/rand/v2's top-level generator (per-thread state in the runtime, lock-free, concurrency-safe),
// or a per-request *rand.Rand, or a fixed source in tests.
package backoff

import (
	"fmt"
	"math"
	"math/rand/v2"
	"time"
)

// Strategy is how the delay grows with the retry number k (1 for the first retry).
type Strategy uint8

const (
	// Exponential waits Base*2^(k-1): Base, 2*Base, 4*Base, ...
	Exponential Strategy = iota + 1
	// Linear waits Base*k: Base, 2*Base, 3*Base, ...
	Linear
	// Fixed waits Base before every retry.
	Fixed
)

var strategyNames = map[Strategy]string{Exponential: "Exponential", Linear: "Linear", Fixed: "Fixed"}

func (s Strategy) String() string {
	if n, ok := strategyNames[s]; ok {
		return n
	}
	return fmt.Sprintf("Strategy(%d)", uint8(s))
}

// ParseStrategy maps the contract's names ("Exponential", "Linear", "Fixed") to a Strategy.
func ParseStrategy(name string) (Strategy, error) {
	for s, n := range strategyNames {
		if n == name {
			return s, nil
		}
	}
	return 0, fmt.Errorf("backoff strategy %q: want Exponential, Linear or Fixed", name)
}

// Jitter is how a strategy's delay d is randomised. Every result is within [0, Max].
type Jitter uint8

const (
	// None waits exactly d.
	None Jitter = iota + 1
	// Full waits uniformly in [0, d].
	Full
	// Equal waits d/2 plus uniformly [0, d/2], so in [d/2, d].
	Equal
	// Decorrelated is AWS's "decorrelated jitter": min(Max, uniform [Base, 3*prev]), where prev is
	// the previous delay (Base before the first retry). It has its own growth and ignores the Strategy.
	Decorrelated
)

var jitterNames = map[Jitter]string{None: "None", Full: "Full", Equal: "Equal", Decorrelated: "Decorrelated"}

func (j Jitter) String() string {
	if n, ok := jitterNames[j]; ok {
		return n
	}
	return fmt.Sprintf("Jitter(%d)", uint8(j))
}

// ParseJitter maps the contract's names ("Full", "Equal", "Decorrelated", "None") to a Jitter.
func ParseJitter(name string) (Jitter, error) {
	for j, n := range jitterNames {
		if n == name {
			return j, nil
		}
	}
	return 0, fmt.Errorf("backoff jitter %q: want Full, Equal, Decorrelated or None", name)
}

// Config describes a backoff. All fields are required.
type Config struct {
	Strategy Strategy
	Jitter   Jitter
	Base     time.Duration // >= 0
	Max      time.Duration // >= Base: no delay exceeds it
}

// Source yields uniform random numbers in [0, 1). *math/rand/v2.Rand implements it. A value out of
// range is clamped into it. A Source is used by one call at a time unless it is itself concurrency-safe.
type Source interface {
	Float64() float64
}

// Backoff computes delays. It is immutable and safe for concurrent use.
type Backoff struct {
	cfg Config
}

// New validates cfg and returns its Backoff.
func New(cfg Config) (*Backoff, error) {
	if _, ok := strategyNames[cfg.Strategy]; !ok {
		return nil, fmt.Errorf("backoff: unknown strategy %v", cfg.Strategy)
	}
	if _, ok := jitterNames[cfg.Jitter]; !ok {
		return nil, fmt.Errorf("backoff: unknown jitter %v", cfg.Jitter)
	}
	if cfg.Base < 0 {
		return nil, fmt.Errorf("backoff: base %v is negative", cfg.Base)
	}
	if cfg.Max < cfg.Base {
		return nil, fmt.Errorf("backoff: max %v is less than base %v", cfg.Max, cfg.Base)
	}
	return &Backoff{cfg: cfg}, nil
}

// Config returns the configuration the Backoff was built from.
func (b *Backoff) Config() Config { return b.cfg }

// Delay returns the wait before retry number attempt (1 for the first retry; values below 1 count
// as 1). prev is the delay returned for the previous retry (ignored unless Jitter is Decorrelated;
// pass 0 for the first retry). src supplies randomness; nil means math/rand/v2's global generator.
// Large attempt numbers saturate at Max without overflow. Delay does not allocate.
func (b *Backoff) Delay(attempt int, prev time.Duration, src Source) time.Duration {
	c := &b.cfg
	switch c.Jitter {
	case None:
		return b.Nominal(attempt)
	case Full:
		d := b.Nominal(attempt)
		return scale(d, draw(src))
	case Equal:
		d := b.Nominal(attempt)
		half := d / 2
		return d - half + scale(half, draw(src))
	default: // Decorrelated
		prev = min(max(prev, c.Base), c.Max)
		lo, hi := float64(c.Base), 3*float64(prev)
		x := lo + draw(src)*(hi-lo)
		top := c.Max // min(Max, 3*prev) without overflow: float64 rounding must not exceed either
		if prev <= c.Max/3 {
			top = 3 * prev
		}
		if x >= float64(top) {
			return top
		}
		return max(time.Duration(x), c.Base) // float64 rounding must not go below Base
	}
}

// Nominal returns the strategy's delay for retry number attempt before jitter: the upper bound of
// Full and Equal jitter, and the exact delay with None.
func (b *Backoff) Nominal(attempt int) time.Duration {
	c := &b.cfg
	k := max(attempt, 1)
	switch c.Strategy {
	case Fixed:
		return c.Base
	case Linear:
		if c.Base == 0 {
			return 0
		}
		if k > int(c.Max/c.Base) { // k*Base > Max, tested without overflowing
			return c.Max
		}
		return c.Base * time.Duration(k)
	default: // Exponential
		shift := k - 1
		if shift >= 63 || c.Base > c.Max>>shift { // Base<<shift > Max, tested without overflowing
			return c.Max
		}
		return c.Base << shift
	}
}

// Sequence yields the delays of one request's retries in order. It is a value: keep one per request;
// it is not safe for concurrent use.
type Sequence struct {
	b       *Backoff
	src     Source
	attempt int
	prev    time.Duration
}

// Start returns the Sequence of delays for a new request, drawing from src (nil: math/rand/v2).
func (b *Backoff) Start(src Source) Sequence { return Sequence{b: b, src: src} }

// Next returns the delay before the next retry.
func (s *Sequence) Next() time.Duration {
	s.attempt++
	s.prev = s.b.Delay(s.attempt, s.prev, s.src)
	return s.prev
}

// draw returns a number in [0, 1) from src, or from math/rand/v2 when src is nil.
func draw(src Source) float64 {
	var u float64
	if src == nil {
		u = rand.Float64()
	} else {
		u = src.Float64()
	}
	if !(u >= 0) { // also catches NaN
		return 0
	}
	return min(u, math.Nextafter(1, 0))
}

// scale returns u*d for u in [0, 1), never above d and never negative, even where float64
// rounding reaches d for large durations.
func scale(d time.Duration, u float64) time.Duration {
	x := u * float64(d)
	if x >= float64(d) {
		return d
	}
	return time.Duration(x)
}
