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
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"resilience.dev/operator/internal/patterns/clock"
	"resilience.dev/operator/internal/snapshot"
)

func withBreaker(cb *snapshot.CircuitBreaker, eps ...snapshot.Endpoint) *snapshot.Snapshot {
	p := port(eps...)
	p.CircuitBreaker = cb
	return snap(1, p)
}

// eventLog records breaker events.
type eventLog struct {
	mu     sync.Mutex
	events []BreakerEvent
}

func (l *eventLog) add(e BreakerEvent) { l.mu.Lock(); l.events = append(l.events, e); l.mu.Unlock() }

func (l *eventLog) transitions() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var s []string
	for _, e := range l.events {
		s = append(s, e.From+">"+e.To)
	}
	return strings.Join(s, " ")
}

// The breaker opens on the 3rd failure in a row; while open, requests get 503 with Retry-After
// (seconds left open) and X-Resilience-Circuit: open without reaching the upstream; after the open
// duration a probe goes through and its success closes it.
func TestBreakerOpensAndRecovers(t *testing.T) {
	t.Parallel()
	clk := clock.NewFake(t0)
	mem := newMem()
	var healthy atomic.Bool
	var calls atomic.Int32
	mem.handle(epAddr(1), func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		if !healthy.Load() {
			w.WriteHeader(500)
			return
		}
		ok200(w, r)
	})
	var log eventLog
	g := newGW(t, Options{Clock: clk, OnBreakerChange: log.add}, mem, withBreaker(circuitBreaker(3), ep(1)))
	for i := range 3 {
		if rec := get(g, "http://api.shop/"); rec.Code != 500 {
			t.Fatalf("failure %d: got %d", i+1, rec.Code)
		}
	}
	clk.Advance(10 * time.Second)
	rec := get(g, "http://api.shop/")
	if rec.Code != 503 || rec.Header().Get("X-Resilience-Circuit") != "open" || rec.Header().Get("Retry-After") != "20" {
		t.Fatalf("open: got %d circuit %q Retry-After %q", rec.Code, rec.Header().Get("X-Resilience-Circuit"), rec.Header().Get("Retry-After"))
	}
	if body := rec.Body.String(); body != "Service shop/api: circuit breaker cb is open\n" {
		t.Fatalf("body %q", body)
	}
	if calls.Load() != 3 {
		t.Fatalf("upstream saw %d calls, want 3", calls.Load())
	}
	if v := metricValue(t, g, "resilience_gateway_circuit_breaker_state", map[string]string{"policy": "cb", "target_endpoint": ""}); v != 1 {
		t.Fatalf("state gauge %v, want 1 (open)", v)
	}
	states := g.BreakerStates()
	if len(states) != 1 || states[0].To != "Open" || states[0].Policy.Name != "cb" || states[0].Service != "api" || states[0].Port != 80 {
		t.Fatalf("BreakerStates = %+v", states)
	}

	// The tick reports half-open without traffic.
	clk.Advance(20 * time.Second)
	g.Tick(clk.Now())
	if got := log.transitions(); got != "Closed>Open Open>HalfOpen" {
		t.Fatalf("events %q", got)
	}
	healthy.Store(true)
	if rec := get(g, "http://api.shop/"); rec.Code != 200 {
		t.Fatalf("probe: got %d", rec.Code)
	}
	for i := range 5 {
		if rec := get(g, "http://api.shop/"); rec.Code != 200 || rec.Header().Get("X-Resilience-Circuit") != "" {
			t.Fatalf("closed %d: got %d", i, rec.Code)
		}
	}
	if got := log.transitions(); got != "Closed>Open Open>HalfOpen HalfOpen>Closed" {
		t.Fatalf("events %q", got)
	}
	if len(g.BreakerStates()) != 0 {
		t.Fatalf("BreakerStates not empty once closed")
	}
	log.mu.Lock()
	e := log.events[0]
	log.mu.Unlock()
	if e.Policy.Kind != "CircuitBreaker" || e.Namespace != "shop" || e.Endpoint != "" || !strings.Contains(e.Cause, "3 consecutive failures") || !e.At.Equal(t0) {
		t.Fatalf("event %+v", e)
	}
}

// What counts as a failure: the configured codes, connect errors, per-try timeouts; a 404 does not.
func TestBreakerFailureCriteria(t *testing.T) {
	t.Parallel()
	tests := []struct {
		desc     string
		mutate   func(*snapshot.CircuitBreaker)
		handler  http.HandlerFunc // nil: connection refused
		wantOpen bool
	}{
		{desc: "500 counts", handler: status(500), wantOpen: true},
		{desc: "404 does not", handler: status(404)},
		{desc: "only listed codes", mutate: func(c *snapshot.CircuitBreaker) { c.FailureStatusCodes = []string{"503"} }, handler: status(500)},
		{desc: "connect errors count", wantOpen: true},
		{desc: "connect errors may not", mutate: func(c *snapshot.CircuitBreaker) { c.FailOnConnectError = false }},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			t.Parallel()
			mem := newMem()
			if tt.handler != nil {
				mem.handle(epAddr(1), tt.handler)
			}
			cb := circuitBreaker(2)
			if tt.mutate != nil {
				tt.mutate(cb)
			}
			g := newGW(t, Options{Clock: clock.NewFake(t0)}, mem, withBreaker(cb, ep(1)))
			get(g, "http://api.shop/")
			get(g, "http://api.shop/")
			rec := get(g, "http://api.shop/")
			if open := rec.Header().Get("X-Resilience-Circuit") == "open"; open != tt.wantOpen {
				t.Fatalf("open %v after two tries, want %v (got %d)", open, tt.wantOpen, rec.Code)
			}
		})
	}
}

// With scope Endpoint an open endpoint gets no traffic; when every endpoint is open the request is
// rejected with the fallback.
func TestBreakerScopeEndpoint(t *testing.T) {
	t.Parallel()
	clk := clock.NewFake(t0)
	mem := newMem()
	var good, bad atomic.Int32
	mem.handle(epAddr(1), func(w http.ResponseWriter, r *http.Request) { good.Add(1); ok200(w, r) })
	mem.handle(epAddr(2), func(w http.ResponseWriter, r *http.Request) { bad.Add(1); w.WriteHeader(502) })
	cb := circuitBreaker(2)
	cb.PerEndpoint = true
	var log eventLog
	g := newGW(t, Options{Clock: clk, OnBreakerChange: log.add}, mem, withBreaker(cb, ep(1), ep(2)))
	for range 200 {
		get(g, "http://api.shop/")
		if bad.Load() >= 2 {
			break
		}
	}
	if bad.Load() != 2 {
		t.Fatalf("bad endpoint saw %d calls before opening", bad.Load())
	}
	for i := range 50 {
		if rec := get(g, "http://api.shop/"); rec.Code != 200 {
			t.Fatalf("request %d after the bad endpoint opened: %d", i, rec.Code)
		}
	}
	if bad.Load() != 2 {
		t.Fatalf("open endpoint got traffic: %d calls", bad.Load())
	}
	log.mu.Lock()
	if len(log.events) != 1 || log.events[0].Endpoint != epAddr(2) || log.events[0].To != "Open" {
		t.Fatalf("events %+v", log.events)
	}
	log.mu.Unlock()

	// Both failing, 100% may open: once both are open every request is rejected.
	mem.handle(epAddr(1), status(500))
	cb.MaxOpenPercent = 100
	cb.StateKey += "-all"
	if err := g.Apply(encoded(withBreaker(cb, ep(1), ep(2)))); err != nil {
		t.Fatal(err)
	}
	for range 20 {
		get(g, "http://api.shop/")
	}
	rec := get(g, "http://api.shop/")
	if rec.Code != 503 || rec.Header().Get("X-Resilience-Circuit") != "open" || rec.Header().Get("Retry-After") != "30" {
		t.Fatalf("all open: got %d %q Retry-After %q", rec.Code, rec.Header().Get("X-Resilience-Circuit"), rec.Header().Get("Retry-After"))
	}
}

// maxOpenPercent 50 of two endpoints: only one may open; the other keeps its traffic.
func TestBreakerMaxOpenPercent(t *testing.T) {
	t.Parallel()
	mem := newMem()
	mem.handle(epAddr(1), status(500))
	mem.handle(epAddr(2), status(500))
	cb := circuitBreaker(1)
	cb.PerEndpoint = true
	g := newGW(t, Options{Clock: clock.NewFake(t0)}, mem, withBreaker(cb, ep(1), ep(2)))
	for i := range 20 {
		if rec := get(g, "http://api.shop/"); rec.Code != 500 {
			t.Fatalf("request %d: got %d, want the upstream's 500 (one endpoint must stay in rotation)", i, rec.Code)
		}
	}
	if n := len(g.BreakerStates()); n != 1 {
		t.Fatalf("%d endpoint breakers open, want 1", n)
	}
}

func TestBreakerDryRun(t *testing.T) {
	t.Parallel()
	mem := newMem()
	var calls atomic.Int32
	mem.handle(epAddr(1), func(w http.ResponseWriter, _ *http.Request) { calls.Add(1); w.WriteHeader(500) })
	cb := circuitBreaker(1)
	cb.DryRun = true
	g := newGW(t, Options{Clock: clock.NewFake(t0)}, mem, withBreaker(cb, ep(1)))
	for range 5 {
		if rec := get(g, "http://api.shop/"); rec.Code != 500 {
			t.Fatalf("DryRun rejected: %d", rec.Code)
		}
	}
	if calls.Load() != 5 {
		t.Fatalf("upstream saw %d calls", calls.Load())
	}
	if v := metricValue(t, g, "resilience_gateway_dry_run_rejections_total", map[string]string{"reason": "circuit_open"}); v != 4 {
		t.Fatalf("dry-run count %v, want 4", v)
	}
}

// A full bulkhead rejects with the fallback status, Retry-After 1 and X-Resilience-Circuit: full.
func TestBulkheadFull(t *testing.T) {
	t.Parallel()
	mem := newMem()
	entered, release := make(chan struct{}), make(chan struct{})
	mem.handle(epAddr(1), func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			entered <- struct{}{}
			<-release
		}
		ok200(w, r)
	})
	cb := circuitBreaker(5)
	cb.Concurrency = &snapshot.Concurrency{MaxRequests: 1, MaxQueued: 0}
	g := newGW(t, Options{}, mem, withBreaker(cb, ep(1)))
	done := make(chan int)
	go func() { done <- get(g, "http://api.shop/slow").Code }()
	<-entered
	rec := get(g, "http://api.shop/")
	if rec.Code != 503 || rec.Header().Get("X-Resilience-Circuit") != "full" || rec.Header().Get("Retry-After") != "1" {
		t.Fatalf("got %d circuit %q Retry-After %q", rec.Code, rec.Header().Get("X-Resilience-Circuit"), rec.Header().Get("Retry-After"))
	}
	if !strings.Contains(rec.Body.String(), "concurrency limit of circuit breaker cb is full") {
		t.Fatalf("body %q", rec.Body)
	}
	close(release)
	if code := <-done; code != 200 {
		t.Fatalf("slow request: %d", code)
	}
	if rec := get(g, "http://api.shop/"); rec.Code != 200 {
		t.Fatalf("after release: %d (slot not given back?)", rec.Code)
	}
}

// While open, a GET gets the last 200 for its URL (younger than serveStale) with
// X-Resilience-Stale: true; authenticated or private responses are never stored; Vary is honoured.
func TestServeStale(t *testing.T) {
	t.Parallel()
	clk := clock.NewFake(t0)
	mem := newMem()
	var failing atomic.Bool
	mem.handle(epAddr(1), func(w http.ResponseWriter, r *http.Request) {
		if failing.Load() {
			w.WriteHeader(500)
			return
		}
		switch r.URL.Path {
		case "/private":
			w.Header().Set("Cache-Control", "max-age=60, private")
		case "/nostore":
			w.Header().Set("Cache-Control", "no-store")
		case "/cookie":
			w.Header().Set("Set-Cookie", "s=1")
		case "/vary":
			w.Header().Set("Vary", "Accept-Language")
		}
		w.Header().Set("X-Path", r.URL.RequestURI())
		_, _ = io.WriteString(w, "fresh "+r.URL.RequestURI()+" "+r.Header.Get("Accept-Language"))
	})
	cb := circuitBreaker(1)
	cb.OpenDuration = snapshot.Duration(10 * time.Minute)
	cb.ServeStale = snapshot.Duration(time.Minute)
	g := newGW(t, Options{Clock: clk}, mem, withBreaker(cb, ep(1)))
	// /old is stored 45 s before the others; at the checks it is 65 s old, the others 20 s.
	for _, r := range []struct{ path, hdr string }{
		{"/old", ""}, {"/a?x=1", ""}, {"/private", ""}, {"/nostore", ""}, {"/cookie", ""}, {"/auth", "Authorization: Bearer t"},
		{"/cookiereq", "Cookie: c=1"}, {"/vary", "Accept-Language: en"},
	} {
		var hdr []string
		if r.hdr != "" {
			hdr = append(hdr, r.hdr)
		}
		if rec := get(g, "http://api.shop"+r.path, hdr...); rec.Code != 200 {
			t.Fatalf("warm %s: %d", r.path, rec.Code)
		}
		if r.path == "/old" {
			clk.Advance(45 * time.Second)
		}
	}
	failing.Store(true)
	if rec := get(g, "http://api.shop/trip"); rec.Code != 500 {
		t.Fatalf("trip: %d", rec.Code)
	}
	tests := []struct {
		desc, path string
		hdr        []string
		wantStale  bool
		wantBody   string
	}{
		{desc: "stored 200", path: "/a?x=1", wantStale: true, wantBody: "fresh /a?x=1 "},
		{desc: "other query", path: "/a?x=2"},
		{desc: "Cache-Control private", path: "/private"},
		{desc: "Cache-Control no-store", path: "/nostore"},
		{desc: "Set-Cookie", path: "/cookie"},
		{desc: "request with Authorization", path: "/auth", hdr: []string{"Authorization: Bearer t"}},
		{desc: "request with Cookie", path: "/cookiereq", hdr: []string{"Cookie: c=1"}},
		{desc: "Vary matches", path: "/vary", hdr: []string{"Accept-Language: en"}, wantStale: true, wantBody: "fresh /vary en"},
		{desc: "Vary differs", path: "/vary", hdr: []string{"Accept-Language: fr"}},
		{desc: "older than serveStale", path: "/old"},
	}
	clk.Advance(20 * time.Second)
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			rec := get(g, "http://api.shop"+tt.path, tt.hdr...)
			stale := rec.Header().Get("X-Resilience-Stale") == "true"
			if !tt.wantStale {
				if stale || rec.Code != 503 || rec.Header().Get("X-Resilience-Circuit") != "open" {
					t.Fatalf("got %d stale %v, want the open-circuit 503", rec.Code, stale)
				}
				return
			}
			if rec.Code != 200 || !stale || rec.Body.String() != tt.wantBody || rec.Header().Get("X-Path") == "" {
				t.Fatalf("got %d stale %v body %q", rec.Code, stale, rec.Body)
			}
		})
	}
}

// All patterns on one port: the rate limit admits exactly its burst, each admitted request is
// retried past a first failure through the bulkhead and breaker, and every response carries the
// rate-limit headers and X-Resilience-Attempts.
func TestAllPatternsTogether(t *testing.T) {
	t.Parallel()
	clk := clock.NewFake(t0)
	mem := newMem()
	h, tries := failFirst(1, 502)
	mem.handle(epAddr(1), h)
	mem.handle(epAddr(2), h)
	p := port(ep(1), ep(2))
	p.RateLimit = rateLimit(limit("total", 5, time.Minute, 5))
	p.CircuitBreaker = circuitBreaker(3)
	p.CircuitBreaker.FailureStatusCodes = []string{"500", "503"}
	p.CircuitBreaker.Concurrency = &snapshot.Concurrency{MaxRequests: 10, MaxQueued: 10, QueueTimeout: snapshot.Duration(time.Second)}
	p.Retry = retry(3)
	p.Retry.PerTryTimeout, p.Retry.Timeout = snapshot.Duration(time.Minute), snapshot.Duration(2*time.Minute)
	p.Retry.HedgeDelay, p.Retry.MaxHedges = snapshot.Duration(time.Hour), 1
	g := newGW(t, Options{Clock: clk}, mem, snap(1, p))
	for i := range 5 {
		rec := get(g, "http://api.shop/", "X-Req: "+itoa(i))
		if rec.Code != 200 || rec.Header().Get("X-Resilience-Attempts") != "2" || rec.Header().Get("X-RateLimit-Remaining") != itoa(4-i) {
			t.Fatalf("request %d: got %d attempts %q remaining %q", i, rec.Code, rec.Header().Get("X-Resilience-Attempts"), rec.Header().Get("X-RateLimit-Remaining"))
		}
	}
	rec := get(g, "http://api.shop/", "X-Req: 9")
	if rec.Code != 429 || rec.Header().Get("X-Resilience-Attempts") != "0" || rec.Header().Get("X-RateLimit-Limit") != "5" {
		t.Fatalf("6th: got %d attempts %q", rec.Code, rec.Header().Get("X-Resilience-Attempts"))
	}
	if tries.Load() != 10 {
		t.Fatalf("upstream saw %d tries, want 10", tries.Load())
	}
	if len(g.BreakerStates()) != 0 {
		t.Fatal("502 is not a failure of this breaker, yet it opened")
	}
}
