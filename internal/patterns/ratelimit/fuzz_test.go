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
	"encoding/binary"
	"math"
	"testing"
	"time"
)

// fuzzReader hands out bounded numbers from fuzz input, zero once it runs out.
type fuzzReader struct{ b []byte }

func (r *fuzzReader) next(max uint64) uint64 {
	if len(r.b) < 4 {
		r.b = nil
		return 0
	}
	v := uint64(binary.LittleEndian.Uint32(r.b))
	r.b = r.b[4:]
	return v % (max + 1)
}

func (r *fuzzReader) more() bool { return len(r.b) >= 4 }

// FuzzBucketModel checks the bucket against an independent model, an exact continuous token bucket
// in integer arithmetic (tokens scaled by Period), for limits whose Requests divide Period: every
// AllowN decision, every ReserveN wait and every Tokens reading must match.
func FuzzBucketModel(f *testing.F) {
	f.Add([]byte("\x64\x00\x00\x00\x40\x42\x0f\x00\x0a\x00\x00\x00" + "\x01\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00\x00"))
	f.Add([]byte("\x03\x00\x00\x00\x07\x00\x00\x00\x02\x00\x00\x00" + "\xff\xff\x00\x00\x02\x00\x00\x00\x01\x00\x00\x00\x10\x00\x00\x00"))
	f.Add([]byte("\x01\x00\x00\x00\x00\xca\x9a\x3b\x01\x00\x00\x00" + "\x00\x00\x00\x00\x01\x00\x00\x00\x03\x00\x00\x00\x00\x00\x00\x00"))
	f.Fuzz(func(t *testing.T, data []byte) {
		r := &fuzzReader{b: data}
		req := int64(r.next(999999)) + 1
		per := int64(r.next(999999)) + 1 // nanoseconds per token
		burst := int(r.next(999)) + 1
		l := Limit{Requests: req, Period: time.Duration(req * per), Burst: burst}
		b, err := NewBucket(l)
		if err != nil {
			t.Skip(err)
		}
		P := int64(l.Period)
		model := int64(burst) * P // tokens * Period; may go negative while reservations wait
		e := int64(0)
		for r.more() {
			dt := int64(r.next(1 << 31))
			n := int(r.next(uint64(burst) + 1))
			kind := r.next(3)
			e += dt
			model = min(int64(burst)*P, model+dt*req) // dt*req < 2^31 * 1e6 fits
			now := t0.Add(time.Duration(e))
			if got, want := b.Tokens(now), max(float64(model)/float64(P), 0); math.Abs(got-want) > 1e-9*float64(burst) {
				t.Fatalf("%v at +%d: Tokens = %v, model %v", l, e, got, want)
			}
			switch kind {
			case 0, 1:
				want := n == 0 || n <= burst && model >= int64(n)*P
				if got := b.AllowN(now, n); got != want {
					t.Fatalf("%v at +%d: AllowN(%d) = %v, model %v (tokens %v)", l, e, n, got, want, float64(model)/float64(P))
				}
				if want {
					model -= int64(n) * P
				}
			default:
				maxWait := time.Duration(r.next(uint64(burst) * uint64(per) * 2))
				var wait int64 // the model's: until tokens reach n
				if short := int64(n)*P - model; n > 0 && short > 0 {
					wait = (short + req - 1) / req
				}
				want := n <= burst && wait <= int64(maxWait)
				res, got := b.ReserveN(now, n, maxWait)
				if got != want || (got && int64(res.Delay()) != wait) {
					t.Fatalf("%v at +%d: ReserveN(%d, %v) = %v, %v; model %v, %v", l, e, n, maxWait, res.Delay(), got, time.Duration(wait), want)
				}
				if want {
					model -= int64(n) * P
				}
			}
		}
	})
}

// FuzzBucketBound checks, for any limit and any sequence of requests, that no window of admitted
// requests holds more than burst + rate*window tokens (plus the one tick, under 2 ns, by which a
// rational limit may refill early), and that n > burst is never admitted.
func FuzzBucketBound(f *testing.F) {
	f.Add([]byte("\x03\x00\x00\x00\x00\xca\x9a\x3b\x02\x00\x00\x00" + "\x10\x27\x00\x00\x01\x00\x00\x00"))
	f.Add([]byte("\x07\x00\x00\x00\x00\xca\x9a\x3b\x05\x00\x00\x00" + "\x00\x00\x00\x00\x05\x00\x00\x00\x01\x00\x00\x00\x01\x00\x00\x00"))
	f.Fuzz(func(t *testing.T, data []byte) {
		r := &fuzzReader{b: data}
		req := int64(r.next(1<<20)) + 1
		period := int64(r.next(1<<40)) + req
		burst := int(r.next(99)) + 1
		l := Limit{Requests: req, Period: time.Duration(period), Burst: burst}
		b, err := NewBucket(l)
		if err != nil {
			t.Skip(err)
		}
		type take struct{ at, n int64 }
		var taken []take
		e := int64(0)
		for r.more() && len(taken) < 300 {
			e += int64(r.next(uint64(period) / uint64(req) * 4))
			n := int(r.next(uint64(burst) + 1))
			ok := b.AllowN(t0.Add(time.Duration(e)), n)
			if ok && n > burst {
				t.Fatalf("%v: AllowN(%d) admitted more than the burst", l, n)
			}
			if ok && n > 0 {
				taken = append(taken, take{e, int64(n)})
			}
		}
		for i := range taken {
			sum := int64(0)
			for j := i; j < len(taken); j++ {
				sum += taken[j].n
				// (sum-burst)*period <= req*(window+2), in 128 bits.
				if over := sum - int64(burst); over > 0 {
					lhsHi, lhsLo := mul128(uint64(over), uint64(period))
					rhsHi, rhsLo := mul128(uint64(req), uint64(taken[j].at-taken[i].at+2))
					if lhsHi > rhsHi || (lhsHi == rhsHi && lhsLo > rhsLo) {
						t.Fatalf("%v: %d tokens taken in [%d, %d]: more than burst + rate*window", l, sum, taken[i].at, taken[j].at)
					}
				}
			}
		}
	})
}

func mul128(a, b uint64) (hi, lo uint64) {
	const mask = 1<<32 - 1
	// Schoolbook multiplication, independent of math/bits used by the code under test.
	a0, a1, b0, b1 := a&mask, a>>32, b&mask, b>>32
	w0 := a0 * b0
	t1 := a1*b0 + w0>>32
	w1, w2 := t1&mask, t1>>32
	w1 += a0 * b1
	return a1*b1 + w2 + w1>>32, a * b
}
