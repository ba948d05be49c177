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

import "time"

// Ref names one limit a request must pass: an unkeyed Bucket, or a Keyed limiter with the key the
// request maps to. A Ref with neither names no limit and always passes.
type Ref struct {
	Bucket *Bucket
	Keyed  *Keyed
	Key    []byte
}

func (ref *Ref) reserve(eNow, eAt int64, n int, maxWait int64) (Reservation, bool) {
	switch {
	case ref.Keyed != nil:
		return ref.Keyed.reserve(eNow, eAt, ref.Key, n, maxWait)
	case ref.Bucket != nil:
		return ref.Bucket.reserve(eNow, eAt, n, maxWait)
	}
	return Reservation{}, true
}

// Outcome is the result of TakeAll or ReserveAll.
type Outcome struct {
	// OK reports that every limit admitted the request.
	OK bool
	// Refused is the index in refs of the limit that refused it, or -1 when OK. (In Delay mode it
	// can also name a limit whose wait kept growing under concurrent takes: ReserveAll gives up
	// after 4 rounds rather than chase it.)
	Refused int
	// Wait, when OK, is how long the request must wait before it goes on: zero for TakeAll, the
	// largest wait of any limit for ReserveAll.
	Wait time.Duration
	// RetryAfter, when refused, is how long until the refusing limit, and those before it in refs,
	// would all admit the request at once: the basis of Retry-After (the gateway rounds it up to
	// whole seconds, at least 1).
	RetryAfter time.Duration
}

// maxRounds bounds how often ReserveAll re-reserves because a concurrent take moved a limit's wait.
const maxRounds = 4

// TakeAll takes n tokens from every limit in refs at now, or from none: when one refuses, the
// tokens already taken from the others are given back before it returns, so a refused request
// spends nothing. It is ReserveAll with no wait allowed; see it for out.
func TakeAll(now time.Time, refs []Ref, n int, out []Reservation) Outcome {
	return ReserveAll(now, refs, n, 0, out)
}

// ReserveAll is TakeAll for the Delay mode: it reserves n tokens from every limit in refs if all of
// them can admit the request within maxWait, and the request then waits the largest of their waits
// (Outcome.Wait). Every limit counts the request at the moment it actually goes (now+Wait), not at
// its own earlier time, so no limit sees more than its rate at the upstream. All or nothing: when
// one limit refuses, nothing stays reserved anywhere.
//
// out, when at least len(refs) long, receives the reservations, out[i] for refs[i]: on success
// they hold the tokens (for CancelAll if the request then does not go on) and name the buckets
// (for the headers: Bucket().Tokens and NextToken); on refusal out[j] for j <= Refused names the
// bucket of refs[j] but holds nothing, and the rest are zero. With a shorter out nothing is
// reported, and up to 8 refs cost no allocation. It is safe for concurrent use; a refund never
// lifts a bucket above its Burst.
//
// The tokens taken before a refusal are given back as of now (see Reservation.Cancel). Callers
// should pass a fresh reading of the clock: if another caller passes a time later than this one's
// by more than one token's worth, and finds the bucket full meanwhile, the refund can return a
// token that time had already refilled (one token per such race, never above Burst).
func ReserveAll(now time.Time, refs []Ref, n int, maxWait time.Duration, out []Reservation) Outcome {
	e, mw := elapsed(now), clampWait(maxWait)
	switch {
	case len(out) >= len(refs):
		return reserveAll(e, refs, n, mw, out[:len(refs)])
	case len(refs) <= 8:
		var local [8]Reservation
		return reserveAll(e, refs, n, mw, local[:len(refs)])
	}
	return reserveAll(e, refs, n, mw, make([]Reservation, len(refs)))
}

func reserveAll(e int64, refs []Ref, n int, mw int64, out []Reservation) Outcome {
	var w int64 // the common wait all limits are reserved at
	raiser := 0
	for round := 1; ; round++ {
		need := w
		for i := range refs {
			r, ok := refs[i].reserve(e, e+w, n, mw)
			if !ok {
				clear(out[i:])
				out[i] = Reservation{b: r.b}
				return refuse(e, n, i, out[:i+1])
			}
			out[i] = r
			if int64(r.wait) > need {
				need, raiser = int64(r.wait), i
			}
		}
		if need == w {
			return Outcome{OK: true, Refused: -1, Wait: time.Duration(w)}
		}
		// Some limit needs a longer wait: those reserved earlier must count the request then too.
		for i := range out {
			out[i].cancel(e)
		}
		if round == maxRounds {
			return Outcome{Refused: raiser, RetryAfter: time.Duration(need)}
		}
		w = need
	}
}

// refuse gives back the reservations held in out, leaving in their place empty ones that name
// their buckets, and reports index i as refusing.
func refuse(e int64, n, i int, out []Reservation) Outcome {
	var after int64
	for j := range out {
		b := out[j].b
		out[j].cancel(e)
		if b != nil {
			out[j].b = b
			after = max(after, b.until(e, n))
		}
	}
	return Outcome{Refused: i, RetryAfter: time.Duration(after)}
}

// CancelAll cancels every reservation in rs (see Reservation.Cancel).
func CancelAll(now time.Time, rs []Reservation) {
	e := elapsed(now)
	for i := range rs {
		rs[i].cancel(e)
	}
}
