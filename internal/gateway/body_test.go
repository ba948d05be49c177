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
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"resilience.dev/operator/internal/snapshot"
)

// recordingBackend counts the requests it gets and the bodies it read whole, and answers 200 with
// the number of body bytes read.
type recordingBackend struct {
	requests  atomic.Int32 // requests whose headers arrived
	complete  atomic.Int32 // requests whose body was read to its end
	truncated atomic.Int32 // requests whose body read failed (aborted upstream request)
	maxCL     atomic.Int64 // the largest Content-Length seen
}

func (b *recordingBackend) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b.requests.Add(1)
	for {
		old := b.maxCL.Load()
		if r.ContentLength <= old || b.maxCL.CompareAndSwap(old, r.ContentLength) {
			break
		}
	}
	n, err := io.Copy(io.Discard, r.Body)
	if err != nil {
		b.truncated.Add(1)
		return
	}
	b.complete.Add(1)
	_, _ = io.WriteString(w, strconv.FormatInt(n, 10))
}

// hideLength makes a body of unknown length, which net/http's client sends chunked.
type hideLength struct{ r io.Reader }

func (h hideLength) Read(p []byte) (int, error) { return h.r.Read(p) }

// The request body limit over real connections: a Content-Length above it is refused with 413 and
// never reaches the upstream; a chunked body is cut as it passes it, the upstream request aborted,
// the try neither retried nor counted by the breaker.
func TestRequestBodyLimit(t *testing.T) {
	t.Parallel()
	const limit = 1024
	const bigLimit = MaxReplayBody + 32<<10 // above what is buffered for retries: the rest streams
	noPolicy := func(e snapshot.Endpoint) snapshot.Port { return port(e) }
	withPolicies := func(e snapshot.Endpoint) snapshot.Port {
		p := port(e)
		p.Retry = retry(3)
		p.CircuitBreaker = circuitBreaker(1) // one failure would open it
		return p
	}
	cases := []struct {
		desc    string
		limit   int64
		policy  func(snapshot.Endpoint) snapshot.Port
		size    int
		chunked bool
		expect  bool // Expect: 100-continue

		wantCode     int
		wantMsg      string // for 413: in the one-line body
		wantUpstream int32  // requests the upstream got
		wantComplete int32  // bodies it read whole
		wantAttempts string // X-Resilience-Attempts, with a RetryPolicy
	}{
		{desc: "no limit: a large body passes", limit: 0, policy: noPolicy, size: 256 << 10,
			wantCode: 200, wantUpstream: 1, wantComplete: 1},
		{desc: "Content-Length at the limit passes", limit: limit, policy: noPolicy, size: limit,
			wantCode: 200, wantUpstream: 1, wantComplete: 1},
		{desc: "Content-Length one over the limit: 413, nothing upstream", limit: limit, policy: noPolicy, size: limit + 1,
			wantCode: 413, wantMsg: "Service shop/api: request body of 1025 bytes exceeds the gateway's limit of 1024 bytes"},
		{desc: "large Content-Length: 413 at once, nothing upstream", limit: limit, policy: withPolicies, size: 1 << 20,
			wantCode: 413, wantMsg: "request body of 1048576 bytes exceeds the gateway's limit of 1024 bytes", wantAttempts: "0"},
		{desc: "large Content-Length with Expect: 100-continue: 413, body never sent", limit: limit, policy: noPolicy, size: 1 << 20, expect: true,
			wantCode: 413, wantMsg: "limit of 1024 bytes"},
		{desc: "chunked under the limit passes", limit: limit, policy: noPolicy, size: limit - 1, chunked: true,
			wantCode: 200, wantUpstream: 1, wantComplete: 1},
		{desc: "chunked at the limit passes", limit: limit, policy: noPolicy, size: limit, chunked: true,
			wantCode: 200, wantUpstream: 1, wantComplete: 1},
		{desc: "chunked crossing the limit while streaming: 413, upstream request aborted", limit: limit, policy: noPolicy, size: 64 << 10, chunked: true,
			wantCode: 413, wantMsg: "Service shop/api: request body exceeds the gateway's limit of 1024 bytes", wantUpstream: -1},
		{desc: "chunked crossing the limit while buffered for retries: 413, nothing upstream", limit: limit, policy: withPolicies, size: 4 << 10, chunked: true,
			wantCode: 413, wantMsg: "limit of 1024 bytes", wantAttempts: "0"},
		{desc: "chunked under a limit above the replay buffer passes", limit: bigLimit, policy: withPolicies, size: bigLimit - 1, chunked: true,
			wantCode: 200, wantUpstream: 1, wantComplete: 1, wantAttempts: "1"},
		{desc: "chunked crossing a limit above the replay buffer: 413, one try, aborted", limit: bigLimit, policy: withPolicies, size: 4 * bigLimit, chunked: true,
			wantCode: 413, wantMsg: "limit of " + strconv.Itoa(bigLimit) + " bytes", wantUpstream: -1, wantAttempts: "1"},
	}
	for _, tc := range cases {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			be := &recordingBackend{}
			backend := httptest.NewServer(be)
			t.Cleanup(backend.Close)
			g := newGW(t, Options{LocalDev: true, MaxRequestBodyBytes: tc.limit}, nil, snap(1, tc.policy(localEndpoint(t, backend))))
			gw := httptest.NewServer(g)
			t.Cleanup(gw.Close)
			client := &http.Client{Transport: &http.Transport{ExpectContinueTimeout: 5 * time.Second}, Timeout: 10 * time.Second}
			t.Cleanup(client.CloseIdleConnections)

			data := bytes.Repeat([]byte("x"), tc.size)
			var body io.Reader = bytes.NewReader(data)
			if tc.chunked {
				body = hideLength{body}
			}
			req, err := http.NewRequest(http.MethodPut, gw.URL+"/upload", body)
			if err != nil {
				t.Fatal(err)
			}
			req.Host = "api.shop"
			if tc.expect {
				req.Header.Set("Expect", "100-continue")
			}
			resp, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			got, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tc.wantCode {
				t.Fatalf("got %d %q, want %d", resp.StatusCode, got, tc.wantCode)
			}
			if tc.wantCode == 200 && string(got) != strconv.Itoa(tc.size) {
				t.Fatalf("the upstream read %s bytes, want %d", got, tc.size)
			}
			if tc.wantMsg != "" {
				line := string(got)
				if !strings.HasSuffix(line, "\n") || strings.Count(line, "\n") != 1 || !strings.Contains(line, tc.wantMsg) ||
					!strings.HasPrefix(line, "Service shop/api: ") {
					t.Fatalf("body %q: want one line naming the Service and containing %q", line, tc.wantMsg)
				}
				if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
					t.Fatalf("Content-Type %q", ct)
				}
			}
			if tc.wantAttempts != "" {
				if a := resp.Header.Get("X-Resilience-Attempts"); a != tc.wantAttempts {
					t.Fatalf("X-Resilience-Attempts %q, want %q", a, tc.wantAttempts)
				}
			}
			// The upstream: an over-limit Content-Length never reaches it; a cut chunked body may
			// have reached it (headers, part of the body) but never whole.
			if tc.wantUpstream >= 0 {
				if n := be.requests.Load(); n != tc.wantUpstream {
					t.Fatalf("the upstream got %d requests, want %d", n, tc.wantUpstream)
				}
			} else if n := be.requests.Load(); n > 1 {
				t.Fatalf("the upstream got %d requests, want at most 1 (no retry)", n)
			}
			if tc.wantCode == 413 {
				// An aborted upstream request ends in the handler's read error, after the client's answer.
				waitFor(t, "the upstream handler to end", func() bool {
					return be.truncated.Load()+be.complete.Load() == be.requests.Load()
				})
			}
			if n := be.complete.Load(); n != tc.wantComplete {
				t.Fatalf("the upstream read %d bodies whole, want %d", n, tc.wantComplete)
			}
			if max := be.maxCL.Load(); tc.limit > 0 && max > tc.limit {
				t.Fatalf("the upstream saw Content-Length %d over the limit %d", max, tc.limit)
			}

			// The gateway stays usable, and a cut try did not count as a breaker failure (it opens
			// on one): the next request within the limit passes.
			req2, _ := http.NewRequest(http.MethodPut, gw.URL+"/upload", strings.NewReader("small"))
			req2.Host = "api.shop"
			resp2, err := client.Do(req2)
			if err != nil {
				t.Fatal(err)
			}
			got2, _ := io.ReadAll(resp2.Body)
			resp2.Body.Close()
			if resp2.StatusCode != 200 || string(got2) != "5" {
				t.Fatalf("the next request got %d %q", resp2.StatusCode, got2)
			}
			if tc.wantCode == 413 {
				if v := metricValue(t, g, "resilience_gateway_requests_total", map[string]string{"target_service": "api", "code": "413"}); v != 1 {
					t.Fatalf("requests_total{code=413} = %v, want 1", v)
				}
			}
		})
	}
}

func TestRequestBodyLimitNegative(t *testing.T) {
	t.Parallel()
	if _, err := New(Options{MaxRequestBodyBytes: -1}); err == nil {
		t.Fatal("New accepted a negative MaxRequestBodyBytes")
	}
}

// limitedBody passes exactly the bytes allowed, and fails the read that would pass them without
// handing any of that read's bytes on.
func TestLimitedBody(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		size, limit int
		wantErr     bool
	}{{0, 4, false}, {4, 4, false}, {5, 4, true}, {100, 4, true}, {3, 1, true}, {1, 1, false}} {
		var hit atomic.Bool
		b := &limitedBody{rc: io.NopCloser(strings.NewReader(strings.Repeat("a", tc.size))), n: int64(tc.limit), hit: &hit}
		got, err := io.ReadAll(b)
		if tc.wantErr {
			if err != errBodyTooLarge || !hit.Load() || len(got) > tc.limit {
				t.Fatalf("size %d limit %d: read %d bytes, err %v, hit %v", tc.size, tc.limit, len(got), err, hit.Load())
			}
			if _, err := b.Read(make([]byte, 8)); err != errBodyTooLarge {
				t.Fatalf("a read after the cut: %v", err)
			}
			continue
		}
		if err != nil || len(got) != tc.size || hit.Load() {
			t.Fatalf("size %d limit %d: read %d bytes, err %v, hit %v", tc.size, tc.limit, len(got), err, hit.Load())
		}
	}
}
