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

package waitqueue

import (
	"context"
	"testing"
	"time"

	"resilience.dev/operator/internal/patterns/clock"
)

// BenchmarkQueueEnterWait is the queue's cost for a request that needs no wait: take a place and
// give it back through Wait.
func BenchmarkQueueEnterWait(b *testing.B) {
	b.Run("ours", func(b *testing.B) {
		q, _ := New(clock.Real{}, 1<<20, time.Second)
		ctx := context.Background()
		past := time.Now()
		b.ReportAllocs()
		for b.Loop() {
			tk, _ := q.Enter()
			_ = tk.Wait(ctx, past, nil)
		}
	})
}

func BenchmarkQueueEnterWaitParallel(b *testing.B) {
	b.Run("ours", func(b *testing.B) {
		q, _ := New(clock.Real{}, 1<<20, time.Second)
		ctx := context.Background()
		past := time.Now()
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				tk, _ := q.Enter()
				_ = tk.Wait(ctx, past, nil)
			}
		})
	})
}
