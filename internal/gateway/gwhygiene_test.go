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
	"strconv"
	"strings"
	"testing"
	"time"

	"resilience.dev/operator/internal/snapshot"
)

// gatewayBefore serves a gateway with the given upstream client on a real listener (HTTPServer),
// in front of a raw upstream that runs script (on a port that edit may change); it returns the
// gateway's address and the upstream.
func gatewayBefore(t *testing.T, o Options, script func(net.Conn, *bufio.Reader, *http.Request, int, int) bool, edit ...func(*snapshot.Port)) (string, *rawServer) {
	t.Helper()
	s := newRawServer(t, scripted(script))
	_, p, _ := net.SplitHostPort(s.addr)
	n, _ := strconv.Atoi(p)
	pt := port(snapshot.Endpoint{Address: "backend.localhost", Port: int32(n), Type: snapshot.AddressFQDN, HandMade: true})
	for _, e := range edit {
		e(&pt)
	}
	o.LocalDev = true
	g := newGW(t, o, nil, snap(1, pt))
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := g.HTTPServer("")
	go func() { _ = srv.Serve(WatchFraming(l)) }()
	t.Cleanup(func() { _ = srv.Close() })
	return l.Addr().String(), s
}

// rawExchange writes raw to the gateway at addr and reads one response (its body whole); the
// connection is returned for more.
func rawExchange(t *testing.T, addr, raw string) (*http.Response, string, net.Conn) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	_ = c.SetDeadline(time.Now().Add(20 * time.Second))
	if _, err := io.WriteString(c, raw); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("no response: %v", err)
	}
	b, err := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if err != nil {
		t.Fatalf("response body: %v", err)
	}
	return resp, string(b), c
}

// An upstream that switches protocols (101) on a request that did not ask for it gets the client a
// 502 from the gateway, with either upstream client (net/http's hands the connection over as the
// body of the 101, which the gateway must not pass on).
func TestGatewayUnaskedSwitch(t *testing.T) {
	t.Parallel()
	for _, client := range []string{UpstreamClientFast, UpstreamClientNetHTTP} {
		t.Run(client, func(t *testing.T) {
			t.Parallel()
			addr, _ := gatewayBefore(t, Options{UpstreamClient: client},
				writes("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n"))
			resp, body, _ := rawExchange(t, addr, "GET /chat HTTP/1.1\r\nHost: api.shop\r\n\r\n")
			if resp.StatusCode != http.StatusBadGateway || !strings.Contains(body, "shop/api: the upstream switched protocols") {
				t.Fatalf("got %d %q, want the gateway's 502", resp.StatusCode, body)
			}
		})
	}
}

// echoRequest answers with describeRequest of what the upstream received (scripted has read the
// body: its length is in cl).
func echoRequest(c net.Conn, _ *bufio.Reader, req *http.Request, _, _ int) bool {
	b, _ := describeRequest(req)
	_, err := fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s", len(b), b)
	return err == nil
}

// Expect: 100-continue is the gateway's to answer: the client gets 100 Continue from the gateway
// (net/http's server sends it when the body is read), and the upstream never sees the Expect
// header (else net/http's Transport would wait a second for an upstream's 100 on every request).
func TestGatewayAnswersExpectContinue(t *testing.T) {
	t.Parallel()
	for _, client := range []string{UpstreamClientFast, UpstreamClientNetHTTP} {
		t.Run(client, func(t *testing.T) {
			t.Parallel()
			addr, _ := gatewayBefore(t, Options{UpstreamClient: client}, echoRequest)
			interim, _, c := rawExchange(t, addr, "PUT /put HTTP/1.1\r\nHost: api.shop\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n")
			if interim.StatusCode != http.StatusContinue {
				t.Fatalf("got %d before the body, want 100 Continue", interim.StatusCode)
			}
			if _, err := io.WriteString(c, "body"); err != nil {
				t.Fatal(err)
			}
			resp, err := http.ReadResponse(bufio.NewReader(c), nil)
			if err != nil {
				t.Fatal(err)
			}
			b, err := io.ReadAll(resp.Body)
			_ = resp.Body.Close()
			if resp.StatusCode != 200 || err != nil {
				t.Fatalf("got %d %q %v", resp.StatusCode, b, err)
			}
			if want := "PUT /put api.shop cl=4 body=0 [Content-Length X-Forwarded-For]"; string(b) != want {
				t.Fatalf("the upstream saw %q, want %q", b, want)
			}
		})
	}
}

// Upstream trailers pass the filters of response headers: no hop-by-hop field, none named by the
// response's Connection, no X-Resilience-* (an upstream must not forge the gateway's own), in
// the trailers nor in the Trailer header that announces them (resp.Trailer holds both).
func TestGatewayFiltersTrailers(t *testing.T) {
	t.Parallel()
	upstream := "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: X-Hop\r\n" +
		"Trailer: X-Sum, X-Resilience-Attempts, Keep-Alive, X-Hop\r\n\r\n" +
		"3\r\nabc\r\n0\r\nX-Sum: 42\r\nX-Resilience-Attempts: 99\r\nx-resilience-stale: true\r\n" +
		"Keep-Alive: timeout=5\r\nX-Hop: 1\r\nTe: trailers\r\n\r\n"
	for _, client := range []string{UpstreamClientFast, UpstreamClientNetHTTP} {
		t.Run(client, func(t *testing.T) {
			t.Parallel()
			addr, _ := gatewayBefore(t, Options{UpstreamClient: client}, writes(upstream))
			resp, body, _ := rawExchange(t, addr, "GET /t HTTP/1.1\r\nHost: api.shop\r\nTE: trailers\r\n\r\n")
			if resp.StatusCode != 200 || body != "abc" {
				t.Fatalf("got %d %q", resp.StatusCode, body)
			}
			if got := fmt.Sprint(resp.Trailer); got != "map[X-Sum:[42]]" {
				t.Errorf("trailers %s, want only X-Sum", got)
			}
		})
	}
}

// What the upstream receives: X-Resilience-* headers a client sends are stripped however they
// are spelt ('_' for '-', any case), and the request target keeps an empty query ("/a?").
func TestGatewayForwardsRequestExactly(t *testing.T) {
	t.Parallel()
	tests := []struct {
		desc, raw, want string
	}{
		{desc: "X-Resilience-* stripped", raw: "GET /a HTTP/1.1\r\nHost: api.shop\r\nX-Resilience-Attempts: 5\r\nX-Keep: 1\r\n\r\n",
			want: "GET /a api.shop cl=0 body=0 [X-Forwarded-For X-Keep]"},
		{desc: "X_Resilience_* stripped", raw: "GET /a HTTP/1.1\r\nHost: api.shop\r\nX_Resilience_Attempts: 5\r\nx-resilience_stale: 1\r\nX_RESILIENCE-circuit: open\r\n\r\n",
			want: "GET /a api.shop cl=0 body=0 [X-Forwarded-For]"},
		{desc: "X_Resilience without the dash kept", raw: "GET /a HTTP/1.1\r\nHost: api.shop\r\nX_Resilience: 5\r\n\r\n",
			want: "GET /a api.shop cl=0 body=0 [X-Forwarded-For X_resilience]"},
		{desc: "empty query kept", raw: "GET /a? HTTP/1.1\r\nHost: api.shop\r\n\r\n",
			want: "GET /a? api.shop cl=0 body=0 [X-Forwarded-For]"},
		{desc: "empty query of an absolute-form request kept", raw: "GET http://api.shop/b/? HTTP/1.1\r\nHost: api.shop\r\n\r\n",
			want: "GET /b/? api.shop cl=0 body=0 [X-Forwarded-For]"},
		{desc: "query kept", raw: "GET /a?x=1&y HTTP/1.1\r\nHost: api.shop\r\n\r\n",
			want: "GET /a?x=1&y api.shop cl=0 body=0 [X-Forwarded-For]"},
	}
	for _, client := range []string{UpstreamClientFast, UpstreamClientNetHTTP} {
		t.Run(client, func(t *testing.T) {
			t.Parallel()
			addr, _ := gatewayBefore(t, Options{UpstreamClient: client}, echoRequest)
			for _, tt := range tests {
				resp, body, _ := rawExchange(t, addr, tt.raw)
				if resp.StatusCode != 200 || body != tt.want {
					t.Errorf("%s: got %d %q, want %q", tt.desc, resp.StatusCode, body, tt.want)
				}
			}
		})
	}
}

// Through the gateway too: an upstream's answer sent before it read the request body (413) reaches
// the client while it is still sending the body, whether the body is streamed or buffered.
func TestGatewayEarlyResponse(t *testing.T) {
	t.Parallel()
	for _, client := range []string{UpstreamClientFast, UpstreamClientNetHTTP} {
		for _, size := range []int{60 << 10, 4 << 20} {
			t.Run(fmt.Sprintf("%s/%d", client, size), func(t *testing.T) {
				t.Parallel()
				stop := make(chan struct{})
				early := answersEarly("HTTP/1.1 413 Content Too Large\r\nContent-Length: 8\r\n\r\ntoo much", stop)
				s := newRawServerOn(t, listenNarrow(t), early)
				t.Cleanup(func() { close(stop) })
				_, p, _ := net.SplitHostPort(s.addr)
				n, _ := strconv.Atoi(p)
				pt := port(snapshot.Endpoint{Address: "backend.localhost", Port: int32(n), Type: snapshot.AddressFQDN, HandMade: true})
				pt.Retry = retry(2) // a body up to MaxReplayBody is buffered, a larger one streamed
				g := newGW(t, Options{LocalDev: true, UpstreamClient: client}, nil, snap(1, pt))
				srv := httptest.NewServer(g)
				t.Cleanup(srv.Close)
				c, err := net.Dial("tcp", srv.Listener.Addr().String())
				if err != nil {
					t.Fatal(err)
				}
				defer c.Close()
				_ = c.SetDeadline(time.Now().Add(20 * time.Second))
				go func() { // the body, as far as the gateway reads it
					_, _ = fmt.Fprintf(c, "PUT /up HTTP/1.1\r\nHost: api.shop\r\nContent-Length: %d\r\n\r\n", size)
					_, _ = c.Write(make([]byte, size))
				}()
				resp, err := http.ReadResponse(bufio.NewReader(c), nil)
				if err != nil {
					t.Fatal(err)
				}
				b, _ := io.ReadAll(resp.Body)
				if resp.StatusCode != http.StatusRequestEntityTooLarge || string(b) != "too much" {
					t.Fatalf("got %d %q, want the upstream's 413", resp.StatusCode, b)
				}
			})
		}
	}
}
