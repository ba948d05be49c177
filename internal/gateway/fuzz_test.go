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
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"resilience.dev/operator/internal/snapshot"
)

// FuzzRequestHeaders sends requests with arbitrary Host, X-Forwarded-For, key header and other header
// values through a gateway with all three policies (the limit keyed by clientIP and a header, with a
// trusted proxy range). Whatever the input: no panic, an answer with a code the contract allows, a
// one-line reason when the gateway answers itself, and no client X-Resilience-* header upstream.
func FuzzRequestHeaders(f *testing.F) {
	f.Add("api.shop", "203.0.113.7", "alice", "Accept", "text/plain", "/orders", "10.1.2.3:5555")
	f.Add("api.shop.svc.cluster.local:80", "1.1.1.1, 10.0.0.9", "", "X-Resilience-Attempts", "7", "/", "192.0.2.1:1")
	f.Add("169.254.169.254", "::1", "bob", "Cookie", "a=b", "/latest/meta-data", "[2001:db8::1]:443")
	f.Add("API.SHOP:99999", "garbage,,,  ,", "\x00", "Idempotency-Key", "k", "//x", "not-an-addr")
	f.Add("api.shop:080", strings.Repeat("10.0.0.1,", 200), strings.Repeat("u", 5000), "Retry-After", "-1", "/%2e%2e/", "10.0.0.1:1")

	mem := newMem()
	mem.handle(epAddr(1), func(w http.ResponseWriter, r *http.Request) {
		for k := range r.Header {
			if isResilienceHeader(k) {
				w.WriteHeader(599) // the test fails on this code: a client's header reached the upstream
				return
			}
		}
		_, _ = w.Write([]byte("ok"))
	})
	l := limit("per-user", 1000, time.Second, 1000)
	l.Key = []snapshot.KeyPart{{ClientIP: true}, {Header: "X-User-ID"}}
	rl := rateLimit(l)
	rl.TrustedProxies = []string{"10.0.0.0/8", "fd00::/8"}
	p := port(ep(1))
	p.RateLimit, p.CircuitBreaker, p.Retry = rl, circuitBreaker(5), retry(2)
	g := newGW(f, Options{}, mem, snap(1, p))

	allowed := map[int]bool{200: true, 400: true, 403: true, 413: true, 429: true, 431: true, 502: true, 503: true, 504: true}
	f.Fuzz(func(t *testing.T, host, xff, user, name, value, path, remote string) {
		req := &http.Request{Method: http.MethodGet, URL: &url.URL{Path: path}, Host: host, RemoteAddr: remote,
			Header: http.Header{}, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1}
		req = req.WithContext(t.Context())
		req.Header["X-Forwarded-For"] = []string{xff}
		req.Header["X-User-Id"] = []string{user}
		if name != "" {
			req.Header[name] = []string{value}
		}
		rec := httptest.NewRecorder()
		g.ServeHTTP(rec, req)
		if !allowed[rec.Code] {
			t.Fatalf("host %q, header %q=%q: status %d, body %q", host, name, value, rec.Code, rec.Body.String())
		}
		if rec.Code != 200 {
			body := strings.TrimSuffix(rec.Body.String(), "\n")
			if body == "" || strings.Contains(body, "\n") {
				t.Fatalf("host %q: gateway answer %d without a one-line reason: %q", host, rec.Code, rec.Body.String())
			}
		}
	})
}
