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
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"resilience.dev/operator/internal/patterns/clock"
	"resilience.dev/operator/internal/patterns/globallimit"
	"resilience.dev/operator/internal/snapshot"
)

// globalLimit is limit made Global over replicas gateway replicas: its own numbers are the Split share
// (the Local fallback), the Global bucket the whole limit.
func globalLimit(name string, requests int64, period time.Duration, burst int64, replicas int, onErr string) snapshot.Limit {
	l := limit(name, requests, period, max(burst/int64(replicas), 1))
	l.Replicas = replicas
	l.Global = &snapshot.GlobalLimit{Bucket: "rl-uid/global/" + name, Burst: burst, OnStoreError: onErr}
	return l
}

// failingStore answers every call with an error, as a store that is down.
type failingStore struct{}

func (failingStore) Take(context.Context, string, globallimit.Rate, int64, int64) (globallimit.Grant, error) {
	return globallimit.Grant{}, errors.New("connection refused")
}

func okMem() *memTransport {
	mem := newMem()
	mem.handle(epAddr(1), ok200)
	return mem
}

// statusCodes sends n requests and returns their status codes in order.
func statusCodes(g *Gateway, n int) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = get(g, "http://api.shop/").Code
	}
	return out
}

func count(cs []int, code int) int {
	n := 0
	for _, c := range cs {
		if c == code {
			n++
		}
	}
	return n
}

// Two replicas on one store share one bucket: a Global 1/s burst 10 limit admits exactly 10 of 30
// requests spread over both, then one per second, whatever replica asks.
func TestGlobalLimitIsSharedByReplicas(t *testing.T) {
	t.Parallel()
	clk := clock.NewFake(t0)
	store := globallimit.NewMemoryStore(clk)
	s := rateLimited(rateLimit(globalLimit("total", 1, time.Second, 10, 2, snapshot.OnStoreErrorLocal)))
	a := newGW(t, Options{Clock: clk, GlobalStore: store}, okMem(), s)
	b := newGW(t, Options{Clock: clk, GlobalStore: store}, okMem(), s)
	var got []int
	for i := range 30 {
		g := a
		if i%10 == 9 { // uneven: Split would admit 5 on a and 3 on b
			g = b
		}
		got = append(got, get(g, "http://api.shop/").Code)
	}
	if n := count(got, 200); n != 10 {
		t.Fatalf("admitted %d of 30 at one instant, want the burst of 10: %v", n, got)
	}
	if n := count(got, 429); n != 20 {
		t.Fatalf("refused %d, want 20: %v", n, got)
	}
	clk.Advance(time.Second)
	if c := get(b, "http://api.shop/").Code; c != 200 {
		t.Fatalf("one second later: %d, want 200", c)
	}
	if c := get(a, "http://api.shop/").Code; c != 429 {
		t.Fatalf("the second request of that second: %d, want 429", c)
	}
}

// All or nothing across Global and local limits: a request the Global limit refuses spends no local
// token, and one a local limit refuses asks nothing of the store.
func TestGlobalLimitAllOrNothingWithLocal(t *testing.T) {
	t.Parallel()
	clk := clock.NewFake(t0)
	store := globallimit.NewMemoryStore(clk)
	local := limit("local", 1, time.Hour, 5)
	s := rateLimited(rateLimit(local, globalLimit("global", 1, time.Second, 2, 1, snapshot.OnStoreErrorLocal)))
	g := newGW(t, Options{Clock: clk, GlobalStore: store}, okMem(), s)
	got := statusCodes(g, 12)
	if count(got, 200) != 2 {
		t.Fatalf("at one instant: %v, want 2 admitted (the Global burst)", got)
	}
	rec := get(g, "http://api.shop/")
	if !strings.Contains(rec.Body.String(), `rate limit "global"`) {
		t.Fatalf("refusal names %q, want the Global limit", rec.Body.String())
	}
	// The 11 refused requests gave their local tokens back: 3 remain, one per Global token.
	for i := range 3 {
		clk.Advance(time.Second)
		if c := get(g, "http://api.shop/").Code; c != 200 {
			t.Fatalf("second %d: %d, want 200 (a local token left)", i+1, c)
		}
	}
	clk.Advance(time.Second)
	rec = get(g, "http://api.shop/")
	if rec.Code != 429 || !strings.Contains(rec.Body.String(), `rate limit "local"`) {
		t.Fatalf("after 5 admitted: %d %q, want 429 from the local limit", rec.Code, rec.Body.String())
	}
}

// A store that cannot be asked: each onStoreError as the contract says, and the store is reported down.
func TestGlobalLimitOnStoreError(t *testing.T) {
	t.Parallel()
	tests := []struct {
		desc     string
		onErr    string
		store    globallimit.Store
		want200  int
		wantBody string
	}{
		{desc: "Local enforces the Split share (10/3 replicas = 3)", onErr: snapshot.OnStoreErrorLocal, store: failingStore{},
			want200: 3, wantBody: `rate limit "total" of RateLimit rl exceeded`},
		{desc: "Allow passes everything", onErr: snapshot.OnStoreErrorAllow, store: failingStore{}, want200: 20},
		{desc: "Deny refuses everything", onErr: snapshot.OnStoreErrorDeny, store: failingStore{},
			want200: 0, wantBody: "store of Global limits is unavailable (onStoreError: Deny)"},
		{desc: "no store configured is a store down", onErr: snapshot.OnStoreErrorLocal, store: nil, want200: 3},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			clk := clock.NewFake(t0)
			var flips []bool
			o := Options{Clock: clk, GlobalStore: tc.store, OnStoreChange: func(up bool, _ error) { flips = append(flips, up) }}
			g := newGW(t, o, okMem(), rateLimited(rateLimit(globalLimit("total", 10, time.Second, 10, 3, tc.onErr))))
			got := statusCodes(g, 20)
			if n := count(got, 200); n != tc.want200 {
				t.Fatalf("admitted %d of 20, want %d: %v", n, tc.want200, got)
			}
			if n := count(got, 429); n != 20-tc.want200 {
				t.Fatalf("refused %d, want %d: %v", n, 20-tc.want200, got)
			}
			if tc.wantBody != "" {
				if body := get(g, "http://api.shop/").Body.String(); !strings.Contains(body, tc.wantBody) {
					t.Errorf("body %q, want %q", body, tc.wantBody)
				}
			}
			if up, err := g.StoreAvailable(); up || err == nil {
				t.Errorf("StoreAvailable = %v, %v; want false with the reason", up, err)
			}
			if tc.store != nil && (len(flips) != 1 || flips[0]) {
				t.Errorf("OnStoreChange calls %v, want one: unavailable", flips)
			}
			if v := metricValue(t, g, "resilience_gateway_store_error_decisions_total", nil); v < 20 {
				t.Errorf("store_error_decisions_total = %v, want at least 20", v)
			}
		})
	}
}

// A Global limit cannot be put in Delay mode: the gateway refuses such a snapshot instead of queueing
// on a bucket it does not hold.
func TestGlobalLimitRefusedInDelayMode(t *testing.T) {
	t.Parallel()
	rl := rateLimit(globalLimit("total", 10, time.Second, 10, 1, snapshot.OnStoreErrorLocal))
	rl.Delay, rl.MaxDelay = true, snapshot.Duration(time.Second)
	g, err := New(Options{Transport: okMem()})
	if err != nil {
		t.Fatal(err)
	}
	err = g.Apply(encoded(rateLimited(rl)))
	if err == nil || !strings.Contains(err.Error(), "Delay cannot be combined with Global") {
		t.Fatalf("Apply: %v, want the Delay refusal", err)
	}
}
