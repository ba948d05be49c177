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
	"strings"
	"testing"
	"time"
)

const t0 = int64(1_800_000_000_000_000) // µs on the store's clock, about 2027

func TestTake(t *testing.T) {
	r100 := Rate{Requests: 100, PeriodMicros: 1_000_000, Burst: 10} // one token per 10ms
	empty := State{Micros: t0 + 100_000}                            // ten tokens owed: 100ms ahead
	for _, tc := range []struct {
		name           string
		s              State
		now            int64
		r              Rate
		want, giveBack int64
		grant          Grant
		next           State
		full           bool
	}{
		{"full bucket grants the burst", State{}, t0, r100, 10, 0, Grant{Granted: 10}, empty, false},
		{"partial grant", State{}, t0, r100, 25, 0, Grant{Granted: 10}, empty, false},
		{"empty refuses until one token is back", empty, t0, r100, 1, 0,
			Grant{RetryAfter: 10 * time.Millisecond}, empty, false},
		{"one token back after 10ms", empty, t0 + 10_000, r100, 5, 0, Grant{Granted: 1},
			State{Micros: t0 + 110_000}, false},
		{"nothing asked leaves the state", State{Micros: t0 + 30_000}, t0, r100, 0, 0,
			Grant{Remaining: 7}, State{Micros: t0 + 30_000}, false},
		{"give back", empty, t0, r100, 0, 3, Grant{Remaining: 3}, State{Micros: t0 + 70_000}, false},
		{"give back and take in one call", empty, t0, r100, 2, 3, Grant{Granted: 2, Remaining: 1},
			State{Micros: t0 + 90_000}, false},
		{"give back cannot overfill", State{Micros: t0 + 20_000}, t0, r100, 0, 50, Grant{Remaining: 10},
			State{Micros: t0}, true},
		{"past arrival time is a full bucket", State{Micros: t0 - 5_000_000}, t0, r100, 0, 0,
			Grant{Remaining: 10}, State{Micros: t0}, true},
		{"negative asks are nothing", State{}, t0, r100, -1, -1, Grant{Remaining: 10}, State{Micros: t0}, true},
		{"a smaller burst than the state owes refuses", State{Micros: t0 + 100_000}, t0,
			Rate{Requests: 100, PeriodMicros: 1_000_000, Burst: 5}, 1, 0,
			Grant{RetryAfter: 60 * time.Millisecond}, State{Micros: t0 + 100_000}, false},
		{"a third of a microsecond is kept exactly", State{}, t0, Rate{Requests: 3, PeriodMicros: 1_000_000, Burst: 1}, 1, 0,
			Grant{Granted: 1}, State{Micros: t0 + 333_333, Frac: 1}, false},
		{"and honoured: not yet at 333333µs", State{Micros: t0 + 333_333, Frac: 1}, t0 + 333_333,
			Rate{Requests: 3, PeriodMicros: 1_000_000, Burst: 1}, 1, 0, Grant{RetryAfter: time.Microsecond},
			State{Micros: t0 + 333_333, Frac: 1}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			next, grant, full := Take(tc.s, tc.now, tc.r, tc.want, tc.giveBack)
			if grant != tc.grant || next != tc.next || full != tc.full {
				t.Errorf("Take = %+v %+v full=%v, want %+v %+v full=%v", next, grant, full, tc.next, tc.grant, tc.full)
			}
		})
	}
}

// TestTakeNoDrift takes an empty bucket's refill once per period for a long time: with 3 tokens per
// second (an emission interval of 333333.3µs) exactly 3 come back every second, never 2 or 4.
func TestTakeNoDrift(t *testing.T) {
	r := Rate{Requests: 3, PeriodMicros: 1_000_000, Burst: 3}
	s, g, _ := Take(State{}, t0, r, 3, 0)
	if g.Granted != 3 {
		t.Fatalf("first take: %+v", g)
	}
	for k := int64(1); k <= 100_000; k++ {
		now := t0 + k*1_000_000
		if _, g, _ := Take(s, now-1, r, 3, 0); g.Granted != 2 {
			t.Fatalf("second %d, a microsecond early: granted %d, want 2", k, g.Granted)
		}
		s, g, _ = Take(s, now, r, 4, 0)
		if g.Granted != 3 || g.Remaining != 0 {
			t.Fatalf("second %d: %+v, want exactly 3", k, g)
		}
	}
}

func TestStateTTL(t *testing.T) {
	for _, tc := range []struct {
		s    State
		want time.Duration
	}{
		{State{Micros: t0 - 1}, 0},
		{State{Micros: t0}, 0},
		{State{Micros: t0, Frac: 2}, time.Microsecond},
		{State{Micros: t0 + 100_000}, 100_001 * time.Microsecond},
	} {
		if got := tc.s.TTL(t0); got != tc.want {
			t.Errorf("%+v.TTL = %v, want %v", tc.s, got, tc.want)
		}
	}
}

func TestRateValidate(t *testing.T) {
	for _, tc := range []struct {
		r   Rate
		err string
	}{
		{Rate{Requests: 100, PeriodMicros: 1_000_000, Burst: 10}, ""},
		{Rate{Requests: 0, PeriodMicros: 1, Burst: 1}, "requests 0"},
		{Rate{Requests: 1, PeriodMicros: 0, Burst: 1}, "at least one microsecond"},
		{Rate{Requests: 1, PeriodMicros: 1, Burst: 0}, "burst 0"},
		{Rate{Requests: 1, PeriodMicros: 3_600_000_000, Burst: 2_000_000}, "2^52"},
		{Rate{Requests: 1 << 40, PeriodMicros: 1, Burst: 1 << 13}, "2^52"},
	} {
		err := tc.r.Validate()
		if (err == nil) != (tc.err == "") || (err != nil && !strings.Contains(err.Error(), tc.err)) {
			t.Errorf("%+v: %v, want %q", tc.r, err, tc.err)
		}
	}
	if r, err := RateOf(100, time.Minute, 20); err != nil || r != (Rate{100, 60_000_000, 20}) {
		t.Errorf("RateOf = %+v %v", r, err)
	}
}
