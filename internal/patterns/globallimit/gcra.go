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

// Package globallimit enforces a rate limit for the whole cluster from a shared store: the bucket
// lives in the store as GCRA state (the theoretical arrival time of the next token), and each gateway
// replica takes tokens from it in batches that it spends locally, so that the store is not asked on
// every request (contract, section 7).
//
// Exactness is by construction: a replica only spends tokens the store granted it, the store grants
// them atomically under the same arithmetic as a local token bucket, and tokens a replica holds too
// long go back to the store (or lapse), so from a full bucket no more than burst + rate*T can pass in
// T, however the traffic spreads over the replicas.
package globallimit

import (
	"errors"
	"fmt"
	"time"
)

// maxExact bounds the products the arithmetic forms (burst*period, burst*requests) so that they stay
// exact in a float64, which is what the store's Lua numbers are: the Go and Lua sides compute the same.
const maxExact = 1 << 52

// Rate is a token bucket in the store's units: Requests tokens per PeriodMicros microseconds, at most
// Burst in the bucket.
type Rate struct {
	Requests     int64
	PeriodMicros int64
	Burst        int64
}

// RateOf converts a limit as users write it; the period is rounded down to whole microseconds.
func RateOf(requests int64, period time.Duration, burst int64) (Rate, error) {
	r := Rate{Requests: requests, PeriodMicros: period.Microseconds(), Burst: burst}
	return r, r.Validate()
}

// Validate reports whether the rate's arithmetic is exact on both sides.
func (r Rate) Validate() error {
	switch {
	case r.Requests < 1:
		return fmt.Errorf("requests %d: must be at least 1", r.Requests)
	case r.PeriodMicros < 1:
		return fmt.Errorf("period %dµs: must be at least one microsecond", r.PeriodMicros)
	case r.Burst < 1:
		return fmt.Errorf("burst %d: must be at least 1", r.Burst)
	case r.Burst > maxExact/r.PeriodMicros || r.Burst > maxExact/r.Requests:
		return fmt.Errorf("burst %d at %d per %dµs: too large for a Global limit (burst*period and burst*requests must stay under 2^52)",
			r.Burst, r.Requests, r.PeriodMicros)
	}
	return nil
}

// State is a bucket's GCRA state: the theoretical arrival time of the next token, Micros + Frac/Requests
// microseconds on the store's clock (0 <= Frac < Requests). A time at or before now means a full bucket.
// Keeping the fraction as an integer makes the emission interval Period/Requests exact, with no drift.
type State struct {
	Micros int64
	Frac   int64
}

// Grant is the store's answer to one call.
type Grant struct {
	// Granted is how many tokens the caller may spend, at most what it asked for.
	Granted int64
	// Remaining is how many tokens the bucket holds after the grant.
	Remaining int64
	// RetryAfter, when nothing was granted, is the time until one token is in the bucket.
	RetryAfter time.Duration
}

// ErrCorruptState is returned when a bucket's stored state cannot be read.
var ErrCorruptState = errors.New("corrupt bucket state")

// Take is the store's atomic step, here in Go for the in-memory store and as the specification of the
// script (internal/globalstore runs the same steps in Lua): give back giveBack tokens the caller did not
// spend, then take up to want. It returns the new state and whether the bucket is now full (the key
// can go). now is in microseconds on the store's clock.
func Take(s State, now int64, r Rate, want, giveBack int64) (State, Grant, bool) {
	// owed is how far the arrival time runs ahead of now, in units of 1/Requests µs; 0 is full.
	owed := int64(0)
	if s.Micros > now || (s.Micros == now && s.Frac > 0) {
		owed = (s.Micros-now)*r.Requests + s.Frac
	}
	owed = max(owed-min(max(giveBack, 0), r.Burst)*r.PeriodMicros, 0)
	capacity := r.Burst * r.PeriodMicros
	avail := max((capacity-owed)/r.PeriodMicros, 0)
	g := min(max(want, 0), avail)
	owed += g * r.PeriodMicros
	grant := Grant{Granted: g, Remaining: avail - g}
	if g == 0 && want > 0 {
		// One token is back when owed <= capacity - PeriodMicros.
		units := owed - (capacity - r.PeriodMicros)
		grant.RetryAfter = time.Duration(ceilDiv(units, r.Requests)) * time.Microsecond
	}
	return State{Micros: now + owed/r.Requests, Frac: owed % r.Requests}, grant, owed == 0
}

// TTL is how long the state matters: after it the bucket is full and the key can expire.
func (s State) TTL(now int64) time.Duration {
	if s.Micros < now || (s.Micros == now && s.Frac == 0) {
		return 0
	}
	return time.Duration(s.Micros-now+1) * time.Microsecond
}

func ceilDiv(a, b int64) int64 {
	if a <= 0 {
		return 0
	}
	return (a + b - 1) / b
}
