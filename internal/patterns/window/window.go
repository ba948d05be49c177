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

// Package window counts events in a sliding window of time buckets without locks: the ring shared by
// the circuit breaker's failure ratio and the retry budget.
//
// Time enters as an epoch, the index of a bucket since a start (Epoch), so the caller keeps its own
// clock and alignment: the breaker aligns its buckets to the moment it closed, the budget to its
// creation. The window at epoch e holds the bucket of e and the len-1 before it, so it spans between
// width*(len-1) and width*len.
package window

import (
	"math"
	"sync/atomic"
	"time"
)

// Epoch returns the bucket index of now in buckets of width since start; times before start fall
// in bucket 0.
func Epoch(start, now time.Time, width time.Duration) uint64 {
	return uint64(max(now.Sub(start), 0) / width)
}

// Ring counts events per bucket. Each bucket is one word: the low 32 bits of its epoch above a
// 32-bit count, so that moving a bucket to a new epoch and counting in it is a single
// compare-and-swap, and counting in the current one a single atomic add. Epochs compare by
// serial-number arithmetic; a bucket left untouched for 2^31 bucket widths may be mistaken for a
// current one. A count saturates at 2^32-1.
type Ring []atomic.Uint64

// New returns a ring of n buckets, all empty.
func New(n int) Ring { return make(Ring, n) }

// Mark is where Add counted an event, for Undo.
type Mark struct {
	w   *atomic.Uint64
	tag uint32
}

// Add counts one event at epoch e and returns where it was counted. A bucket already moved to a
// later epoch by a caller whose now is later takes the event as it is.
func (r Ring) Add(e uint64) Mark {
	w := &r[e%uint64(len(r))]
	tag := uint32(e)
	for {
		old := w.Load()
		oldTag, n := uint32(old>>32), uint32(old)
		if int32(tag-oldTag) <= 0 { // same or later epoch: count in it
			if n == math.MaxUint32 {
				return Mark{w, oldTag}
			}
			// An add cannot fail under contention, unlike a compare-and-swap; should the bucket
			// move to a new epoch meanwhile, the event counts there, as for a late caller.
			return Mark{w, uint32((w.Add(1) - 1) >> 32)}
		}
		if w.CompareAndSwap(old, uint64(tag)<<32|1) {
			return Mark{w, tag}
		}
	}
}

// Undo takes back an event that Add counted at m, unless its bucket has moved on since.
func Undo(m Mark) {
	for {
		old := m.w.Load()
		if uint32(old>>32) != m.tag || uint32(old) == 0 {
			return
		}
		if m.w.CompareAndSwap(old, old-1) {
			return
		}
	}
}

// Sum returns the events in the window ending with epoch e: buckets at most len-1 epochs older
// (or newer, written by callers whose now is slightly later).
func (r Ring) Sum(e uint64) uint64 {
	n := int32(len(r))
	var total uint64
	for i := range r {
		w := r[i].Load()
		if d := int32(uint32(e) - uint32(w>>32)); d > -n && d < n {
			total += uint64(uint32(w))
		}
	}
	return total
}
