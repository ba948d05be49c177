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
	"fmt"
	"runtime"
	"testing"

	"resilience.dev/operator/internal/snapshot"
)

// The live heap a gateway holds per Service stays small: n Services with one policy each (the kinds
// in turn) and three endpoints. It was about 12 KiB per Service when every Service had a table of
// 600 status-code counters and every metric series was made at build time; it is about 3 KiB now.
// The bound is generous (heap figures vary with the race detector and the Go version): it catches a
// per-Service cost coming back, not a few bytes.
func TestMemoryPerService(t *testing.T) {
	if testing.Short() {
		t.Skip("builds 3,000 Services")
	}
	const n, perServiceBound = 3000, 8 << 10
	s := &snapshot.Snapshot{Version: 1}
	for i := range n {
		name := fmt.Sprintf("svc%d", i)
		p := port(ep(1), ep(2), ep(3))
		switch i % 3 {
		case 0:
			l := limit("all", 1000000, 1e9, 1000000)
			l.StateKey += name
			p.RateLimit = rateLimit(l)
			p.RateLimit.Policy.Name = name
		case 1:
			p.CircuitBreaker = circuitBreaker(5)
			p.CircuitBreaker.StateKey += name
			p.CircuitBreaker.Policy.Name = name
		default:
			p.Retry = retry(3)
			p.Retry.StateKey += name
			p.Retry.Policy.Name = name
		}
		s.Services = append(s.Services, snapshot.Service{Namespace: fmt.Sprintf("ns%d", i%10), Name: name, Ports: []snapshot.Port{p}})
	}
	e, err := snapshot.Encode(s)
	if err != nil {
		t.Fatal(err)
	}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	g := newGW(t, Options{}, newMem(), nil)
	if err := g.Apply(e); err != nil {
		t.Fatal(err)
	}
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&after)
	runtime.KeepAlive(g)
	runtime.KeepAlive(e)
	per := (int64(after.HeapAlloc) - int64(before.HeapAlloc)) / n
	t.Logf("%d bytes of live heap per Service", per)
	if per > perServiceBound {
		t.Errorf("%d bytes of live heap per Service, want at most %d", per, perServiceBound)
	}
}
