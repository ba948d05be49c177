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

package hedge

import (
	"context"
	"testing"
	"time"

	"resilience.dev/operator/internal/patterns/clock"
)

// The common case: the first call answers before the hedge delay, so no hedge starts.
func fast(context.Context, int) (int, error) { return 200, nil }
func good200(v int, err error) bool          { return err == nil && v == 200 }

func BenchmarkDo(b *testing.B) {
	b.Run("ours", func(b *testing.B) {
		ctx, clk := context.Background(), clock.Real{}
		p := Policy{Delay: time.Second, MaxHedges: 1}
		b.ReportAllocs()
		for b.Loop() {
			if _, _, err := Do(ctx, clk, p, fast, good200, nil); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func BenchmarkDoParallel(b *testing.B) {
	b.Run("ours", func(b *testing.B) {
		ctx, clk := context.Background(), clock.Real{}
		p := Policy{Delay: time.Second, MaxHedges: 1}
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, _, err := Do(ctx, clk, p, fast, good200, nil); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
}
