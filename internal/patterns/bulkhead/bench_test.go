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

package bulkhead

import (
	"context"
	"testing"

	"golang.org/x/sync/semaphore"

	"resilience.dev/operator/internal/patterns/clock"
)

// Uncontended: a slot is always free, so Acquire never queues. The anchor is x/sync's weighted
// semaphore doing the same Acquire/Release pair.
const wide = 1 << 20

func BenchmarkAcquireRelease(b *testing.B) {
	ctx := context.Background()
	b.Run("ours", func(b *testing.B) {
		bh := mustNew(b, clock.Real{}, Config{MaxConcurrent: wide, MaxQueued: 10})
		b.ReportAllocs()
		for b.Loop() {
			if err := bh.Acquire(ctx); err != nil {
				b.Fatal(err)
			}
			bh.Release()
		}
	})
	b.Run("xsync", func(b *testing.B) {
		s := semaphore.NewWeighted(wide)
		b.ReportAllocs()
		for b.Loop() {
			if err := s.Acquire(ctx, 1); err != nil {
				b.Fatal(err)
			}
			s.Release(1)
		}
	})
}

func BenchmarkAcquireReleaseParallel(b *testing.B) {
	ctx := context.Background()
	b.Run("ours", func(b *testing.B) {
		bh := mustNew(b, clock.Real{}, Config{MaxConcurrent: wide, MaxQueued: 10})
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if err := bh.Acquire(ctx); err != nil {
					b.Error(err)
					return
				}
				bh.Release()
			}
		})
	})
	b.Run("xsync", func(b *testing.B) {
		s := semaphore.NewWeighted(wide)
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if err := s.Acquire(ctx, 1); err != nil {
					b.Error(err)
					return
				}
				s.Release(1)
			}
		})
	})
}

// Contended: 1 slot, many goroutines, a deep queue: measures the hand-off path.
func BenchmarkContendedParallel(b *testing.B) {
	ctx := context.Background()
	b.Run("ours", func(b *testing.B) {
		bh := mustNew(b, clock.Real{}, Config{MaxConcurrent: 1, MaxQueued: 1 << 20})
		b.ReportAllocs()
		b.SetParallelism(8)
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if err := bh.Acquire(ctx); err != nil {
					b.Error(err)
					return
				}
				bh.Release()
			}
		})
	})
	b.Run("xsync", func(b *testing.B) {
		s := semaphore.NewWeighted(1)
		b.ReportAllocs()
		b.SetParallelism(8)
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if err := s.Acquire(ctx, 1); err != nil {
					b.Error(err)
					return
				}
				s.Release(1)
			}
		})
	})
}
