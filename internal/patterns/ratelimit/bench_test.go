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
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/time/rate"
)

// The benchmarks use a limit of one token per 10ns and move the time given to both sides on by
// 10ns per request (per goroutine, times the goroutines in parallel runs), so that nearly every
// request is admitted and each one measures the full take: a compare-and-swap here, a mutex and
// float arithmetic in x/time/rate. They pass the time in rather than read the wall clock, whose
// cost (about 100 ns on the benchmark machine) is the same for both and would swamp the difference.
// The times carry a monotonic reading, as clock.Real's do, so both sides subtract them on the
// monotonic clock as in production.
var (
	benchStart  = time.Now()
	benchLimit  = Limit{Requests: 100_000_000, Period: time.Second, Burst: 1000}
	benchXLimit = rate.Limit(100_000_000)
	benchBurst  = 1000
)

func BenchmarkBucketAllow(b *testing.B) {
	b.Run("ours", func(b *testing.B) {
		bk := mustBucket(b, benchLimit)
		b.ReportAllocs()
		now := benchStart
		for b.Loop() {
			now = now.Add(10)
			bk.Allow(now)
		}
	})
	b.Run("xrate", func(b *testing.B) {
		x := rate.NewLimiter(benchXLimit, benchBurst)
		b.ReportAllocs()
		now := benchStart
		for b.Loop() {
			now = now.Add(10)
			x.AllowN(now, 1)
		}
	})
}

// BenchmarkBucketAllowRational is BenchmarkBucketAllow with a limit whose Requests do not divide
// Period, the 128-bit path.
func BenchmarkBucketAllowRational(b *testing.B) {
	b.Run("ours", func(b *testing.B) {
		bk := mustBucket(b, Limit{Requests: 99_999_989, Period: time.Second, Burst: 1000})
		b.ReportAllocs()
		now := benchStart
		for b.Loop() {
			now = now.Add(10)
			bk.Allow(now)
		}
	})
	b.Run("xrate", func(b *testing.B) {
		x := rate.NewLimiter(rate.Limit(99_999_989), benchBurst)
		b.ReportAllocs()
		now := benchStart
		for b.Loop() {
			now = now.Add(10)
			x.AllowN(now, 1)
		}
	})
}

func BenchmarkBucketAllowParallel(b *testing.B) {
	b.Run("ours", func(b *testing.B) {
		bk := mustBucket(b, benchLimit)
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			now := benchStart
			for pb.Next() {
				now = now.Add(20)
				bk.Allow(now)
			}
		})
	})
	b.Run("xrate", func(b *testing.B) {
		x := rate.NewLimiter(benchXLimit, benchBurst)
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			now := benchStart
			for pb.Next() {
				now = now.Add(20)
				x.AllowN(now, 1)
			}
		})
	})
}

// xrateKeyed is the anchor for the keyed limiter: a map of x/time/rate limiters behind a mutex.
type xrateKeyed struct {
	mu sync.Mutex
	m  map[string]*rate.Limiter
}

func (x *xrateKeyed) allow(now time.Time, key []byte) bool {
	x.mu.Lock()
	l := x.m[string(key)]
	if l == nil {
		l = rate.NewLimiter(benchXLimit, benchBurst)
		x.m[string(key)] = l
	}
	x.mu.Unlock()
	return l.AllowN(now, 1)
}

func benchKeys() [][]byte {
	keys := make([][]byte, 1024)
	for i := range keys {
		keys[i] = strconv.AppendInt([]byte("10.0."), int64(i), 10)
	}
	return keys
}

func BenchmarkKeyedAllow(b *testing.B) {
	keys := benchKeys()
	b.Run("ours", func(b *testing.B) {
		k := mustKeyed(b, benchLimit, 10000)
		b.ReportAllocs()
		i, now := 0, benchStart
		for b.Loop() {
			now = now.Add(10)
			k.AllowN(now, keys[i&1023], 1)
			i++
		}
	})
	b.Run("xrate", func(b *testing.B) {
		x := &xrateKeyed{m: make(map[string]*rate.Limiter)}
		b.ReportAllocs()
		i, now := 0, benchStart
		for b.Loop() {
			now = now.Add(10)
			x.allow(now, keys[i&1023])
			i++
		}
	})
}

func BenchmarkKeyedAllowParallel(b *testing.B) {
	keys := benchKeys()
	var seq atomic.Int64
	b.Run("ours", func(b *testing.B) {
		k := mustKeyed(b, benchLimit, 10000)
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			i, now := int(seq.Add(1)*397), benchStart
			for pb.Next() {
				now = now.Add(20)
				k.AllowN(now, keys[i&1023], 1)
				i++
			}
		})
	})
	b.Run("xrate", func(b *testing.B) {
		x := &xrateKeyed{m: make(map[string]*rate.Limiter)}
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			i, now := int(seq.Add(1)*397), benchStart
			for pb.Next() {
				now = now.Add(20)
				x.allow(now, keys[i&1023])
				i++
			}
		})
	})
}

// xrateTakeAll is the anchor for TakeAll: reserve on each x/time/rate limiter in turn and cancel
// the reservations made when one cannot go at once.
func xrateTakeAll(now time.Time, ls []*rate.Limiter, rs []*rate.Reservation) bool {
	for i, l := range ls {
		r := l.ReserveN(now, 1)
		if !r.OK() || r.DelayFrom(now) > 0 {
			r.CancelAt(now)
			for _, p := range rs[:i] {
				p.CancelAt(now)
			}
			return false
		}
		rs[i] = r
	}
	return true
}

// BenchmarkTakeAll takes from 3 limits at once: a global bucket and two keyed ones.
func BenchmarkTakeAll(b *testing.B) {
	keys := benchKeys()
	b.Run("ours", func(b *testing.B) {
		g := mustBucket(b, benchLimit)
		k1, k2 := mustKeyed(b, benchLimit, 10000), mustKeyed(b, benchLimit, 10000)
		refs := []Ref{{Bucket: g}, {Keyed: k1}, {Keyed: k2}}
		var out [3]Reservation
		b.ReportAllocs()
		i, now := 0, benchStart
		for b.Loop() {
			now = now.Add(10)
			refs[1].Key, refs[2].Key = keys[i&1023], keys[(i>>3)&1023]
			TakeAll(now, refs, 1, out[:])
			i++
		}
	})
	b.Run("xrate", func(b *testing.B) {
		g := rate.NewLimiter(benchXLimit, benchBurst)
		x1 := &xrateKeyed{m: make(map[string]*rate.Limiter)}
		x2 := &xrateKeyed{m: make(map[string]*rate.Limiter)}
		ls := make([]*rate.Limiter, 3)
		rs := make([]*rate.Reservation, 3)
		b.ReportAllocs()
		i, now := 0, benchStart
		for b.Loop() {
			now = now.Add(10)
			ls[0], ls[1], ls[2] = g, x1.get(keys[i&1023]), x2.get(keys[(i>>3)&1023])
			xrateTakeAll(now, ls, rs)
			i++
		}
	})
}

func BenchmarkTakeAllParallel(b *testing.B) {
	keys := benchKeys()
	var seq atomic.Int64
	b.Run("ours", func(b *testing.B) {
		g := mustBucket(b, benchLimit)
		k1, k2 := mustKeyed(b, benchLimit, 10000), mustKeyed(b, benchLimit, 10000)
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			refs := []Ref{{Bucket: g}, {Keyed: k1}, {Keyed: k2}}
			var out [3]Reservation
			i, now := int(seq.Add(1)*397), benchStart
			for pb.Next() {
				now = now.Add(20)
				refs[1].Key, refs[2].Key = keys[i&1023], keys[(i>>3)&1023]
				TakeAll(now, refs, 1, out[:])
				i++
			}
		})
	})
	b.Run("xrate", func(b *testing.B) {
		g := rate.NewLimiter(benchXLimit, benchBurst)
		x1 := &xrateKeyed{m: make(map[string]*rate.Limiter)}
		x2 := &xrateKeyed{m: make(map[string]*rate.Limiter)}
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			ls := make([]*rate.Limiter, 3)
			rs := make([]*rate.Reservation, 3)
			i, now := int(seq.Add(1)*397), benchStart
			for pb.Next() {
				now = now.Add(20)
				ls[0], ls[1], ls[2] = g, x1.get(keys[i&1023]), x2.get(keys[(i>>3)&1023])
				xrateTakeAll(now, ls, rs)
				i++
			}
		})
	})
}

func (x *xrateKeyed) get(key []byte) *rate.Limiter {
	x.mu.Lock()
	defer x.mu.Unlock()
	l := x.m[string(key)]
	if l == nil {
		l = rate.NewLimiter(benchXLimit, benchBurst)
		x.m[string(key)] = l
	}
	return l
}
