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

package gateway

import (
	"math/rand/v2"
	"sync/atomic"
	"time"

	"resilience.dev/operator/internal/patterns/breaker"
)

// endpoint is one ready backend address of a Service port, in one routing table.
type endpoint struct {
	hostPort string
	idx      int
	inflight atomic.Int64
	br       *breakerState // its breaker, with scope Endpoint
}

// balancer spreads tries over a port's endpoints by the power of two choices: it draws two
// endpoints at random and takes the one with fewer tries in flight. Round robin would hand a slow
// or stalled endpoint (the very case hedging and per-endpoint breakers exist for) its full share of
// requests, piling them up behind it; least-in-flight over two random choices steers new requests
// away from it within a few requests, yet needs no shared cursor (no contended atomic on every
// request) and keeps the herd behaviour of pure least-loaded in check when counts are stale
// (Mitzenmacher, "The Power of Two Choices in Randomized Load Balancing"; Envoy's LEAST_REQUEST).
// Retries and hedges prefer endpoints the request has not tried yet.
type balancer struct {
	eps []*endpoint
}

// pick returns the index of the endpoint for a try, or -1. Endpoints whose index bit is in skip are
// never chosen; those in tried only when nothing else is left. With breakers, endpoints whose breaker
// is open are passed over.
func (b *balancer) pick(now time.Time, tried, skip uint64, breakers bool) int {
	n := len(b.eps)
	if n == 0 {
		return -1
	}
	for pass := 0; pass < 2; pass++ {
		avoid := skip
		if pass == 0 {
			avoid |= tried
		} else if tried&^skip == 0 {
			break // the first pass avoided nothing more
		}
		a := b.scan(rand.IntN(n), avoid, now, breakers)
		if a < 0 {
			continue
		}
		if n == 1 {
			return a
		}
		c := b.scan(rand.IntN(n), avoid, now, breakers)
		if c >= 0 && c != a && b.eps[c].inflight.Load() < b.eps[a].inflight.Load() {
			return c
		}
		return a
	}
	return -1
}

// scan returns the first eligible endpoint from start on, cyclically, or -1.
func (b *balancer) scan(start int, avoid uint64, now time.Time, breakers bool) int {
	n := len(b.eps)
	for k := range n {
		i := start + k
		if i >= n {
			i -= n
		}
		if i < 64 && avoid&(1<<i) != 0 {
			continue
		}
		if breakers && b.eps[i].br != nil && b.eps[i].br.b.State(now) == breaker.Open {
			continue
		}
		return i
	}
	return -1
}
