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
	"bytes"
	"context"
	"io"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"resilience.dev/operator/internal/patterns/clock"
	"resilience.dev/operator/internal/snapshot"
)

func withRetry(r *snapshot.Retry, eps ...snapshot.Endpoint) *snapshot.Snapshot {
	p := port(eps...)
	p.Retry = r
	return snap(1, p)
}

// failFirst fails the first n tries of every request (told apart by X-Req) with code.
func failFirst(n int, code int) (http.HandlerFunc, *atomic.Int32) {
	var mu sync.Mutex
	seen := map[string]int{}
	var total atomic.Int32
	return func(w http.ResponseWriter, r *http.Request) {
		total.Add(1)
		mu.Lock()
		seen[r.Header.Get("X-Req")]++
		k := seen[r.Header.Get("X-Req")]
		mu.Unlock()
		if k <= n {
			w.WriteHeader(code)
			return
		}
		_, _ = io.WriteString(w, "ok")
	}, &total
}

// A backend failing the first two tries of every request answers on the third:
// X-Resilience-Attempts: 3.
func TestRetryThirdTry(t *testing.T) {
	t.Parallel()
	mem := newMem()
	h, total := failFirst(2, 503)
	mem.handle(epAddr(1), h)
	g := newGW(t, Options{Clock: clock.NewFake(t0)}, mem, withRetry(retry(3), ep(1)))
	for i := range 10 {
		rec := get(g, "http://api.shop/", "X-Req: "+itoa(i))
		if rec.Code != 200 || rec.Header().Get("X-Resilience-Attempts") != "3" {
			t.Fatalf("request %d: got %d attempts %q", i, rec.Code, rec.Header().Get("X-Resilience-Attempts"))
		}
	}
	if total.Load() != 30 {
		t.Fatalf("upstream saw %d tries, want 30", total.Load())
	}
	if v := metricValue(t, g, "resilience_gateway_retries_total", map[string]string{"reason": "status"}); v != 20 {
		t.Fatalf("retries metric %v, want 20", v)
	}
	// Out of attempts, the last response is returned.
	mem.handle(epAddr(1), status(503))
	rec := get(g, "http://api.shop/")
	if rec.Code != 503 || rec.Header().Get("X-Resilience-Attempts") != "3" {
		t.Fatalf("exhausted: got %d attempts %q", rec.Code, rec.Header().Get("X-Resilience-Attempts"))
	}
}

// A backend failing 50% of tries at random, with 3 attempts: each request fails only if its three
// tries all fail (p = 1/8), so successes are Binomial(2000, 0.875): mean 1750, sd
// sqrt(2000*0.875*0.125) = 14.8. The bound of 5 sd (74) is exceeded with probability below 1e-6.
func TestRetryRandomFailures(t *testing.T) {
	t.Parallel()
	mem := newMem()
	rng := rand.New(rand.NewPCG(1, 2))
	var mu sync.Mutex
	mem.handle(epAddr(1), func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		fail := rng.IntN(2) == 0
		mu.Unlock()
		if fail {
			w.WriteHeader(503)
			return
		}
		ok200(w, r)
	})
	r := retry(3)
	r.BudgetPercent, r.BudgetMinPerSecond = 100, 10 // 0.75 retries per request fit in a 100% budget
	g := newGW(t, Options{Clock: clock.NewFake(t0)}, mem, withRetry(r, ep(1)))
	const n = 2000
	ok := 0
	for range n {
		if get(g, "http://api.shop/").Code == 200 {
			ok++
		}
	}
	mean, sd := n*0.875, math.Sqrt(n*0.875*0.125)
	if math.Abs(float64(ok)-mean) > 5*sd {
		t.Fatalf("%d of %d succeeded, want %.0f ± %.0f", ok, n, mean, 5*sd)
	}
}

// firstTryFails is a transport whose first try fails with err (a connect error, a reset); later
// tries get 200. It records the endpoints tried.
func firstTryFails(err error) (http.RoundTripper, func() []string) {
	var mu sync.Mutex
	var hosts []string
	rt := roundTripFunc(func(r *http.Request) (*http.Response, error) {
		mu.Lock()
		hosts = append(hosts, r.URL.Host)
		n := len(hosts)
		mu.Unlock()
		if r.Body != nil {
			r.Body.Close()
		}
		if n == 1 {
			return nil, err
		}
		return &http.Response{StatusCode: 200, Header: http.Header{}, Body: http.NoBody}, nil
	})
	return rt, func() []string { mu.Lock(); defer mu.Unlock(); return slices.Clone(hosts) }
}

func TestRetryWhichRequests(t *testing.T) {
	t.Parallel()
	connectErr := &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}
	tests := []struct {
		desc, method string
		hdr          []string
		methods      []string // retryable methods instead of the default idempotent ones
		firstFails   error    // the first try fails with this error; nil: the first try gets firstCode
		firstCode    int
		wantCode     int
		wantAttempts string
	}{
		{desc: "GET retried", method: "GET", firstCode: 503, wantCode: 200, wantAttempts: "2"},
		{desc: "PUT retried", method: "PUT", firstCode: 503, wantCode: 200, wantAttempts: "2"},
		{desc: "POST not retried", method: "POST", firstCode: 503, wantCode: 503, wantAttempts: "1"},
		{desc: "PATCH not retried", method: "PATCH", firstCode: 503, wantCode: 503, wantAttempts: "1"},
		{desc: "POST retried when listed", method: "POST", methods: []string{"GET", "POST"}, firstCode: 503, wantCode: 200, wantAttempts: "2"},
		{desc: "PUT not retried when not listed", method: "PUT", methods: []string{"GET", "POST"}, firstCode: 503, wantCode: 503, wantAttempts: "1"},
		{desc: "POST with Idempotency-Key retried", method: "POST", hdr: []string{"Idempotency-Key: k1"}, firstCode: 503, wantCode: 200, wantAttempts: "2"},
		{desc: "PATCH with Idempotency-Key retried", method: "PATCH", hdr: []string{"Idempotency-Key: k2"}, firstCode: 503, wantCode: 200, wantAttempts: "2"},
		{desc: "status not in retryOn", method: "GET", firstCode: 500, wantCode: 500, wantAttempts: "1"},
		{desc: "connect error retried for POST", method: "POST", firstFails: connectErr, wantCode: 200, wantAttempts: "2"},
		{desc: "reset retried for GET", method: "GET", firstFails: syscall.ECONNRESET, wantCode: 200, wantAttempts: "2"},
		{desc: "reset not retried for POST", method: "POST", firstFails: io.ErrUnexpectedEOF, wantCode: 502, wantAttempts: "1"},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			t.Parallel()
			var rt http.RoundTripper
			hosts := func() []string { return nil }
			if tt.firstFails != nil {
				rt, hosts = firstTryFails(tt.firstFails)
			} else {
				mem := newMem()
				h, _ := failFirst(1, tt.firstCode)
				mem.handle(epAddr(1), h)
				mem.handle(epAddr(2), h)
				rt = mem
			}
			r := retry(3)
			if tt.methods != nil {
				r.Methods = tt.methods
			}
			g := newGW(t, Options{Clock: clock.NewFake(t0)}, rt, withRetry(r, ep(1), ep(2)))
			rec := send(g, tt.method, "http://api.shop/", nil, tt.hdr...)
			if rec.Code != tt.wantCode || rec.Header().Get("X-Resilience-Attempts") != tt.wantAttempts {
				t.Fatalf("got %d attempts %q, want %d attempts %s", rec.Code, rec.Header().Get("X-Resilience-Attempts"), tt.wantCode, tt.wantAttempts)
			}
			if h := hosts(); len(h) == 2 && h[0] == h[1] {
				t.Fatalf("retried on the same endpoint: %v", h)
			}
		})
	}
}

// Retries go to another endpoint when there is one.
func TestRetryAnotherEndpoint(t *testing.T) {
	t.Parallel()
	mem := newMem()
	var mu sync.Mutex
	tries := map[string][]string{}
	rec := func(code int) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			mu.Lock()
			tries[r.Header.Get("X-Req")] = append(tries[r.Header.Get("X-Req")], r.URL.Host)
			mu.Unlock()
			w.WriteHeader(code)
		}
	}
	mem.handle(epAddr(1), rec(503))
	mem.handle(epAddr(2), rec(503))
	mem.handle(epAddr(3), rec(503))
	g := newGW(t, Options{Clock: clock.NewFake(t0)}, mem, withRetry(retry(3), ep(1), ep(2), ep(3)))
	for i := range 30 {
		get(g, "http://api.shop/", "X-Req: "+itoa(i))
	}
	mu.Lock()
	defer mu.Unlock()
	for id, hosts := range tries {
		if len(hosts) != 3 || hosts[0] == hosts[1] || hosts[1] == hosts[2] || hosts[0] == hosts[2] {
			t.Fatalf("request %s tried %v, want three different endpoints", id, hosts)
		}
	}
}

// Bodies up to 64 KiB are sent again in full; a larger one is sent once, never retried.
func TestRetryBodies(t *testing.T) {
	t.Parallel()
	tests := []struct {
		desc         string
		size         int
		chunked      bool
		wantTries    int32
		wantAttempts string
	}{
		{desc: "64 KiB buffered and resent", size: 64 << 10, wantTries: 3, wantAttempts: "3"},
		{desc: "64 KiB + 1 sent once", size: 64<<10 + 1, wantTries: 1, wantAttempts: "1"},
		{desc: "64 KiB + 1 chunked sent once", size: 64<<10 + 1, chunked: true, wantTries: 1, wantAttempts: "1"},
		{desc: "small chunked body resent", size: 100, chunked: true, wantTries: 3, wantAttempts: "3"},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			t.Parallel()
			body := bytes.Repeat([]byte("x"), tt.size)
			mem := newMem()
			var tries atomic.Int32
			mem.handle(epAddr(1), func(w http.ResponseWriter, r *http.Request) {
				tries.Add(1)
				got, err := io.ReadAll(r.Body)
				if err != nil || !bytes.Equal(got, body) {
					t.Errorf("try %d: body of %d bytes (%v), want %d", tries.Load(), len(got), err, len(body))
				}
				w.WriteHeader(503)
			})
			g := newGW(t, Options{Clock: clock.NewFake(t0)}, mem, withRetry(retry(3), ep(1)))
			var rd io.Reader = bytes.NewReader(body)
			if tt.chunked {
				rd = io.MultiReader(rd) // hides the length: httptest.NewRequest leaves ContentLength -1
			}
			rec := send(g, http.MethodPut, "http://api.shop/", rd)
			if tries.Load() != tt.wantTries || rec.Header().Get("X-Resilience-Attempts") != tt.wantAttempts {
				t.Fatalf("upstream saw %d tries, attempts %q", tries.Load(), rec.Header().Get("X-Resilience-Attempts"))
			}
		})
	}
}

// respectRetryAfter: a retryable response's Retry-After is waited exactly when it fits (within the
// backoff maximum without a timeout, within the time left with one); otherwise it is returned.
func TestRetryAfterFromUpstream(t *testing.T) {
	t.Parallel()
	tests := []struct {
		desc         string
		retryAfter   string
		timeout      time.Duration
		wantWait     time.Duration // 0: no retry
		wantAttempts string
	}{
		{desc: "delta-seconds within backoff max", retryAfter: "1", wantWait: time.Second, wantAttempts: "2"},
		{desc: "HTTP-date within backoff max", retryAfter: t0.Add(time.Second).Format(http.TimeFormat), wantWait: time.Second, wantAttempts: "2"},
		{desc: "longer than backoff max", retryAfter: "2", wantAttempts: "1"},
		{desc: "fits the timeout", retryAfter: "2", timeout: 3 * time.Second, wantWait: 2 * time.Second, wantAttempts: "2"},
		{desc: "beyond the timeout", retryAfter: "3", timeout: 3 * time.Second, wantAttempts: "1"},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			t.Parallel()
			clk := clock.NewFake(t0)
			mem := newMem()
			var n atomic.Int32
			mem.handle(epAddr(1), func(w http.ResponseWriter, r *http.Request) {
				if n.Add(1) == 1 {
					w.Header().Set("Retry-After", tt.retryAfter)
					w.WriteHeader(503)
					return
				}
				ok200(w, r)
			})
			r := retry(3)
			r.BackoffMax = snapshot.Duration(time.Second)
			r.Timeout = snapshot.Duration(tt.timeout)
			g := newGW(t, Options{Clock: clk}, mem, withRetry(r, ep(1)))
			done := make(chan *httpResult, 1)
			go func() { rec := get(g, "http://api.shop/"); done <- &httpResult{rec.Code, rec.Header()} }()
			timers := 0
			if tt.timeout > 0 {
				timers = 1 // the overall timeout's own timer
			}
			if tt.wantWait > 0 {
				waitFor(t, "the retry to wait", func() bool { return clk.Pending() == timers+1 })
				clk.Advance(tt.wantWait - time.Millisecond)
				select {
				case <-done:
					t.Fatal("retried before Retry-After passed")
				case <-time.After(20 * time.Millisecond):
				}
				clk.Advance(time.Millisecond)
			}
			res := <-done
			wantCode := 200
			if tt.wantWait == 0 {
				wantCode = 503
			}
			if res.code != wantCode || res.header.Get("X-Resilience-Attempts") != tt.wantAttempts {
				t.Fatalf("got %d attempts %q", res.code, res.header.Get("X-Resilience-Attempts"))
			}
		})
	}
}

type httpResult struct {
	code   int
	header http.Header
}

// The budget bounds retries; the gateway's own rejections are never retried.
func TestRetryBudgetAndRejections(t *testing.T) {
	t.Parallel()
	mem := newMem()
	var tries atomic.Int32
	mem.handle(epAddr(1), func(w http.ResponseWriter, _ *http.Request) { tries.Add(1); w.WriteHeader(503) })
	r := retry(3)
	r.BudgetPercent, r.BudgetMinPerSecond = 0, 0
	g := newGW(t, Options{Clock: clock.NewFake(t0)}, mem, withRetry(r, ep(1)))
	if rec := get(g, "http://api.shop/"); rec.Code != 503 || rec.Header().Get("X-Resilience-Attempts") != "1" {
		t.Fatalf("no budget: got %d attempts %q", rec.Code, rec.Header().Get("X-Resilience-Attempts"))
	}
	if v := metricValue(t, g, "resilience_gateway_retries_skipped_total", map[string]string{"reason": "budget_exhausted"}); v != 1 {
		t.Fatalf("budget metric %v", v)
	}

	// A breaker that opens on the first 503 makes the retry fail fast: one try reaches the upstream.
	p := port(ep(1))
	p.Retry, p.CircuitBreaker = retry(3), circuitBreaker(1)
	p.CircuitBreaker.FailureStatusCodes = []string{"503"}
	p.RateLimit = rateLimit(limit("one", 1, time.Hour, 1))
	tries.Store(0)
	if err := g.Apply(encoded(snap(2, p))); err != nil {
		t.Fatal(err)
	}
	rec := get(g, "http://api.shop/")
	if rec.Code != 503 || rec.Header().Get("X-Resilience-Circuit") != "open" || tries.Load() != 1 || rec.Header().Get("X-Resilience-Attempts") != "1" {
		t.Fatalf("breaker: got %d circuit %q, %d tries, attempts %q", rec.Code, rec.Header().Get("X-Resilience-Circuit"), tries.Load(), rec.Header().Get("X-Resilience-Attempts"))
	}
	// The rate limit's 429 comes before any try, and still says how many were made.
	rec = get(g, "http://api.shop/")
	if rec.Code != 429 || rec.Header().Get("X-Resilience-Attempts") != "0" || tries.Load() != 1 {
		t.Fatalf("rate limit: got %d attempts %q, %d tries", rec.Code, rec.Header().Get("X-Resilience-Attempts"), tries.Load())
	}
}

// slowUntilCancelled answers after d, or records a cancellation when the try is cut first.
func slowUntilCancelled(d time.Duration, cancelled *atomic.Int32) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-time.After(d):
			ok200(w, r)
		case <-r.Context().Done():
			cancelled.Add(1)
		}
	}
}

// Per-try and overall timeouts answer 504 on time (real clock: the upstream's delay is real).
func TestTimeouts(t *testing.T) {
	t.Parallel()
	tests := []struct {
		desc           string
		perTry, total  time.Duration
		attempts       int
		wantAfter      time.Duration
		wantBody       string
		wantAttemptsGE int
	}{
		{desc: "per-try timeout", perTry: 50 * time.Millisecond, attempts: 1, wantAfter: 50 * time.Millisecond, wantBody: "per-try timeout of 50ms", wantAttemptsGE: 1},
		{desc: "per-try timeouts retried, then 504", perTry: 30 * time.Millisecond, attempts: 3, wantAfter: 90 * time.Millisecond, wantBody: "per-try timeout of 30ms", wantAttemptsGE: 3},
		{desc: "overall timeout", total: 80 * time.Millisecond, attempts: 1, wantAfter: 80 * time.Millisecond, wantBody: "timeout of 80ms", wantAttemptsGE: 1},
		{desc: "overall timeout cuts retries", perTry: 30 * time.Millisecond, total: 100 * time.Millisecond, attempts: 10, wantAfter: 100 * time.Millisecond, wantBody: "no response within the timeout of 100ms", wantAttemptsGE: 2}, // about 3 on an idle machine; late timers under load leave 2
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			t.Parallel()
			mem := newMem()
			var cancelled atomic.Int32
			mem.handle(epAddr(1), slowUntilCancelled(5*time.Second, &cancelled))
			r := retry(tt.attempts)
			r.PerTryTimeout, r.Timeout = snapshot.Duration(tt.perTry), snapshot.Duration(tt.total)
			g := newGW(t, Options{}, mem, withRetry(r, ep(1)))
			start := time.Now()
			rec := get(g, "http://api.shop/")
			took := time.Since(start)
			if rec.Code != 504 || !strings.Contains(rec.Body.String(), tt.wantBody) {
				t.Fatalf("got %d %q", rec.Code, rec.Body)
			}
			if took < tt.wantAfter || took > tt.wantAfter+400*time.Millisecond {
				t.Fatalf("504 after %v, want about %v", took, tt.wantAfter)
			}
			if n := atoi(t, rec.Header().Get("X-Resilience-Attempts")); n < tt.wantAttemptsGE {
				t.Fatalf("attempts %d", n)
			}
			waitFor(t, "tries to be cancelled", func() bool { return cancelled.Load() == int32(atoi(t, rec.Header().Get("X-Resilience-Attempts"))) })
		})
	}
}

// A body that stalls after the headers is cut when the overall timeout is set: the client's
// stream is reset rather than left hanging.
func TestTimeoutStalledBody(t *testing.T) {
	t.Parallel()
	unblock := make(chan struct{})
	t.Cleanup(func() { close(unblock) })
	rt := roundTripFunc(func(r *http.Request) (*http.Response, error) {
		pr, pw := io.Pipe()
		go func() {
			_, _ = io.WriteString(pw, "partial")
			select {
			case <-r.Context().Done():
				pw.CloseWithError(context.Cause(r.Context()))
			case <-unblock:
				pw.Close()
			}
		}()
		return &http.Response{StatusCode: 200, Header: http.Header{}, Body: pr, ContentLength: -1}, nil
	})
	r := retry(1)
	r.Timeout = snapshot.Duration(50 * time.Millisecond)
	g := newGW(t, Options{}, rt, withRetry(r, ep(1)))
	srv := newServer(t, g)
	start := time.Now()
	req, _ := http.NewRequest(http.MethodGet, srv+"/", nil)
	req.Host = "api.shop"
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || err == nil {
		t.Fatalf("got %d %q, %v: a stalled body was not cut", resp.StatusCode, body, err)
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Fatalf("cut after %v", took)
	}
}

// Hedging: when the first endpoint is slow, a copy goes to the other after the hedge delay, the
// fast answer wins and the slow try is cancelled.
func TestHedging(t *testing.T) {
	t.Parallel()
	mem := newMem()
	var cancelled, slowCalls atomic.Int32
	slow := slowUntilCancelled(5*time.Second, &cancelled)
	mem.handle(epAddr(1), func(w http.ResponseWriter, r *http.Request) { slowCalls.Add(1); slow(w, r) })
	mem.handle(epAddr(2), ok200)
	r := retry(2)
	r.HedgeDelay, r.MaxHedges = snapshot.Duration(20*time.Millisecond), 1
	g := newGW(t, Options{}, mem, withRetry(r, ep(1), ep(2)))
	hedged := 0
	for i := 0; i < 40 && hedged < 3; i++ {
		start := time.Now()
		rec := get(g, "http://api.shop/")
		if rec.Code != 200 {
			t.Fatalf("got %d", rec.Code)
		}
		if took := time.Since(start); took > time.Second {
			t.Fatalf("took %v: the hedge did not win", took)
		}
		if rec.Header().Get("X-Resilience-Attempts") == "2" {
			hedged++
		}
	}
	if hedged == 0 {
		t.Fatal("no request hedged in 40 (the slow endpoint was never drawn first)")
	}
	waitFor(t, "losers cancelled", func() bool { return cancelled.Load() == slowCalls.Load() })
	if v := metricValue(t, g, "resilience_gateway_hedges_total", map[string]string{"target_service": "api"}); v != float64(hedged) {
		t.Fatalf("hedges metric %v, want %d", v, hedged)
	}
	// POST is never hedged, however slow: with both endpoints answering after 3 hedge delays, a POST
	// makes one try where a GET makes two.
	slowish := func(w http.ResponseWriter, r *http.Request) { time.Sleep(60 * time.Millisecond); ok200(w, r) }
	mem.handle(epAddr(1), slowish)
	mem.handle(epAddr(2), slowish)
	if rec := send(g, http.MethodPost, "http://api.shop/", nil); rec.Code != 200 || rec.Header().Get("X-Resilience-Attempts") != "1" {
		t.Fatalf("POST: %d attempts %q", rec.Code, rec.Header().Get("X-Resilience-Attempts"))
	}
	if rec := get(g, "http://api.shop/"); rec.Code != 200 || rec.Header().Get("X-Resilience-Attempts") != "2" {
		t.Fatalf("GET: %d attempts %q", rec.Code, rec.Header().Get("X-Resilience-Attempts"))
	}
}
