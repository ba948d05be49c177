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
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"resilience.dev/operator/internal/snapshot"
)

// twoServices is shop/api on ports 80 and 8080 (endpoints 10.0.0.1 and 10.0.0.2) and shop/solo with
// one port 9000 (endpoint 10.0.0.3).
func twoServices() *snapshot.Snapshot {
	p8080 := port(ep(2))
	p8080.Port, p8080.Name = 8080, "alt"
	solo := port(ep(3))
	solo.Port = 9000
	return &snapshot.Snapshot{Version: 1, Services: []snapshot.Service{
		{Namespace: "shop", Name: "api", Ports: []snapshot.Port{port(ep(1)), p8080}},
		{Namespace: "shop", Name: "solo", Ports: []snapshot.Port{solo}},
	}}
}

func TestRouting(t *testing.T) {
	t.Parallel()
	mem := newMem()
	for i := 1; i <= 3; i++ {
		mem.handle(epAddr(i), func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, r.URL.Host) })
	}
	g := newGW(t, Options{}, mem, twoServices())
	tests := []struct {
		desc, method, target, host string
		wantCode                   int
		wantBody                   string // substring
	}{
		{desc: "absolute URL", target: "http://api.shop/x", wantCode: 200, wantBody: epAddr(1)},
		{desc: "absolute URL wins over Host", target: "http://api.shop:8080/x", host: "solo.shop", wantCode: 200, wantBody: epAddr(2)},
		{desc: "Host svc.ns", target: "/x", host: "api.shop", wantCode: 200, wantBody: epAddr(1)},
		{desc: "Host svc.ns.svc", target: "/x", host: "api.shop.svc", wantCode: 200, wantBody: epAddr(1)},
		{desc: "Host full name", target: "/x", host: "api.shop.svc.cluster.local", wantCode: 200, wantBody: epAddr(1)},
		{desc: "Host with port", target: "/x", host: "api.shop.svc:8080", wantCode: 200, wantBody: epAddr(2)},
		{desc: "default port: the only one", target: "/x", host: "solo.shop", wantCode: 200, wantBody: epAddr(3)},
		{desc: "default port: 80 when several", target: "/x", host: "api.shop.svc.cluster.local", wantCode: 200, wantBody: epAddr(1)},
		{desc: "port the Service lacks", target: "/x", host: "solo.shop:80", wantCode: 403, wantBody: "port 80 is not a port of Service shop/solo"},
		{desc: "unmanaged Service", target: "/x", host: "other.shop", wantCode: 403, wantBody: "Service shop/other is not managed"},
		{desc: "foreign host", target: "/x", host: "www.example.com", wantCode: 403, wantBody: `host "www.example.com" is not a Service`},
		{desc: "two-label host is read as svc.ns", target: "/x", host: "example.com", wantCode: 403, wantBody: "Service com/example is not managed"},
		{desc: "other cluster domain", target: "/x", host: "api.shop.svc.example.org", wantCode: 403, wantBody: "is not a Service"},
		{desc: "https absolute URL", target: "https://api.shop/x", wantCode: 403, wantBody: "only http:// URLs"},
		{desc: "CONNECT", method: http.MethodConnect, target: "api.shop:80", wantCode: 403, wantBody: "CONNECT is refused"},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			method := tt.method
			if method == "" {
				method = http.MethodGet
			}
			req := httptest.NewRequest(method, "http://placeholder/", nil)
			if tt.method == http.MethodConnect {
				req.URL = &url.URL{Host: tt.target}
			} else {
				u, err := url.Parse(tt.target)
				if err != nil {
					t.Fatal(err)
				}
				req.URL = u
			}
			req.Host = req.URL.Host
			if tt.host != "" {
				req.Host = tt.host
			}
			rec := httptest.NewRecorder()
			g.ServeHTTP(rec, req)
			body := rec.Body.String()
			if rec.Code != tt.wantCode || !strings.Contains(body, tt.wantBody) {
				t.Fatalf("got %d %q, want %d containing %q", rec.Code, body, tt.wantCode, tt.wantBody)
			}
			if rec.Code != 200 {
				if ct := rec.Header().Get("Content-Type"); ct != "text/plain; charset=utf-8" {
					t.Errorf("Content-Type %q", ct)
				}
				if strings.Count(body, "\n") != 1 || !strings.HasSuffix(body, "\n") {
					t.Errorf("body %q is not one line", body)
				}
			}
		})
	}
}

func TestNotReadyBeforeFirstSnapshot(t *testing.T) {
	t.Parallel()
	g := newGW(t, Options{}, newMem(), nil)
	if g.Ready() {
		t.Fatal("ready before any snapshot")
	}
	if rec := get(g, "http://api.shop/"); rec.Code != 503 {
		t.Fatalf("got %d, want 503", rec.Code)
	}
	if err := g.Apply(encoded(snap(1, port(ep(1))))); err != nil {
		t.Fatal(err)
	}
	if !g.Ready() || g.Version() != 1 {
		t.Fatalf("Ready %v Version %d after Apply", g.Ready(), g.Version())
	}
}

func TestForwardedHeaders(t *testing.T) {
	t.Parallel()
	mem := newMem()
	var got http.Header
	var gotHost, gotPath string
	mem.handle(epAddr(1), func(w http.ResponseWriter, r *http.Request) {
		got, gotHost, gotPath = r.Header.Clone(), r.Host, r.URL.RequestURI()
		w.Header().Set("X-Resilience-Circuit", "forged")
		w.Header().Set("Connection", "X-Hop")
		w.Header().Set("X-Hop", "1")
		w.Header().Set("Keep-Alive", "timeout=5")
		_, _ = io.WriteString(w, "ok")
	})
	g := newGW(t, Options{}, mem, snap(1, port(ep(1))))
	rec := get(g, "http://api.shop/p?q=1",
		"X-Resilience-Attempts: 9", "X-Resilience-Stale: true", "x-resilience-custom: 1",
		"Connection: close, X-Secret", "X-Secret: s", "Keep-Alive: 300", "Proxy-Authorization: Basic x",
		"Upgrade: websocket", "X-Forwarded-For: 198.51.100.7", "X-Keep: yes")
	if rec.Code != 200 {
		t.Fatalf("got %d %s", rec.Code, rec.Body)
	}
	for k := range got {
		if strings.HasPrefix(strings.ToLower(k), "x-resilience-") {
			t.Errorf("forwarded %s", k)
		}
	}
	for _, k := range []string{"Connection", "X-Secret", "Keep-Alive", "Proxy-Authorization", "Upgrade"} {
		if v := got.Get(k); v != "" {
			t.Errorf("forwarded hop-by-hop %s: %q", k, v)
		}
	}
	if v := got.Get("X-Keep"); v != "yes" {
		t.Errorf("X-Keep = %q", v)
	}
	if v := got.Get("X-Forwarded-For"); v != "198.51.100.7, 192.0.2.1" { // httptest's RemoteAddr is 192.0.2.1
		t.Errorf("X-Forwarded-For = %q", v)
	}
	if gotHost != "api.shop" || gotPath != "/p?q=1" {
		t.Errorf("upstream saw Host %q path %q", gotHost, gotPath)
	}
	for _, k := range []string{"X-Resilience-Circuit", "X-Hop", "Keep-Alive"} {
		if v := rec.Header().Get(k); v != "" {
			t.Errorf("response carries %s: %q", k, v)
		}
	}
}

// A real client using the gateway as its HTTP proxy sends absolute-form requests over a real
// connection; the gateway routes them to a real backend (a .localhost name in LocalDev mode).
func TestHTTPProxyClient(t *testing.T) {
	t.Parallel()
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = fmt.Fprintf(w, "%s %s %s", r.Method, r.Host, r.URL.Path)
	}))
	t.Cleanup(backend.Close)
	g := newGW(t, Options{LocalDev: true}, nil, snap(1, port(localEndpoint(t, backend))))
	gw := httptest.NewServer(g)
	t.Cleanup(gw.Close)
	proxy, _ := url.Parse(gw.URL)
	client := &http.Client{Transport: &http.Transport{Proxy: http.ProxyURL(proxy)}, Timeout: 5 * time.Second}
	t.Cleanup(client.CloseIdleConnections)
	resp, err := client.Get("http://api.shop.svc.cluster.local/hello")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(body) != "GET api.shop.svc.cluster.local /hello" {
		t.Fatalf("got %d %q", resp.StatusCode, body)
	}

	// CONNECT over the wire is refused too: never an open proxy.
	conn, err := net.Dial("tcp", gw.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_, _ = io.WriteString(conn, "CONNECT api.shop:443 HTTP/1.1\r\nHost: api.shop:443\r\n\r\n")
	cr, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	cr.Body.Close()
	if cr.StatusCode != http.StatusForbidden {
		t.Fatalf("CONNECT got %d", cr.StatusCode)
	}
}

// localEndpoint names a test server as a hand-made FQDN endpoint under .localhost.
func localEndpoint(t testing.TB, s *httptest.Server) snapshot.Endpoint {
	t.Helper()
	_, p, err := net.SplitHostPort(s.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	n, _ := strconv.Atoi(p)
	return snapshot.Endpoint{Address: "backend.localhost", Port: int32(n), Type: snapshot.AddressFQDN, HandMade: true}
}

// The dial guard checks the address actually dialled, with the real transport.
func TestDialGuard(t *testing.T) {
	t.Parallel()
	backend := httptest.NewServer(http.HandlerFunc(ok200))
	t.Cleanup(backend.Close)
	local := localEndpoint(t, backend)
	_, bp, _ := net.SplitHostPort(backend.Listener.Addr().String())
	n, _ := strconv.Atoi(bp)
	loopIP := snapshot.Endpoint{Address: "127.0.0.1", Port: int32(n), Type: snapshot.AddressIPv4}
	loopIPHand := loopIP
	loopIPHand.HandMade = true
	tests := []struct {
		desc     string
		opts     Options
		ep       snapshot.Endpoint
		wantCode int
		wantBody string
	}{
		{desc: ".localhost with LocalDev reaches loopback", opts: Options{LocalDev: true}, ep: local, wantCode: 200, wantBody: "ok"},
		{desc: ".localhost without LocalDev never reaches loopback", opts: Options{AllowHandMadeEndpoints: true}, ep: local, wantCode: 502},
		{desc: "hand-made endpoint ignored unless allowed", opts: Options{}, ep: local, wantCode: 503, wantBody: "no ready endpoint"},
		{desc: "loopback IP refused", opts: Options{}, ep: loopIP, wantCode: 502, wantBody: "refused by the gateway"},
		{desc: "loopback IP refused even in LocalDev", opts: Options{LocalDev: true}, ep: loopIPHand, wantCode: 502, wantBody: "refused by the gateway"},
		{desc: "metadata address refused", opts: Options{}, ep: snapshot.Endpoint{Address: "169.254.169.254", Port: 80, Type: snapshot.AddressIPv4}, wantCode: 502, wantBody: "refused by the gateway"},
		{desc: "ipv6 link-local refused", opts: Options{}, ep: snapshot.Endpoint{Address: "fe80::1", Port: 80, Type: snapshot.AddressIPv6}, wantCode: 502, wantBody: "refused by the gateway"},
		{desc: "unspecified refused", opts: Options{}, ep: snapshot.Endpoint{Address: "0.0.0.0", Port: int32(n), Type: snapshot.AddressIPv4}, wantCode: 502, wantBody: "refused by the gateway"},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			t.Parallel()
			g := newGW(t, tt.opts, nil, snap(1, port(tt.ep)))
			rec := get(g, "http://api.shop/")
			if rec.Code != tt.wantCode || !strings.Contains(rec.Body.String(), tt.wantBody) {
				t.Fatalf("got %d %q, want %d containing %q", rec.Code, rec.Body, tt.wantCode, tt.wantBody)
			}
		})
	}
}

// Pass-through reaches unmanaged in-cluster Services by their DNS name (still behind the dial
// guard) only when allowed.
func TestPassThrough(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var hosts []string
	rt := roundTripFunc(func(r *http.Request) (*http.Response, error) {
		mu.Lock()
		hosts = append(hosts, r.URL.Host)
		mu.Unlock()
		return &http.Response{StatusCode: 200, Body: http.NoBody, Header: http.Header{}}, nil
	})
	off := newGW(t, Options{}, rt, snap(1, port(ep(1))))
	if rec := get(off, "http://other.team:8080/"); rec.Code != 403 {
		t.Fatalf("pass-through off: got %d", rec.Code)
	}
	on := newGW(t, Options{AllowPassThrough: true}, rt, snap(1, port(ep(1))))
	if rec := get(on, "http://other.team:8080/"); rec.Code != 200 {
		t.Fatalf("pass-through on: got %d %s", rec.Code, rec.Body)
	}
	if rec := get(on, "http://www.example.com/"); rec.Code != 403 {
		t.Fatalf("foreign host with pass-through: got %d", rec.Code)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(hosts) != 1 || hosts[0] != "other.team.svc.cluster.local:8080" {
		t.Fatalf("dialled %v", hosts)
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }
