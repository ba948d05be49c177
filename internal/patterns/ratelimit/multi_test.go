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

package ratelimit

import (
	"testing"
	"time"
)

func TestTakeAll(t *testing.T) {
	t.Parallel()
	ms := time.Millisecond
	key := []byte("10.0.0.1")
	tests := []struct {
		desc string
		// order lists the limits in refs order: "a" (1/s burst 5), "b" (1/s burst 2), "k" (keyed,
		// 1/s burst 3).
		order       string
		takes       int // TakeAll calls at t0 before the one checked
		wantOK      bool
		wantRefused int
		wantRetry   time.Duration
		wantTokens  map[byte]float64 // after the checked call
	}{
		{desc: "all pass", order: "abk", takes: 0, wantOK: true, wantRefused: -1,
			wantTokens: map[byte]float64{'a': 4, 'b': 1, 'k': 2}},
		{desc: "b refuses after a took: a gets it back", order: "abk", takes: 2, wantRefused: 1, wantRetry: time.Second,
			wantTokens: map[byte]float64{'a': 3, 'b': 0, 'k': 1}},
		{desc: "b refuses first: nothing is visited", order: "bak", takes: 2, wantRefused: 0, wantRetry: time.Second,
			wantTokens: map[byte]float64{'a': 3, 'b': 0, 'k': 1}},
		{desc: "b refuses last: a and the keyed bucket get theirs back", order: "akb", takes: 2, wantRefused: 2, wantRetry: time.Second,
			wantTokens: map[byte]float64{'a': 3, 'b': 0, 'k': 1}},
		{desc: "keyed refuses in the middle", order: "akb", takes: 3, wantRefused: 1, wantRetry: time.Second,
			wantTokens: map[byte]float64{'a': 2, 'b': 0, 'k': 0}},
		{desc: "no limits", order: "", wantOK: true, wantRefused: -1},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			a := mustBucket(t, Limit{1, time.Second, 5})
			b := mustBucket(t, Limit{1, time.Second, 2})
			k, err := NewKeyed(Limit{1, time.Second, 3}, 10)
			if err != nil {
				t.Fatal(err)
			}
			// "takes" earlier TakeAll calls may themselves be refused (b runs out after 2).
			refs := make([]Ref, 0, 3)
			for _, c := range []byte(tc.order) {
				switch c {
				case 'a':
					refs = append(refs, Ref{Bucket: a})
				case 'b':
					refs = append(refs, Ref{Bucket: b})
				case 'k':
					refs = append(refs, Ref{Keyed: k, Key: key})
				}
			}
			// The first takes all succeed only while b has tokens; "keyed refuses" needs b to be
			// out of the way, so it takes from a and k alone.
			for i := range tc.takes {
				pre := refs
				if i >= 2 {
					pre = []Ref{{Bucket: a}, {Keyed: k, Key: key}}
				}
				if out := TakeAll(t0, pre, 1, nil); !out.OK {
					t.Fatalf("setup take %d refused by %d", i, out.Refused)
				}
			}
			out := make([]Reservation, len(refs))
			got := TakeAll(t0.Add(0*ms), refs, 1, out)
			if got.OK != tc.wantOK || got.Refused != tc.wantRefused || got.RetryAfter != tc.wantRetry || got.Wait != 0 {
				t.Fatalf("TakeAll = %+v, want OK %v Refused %d RetryAfter %v", got, tc.wantOK, tc.wantRefused, tc.wantRetry)
			}
			for i := range out {
				named := got.OK || i <= got.Refused
				if named != (out[i].Bucket() != nil) {
					t.Errorf("out[%d] names bucket %p after %+v", i, out[i].Bucket(), got)
				}
			}
			kb, _ := k.lookup(key)
			if !got.OK {
				// What is left in out holds nothing: cancelling it changes no bucket.
				before := [3]float64{a.Tokens(t0), b.Tokens(t0), kb.Tokens(t0)}
				CancelAll(t0, out)
				if after := [3]float64{a.Tokens(t0), b.Tokens(t0), kb.Tokens(t0)}; after != before {
					t.Errorf("cancelling a refused outcome changed the buckets: %v -> %v", before, after)
				}
			}
			for c, want := range tc.wantTokens {
				var tok float64
				switch c {
				case 'a':
					tok = a.Tokens(t0)
				case 'b':
					tok = b.Tokens(t0)
				case 'k':
					tok = kb.Tokens(t0)
				}
				if tok != want {
					t.Errorf("limit %c holds %v tokens, want %v", c, tok, want)
				}
			}
		})
	}
}

// TestReserveAll: in Delay mode every limit counts the request when it actually goes, the largest
// wait; and a limit that cannot admit within maxWait makes the whole request refused with nothing
// held anywhere.
func TestReserveAll(t *testing.T) {
	t.Parallel()
	ms := time.Millisecond
	fast := Limit{10, time.Second, 1} // a token per 100ms
	slow := Limit{5, time.Second, 1}  // a token per 200ms
	type step struct {
		maxWait   time.Duration
		wantOK    bool
		wantWait  time.Duration
		wantRetry time.Duration
		// NextToken of each limit at t0 after the step.
		wantFastNext, wantSlowNext time.Duration
	}
	tests := []struct {
		desc  string
		steps []step
	}{
		{
			desc: "waits are the largest, and counted then by every limit",
			steps: []step{
				{maxWait: time.Second, wantOK: true, wantWait: 0, wantFastNext: 100 * ms, wantSlowNext: 200 * ms},
				// fast alone would go at 100ms, slow at 200ms: both count it at 200ms.
				{maxWait: time.Second, wantOK: true, wantWait: 200 * ms, wantFastNext: 300 * ms, wantSlowNext: 400 * ms},
				{maxWait: time.Second, wantOK: true, wantWait: 400 * ms, wantFastNext: 500 * ms, wantSlowNext: 600 * ms},
				// slow needs 600ms > 500ms: refused, nothing held.
				{maxWait: 500 * ms, wantOK: false, wantRetry: 600 * ms, wantFastNext: 500 * ms, wantSlowNext: 600 * ms},
				{maxWait: 600 * ms, wantOK: true, wantWait: 600 * ms, wantFastNext: 700 * ms, wantSlowNext: 800 * ms},
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			f, s := mustBucket(t, fast), mustBucket(t, slow)
			refs := []Ref{{Bucket: f}, {Bucket: s}}
			for i, st := range tc.steps {
				var out [2]Reservation
				got := ReserveAll(t0, refs, 1, st.maxWait, out[:])
				if got.OK != st.wantOK || got.Wait != st.wantWait || got.RetryAfter != st.wantRetry {
					t.Fatalf("step %d: ReserveAll = %+v, want OK %v Wait %v RetryAfter %v", i, got, st.wantOK, st.wantWait, st.wantRetry)
				}
				if got.OK {
					for j := range out {
						if out[j].Delay() != st.wantWait {
							t.Errorf("step %d: out[%d].Delay = %v, want %v", i, j, out[j].Delay(), st.wantWait)
						}
					}
				}
				if n := f.NextToken(t0); n != st.wantFastNext {
					t.Errorf("step %d: fast NextToken = %v, want %v", i, n, st.wantFastNext)
				}
				if n := s.NextToken(t0); n != st.wantSlowNext {
					t.Errorf("step %d: slow NextToken = %v, want %v", i, n, st.wantSlowNext)
				}
			}
		})
	}
}

// TestCancelAll: a Delay-mode request that leaves the queue gives every limit its tokens back.
func TestCancelAll(t *testing.T) {
	t.Parallel()
	f := mustBucket(t, Limit{10, time.Second, 1})
	s := mustBucket(t, Limit{5, time.Second, 1})
	refs := []Ref{{Bucket: f}, {Bucket: s}}
	TakeAll(t0, refs, 1, nil)
	var out [2]Reservation
	if got := ReserveAll(t0, refs, 1, time.Second, out[:]); !got.OK || got.Wait != 200*time.Millisecond {
		t.Fatalf("ReserveAll = %+v", got)
	}
	CancelAll(t0.Add(50*time.Millisecond), out[:])
	if got := ReserveAll(t0, refs, 1, time.Second, out[:]); !got.OK || got.Wait != 200*time.Millisecond {
		t.Fatalf("after CancelAll, ReserveAll = %+v, want the same 200ms place", got)
	}
}

func TestTakeAllManyRefs(t *testing.T) {
	t.Parallel()
	refs := make([]Ref, 12) // more than fit on the stack
	for i := range refs {
		refs[i].Bucket = mustBucket(t, Limit{1, time.Second, 1 + i%2})
	}
	if got := TakeAll(t0, refs, 1, nil); !got.OK {
		t.Fatalf("first TakeAll = %+v", got)
	}
	if got := TakeAll(t0, refs, 1, nil); got.OK || got.Refused != 0 {
		t.Fatalf("second TakeAll = %+v, want refused by 0", got)
	}
	for i, r := range refs {
		if want := float64(i % 2); r.Bucket.Tokens(t0) != want {
			t.Errorf("refs[%d] holds %v, want %v", i, r.Bucket.Tokens(t0), want)
		}
	}
}
