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

package breaker

import (
	"testing"
	"time"

	"github.com/sony/gobreaker/v2"
)

// The benchmarks run one successful call per op through a closed breaker: Allow then Success,
// each with its own time.Now() as the gateway would, against gobreaker's Execute, which reads the
// clock twice as well.

func consecutiveBreakers(b *testing.B) (*Breaker, *gobreaker.CircuitBreaker[struct{}]) {
	ours, err := New(Config{ConsecutiveFailures: 5, OpenDuration: 30 * time.Second}, time.Now())
	if err != nil {
		b.Fatal(err)
	}
	anchor := gobreaker.NewCircuitBreaker[struct{}](gobreaker.Settings{
		Timeout:     30 * time.Second,
		ReadyToTrip: func(c gobreaker.Counts) bool { return c.ConsecutiveFailures >= 5 },
	})
	return ours, anchor
}

func ratioBreakers(b *testing.B) (*Breaker, *gobreaker.CircuitBreaker[struct{}]) {
	ours, err := New(Config{FailureRatio: &FailureRatio{Percent: 50, MinimumRequests: 20, Window: 30 * time.Second},
		OpenDuration: 30 * time.Second}, time.Now())
	if err != nil {
		b.Fatal(err)
	}
	anchor := gobreaker.NewCircuitBreaker[struct{}](gobreaker.Settings{
		Interval: 30 * time.Second, BucketPeriod: 3 * time.Second, Timeout: 30 * time.Second,
		ReadyToTrip: func(c gobreaker.Counts) bool { return c.Requests >= 20 && c.TotalFailures*100 >= c.Requests*50 },
	})
	return ours, anchor
}

func ok() (struct{}, error) { return struct{}{}, nil }

func oursOnce(b *testing.B, br *Breaker) {
	p, _, allowed := br.Allow(time.Now())
	if !allowed {
		b.Fatal("refused")
	}
	p.Success(time.Now())
}

func benchSerial(b *testing.B, make func(*testing.B) (*Breaker, *gobreaker.CircuitBreaker[struct{}])) {
	ours, anchor := make(b)
	b.Run("ours", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			oursOnce(b, ours)
		}
	})
	b.Run("gobreaker", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := anchor.Execute(ok); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func benchParallel(b *testing.B, make func(*testing.B) (*Breaker, *gobreaker.CircuitBreaker[struct{}])) {
	ours, anchor := make(b)
	b.Run("ours", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				oursOnce(b, ours)
			}
		})
	})
	b.Run("gobreaker", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := anchor.Execute(ok); err != nil {
					b.Fatal(err)
				}
			}
		})
	})
}

func BenchmarkBreakerClosed(b *testing.B)              { benchSerial(b, consecutiveBreakers) }
func BenchmarkBreakerClosedParallel(b *testing.B)      { benchParallel(b, consecutiveBreakers) }
func BenchmarkBreakerRatioClosed(b *testing.B)         { benchSerial(b, ratioBreakers) }
func BenchmarkBreakerRatioClosedParallel(b *testing.B) { benchParallel(b, ratioBreakers) }

// The NoClock benchmarks take the clock out: one fixed now, the breaker's own cost alone (a
// gateway reads the clock once per request for every pattern). gobreaker cannot be given a time.

func benchNoClock(b *testing.B, make func(*testing.B) (*Breaker, *gobreaker.CircuitBreaker[struct{}]), parallel bool) {
	ours, _ := make(b)
	now := time.Now()
	once := func() {
		p, _, allowed := ours.Allow(now)
		if !allowed {
			b.Fatal("refused")
		}
		p.Success(now)
	}
	b.Run("ours", func(b *testing.B) {
		b.ReportAllocs()
		if !parallel {
			for b.Loop() {
				once()
			}
			return
		}
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				once()
			}
		})
	})
}

func BenchmarkBreakerNoClock(b *testing.B)              { benchNoClock(b, consecutiveBreakers, false) }
func BenchmarkBreakerNoClockParallel(b *testing.B)      { benchNoClock(b, consecutiveBreakers, true) }
func BenchmarkBreakerRatioNoClock(b *testing.B)         { benchNoClock(b, ratioBreakers, false) }
func BenchmarkBreakerRatioNoClockParallel(b *testing.B) { benchNoClock(b, ratioBreakers, true) }
