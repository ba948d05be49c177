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
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"resilience.dev/operator/internal/snapshot"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// memTransport answers tries in memory with a handler per endpoint (host:port); an endpoint without
// one refuses the connection, as a closed port would.
type memTransport struct {
	mu       sync.Mutex
	handlers map[string]http.Handler
}

func newMem() *memTransport { return &memTransport{handlers: map[string]http.Handler{}} }

func (m *memTransport) handle(hostPort string, h http.HandlerFunc) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.handlers[hostPort] = h
}

func (m *memTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	m.mu.Lock()
	h := m.handlers[req.URL.Host]
	m.mu.Unlock()
	if req.Body != nil {
		defer req.Body.Close()
	}
	if h == nil {
		return nil, &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if err := req.Context().Err(); err != nil {
		return nil, err
	}
	return rec.Result(), nil
}

// ep returns an IPv4 endpoint 10.0.0.n:8080.
func ep(n int) snapshot.Endpoint {
	return snapshot.Endpoint{Address: fmt.Sprintf("10.0.0.%d", n), Port: 8080, Type: snapshot.AddressIPv4}
}

func epAddr(n int) string { return fmt.Sprintf("10.0.0.%d:8080", n) }

func ref(kind, name string) snapshot.PolicyRef {
	return snapshot.PolicyRef{Kind: kind, Namespace: "shop", Name: name, UID: name + "-uid", Generation: 1}
}

// snap is a snapshot with one Service shop/<name> on port 80 for each port given.
func snap(version uint64, ports ...snapshot.Port) *snapshot.Snapshot {
	return &snapshot.Snapshot{Version: version, Services: []snapshot.Service{{Namespace: "shop", Name: "api", Ports: ports}}}
}

func port(eps ...snapshot.Endpoint) snapshot.Port {
	return snapshot.Port{Name: "http", Port: 80, Endpoints: eps}
}

func limit(name string, requests int64, period time.Duration, burst int64) snapshot.Limit {
	return snapshot.Limit{Name: name, Requests: requests, Period: snapshot.Duration(period), Replicas: 1, Burst: burst,
		MaxKeys: 10000, StateKey: fmt.Sprintf("rl-uid/limit/%s/api:80/%d-%v-%d", name, requests, period, burst)}
}

func rateLimit(limits ...snapshot.Limit) *snapshot.RateLimit {
	return &snapshot.RateLimit{Policy: ref("RateLimit", "rl"), Limits: limits, IPv6PrefixLength: 64}
}

// circuitBreaker has the compiler's defaults, with consecutive failures.
func circuitBreaker(consecutive int) *snapshot.CircuitBreaker {
	return &snapshot.CircuitBreaker{
		Policy:             ref("CircuitBreaker", "cb"),
		FailureStatusCodes: []string{"500-599"}, FailOnConnectError: true, FailOnTimeout: true,
		ConsecutiveFailures: consecutive, OpenDuration: snapshot.Duration(30 * time.Second),
		HalfOpenRequests: 1, SuccessThreshold: 1, MaxOpenPercent: 50, FallbackStatus: 503,
		StateKey: fmt.Sprintf("cb-uid/breaker/api:80/%d", consecutive),
	}
}

// retry has the compiler's defaults but no backoff wait and a budget that never binds, so tests
// count tries exactly.
func retry(maxAttempts int) *snapshot.Retry {
	return &snapshot.Retry{
		Policy: ref("RetryPolicy", "rp"), MaxAttempts: maxAttempts,
		RetryStatusCodes: []string{"502", "503", "504"}, RetryConnect: true, RetryResets: true, RetryTimeouts: true,
		Methods:         []string{"GET", "HEAD", "OPTIONS", "PUT", "DELETE"},
		BackoffStrategy: "Exponential", Jitter: "None",
		BudgetPercent: 100, BudgetMinPerSecond: 100000, BudgetWindow: snapshot.Duration(10 * time.Second),
		RespectRetryAfter: true,
		StateKey:          fmt.Sprintf("rp-uid/budget/api:80/%d", maxAttempts),
	}
}

// newGW returns a gateway over mem (when not nil) with a fake clock (when not nil), with s applied.
func newGW(t testing.TB, o Options, mem http.RoundTripper, s *snapshot.Snapshot) *Gateway {
	t.Helper()
	if mem != nil {
		o.Transport = mem
	}
	g, err := New(o)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(g.Close)
	if s != nil {
		if err := g.Apply(encoded(s)); err != nil {
			t.Fatalf("Apply: %v", err)
		}
	}
	return g
}

// send sends a request through g.ServeHTTP; hdr is "Name: value" pairs.
func send(g http.Handler, method, target string, body io.Reader, hdr ...string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, target, body)
	for _, h := range hdr {
		k, v, _ := strings.Cut(h, ":")
		req.Header.Add(k, strings.TrimSpace(v))
	}
	rec := httptest.NewRecorder()
	g.ServeHTTP(rec, req)
	return rec
}

func get(g http.Handler, target string, hdr ...string) *httptest.ResponseRecorder {
	return send(g, http.MethodGet, target, nil, hdr...)
}

// ok200 answers 200 "ok".
func ok200(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok") }

func status(code int) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(code) }
}

// waitFor polls cond for up to 5 s.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// metricValue returns the value of the series of name with the given labels (all of them), or -1.
func metricValue(t testing.TB, g *Gateway, name string, labels map[string]string) float64 {
	t.Helper()
	mfs, err := g.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			if matchLabels(m, labels) {
				switch {
				case m.Counter != nil:
					return m.Counter.GetValue()
				case m.Gauge != nil:
					return m.Gauge.GetValue()
				case m.Histogram != nil:
					return float64(m.Histogram.GetSampleCount())
				}
			}
		}
	}
	return -1
}

func matchLabels(m *dto.Metric, want map[string]string) bool {
	n := 0
	for _, lp := range m.GetLabel() {
		if v, ok := want[lp.GetName()]; ok {
			if v != lp.GetValue() {
				return false
			}
			n++
		}
	}
	return n == len(want)
}

func atoi(t testing.TB, s string) int {
	t.Helper()
	n, err := strconv.Atoi(s)
	if err != nil {
		t.Fatalf("%q is not a number", s)
	}
	return n
}

// newServer serves h on a real loopback listener and returns its URL.
func newServer(t testing.TB, h http.Handler) string {
	t.Helper()
	s := httptest.NewServer(h)
	t.Cleanup(s.Close)
	return s.URL
}

// encoded is snapshot.Encode for tests, whose snapshots always encode; nil stays nil, for Apply to
// refuse.
func encoded(s *snapshot.Snapshot) *snapshot.Encoded {
	if s == nil {
		return nil
	}
	e, err := snapshot.Encode(s)
	if err != nil {
		panic(err)
	}
	return e
}
