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
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"resilience.dev/operator/internal/patterns/clock"
	"resilience.dev/operator/internal/snapshot"
)

func rateLimited(rl *snapshot.RateLimit) *snapshot.Snapshot {
	p := port(ep(1))
	p.RateLimit = rl
	return snap(1, p)
}

// A burst of 10 at one instant: exactly 10 pass with the headers counting down, the 11th gets 429
// with Retry-After and the headers of the exhausted limit; one token later, one more passes.
func TestRateLimitBurst(t *testing.T) {
	t.Parallel()
	clk := clock.NewFake(t0)
	mem := newMem()
	var upstream atomic.Int32
	mem.handle(epAddr(1), func(w http.ResponseWriter, r *http.Request) { upstream.Add(1); ok200(w, r) })
	g := newGW(t, Options{Clock: clk}, mem, rateLimited(rateLimit(limit("total", 10, time.Second, 10))))
	for i := range 10 {
		rec := get(g, "http://api.shop/")
		if rec.Code != 200 {
			t.Fatalf("request %d: got %d", i+1, rec.Code)
		}
		h := rec.Header()
		wantRemaining := itoa(9 - i)
		if h.Get("X-RateLimit-Limit") != "10" || h.Get("X-RateLimit-Remaining") != wantRemaining {
			t.Fatalf("request %d: X-RateLimit-Limit %q Remaining %q", i+1, h.Get("X-RateLimit-Limit"), h.Get("X-RateLimit-Remaining"))
		}
		if got := h.Get("RateLimit-Policy"); got != `"total";q=10;w=1` {
			t.Fatalf("RateLimit-Policy %q", got)
		}
		wantT := "0"
		if i == 9 {
			wantT = "1" // 100 ms to the next token, rounded up
		}
		if got, want := h.Get("RateLimit"), `"total";r=`+wantRemaining+`;t=`+wantT; got != want {
			t.Fatalf("request %d: RateLimit %q, want %q", i+1, got, want)
		}
	}
	rec := get(g, "http://api.shop/")
	if rec.Code != 429 {
		t.Fatalf("11th: got %d", rec.Code)
	}
	if ra := rec.Header().Get("Retry-After"); ra != "1" {
		t.Errorf("Retry-After %q", ra)
	}
	if got := rec.Header().Get("RateLimit"); got != `"total";r=0;t=1` {
		t.Errorf("RateLimit %q", got)
	}
	if body := rec.Body.String(); body != "Service shop/api: rate limit \"total\" of RateLimit rl exceeded\n" {
		t.Errorf("body %q", body)
	}
	if n := upstream.Load(); n != 10 {
		t.Fatalf("upstream saw %d requests, want 10", n)
	}
	clk.Advance(99 * time.Millisecond)
	if rec := get(g, "http://api.shop/"); rec.Code != 429 {
		t.Fatalf("after 99ms: got %d", rec.Code)
	}
	clk.Advance(time.Millisecond)
	if rec := get(g, "http://api.shop/"); rec.Code != 200 {
		t.Fatalf("after 100ms: got %d", rec.Code)
	}
	if v := metricValue(t, g, "resilience_gateway_rejections_total", map[string]string{"limit": "total", "reason": "rate_limited"}); v != 2 {
		t.Errorf("rejections metric = %v, want 2", v)
	}
}

func TestRateLimitMatchingAndKeys(t *testing.T) {
	t.Parallel()
	type req struct {
		method, path string
		hdr          []string
		wantCode     int
		wantLimit    string // RateLimit-Policy name, "" for no headers
	}
	perUser := limit("per-user", 1, time.Minute, 1)
	perUser.Key = []snapshot.KeyPart{{Header: "X-User-ID"}}
	orders := limit("orders", 100, time.Second, 100)
	orders.Methods, orders.PathPrefix = []string{"POST"}, "/orders"
	perIP := limit("per-ip", 1, time.Minute, 1)
	perIP.Key = []snapshot.KeyPart{{ClientIP: true}, {Header: "X-Tenant"}}
	tests := []struct {
		desc   string
		limits []snapshot.Limit
		reqs   []req
	}{
		{desc: "a request matching no limit gets no headers", limits: []snapshot.Limit{orders}, reqs: []req{
			{method: "GET", path: "/orders", wantCode: 200},
			{method: "POST", path: "/ordersx", wantCode: 200},
			{method: "POST", path: "/orders/7", wantCode: 200, wantLimit: "orders"},
		}},
		{desc: "one bucket per header value; absent header is the empty value", limits: []snapshot.Limit{perUser}, reqs: []req{
			{method: "GET", path: "/", hdr: []string{"X-User-ID: alice"}, wantCode: 200, wantLimit: "per-user"},
			{method: "GET", path: "/", hdr: []string{"X-User-ID: alice"}, wantCode: 429, wantLimit: "per-user"},
			{method: "GET", path: "/", hdr: []string{"X-User-ID: bob"}, wantCode: 200, wantLimit: "per-user"},
			{method: "GET", path: "/", wantCode: 200, wantLimit: "per-user"},
			{method: "GET", path: "/", wantCode: 429, wantLimit: "per-user"},
		}},
		{desc: "composite key of client IP and header", limits: []snapshot.Limit{perIP}, reqs: []req{
			{method: "GET", path: "/", hdr: []string{"X-Tenant: a"}, wantCode: 200, wantLimit: "per-ip"},
			{method: "GET", path: "/", hdr: []string{"X-Tenant: b"}, wantCode: 200, wantLimit: "per-ip"},
			{method: "GET", path: "/", hdr: []string{"X-Tenant: a"}, wantCode: 429, wantLimit: "per-ip"},
		}},
		{desc: "headers name the matching limit with the fewest tokens left", limits: []snapshot.Limit{orders, perUser}, reqs: []req{
			{method: "POST", path: "/orders", hdr: []string{"X-User-ID: u"}, wantCode: 200, wantLimit: "per-user"},
		}},
		{desc: "all or nothing: a refused limit spends nothing from the others", limits: []snapshot.Limit{limit("two", 2, time.Minute, 2), perUser}, reqs: []req{
			{method: "GET", path: "/", hdr: []string{"X-User-ID: u"}, wantCode: 200, wantLimit: "per-user"},
			{method: "GET", path: "/", hdr: []string{"X-User-ID: u"}, wantCode: 429, wantLimit: "per-user"},
			{method: "GET", path: "/", hdr: []string{"X-User-ID: u"}, wantCode: 429, wantLimit: "per-user"},
			{method: "GET", path: "/", hdr: []string{"X-User-ID: v"}, wantCode: 200, wantLimit: "two"}, // still 1 of 2 left
			{method: "GET", path: "/", hdr: []string{"X-User-ID: w"}, wantCode: 429, wantLimit: "two"},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			t.Parallel()
			mem := newMem()
			mem.handle(epAddr(1), ok200)
			g := newGW(t, Options{Clock: clock.NewFake(t0)}, mem, rateLimited(rateLimit(tt.limits...)))
			for i, r := range tt.reqs {
				rec := send(g, r.method, "http://api.shop"+r.path, nil, r.hdr...)
				if rec.Code != r.wantCode {
					t.Fatalf("request %d: got %d, want %d", i+1, rec.Code, r.wantCode)
				}
				got := rec.Header().Get("RateLimit-Policy")
				if (r.wantLimit == "") != (got == "") || (got != "" && !strings.HasPrefix(got, `"`+r.wantLimit+`"`)) {
					t.Fatalf("request %d: RateLimit-Policy %q, want limit %q", i+1, got, r.wantLimit)
				}
				if r.wantLimit == "" && (rec.Header().Get("X-RateLimit-Limit") != "" || rec.Header().Get("RateLimit") != "") {
					t.Fatalf("request %d: rate-limit headers on a request no limit matches", i+1)
				}
			}
		})
	}
}

// Split distribution: Replicas stretches the period, so a replica of 2 refills at half the rate.
func TestRateLimitReplicasStretchPeriod(t *testing.T) {
	t.Parallel()
	clk := clock.NewFake(t0)
	mem := newMem()
	mem.handle(epAddr(1), ok200)
	l := limit("split", 10, time.Second, 1)
	l.Replicas = 2
	g := newGW(t, Options{Clock: clk}, mem, rateLimited(rateLimit(l)))
	passed := 0
	for range 101 { // 0..1 s in 10 ms steps: burst 1 + 5 tokens (at 200, 400, ..., 1000 ms)
		if get(g, "http://api.shop/").Code == 200 {
			passed++
		}
		clk.Advance(10 * time.Millisecond)
	}
	if passed != 1+5 {
		t.Fatalf("passed %d over 1s, want 6", passed)
	}
}

func TestRateLimitDryRun(t *testing.T) {
	t.Parallel()
	mem := newMem()
	mem.handle(epAddr(1), ok200)
	rl := rateLimit(limit("total", 1, time.Minute, 1))
	rl.DryRun = true
	g := newGW(t, Options{Clock: clock.NewFake(t0)}, mem, rateLimited(rl))
	for i := range 5 {
		rec := get(g, "http://api.shop/")
		if rec.Code != 200 {
			t.Fatalf("request %d: got %d", i+1, rec.Code)
		}
		for _, h := range []string{"X-RateLimit-Limit", "X-RateLimit-Remaining", "RateLimit", "RateLimit-Policy", "Retry-After"} {
			if v := rec.Header().Get(h); v != "" {
				t.Fatalf("DryRun added %s: %q", h, v)
			}
		}
	}
	if v := metricValue(t, g, "resilience_gateway_dry_run_rejections_total", map[string]string{"limit": "total"}); v != 4 {
		t.Fatalf("dry-run metric = %v, want 4", v)
	}
}

// Delay mode shapes a burst: at 10/s with burst 1 and maxDelay 500ms, of 7 requests at one
// instant the first goes at once, the next 5 wait 100..500 ms and go in arrival order, none lost,
// and the 7th (a wait of 600 ms) gets 429 at once.
func TestRateLimitDelayQueue(t *testing.T) {
	t.Parallel()
	clk := clock.NewFake(t0)
	mem := newMem()
	var mu sync.Mutex
	var order []string
	mem.handle(epAddr(1), func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		order = append(order, r.Header.Get("X-N"))
		mu.Unlock()
		ok200(w, r)
	})
	rl := rateLimit(limit("shaped", 10, time.Second, 1))
	rl.Delay, rl.MaxDelay = true, snapshot.Duration(500*time.Millisecond)
	g := newGW(t, Options{Clock: clk}, mem, rateLimited(rl))

	if rec := get(g, "http://api.shop/", "X-N: 0"); rec.Code != 200 {
		t.Fatalf("first: %d", rec.Code)
	}
	codes := make([]int, 6)
	var wg sync.WaitGroup
	for i := 1; i <= 5; i++ {
		wg.Go(func() { codes[i] = get(g, "http://api.shop/", "X-N: "+itoa(i)).Code })
		waitFor(t, "request to queue", func() bool { return clk.Pending() == i }) // arrival order is known
	}
	if rec := get(g, "http://api.shop/", "X-N: 6"); rec.Code != 429 || rec.Header().Get("Retry-After") == "" {
		t.Fatalf("7th: got %d Retry-After %q, want 429 at once", rec.Code, rec.Header().Get("Retry-After"))
	}
	for i := 1; i <= 5; i++ {
		clk.Advance(100 * time.Millisecond)
		waitFor(t, "release", func() bool { mu.Lock(); defer mu.Unlock(); return len(order) == i+1 })
	}
	wg.Wait()
	for i := 1; i <= 5; i++ {
		if codes[i] != 200 {
			t.Fatalf("queued request %d: got %d", i, codes[i])
		}
	}
	if got := strings.Join(order, ","); got != "0,1,2,3,4,5" {
		t.Fatalf("upstream order %s, want FIFO 0..5", got)
	}
}

func itoa(i int) string { return strconv.Itoa(i) }
