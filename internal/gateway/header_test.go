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
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"
)

// isHopByHop matches the names of hopByHop in any case, and nothing else of the same lengths.
func TestIsHopByHop(t *testing.T) {
	for _, h := range hopByHop {
		for _, k := range []string{h, strings.ToLower(h), strings.ToUpper(h)} {
			if !isHopByHop(k) {
				t.Errorf("isHopByHop(%q) = false", k)
			}
		}
	}
	for _, k := range []string{"", "Tx", "Trailers", "Upgradex", "Connectio", "Keep-Alivf", "Content-Length", "X-Forwarded-For",
		"Proxy-Authorizatio", "Transfer-Encodinh", "Proxy-Connectiom", "Accept"} {
		if isHopByHop(k) {
			t.Errorf("isHopByHop(%q) = true", k)
		}
	}
}

// outboundHeader drops hop-by-hop fields, those Connection names and X-Resilience-*, keeps
// "TE: trailers", and never lets a change to the result reach the client's header.
func TestOutboundHeader(t *testing.T) {
	in := http.Header{
		"Accept":               {"a", "b"},
		"Connection":           {"keep-alive, X-Private", "te"},
		"X-Private":            {"secret"},
		"Keep-Alive":           {"300"},
		"Te":                   {"trailers"},
		"Upgrade":              {"h2c"},
		"X-Resilience-Attempt": {"9"},
		"Proxy-Authorization":  {"Basic x"},
		"X-Empty":              nil,
	}
	h := outboundHeader(in)
	want := http.Header{"Accept": {"a", "b"}, "X-Empty": nil}
	if !reflect.DeepEqual(h, want) {
		t.Fatalf("got %v, want %v", h, want)
	}
	h["Accept"] = append(h["Accept"], "c")
	h["Accept"][0] = "changed"
	if got := in["Accept"]; len(got) != 2 || got[1] != "b" {
		t.Fatalf("the client's header changed: %v", got)
	}

	in = http.Header{"Te": {"gzip", " Trailers "}, "Accept": {"x"}}
	h = outboundHeader(in)
	if got := h["Te"]; len(got) != 1 || got[0] != "trailers" {
		t.Fatalf("Te = %v, want [trailers]", got)
	}
	if got := outboundHeader(http.Header{"Te": {"gzip"}}); len(got) != 0 {
		t.Fatalf("Te without trailers kept: %v", got)
	}
	if got := outboundHeader(nil); got == nil || len(got) != 0 {
		t.Fatalf("nil header: %v", got)
	}
}

// The framing a client sees is the upstream's: a known length stays a Content-Length whatever its
// size (the gateway leaves small ones to net/http's server, which sends the same value), HEAD keeps
// the upstream's Content-Length, 204 has none, and a body of unknown length stays chunked.
func TestResponseFraming(t *testing.T) {
	t.Parallel()
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, _ := strconv.Atoi(r.URL.Query().Get("n"))
		switch r.URL.Path {
		case "/nocontent":
			w.WriteHeader(http.StatusNoContent)
			return
		case "/chunked":
			_, _ = w.Write(bytes.Repeat([]byte("c"), n))
			w.(http.Flusher).Flush()
			return
		}
		w.Header().Set("Content-Length", strconv.Itoa(n))
		w.Header().Set("X-Backend", "b")
		if r.Method != http.MethodHead {
			_, _ = w.Write(bytes.Repeat([]byte("x"), n))
		}
	}))
	t.Cleanup(backend.Close)
	for _, policies := range []bool{false, true} {
		p := port(localEndpoint(t, backend))
		if policies {
			p.RateLimit = rateLimit(limit("total", 1_000_000, time.Second, 1_000_000))
			p.Retry = retry(2)
			p.CircuitBreaker = circuitBreaker(5)
		}
		g := newGW(t, Options{LocalDev: true}, nil, snap(1, p))
		gw := httptest.NewServer(g)
		t.Cleanup(gw.Close)
		for _, tc := range []struct {
			method, path string
			wantCode     int
			wantLen      int64 // -1: chunked
			wantBody     int
		}{
			{"GET", "/?n=0", 200, 0, 0},
			{"GET", "/?n=9", 200, 9, 9},
			{"GET", "/?n=2048", 200, 2048, 2048},
			{"GET", "/?n=2049", 200, 2049, 2049},
			{"GET", "/?n=100000", 200, 100000, 100000},
			{"HEAD", "/?n=1234", 200, 1234, 0},
			{"GET", "/nocontent", 204, 0, 0},
			{"GET", "/chunked?n=10", 200, -1, 10},
		} {
			req, _ := http.NewRequest(tc.method, gw.URL+tc.path, nil)
			req.Host = "api.shop"
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil || resp.StatusCode != tc.wantCode || resp.ContentLength != tc.wantLen || len(body) != tc.wantBody {
				t.Fatalf("policies %v %s %s: %d, length %d (TE %v), %d body bytes, %v; want %d, length %d, %d bytes",
					policies, tc.method, tc.path, resp.StatusCode, resp.ContentLength, resp.TransferEncoding, len(body), err,
					tc.wantCode, tc.wantLen, tc.wantBody)
			}
			if tc.wantLen >= 0 && len(resp.TransferEncoding) != 0 {
				t.Fatalf("%s %s: Transfer-Encoding %v with a known length", tc.method, tc.path, resp.TransferEncoding)
			}
			if tc.wantCode == 200 && tc.path != "/chunked?n=10" && resp.Header.Get("X-Backend") != "b" {
				t.Fatalf("%s %s: upstream header lost: %v", tc.method, tc.path, resp.Header)
			}
		}
	}
}
