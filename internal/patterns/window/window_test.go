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

package window

import (
	"math"
	"sync"
	"testing"
	"time"

	"resilience.dev/operator/internal/patterns/clock"
)

// step is one action on a ring at the fake clock's time after advance: add events, undo the last
// add, then expect a sum.
type step struct {
	advance time.Duration
	add     int
	undo    bool
	want    uint64
}

func TestRing(t *testing.T) {
	t.Parallel()
	start := time.Unix(1_000, 0)
	const width = time.Second // four buckets: the window spans 3s to 4s
	for _, tc := range []struct {
		desc  string
		steps []step
	}{
		{desc: "empty", steps: []step{{want: 0}}},
		{desc: "counts in one bucket", steps: []step{{add: 3, want: 3}, {advance: 500 * time.Millisecond, add: 1, want: 4}}},
		{desc: "keeps the last len buckets", steps: []step{
			{add: 1, want: 1}, {advance: width, add: 2, want: 3}, {advance: 2 * width, add: 4, want: 7},
			{advance: width, want: 6}, {advance: width, want: 4}, {advance: 2 * width, want: 0},
		}},
		{desc: "a reused bucket starts from zero", steps: []step{{add: 5, want: 5}, {advance: 4 * width, add: 1, want: 1}}},
		{desc: "undo takes back the last add", steps: []step{{add: 2, want: 2}, {add: 1, undo: true, want: 2}}},
		{desc: "undo after the bucket moved on does nothing", steps: []step{
			{add: 1, want: 1}, {advance: 4 * width, add: 1, want: 1},
		}},
		{desc: "long idle", steps: []step{{add: 1, want: 1}, {advance: 1000 * width, want: 0}}},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			clk := clock.NewFake(start)
			r := New(4)
			for i, s := range tc.steps {
				clk.Advance(s.advance)
				e := Epoch(start, clk.Now(), width)
				var m Mark
				for range s.add {
					m = r.Add(e)
				}
				if s.undo {
					Undo(m)
				}
				if got := r.Sum(e); got != s.want {
					t.Errorf("step %d at +%v: Sum = %d, want %d", i, clk.Now().Sub(start), got, s.want)
				}
			}
		})
	}
}

// An undo of a mark taken before the bucket moved to a new epoch leaves the new count alone.
func TestUndoStaleMark(t *testing.T) {
	t.Parallel()
	r := New(2)
	m := r.Add(0)
	r.Add(2) // same bucket, a later epoch
	Undo(m)
	if got := r.Sum(2); got != 1 {
		t.Fatalf("Sum = %d, want 1", got)
	}
}

func TestEpochBeforeStart(t *testing.T) {
	t.Parallel()
	start := time.Unix(1_000, 0)
	if e := Epoch(start, start.Add(-time.Hour), time.Second); e != 0 {
		t.Fatalf("Epoch before start = %d, want 0", e)
	}
	if e := Epoch(start, start.Add(2500*time.Millisecond), time.Second); e != 2 {
		t.Fatalf("Epoch = %d, want 2", e)
	}
}

func TestEpochWrap(t *testing.T) {
	t.Parallel()
	// Epochs are kept modulo 2^32: counting must go on across the wrap.
	r := New(10)
	base := uint64(math.MaxUint32 - 3)
	for e := base; e < base+8; e++ {
		r.Add(e)
	}
	if got := r.Sum(base + 7); got != 8 {
		t.Errorf("Sum across the 2^32 wrap = %d, want 8", got)
	}
	if got := r.Sum(base + 7 + 10); got != 0 {
		t.Errorf("Sum a window later = %d, want 0", got)
	}
}

// A full bucket saturates instead of wrapping into its epoch.
func TestSaturates(t *testing.T) {
	t.Parallel()
	r := New(1)
	r[0].Store(math.MaxUint32)
	r.Add(0)
	if got := r.Sum(0); got != math.MaxUint32 {
		t.Fatalf("Sum = %d, want %d", got, uint64(math.MaxUint32))
	}
}

func TestConcurrentAdds(t *testing.T) {
	t.Parallel()
	r := New(8)
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 1000 {
				r.Add(3)
			}
		}()
	}
	wg.Wait()
	if got := r.Sum(3); got != 8000 {
		t.Fatalf("Sum = %d, want 8000", got)
	}
}
