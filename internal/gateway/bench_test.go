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
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"resilience.dev/operator/internal/snapshot"
)

// staticRT is an in-memory upstream: a fixed 200 with an empty body, allocating only the response.
type staticRT struct{}

func (staticRT) RoundTrip(*http.Request) (*http.Response, error) {
	return &http.Response{StatusCode: 200, Header: http.Header{}, Body: http.NoBody, ContentLength: 0}, nil
}

// discardWriter is a ResponseWriter that keeps one header map and writes nowhere.
type discardWriter struct {
	h    http.Header
	code int
}

func (w *discardWriter) Header() http.Header         { return w.h }
func (w *discardWriter) Write(p []byte) (int, error) { return len(p), nil }
func (w *discardWriter) WriteHeader(code int)        { w.code = code }

func benchGateway(b *testing.B, p snapshot.Port) {
	g, err := New(Options{Transport: staticRT{}})
	if err != nil {
		b.Fatal(err)
	}
	if err := g.Apply(encoded(snap(1, p))); err != nil {
		b.Fatal(err)
	}
	req := httptest.NewRequest(http.MethodGet, "http://api.shop/items?page=2", nil)
	req.Header.Set("X-User-ID", "user-42")
	req.Header.Set("Accept", "application/json")
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		w := &discardWriter{h: http.Header{}}
		for pb.Next() {
			clear(w.h)
			g.ServeHTTP(w, req)
			if w.code != 200 {
				b.Fatalf("got %d", w.code)
			}
		}
	})
}

func BenchmarkGatewayNoPolicy(b *testing.B) {
	benchGateway(b, port(ep(1), ep(2), ep(3)))
}

// allPolicies is a port with every pattern on: a keyed and an unkeyed limit that never refuse,
// a breaker with a bulkhead, retries with per-try and overall timeouts, and hedging (when hedge).
func allPolicies(hedge bool) snapshot.Port {
	p := port(ep(1), ep(2), ep(3))
	perUser := limit("per-user", 1_000_000, time.Second, 1_000_000)
	perUser.Key = []snapshot.KeyPart{{Header: "X-User-ID"}, {ClientIP: true}}
	p.RateLimit = rateLimit(limit("total", 1_000_000_000, time.Second, 1_000_000_000), perUser)
	p.CircuitBreaker = circuitBreaker(5)
	p.CircuitBreaker.Concurrency = &snapshot.Concurrency{MaxRequests: 10000, MaxQueued: 100, QueueTimeout: snapshot.Duration(time.Second)}
	p.Retry = retry(3)
	p.Retry.PerTryTimeout, p.Retry.Timeout = snapshot.Duration(time.Second), snapshot.Duration(2*time.Second)
	if hedge {
		p.Retry.HedgeDelay, p.Retry.MaxHedges = snapshot.Duration(100*time.Millisecond), 1
	}
	return p
}

func BenchmarkGatewayAllPolicies(b *testing.B) {
	benchGateway(b, allPolicies(true))
}

// BenchmarkGatewayAllPoliciesNoHedge is AllPolicies without hedging, whose goroutine per try is the
// largest single cost.
func BenchmarkGatewayAllPoliciesNoHedge(b *testing.B) {
	benchGateway(b, allPolicies(false))
}

// benchPolicies is the "gateway-3-policies" configuration of make bench-gateway: a total and a
// per-user limit that never refuse, a breaker with the defaults (no bulkhead) and a RetryPolicy with
// the defaults (no timeouts, no hedging).
func benchPolicies() snapshot.Port {
	p := port(ep(1))
	perUser := limit("per-user", 1_000_000_000, time.Second, 1_000_000_000)
	perUser.Key = []snapshot.KeyPart{{Header: "X-User-ID"}}
	p.RateLimit = rateLimit(limit("total", 1_000_000_000, time.Second, 1_000_000_000), perUser)
	p.CircuitBreaker = circuitBreaker(5)
	p.Retry = retry(3)
	return p
}

func BenchmarkGatewayBenchPolicies(b *testing.B) {
	benchGateway(b, benchPolicies())
}

// backendRT answers as cmd/demo-backend does: 200 with the headers a Go server sends and a short
// body, so that header copying costs what it costs in make bench-gateway.
type backendRT struct{}

func (backendRT) RoundTrip(*http.Request) (*http.Response, error) {
	return &http.Response{StatusCode: 200, Header: http.Header{
		"Content-Length": {"9"}, "Content-Type": {"text/plain; charset=utf-8"},
		"Date": {"Thu, 26 Nov 2026 02:42:33 GMT"}, "X-Backend": {"bench"},
	}, Body: http.NoBody, ContentLength: 9}, nil
}

func BenchmarkGatewayBenchPoliciesHeaders(b *testing.B) {
	g, err := New(Options{Transport: backendRT{}})
	if err != nil {
		b.Fatal(err)
	}
	if err := g.Apply(encoded(snap(1, benchPolicies()))); err != nil {
		b.Fatal(err)
	}
	req := httptest.NewRequest(http.MethodGet, "http://api.shop/", nil)
	req.Header.Set("X-User-ID", "user-42")
	req.Header.Set("User-Agent", "loadgen")
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		w := &discardWriter{h: http.Header{}}
		for pb.Next() {
			w.h = http.Header{} // a new map per response, as net/http's server makes
			g.ServeHTTP(w, req)
			if w.code != 200 {
				b.Fatalf("got %d", w.code)
			}
		}
	})
}

// benchBodyRT is backendRT with the 9-byte body the demo backend sends, so that the body copy runs.
type benchBodyRT struct{}

func (benchBodyRT) RoundTrip(*http.Request) (*http.Response, error) {
	return &http.Response{StatusCode: 200, Header: http.Header{
		"Content-Length": {"9"}, "Content-Type": {"text/plain; charset=utf-8"},
		"Date": {"Thu, 26 Nov 2026 02:42:33 GMT"}, "X-Backend": {"bench"},
	}, Body: io.NopCloser(strings.NewReader("hello, 42")), ContentLength: 9}, nil
}

// benchServer measures the gateway behind its own http.Server (HTTPServer) on a loopback listener,
// driven by a raw keep-alive HTTP/1.1 client per goroutine, as make bench-gateway's load generator
// is: the figures include net/http's server (request parsing, response header map, Clone, flush) and
// the loopback syscalls, which the handler-only benchmarks leave out. o.Transport is the upstream
// (nil: the built-in transport, with o.UpstreamClient, to a real loopback backend).
func benchServer(b *testing.B, p snapshot.Port, o Options) {
	o.LocalDev = true
	if o.Transport == nil {
		backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("X-Backend", "bench")
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			_, _ = io.WriteString(w, "hello, 42")
		}))
		b.Cleanup(backend.Close)
		p.Endpoints = []snapshot.Endpoint{localEndpoint(b, backend)}
	}
	g, err := New(o)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(g.Close)
	if err := g.Apply(encoded(snap(1, p))); err != nil {
		b.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	srv := g.HTTPServer("")
	go func() { _ = srv.Serve(l) }()
	b.Cleanup(func() { _ = srv.Close() })
	reqBytes := []byte("GET /items HTTP/1.1\r\nHost: api.shop\r\nUser-Agent: loadgen\r\nX-User-ID: user-42\r\n\r\n")
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		c, err := net.Dial("tcp", l.Addr().String())
		if err != nil {
			b.Error(err)
			return
		}
		defer c.Close()
		br := bufio.NewReaderSize(c, 4096)
		for pb.Next() {
			if _, err := c.Write(reqBytes); err != nil {
				b.Error(err)
				return
			}
			if err := readRawResponse(br); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// readRawResponse reads one 200 response with a Content-Length, allocating nothing.
func readRawResponse(br *bufio.Reader) error {
	clen := -1
	for first := true; ; first = false {
		line, err := br.ReadSlice('\n')
		if err != nil {
			return err
		}
		if first {
			if len(line) < 12 || string(line[9:12]) != "200" {
				return fmt.Errorf("status line %q", line)
			}
			continue
		}
		if len(line) <= 2 {
			break
		}
		const cl = "content-length:"
		if len(line) > len(cl) && strings.EqualFold(string(line[:len(cl)]), cl) {
			n, err := strconv.Atoi(strings.TrimSpace(string(line[len(cl):])))
			if err != nil {
				return err
			}
			clen = n
		}
	}
	if clen < 0 {
		return errors.New("no Content-Length")
	}
	_, err := br.Discard(clen)
	return err
}

// BenchmarkServerBenchPolicies is the gateway-3-policies configuration behind the gateway's own
// server, with an in-memory upstream.
func BenchmarkServerBenchPolicies(b *testing.B) {
	benchServer(b, benchPolicies(), Options{Transport: benchBodyRT{}})
}

// BenchmarkServerNoPolicy is a managed Service without policies behind the gateway's own server.
func BenchmarkServerNoPolicy(b *testing.B) {
	benchServer(b, port(ep(1)), Options{Transport: benchBodyRT{}})
}

// BenchmarkServerBenchPoliciesBackend is the whole data path of make bench-gateway in one process:
// the gateway's server, its built-in transport and a real loopback backend (whose own server's
// costs are counted too).
func BenchmarkServerBenchPoliciesBackend(b *testing.B) { benchServer(b, benchPolicies(), Options{}) }
