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
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httptrace"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"resilience.dev/operator/internal/snapshot"
)

// rawServer is a loopback listener whose connections run serve, each on its own goroutine; it
// counts the connections accepted. Its address is a name under .localhost, so that the built-in
// transport's dialer (LocalDev) reaches it through the dial guard.
type rawServer struct {
	l     net.Listener
	addr  string // "srv.localhost:port"
	conns atomic.Int32
	wg    sync.WaitGroup
}

func newRawServer(t testing.TB, serve func(c net.Conn, n int)) *rawServer {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return newRawServerOn(t, l, serve)
}

// newRawServerOn is newRawServer on a listener of the caller's (loopback).
func newRawServerOn(t testing.TB, l net.Listener, serve func(c net.Conn, n int)) *rawServer {
	t.Helper()
	_, p, _ := net.SplitHostPort(l.Addr().String())
	s := &rawServer{l: l, addr: "srv.localhost:" + p}
	var mu sync.Mutex
	var open []net.Conn
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			n := int(s.conns.Add(1))
			mu.Lock()
			open = append(open, c)
			mu.Unlock()
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				defer c.Close()
				serve(c, n)
			}()
		}
	}()
	t.Cleanup(func() {
		_ = l.Close()
		mu.Lock()
		for _, c := range open {
			_ = c.Close()
		}
		mu.Unlock()
		s.wg.Wait()
	})
	return s
}

// scripted serves requests in a loop on each connection: a request for /ok gets a 200 with a body
// "ok"; any other gets what script writes (script returns false to end the connection).
func scripted(script func(c net.Conn, br *bufio.Reader, req *http.Request, conn, nreq int) bool) func(net.Conn, int) {
	return func(c net.Conn, conn int) {
		br := bufio.NewReader(c)
		for nreq := 1; ; nreq++ {
			req, err := http.ReadRequest(br)
			if err != nil {
				return
			}
			if _, err := io.Copy(io.Discard, req.Body); err != nil {
				return
			}
			if req.URL.Path == "/ok" {
				if _, err := io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"); err != nil {
					return
				}
				continue
			}
			if !script(c, br, req, conn, nreq) {
				return
			}
		}
	}
}

// writes answers with fixed bytes and keeps the connection.
func writes(s string) func(net.Conn, *bufio.Reader, *http.Request, int, int) bool {
	return func(c net.Conn, _ *bufio.Reader, _ *http.Request, _, _ int) bool {
		_, err := io.WriteString(c, s)
		return err == nil
	}
}

// writesAndCloses answers with fixed bytes and closes the connection.
func writesAndCloses(s string) func(net.Conn, *bufio.Reader, *http.Request, int, int) bool {
	return func(c net.Conn, _ *bufio.Reader, _ *http.Request, _, _ int) bool {
		_, _ = io.WriteString(c, s)
		return false
	}
}

// resets answers with fixed bytes and resets the connection (RST, not FIN).
func resets(s string) func(net.Conn, *bufio.Reader, *http.Request, int, int) bool {
	return func(c net.Conn, _ *bufio.Reader, _ *http.Request, _, _ int) bool {
		_, _ = io.WriteString(c, s)
		if tc, ok := c.(*net.TCPConn); ok {
			_ = tc.SetLinger(0)
		}
		return false
	}
}

// clientsUnderTest are the two built-in transports, each with its own dialer and pools.
func clientsUnderTest(maxIdle int) map[string]upstreamTransport {
	out := map[string]upstreamTransport{}
	for _, name := range []string{UpstreamClientFast, UpstreamClientNetHTTP} {
		o := Options{LocalDev: true, UpstreamClient: name, DialTimeout: 5 * time.Second, MaxIdleConnsPerHost: maxIdle}
		out[name] = newTransport(o, newDialer(o))
	}
	return out
}

// outcome is what the gateway sees of a request: the try's classification and the response.
type outcome struct {
	kind    errKind // 0: a response
	status  int
	header  http.Header
	body    string
	bodyErr bool
	trailer http.Header
	conns   int32 // connections the server accepted after a follow-up GET /ok
}

func (o outcome) String() string {
	return fmt.Sprintf("kind=%d status=%d header=%v body=%q bodyErr=%v trailer=%v conns=%d",
		o.kind, o.status, o.header, o.body, o.bodyErr, o.trailer, o.conns)
}

// exchangeOnce sends req with rt, reads the whole response, then sends GET /ok on the same
// transport and counts the server's connections (to see whether the first one was reused).
func exchangeOnce(t *testing.T, rt http.RoundTripper, s *rawServer, req *http.Request, keep ...string) outcome {
	t.Helper()
	var o outcome
	resp, err := rt.RoundTrip(req)
	if err != nil {
		o.kind = (&portRoute{}).classify(req.Context(), err).kind
	} else {
		o.status = resp.StatusCode
		o.header = http.Header{}
		for _, k := range keep {
			if v, ok := resp.Header[k]; ok {
				o.header[k] = v
			}
		}
		b, err := io.ReadAll(resp.Body)
		o.body, o.bodyErr = string(b), err != nil
		_ = resp.Body.Close()
		if len(resp.Trailer) > 0 {
			o.trailer = resp.Trailer.Clone()
		}
	}
	ok, err := http.NewRequest(http.MethodGet, "http://"+s.addr+"/ok", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err = rt.RoundTrip(ok)
	if err != nil {
		t.Fatalf("follow-up GET /ok: %v", err)
	}
	b, err := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if err != nil || string(b) != "ok" {
		t.Fatalf("follow-up GET /ok: %q, %v", b, err)
	}
	o.conns = s.conns.Load()
	return o
}

// The lean client answers as net/http's Transport does, response by response: bodies, chunking,
// trailers, informational responses, responses without a body, Connection: close, HTTP/1.0,
// Content-Length mismatches, resets, oversized and malformed heads; and it reuses the connection
// exactly when net/http's does.
func TestH1ClientMatchesNetHTTP(t *testing.T) {
	t.Parallel()
	big := strings.Repeat("x", 100<<10)
	tests := []struct {
		desc   string
		method string
		script func(net.Conn, *bufio.Reader, *http.Request, int, int) bool
		keep   []string
		want   outcome
	}{
		{desc: "content-length body", script: writes("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-A: 1\r\nX-A: 2\r\n\r\nhello"),
			keep: []string{"X-A", "Content-Length"},
			want: outcome{status: 200, header: http.Header{"X-A": {"1", "2"}, "Content-Length": {"5"}}, body: "hello", conns: 1}},
		{desc: "large body", script: writes("HTTP/1.1 200 OK\r\nContent-Length: " + strconv.Itoa(len(big)) + "\r\n\r\n" + big),
			want: outcome{status: 200, header: http.Header{}, body: big, conns: 1}},
		{desc: "chunked with trailers", script: writes("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-Sum\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\nX-Sum: 42\r\n\r\n"),
			want: outcome{status: 200, header: http.Header{}, body: "abcde", trailer: http.Header{"X-Sum": {"42"}}, conns: 1}},
		{desc: "chunked without trailers", script: writes("HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nwxyz\r\n0\r\n\r\n"),
			want: outcome{status: 201, header: http.Header{}, body: "wxyz", conns: 1}},
		{desc: "1xx responses skipped", script: writes("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a.css>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-Final: y\r\n\r\nhi"),
			keep: []string{"X-Final", "Link"},
			want: outcome{status: 200, header: http.Header{"X-Final": {"y"}}, body: "hi", conns: 1}},
		{desc: "204 no body", script: writes("HTTP/1.1 204 No Content\r\nX-A: 1\r\n\r\n"), keep: []string{"X-A"},
			want: outcome{status: 204, header: http.Header{"X-A": {"1"}}, conns: 1}},
		{desc: "304 with content-length, no body", script: writes("HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\n\r\n"),
			want: outcome{status: 304, header: http.Header{}, conns: 1}},
		{desc: "HEAD with content-length, no body", method: http.MethodHead, script: writes("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n"),
			keep: []string{"Content-Length"},
			want: outcome{status: 200, header: http.Header{"Content-Length": {"10"}}, conns: 1}},
		{desc: "content-length 0", script: writes("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"),
			want: outcome{status: 200, header: http.Header{}, conns: 1}},
		{desc: "no length: body until close", script: writesAndCloses("HTTP/1.1 200 OK\r\n\r\nthe rest"),
			want: outcome{status: 200, header: http.Header{}, body: "the rest", conns: 2}},
		{desc: "Connection: close", script: writesAndCloses("HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nby"),
			want: outcome{status: 200, header: http.Header{}, body: "by", conns: 2}},
		{desc: "HTTP/1.0 body until close", script: writesAndCloses("HTTP/1.0 200 OK\r\n\r\nold body"),
			want: outcome{status: 200, header: http.Header{}, body: "old body", conns: 2}},
		{desc: "HTTP/1.0 keep-alive", script: writes("HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 3\r\n\r\nold"),
			want: outcome{status: 200, header: http.Header{}, body: "old", conns: 1}},
		{desc: "body shorter than content-length", script: writesAndCloses("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort"),
			want: outcome{status: 200, header: http.Header{}, body: "short", bodyErr: true, conns: 2}},
		{desc: "chunked body cut", script: writesAndCloses("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab"),
			want: outcome{status: 200, header: http.Header{}, body: "ab", bodyErr: true, conns: 2}},
		{desc: "reset mid-body", script: resets("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\npartial"),
			want: outcome{status: 200, header: http.Header{}, body: "partial", bodyErr: true, conns: 2}},
		{desc: "closed before any response byte", script: writesAndCloses(""),
			want: outcome{kind: kindReset, conns: 2}},
		{desc: "reset before any response byte", script: resets(""),
			want: outcome{kind: kindReset, conns: 2}},
		{desc: "closed within the response head", script: writesAndCloses("HTTP/1.1 200 OK\r\nX-A: 1\r\n"),
			want: outcome{kind: kindReset, conns: 2}},
		{desc: "closed within a header line", script: writesAndCloses("HTTP/1.1 200 OK\r\nContent-Le"),
			want: outcome{kind: kindProtocol, conns: 2}},
		{desc: "closed within the status line", script: writesAndCloses("HTTP/1.1 20"),
			want: outcome{kind: kindProtocol, conns: 2}},
		{desc: "malformed status line", script: writesAndCloses("HTTP/1.1 abc Nope\r\n\r\n"),
			want: outcome{kind: kindProtocol, conns: 2}},
		{desc: "not HTTP at all", script: writesAndCloses("SSH-2.0-OpenSSH_9.6\r\n\r\n"),
			want: outcome{kind: kindProtocol, conns: 2}},
		{desc: "head over 1 MiB", script: writesAndCloses("HTTP/1.1 200 OK\r\nX-Big: " + strings.Repeat("b", 1<<20) + "\r\nContent-Length: 0\r\n\r\n"),
			want: outcome{kind: kindProtocol, conns: 2}},
		{desc: "head of 100 KiB", script: writes("HTTP/1.1 200 OK\r\nX-Big: " + strings.Repeat("b", 100<<10) + "\r\nContent-Length: 1\r\n\r\n!"),
			want: outcome{status: 200, header: http.Header{}, body: "!", conns: 1}},
		{desc: "switching protocols unasked", script: writesAndCloses("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n"),
			want: outcome{kind: kindProtocol, conns: 2}},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			t.Parallel()
			for name, rt := range clientsUnderTest(4) {
				s := newRawServer(t, scripted(tt.script))
				method := tt.method
				if method == "" {
					method = http.MethodGet
				}
				req, err := http.NewRequest(method, "http://"+s.addr+"/s", nil)
				if err != nil {
					t.Fatal(err)
				}
				got := exchangeOnce(t, rt, s, req, tt.keep...)
				rt.CloseIdleConnections()
				if name == UpstreamClientNetHTTP && tt.desc == "switching protocols unasked" {
					// net/http hands the connection over as the body of a 101; the gateway never asks
					// for an upgrade (it strips Upgrade), and the lean client fails the try instead.
					continue
				}
				if got.String() != tt.want.String() {
					t.Errorf("%s:\n got %v\nwant %v", name, got, tt.want)
				}
			}
		})
	}
}

// The request goes out as net/http's Transport writes it: request line, Host, User-Agent (Go's
// when none, none when empty), Content-Length (0 for POST, PUT and PATCH without a body), every
// other field, and the body.
func TestH1ClientWritesRequestsAsNetHTTP(t *testing.T) {
	t.Parallel()
	type seen struct {
		method, uri, host, proto string
		header                   http.Header
		body                     string
		te                       []string
		cl                       int64
	}
	tests := []struct {
		desc   string
		method string
		target string
		host   string
		body   string // buffered (GetBody set)
		header http.Header
	}{
		{desc: "plain GET", method: "GET", target: "/items?page=2"},
		{desc: "escaped path and query", method: "GET", target: "/a%2Fb/c%20d?q=%E2%82%AC&x"},
		{desc: "empty path", method: "GET", target: ""},
		{desc: "force query", method: "GET", target: "/p?"},
		{desc: "host override", method: "GET", target: "/", host: "api.shop"},
		{desc: "no user agent", method: "GET", target: "/", header: http.Header{"User-Agent": {""}}},
		{desc: "user agent", method: "GET", target: "/", header: http.Header{"User-Agent": {" loadgen "}}},
		{desc: "repeated fields and spaces", method: "GET", target: "/", header: http.Header{"X-A": {"1", " two ", ""}, "Accept": {"a/b\t"}, "Te": {"trailers"}}},
		{desc: "POST with body", method: "POST", target: "/orders", body: `{"n":1}`, header: http.Header{"Content-Type": {"application/json"}}},
		{desc: "POST without body", method: "POST", target: "/orders"},
		{desc: "PUT without body", method: "PUT", target: "/x"},
		{desc: "PATCH with body", method: "PATCH", target: "/x", body: "p"},
		{desc: "DELETE without body", method: "DELETE", target: "/x"},
		{desc: "OPTIONS", method: "OPTIONS", target: "/x"},
		{desc: "custom method with body", method: "PURGE", target: "/x", body: "zz"},
		{desc: "12 KiB body", method: "PUT", target: "/big", body: strings.Repeat("b", 12<<10)},
		{desc: "content-length and host in map are not written", method: "POST", target: "/x", body: "abc",
			header: http.Header{"Content-Length": {"99"}, "Host": {"evil"}, "Transfer-Encoding": {"chunked"}, "Trailer": {"X"}}},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			t.Parallel()
			got := map[string]seen{}
			var mu sync.Mutex
			var who string
			// A server that records each request whole.
			l := newRawServer(t, func(c net.Conn, _ int) {
				br := bufio.NewReader(c)
				for {
					req, err := http.ReadRequest(br)
					if err != nil {
						return
					}
					b, _ := io.ReadAll(req.Body)
					mu.Lock()
					got[who] = seen{method: req.Method, uri: req.RequestURI, host: req.Host, proto: req.Proto,
						header: req.Header, body: string(b), te: req.TransferEncoding, cl: req.ContentLength}
					mu.Unlock()
					if _, err := io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"); err != nil {
						return
					}
				}
			})
			for name, rt := range clientsUnderTest(4) {
				mu.Lock()
				who = name
				mu.Unlock()
				req, err := http.NewRequest(tt.method, "http://"+l.addr+tt.target, nil)
				if err != nil {
					t.Fatal(err)
				}
				if tt.body != "" {
					data := []byte(tt.body)
					req.Body = io.NopCloser(bytes.NewReader(data))
					req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil }
					req.ContentLength = int64(len(data))
				}
				req.Host = tt.host
				maps.Copy(req.Header, tt.header)
				resp, err := rt.RoundTrip(req)
				if err != nil {
					t.Fatalf("%s: %v", name, err)
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				_ = resp.Body.Close()
				rt.CloseIdleConnections()
				if h1, ok := rt.(*h1Client); ok && lenMap(h1.pools.Load()) == 0 {
					t.Errorf("%s: the request did not take the lean path", name)
				}
			}
			mu.Lock()
			defer mu.Unlock()
			want, have := got[UpstreamClientNetHTTP], got[UpstreamClientFast]
			if fmt.Sprint(want) != fmt.Sprint(have) {
				t.Fatalf("request differs:\n fast     %+v\n net/http %+v", have, want)
			}
		})
	}
}

// Requests the lean client leaves to net/http's Transport.
func TestH1ClientEligible(t *testing.T) {
	t.Parallel()
	buffered := func(r *http.Request, n int) {
		data := bytes.Repeat([]byte("a"), n)
		r.Body = io.NopCloser(bytes.NewReader(data))
		r.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil }
		r.ContentLength = int64(n)
	}
	tests := []struct {
		desc     string
		url      string
		edit     func(*http.Request)
		want     bool
		wantAddr string
	}{
		{desc: "plain GET", url: "http://10.0.0.1:8080/", want: true, wantAddr: "10.0.0.1:8080"},
		{desc: "default port", url: "http://svc.ns.svc.cluster.local/", want: true, wantAddr: "svc.ns.svc.cluster.local:80"},
		{desc: "ipv6 with port", url: "http://[fd00::1]:8080/", want: true, wantAddr: "[fd00::1]:8080"},
		{desc: "ipv6 without port", url: "http://[fd00::1]/", want: true, wantAddr: "[fd00::1]:80"},
		{desc: "empty port", url: "http://10.0.0.1:/", want: true, wantAddr: "10.0.0.1:80"},
		{desc: "https", url: "https://10.0.0.1:8443/"},
		{desc: "buffered body", url: "http://10.0.0.1:8080/", edit: func(r *http.Request) { buffered(r, 100) }, want: true, wantAddr: "10.0.0.1:8080"},
		{desc: "streamed body", url: "http://10.0.0.1:8080/", edit: func(r *http.Request) {
			r.Body, r.ContentLength = io.NopCloser(strings.NewReader("abc")), 3
		}},
		{desc: "body of unknown length", url: "http://10.0.0.1:8080/", edit: func(r *http.Request) {
			buffered(r, 3)
			r.ContentLength = -1
		}},
		{desc: "body over the buffer", url: "http://10.0.0.1:8080/", edit: func(r *http.Request) { buffered(r, h1MaxRequestBytes+1) }},
		{desc: "nil body with a length", url: "http://10.0.0.1:8080/", edit: func(r *http.Request) { r.ContentLength = 3 }},
		{desc: "Expect", url: "http://10.0.0.1:8080/", edit: func(r *http.Request) { r.Header.Set("Expect", "100-continue") }},
		{desc: "Connection", url: "http://10.0.0.1:8080/", edit: func(r *http.Request) { r.Header.Set("Connection", "close") }},
		{desc: "Upgrade", url: "http://10.0.0.1:8080/", edit: func(r *http.Request) { r.Header.Set("Upgrade", "websocket") }},
		{desc: "Close", url: "http://10.0.0.1:8080/", edit: func(r *http.Request) { r.Close = true }},
		{desc: "chunked", url: "http://10.0.0.1:8080/", edit: func(r *http.Request) { r.TransferEncoding = []string{"chunked"} }},
		{desc: "trailer", url: "http://10.0.0.1:8080/", edit: func(r *http.Request) { r.Trailer = http.Header{"X": nil} }},
		{desc: "trace", url: "http://10.0.0.1:8080/", edit: func(r *http.Request) {
			*r = *r.WithContext(httptrace.WithClientTrace(r.Context(), &httptrace.ClientTrace{}))
		}},
	}
	for _, tt := range tests {
		req, err := http.NewRequest(http.MethodGet, tt.url, nil)
		if err != nil {
			t.Fatal(err)
		}
		if tt.edit != nil {
			tt.edit(req)
		}
		addr, ok := h1Eligible(req)
		if ok != tt.want || addr != tt.wantAddr {
			t.Errorf("%s: got %q %v, want %q %v", tt.desc, addr, ok, tt.wantAddr, tt.want)
		}
	}
	// Heads net/http would refuse or rewrite go to it too (appendRequestHead reports false).
	heads := []struct {
		desc string
		edit func(*http.Request)
	}{
		{"bad field name", func(r *http.Request) { r.Header["X Y"] = []string{"1"} }},
		{"bad field value", func(r *http.Request) { r.Header["X-Y"] = []string{"a\r\nb"} }},
		{"bad user agent", func(r *http.Request) { r.Header["User-Agent"] = []string{"a\nb"} }},
		{"bad method", func(r *http.Request) { r.Method = "GET X" }},
		{"host with zone", func(r *http.Request) { r.Host = "[fe80::1%25en0]:80" }},
		{"non-ascii host", func(r *http.Request) { r.Host = "bücher.example" }},
		{"invalid host", func(r *http.Request) { r.Host = "a b" }},
		{"control character in query", func(r *http.Request) { r.URL.RawQuery = "a=\x01" }},
		{"huge head", func(r *http.Request) { r.Header["X-Big"] = []string{strings.Repeat("h", h1MaxRequestBytes)} }},
	}
	for _, tt := range heads {
		req, err := http.NewRequest(http.MethodGet, "http://10.0.0.1:8080/", nil)
		if err != nil {
			t.Fatal(err)
		}
		tt.edit(req)
		if _, ok := appendRequestHead(nil, req); ok {
			t.Errorf("%s: the lean client would send it", tt.desc)
		}
	}
}

// Requests the lean client does not take still work, through net/http's Transport.
func TestH1ClientFallback(t *testing.T) {
	t.Parallel()
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		_, _ = fmt.Fprintf(w, "%s %d %s", r.Method, len(b), r.Header.Get("Expect"))
	}))
	t.Cleanup(s.Close)
	_, p, _ := net.SplitHostPort(s.Listener.Addr().String())
	url := "http://srv.localhost:" + p + "/"
	c := clientsUnderTest(4)[UpstreamClientFast].(*h1Client)
	t.Cleanup(c.CloseIdleConnections)
	tests := []struct {
		desc string
		req  func() *http.Request
		want string
	}{
		{"streamed body", func() *http.Request {
			r, _ := http.NewRequest(http.MethodPost, url, io.NopCloser(strings.NewReader(strings.Repeat("s", 200<<10))))
			r.ContentLength = -1
			return r
		}, "POST 204800 "},
		{"expect 100-continue", func() *http.Request {
			r, _ := http.NewRequest(http.MethodPut, url, bytes.NewReader([]byte("body")))
			r.Header.Set("Expect", "100-continue")
			return r
		}, "PUT 4 100-continue"},
	}
	for _, tt := range tests {
		resp, err := c.RoundTrip(tt.req())
		if err != nil {
			t.Fatalf("%s: %v", tt.desc, err)
		}
		b, _ := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		if string(b) != tt.want {
			t.Errorf("%s: got %q, want %q", tt.desc, b, tt.want)
		}
	}
	if n := lenMap(c.pools.Load()); n != 0 {
		t.Errorf("the lean client took %d of the requests", n)
	}
}

// A reused connection the server had closed does not surface: whether the close shows before the
// request (FIN or RST while idle: the liveness check) or only after it was written (the server
// read the request and hung up: sent again on a new connection when net/http would).
func TestH1ClientStaleConnections(t *testing.T) {
	t.Parallel()
	type step struct {
		method string
		hdr    http.Header
	}
	tests := []struct {
		desc string
		// serve handles request nreq of a connection, after the first (a plain 200).
		serve     func(c net.Conn, nreq int) bool
		second    step
		wantKind  errKind // 0: a 200
		wantConns int32
	}{
		{desc: "closed while idle (FIN), GET", serve: nil, second: step{method: "GET"}, wantConns: 2},
		{desc: "closed while idle (FIN), POST", serve: nil, second: step{method: "POST"}, wantConns: 2},
		{desc: "hung up on the request, GET", serve: hangUp, second: step{method: "GET"}, wantConns: 2},
		{desc: "hung up on the request, HEAD", serve: hangUp, second: step{method: "HEAD"}, wantConns: 2},
		{desc: "hung up on the request, POST with Idempotency-Key", serve: hangUp,
			second: step{method: "POST", hdr: http.Header{"Idempotency-Key": {"k1"}}}, wantConns: 2},
		{desc: "hung up on the request, POST: not sent again", serve: hangUp, second: step{method: "POST"}, wantKind: kindReset, wantConns: 1},
		{desc: "hung up on the request, PUT: not sent again", serve: hangUp, second: step{method: "PUT"}, wantKind: kindReset, wantConns: 1},
		{desc: "reset on the request, GET", serve: resetOn, second: step{method: "GET"}, wantConns: 2},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			t.Parallel()
			for name, rt := range clientsUnderTest(4) {
				closed := make(chan struct{}, 4)
				s := newRawServer(t, func(c net.Conn, conn int) {
					br := bufio.NewReader(c)
					for nreq := 1; ; nreq++ {
						req, err := http.ReadRequest(br)
						if err != nil {
							return
						}
						_, _ = io.Copy(io.Discard, req.Body)
						if nreq > 1 && conn == 1 && tt.serve != nil && !tt.serve(c, nreq) {
							return
						}
						if _, err := io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"); err != nil {
							return
						}
						if tt.serve == nil && conn == 1 {
							_ = c.Close() // close the idle connection, as a server's idle timeout would
							closed <- struct{}{}
							return
						}
					}
				})
				do := func(st step) (int, error) {
					req, _ := http.NewRequest(st.method, "http://"+s.addr+"/", nil)
					maps.Copy(req.Header, st.hdr)
					resp, err := rt.RoundTrip(req)
					if err != nil {
						return 0, err
					}
					_, _ = io.Copy(io.Discard, resp.Body)
					_ = resp.Body.Close()
					return resp.StatusCode, nil
				}
				if code, err := do(step{method: "GET"}); code != 200 {
					t.Fatalf("%s: first request: %d %v", name, code, err)
				}
				if tt.serve == nil {
					<-closed
					h1, ok := rt.(*h1Client)
					if !ok {
						if tt.second.method == "POST" {
							// net/http's reader goroutine must have seen the FIN first: a race
							// this test cannot wait for. The lean client's case is waited for.
							continue
						}
					} else {
						waitIdleClosed(t, h1, s.addr)
					}
				}
				code, err := do(tt.second)
				var kind errKind
				if err != nil {
					kind = (&portRoute{}).classify(context.Background(), err).kind
				}
				if kind != tt.wantKind || (err == nil && code != 200) {
					t.Errorf("%s: got %d %v (kind %d), want kind %d", name, code, err, kind, tt.wantKind)
				}
				if n := s.conns.Load(); n != tt.wantConns {
					t.Errorf("%s: %d connections, want %d", name, n, tt.wantConns)
				}
				rt.CloseIdleConnections()
			}
		})
	}
}

// waitIdleClosed waits until every idle connection of addr in c shows the server's close.
func waitIdleClosed(t testing.TB, c *h1Client, addr string) {
	t.Helper()
	waitFor(t, "the server's close to reach the idle connections", func() bool {
		p := c.pool(addr)
		p.mu.Lock()
		defer p.mu.Unlock()
		for _, pc := range p.idle {
			if pc.alive() {
				return false
			}
		}
		return true
	})
}

// stall sends nothing more until the connection is closed (by the client, or the test's end).
func stall(c net.Conn) { _, _ = io.Copy(io.Discard, c) }

// hangUp reads a request and closes the connection without a byte of response.
func hangUp(net.Conn, int) bool { return false }

// resetOn reads a request and resets the connection.
func resetOn(c net.Conn, _ int) bool {
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	return false
}

// Every server connection is closed while idle (a backend restart): no request fails.
func TestH1ClientBackendRestart(t *testing.T) {
	t.Parallel()
	c := clientsUnderTest(8)[UpstreamClientFast].(*h1Client)
	t.Cleanup(c.CloseIdleConnections)
	var mu sync.Mutex
	var conns []net.Conn
	s := newRawServer(t, func(cn net.Conn, _ int) {
		mu.Lock()
		conns = append(conns, cn)
		mu.Unlock()
		scripted(writes("HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\n!"))(cn, 0)
	})
	run := func() {
		var wg sync.WaitGroup
		for range 8 {
			wg.Go(func() {
				for range 5 {
					req, _ := http.NewRequest(http.MethodPost, "http://"+s.addr+"/x", nil)
					resp, err := c.RoundTrip(req)
					if err != nil {
						t.Errorf("request failed: %v", err)
						return
					}
					_, _ = io.Copy(io.Discard, resp.Body)
					_ = resp.Body.Close()
				}
			})
		}
		wg.Wait()
	}
	run()
	mu.Lock()
	for _, cn := range conns {
		_ = cn.Close()
	}
	mu.Unlock()
	waitIdleClosed(t, c, s.addr) // the FINs have arrived, as they would before the next request
	run()
}

// The request context aborts a blocked read at once, whatever the phase, with the context's cause,
// as net/http's Transport; classify reads it as the gateway's timeout or cancellation.
func TestH1ClientContext(t *testing.T) {
	t.Parallel()
	tests := []struct {
		desc   string
		script func(net.Conn, *bufio.Reader, *http.Request, int, int) bool
		inBody bool
	}{
		{desc: "no response at all", script: func(c net.Conn, _ *bufio.Reader, _ *http.Request, _, _ int) bool { stall(c); return false }},
		{desc: "response head stalls", script: func(c net.Conn, _ *bufio.Reader, _ *http.Request, _, _ int) bool {
			_, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\nX-Slow")
			stall(c)
			return false
		}},
		{desc: "body stalls", inBody: true, script: func(c net.Conn, _ *bufio.Reader, _ *http.Request, _, _ int) bool {
			_, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc")
			stall(c)
			return false
		}},
		{desc: "chunked body stalls", inBody: true, script: func(c net.Conn, _ *bufio.Reader, _ *http.Request, _, _ int) bool {
			_, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n")
			stall(c)
			return false
		}},
	}
	causes := []struct {
		cause error
		want  errKind
	}{{errPerTryTimeout, kindTryTimeout}, {errOverallTimeout, kindCanceled}, {nil, kindCanceled}}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			t.Parallel()
			for name, rt := range clientsUnderTest(4) {
				for _, cs := range causes {
					s := newRawServer(t, scripted(tt.script))
					ctx, cancel := context.WithCancelCause(context.Background())
					req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+s.addr+"/s", nil)
					var resp *http.Response
					var err error
					if tt.inBody {
						if resp, err = rt.RoundTrip(req); err != nil {
							t.Fatalf("%s: %v", name, err)
						}
						time.AfterFunc(20*time.Millisecond, func() { cancel(cs.cause) })
						_, err = io.ReadAll(resp.Body)
						_ = resp.Body.Close()
					} else {
						time.AfterFunc(20*time.Millisecond, func() { cancel(cs.cause) })
						resp, err = rt.RoundTrip(req)
					}
					wantErr := cs.cause
					if wantErr == nil {
						wantErr = context.Canceled
					}
					if !errors.Is(err, wantErr) {
						t.Errorf("%s, cause %v: got %v, want %v", name, cs.cause, err, wantErr)
					}
					if !tt.inBody {
						if got := (&portRoute{}).classify(ctx, err).kind; got != cs.want {
							t.Errorf("%s, cause %v: kind %d, want %d", name, cs.cause, got, cs.want)
						}
					}
					// The connection is not reused: the next request gets a new one and works.
					ok, _ := http.NewRequest(http.MethodGet, "http://"+s.addr+"/ok", nil)
					if resp, err = rt.RoundTrip(ok); err != nil {
						t.Fatalf("%s: after the cancelled request: %v", name, err)
					}
					_, _ = io.Copy(io.Discard, resp.Body)
					_ = resp.Body.Close()
					if n := s.conns.Load(); n != 2 {
						t.Errorf("%s: %d connections, want 2", name, n)
					}
					rt.CloseIdleConnections()
				}
			}
		})
	}
	// A context already ended: nothing is sent.
	for name, rt := range clientsUnderTest(4) {
		s := newRawServer(t, scripted(writes("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")))
		ctx, cancel := context.WithCancelCause(context.Background())
		cancel(errPerTryTimeout)
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+s.addr+"/s", nil)
		if _, err := rt.RoundTrip(req); !errors.Is(err, errPerTryTimeout) {
			t.Errorf("%s: got %v", name, err)
		}
	}
}

// Dial errors are the dialer's, the dial guard's included: connect errors for classify.
func TestH1ClientDialErrors(t *testing.T) {
	t.Parallel()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	_, p, _ := net.SplitHostPort(l.Addr().String())
	_ = l.Close() // nothing listens there now
	for name, rt := range clientsUnderTest(4) {
		for _, url := range []string{"http://srv.localhost:" + p + "/", "http://127.0.0.1:" + p + "/", "http://169.254.169.254/"} {
			req, _ := http.NewRequest(http.MethodGet, url, nil)
			_, err := rt.RoundTrip(req)
			if err == nil {
				t.Fatalf("%s %s: no error", name, url)
			}
			if k := (&portRoute{}).classify(context.Background(), err).kind; k != kindConnect {
				t.Errorf("%s %s: kind %d (%v), want connect", name, url, k, err)
			}
		}
	}
}

// The pool keeps at most maxIdle idle connections per endpoint, closes those idle for longer than
// the idle timeout, and retires the pool of an endpoint left without connections.
func TestH1ClientPool(t *testing.T) {
	t.Parallel()
	var open atomic.Int32
	s := newRawServer(t, func(c net.Conn, _ int) {
		open.Add(1)
		defer open.Add(-1)
		br := bufio.NewReader(c)
		for {
			req, err := http.ReadRequest(br)
			if err != nil {
				return
			}
			if req.URL.Path == "/slow" {
				time.Sleep(20 * time.Millisecond) // so that the requests overlap
			}
			if _, err := io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"); err != nil {
				return
			}
		}
	})
	c := clientsUnderTest(2)[UpstreamClientFast].(*h1Client)
	t.Cleanup(c.CloseIdleConnections)
	var wg sync.WaitGroup
	for range 6 {
		wg.Go(func() {
			req, _ := http.NewRequest(http.MethodGet, "http://"+s.addr+"/slow", nil)
			resp, err := c.RoundTrip(req)
			if err != nil {
				t.Error(err)
				return
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			_ = resp.Body.Close()
		})
	}
	wg.Wait()
	p := c.pool(s.addr)
	p.mu.Lock()
	idle, out := len(p.idle), p.out
	p.mu.Unlock()
	if idle != 2 || out != 0 {
		t.Fatalf("idle %d out %d, want 2 and 0", idle, out)
	}
	waitFor(t, "the surplus connections to close", func() bool { return open.Load() == 2 })

	// Idle timeout: the sweeper closes them and retires the pool.
	c.mu.Lock()
	c.idleTimeout = 10 * time.Millisecond
	c.mu.Unlock()
	p.mu.Lock()
	p.timer.Reset(time.Millisecond)
	p.mu.Unlock()
	waitFor(t, "the idle connections to expire", func() bool { return open.Load() == 0 })
	waitFor(t, "the pool to be retired", func() bool { return lenMap(c.pools.Load()) == 0 })
	// A new request makes a new pool.
	req, _ := http.NewRequest(http.MethodGet, "http://"+s.addr+"/", nil)
	resp, err := c.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	if lenMap(c.pools.Load()) != 1 {
		t.Fatal("no pool for the endpoint")
	}
}

// A body closed before its end closes its connection; a body read to the end gives it back.
func TestH1ClientEarlyClose(t *testing.T) {
	t.Parallel()
	s := newRawServer(t, scripted(writes("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n0123456789")))
	c := clientsUnderTest(4)[UpstreamClientFast].(*h1Client)
	t.Cleanup(c.CloseIdleConnections)
	req, _ := http.NewRequest(http.MethodGet, "http://"+s.addr+"/s", nil)
	resp, err := c.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	var b [3]byte
	if _, err := io.ReadFull(resp.Body, b[:]); err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	_ = resp.Body.Close() // twice is fine
	if _, err := resp.Body.Read(b[:]); err == nil {
		t.Fatal("read after close succeeded")
	}
	o := exchangeOnce(t, c, s, req.Clone(context.Background()))
	if o.body != "0123456789" || o.conns != 2 {
		t.Fatalf("after an early close: %v (want a second connection, then reuse)", o)
	}
}

// Close from another goroutine ends a Read blocked on a stalled body.
func TestH1ClientCloseDuringRead(t *testing.T) {
	t.Parallel()
	s := newRawServer(t, scripted(func(c net.Conn, _ *bufio.Reader, _ *http.Request, _, _ int) bool {
		_, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc")
		stall(c)
		return false
	}))
	c := clientsUnderTest(4)[UpstreamClientFast].(*h1Client)
	t.Cleanup(c.CloseIdleConnections)
	req, _ := http.NewRequest(http.MethodGet, "http://"+s.addr+"/s", nil)
	resp, err := c.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := io.ReadAll(resp.Body)
		done <- err
	}()
	_ = resp.Body.Close()
	if err := <-done; err == nil {
		t.Fatal("the read of a closed body ended without error")
	}
}

// Many concurrent requests of every kind through one client, against a server that misbehaves at
// random: nothing races, hangs, or leaks a connection slot.
func TestH1ClientConcurrent(t *testing.T) {
	t.Parallel()
	responses := []string{
		"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-T\r\n\r\n2\r\nok\r\n0\r\nX-T: 1\r\n\r\n",
		"HTTP/1.1 204 No Content\r\n\r\n",
		"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
		"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok",
	}
	s := newRawServer(t, scripted(func(c net.Conn, _ *bufio.Reader, req *http.Request, conn, nreq int) bool {
		i := (conn*7 + nreq*3) % (len(responses) + 2)
		switch {
		case i == len(responses):
			return false // hang up
		case i == len(responses)+1:
			_, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\npart")
			return false
		}
		_, err := io.WriteString(c, responses[i])
		return err == nil && !strings.Contains(responses[i], "close")
	}))
	c := clientsUnderTest(4)[UpstreamClientFast].(*h1Client)
	t.Cleanup(c.CloseIdleConnections)
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			for i := range 50 {
				method := []string{"GET", "HEAD", "POST"}[(w+i)%3]
				var body io.Reader
				if method == "POST" {
					body = strings.NewReader("payload")
				}
				ctx, cancel := context.WithCancel(context.Background())
				req, _ := http.NewRequestWithContext(ctx, method, "http://"+s.addr+"/s", body)
				if i%7 == 0 {
					time.AfterFunc(time.Duration(i%3)*time.Millisecond, cancel)
				}
				resp, err := c.RoundTrip(req)
				if err == nil {
					if i%5 == 0 {
						var b [1]byte
						_, _ = resp.Body.Read(b[:])
					} else {
						_, _ = io.Copy(io.Discard, resp.Body)
					}
					_ = resp.Body.Close()
				}
				cancel()
			}
		})
	}
	wg.Wait()
	p := c.pool(s.addr)
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.out != 0 || len(p.idle) > 4 {
		t.Fatalf("out %d idle %d after every request ended", p.out, len(p.idle))
	}
}

// Through the gateway: both clients give the same answers to resets, hang-ups and retries
// (X-Resilience-Attempts), and the breaker counts the same.
func TestGatewayUpstreamClients(t *testing.T) {
	t.Parallel()
	if _, err := New(Options{UpstreamClient: "fastest"}); err == nil {
		t.Fatal("unknown upstream client accepted")
	}
	type result struct {
		code     int
		attempts string
		body     string
	}
	script := func(c net.Conn, _ *bufio.Reader, req *http.Request, _, _ int) bool {
		switch req.URL.Path {
		case "/hangup":
			return false
		case "/reset":
			return resetOn(c, 0)
		case "/503":
			_, err := io.WriteString(c, "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 4\r\n\r\nbusy")
			return err == nil
		case "/echo":
			b, _ := describeRequest(req)
			_, err := fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s", len(b), b)
			return err == nil
		}
		_, err := io.WriteString(c, "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")
		return err == nil
	}
	requests := []struct {
		method, path, body string
	}{
		{"GET", "/hangup", ""}, {"GET", "/reset", ""}, {"GET", "/503", ""}, {"POST", "/hangup", "x"},
		{"PUT", "/echo", "put body"}, {"GET", "/echo", ""}, {"POST", "/echo", strings.Repeat("p", 70<<10)},
	}
	results := map[string][]result{}
	for _, name := range []string{UpstreamClientFast, UpstreamClientNetHTTP} {
		s := newRawServer(t, scripted(script))
		_, p, _ := net.SplitHostPort(s.addr)
		n, _ := strconv.Atoi(p)
		pt := port(snapshot.Endpoint{Address: "backend.localhost", Port: int32(n), Type: snapshot.AddressFQDN, HandMade: true})
		pt.Retry = retry(3)
		pt.CircuitBreaker = circuitBreaker(100)
		g := newGW(t, Options{LocalDev: true, UpstreamClient: name}, nil, snap(1, pt))
		for _, r := range requests {
			var body io.Reader
			if r.body != "" {
				body = strings.NewReader(r.body)
			}
			rec := send(g, r.method, "http://api.shop"+r.path, body, "X-Test: 1")
			results[name] = append(results[name], result{rec.Code, rec.Header().Get("X-Resilience-Attempts"), rec.Body.String()})
		}
	}
	if fmt.Sprint(results[UpstreamClientFast]) != fmt.Sprint(results[UpstreamClientNetHTTP]) {
		t.Fatalf("answers differ:\n fast     %v\n net/http %v", results[UpstreamClientFast], results[UpstreamClientNetHTTP])
	}
}

// describeRequest renders the parts of a request the upstream saw that must not depend on the client.
func describeRequest(req *http.Request) ([]byte, error) {
	b, err := io.ReadAll(req.Body)
	keys := slices.Sorted(maps.Keys(req.Header))
	return fmt.Appendf(nil, "%s %s %s cl=%d body=%d %v", req.Method, req.RequestURI, req.Host, req.ContentLength, len(b), keys), err
}

// benchServerClient is benchServer (the gateway's own server, its built-in transport and a real
// loopback backend, in one process) with the upstream client chosen.
func benchServerClient(b *testing.B, p snapshot.Port, client string) {
	benchServer(b, p, Options{UpstreamClient: client})
}

// BenchmarkServerBenchPoliciesBackendClient is BenchmarkServerBenchPoliciesBackend with each
// upstream client.
func BenchmarkServerBenchPoliciesBackendClient(b *testing.B) {
	for _, client := range []string{UpstreamClientFast, UpstreamClientNetHTTP} {
		b.Run(strings.ReplaceAll(client, "/", ""), func(b *testing.B) { benchServerClient(b, benchPolicies(), client) })
	}
}

// BenchmarkUpstreamClient is one client alone: GET to a loopback backend and the body read.
func BenchmarkUpstreamClient(b *testing.B) {
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = io.WriteString(w, "hello, 42")
	}))
	b.Cleanup(backend.Close)
	_, p, _ := net.SplitHostPort(backend.Listener.Addr().String())
	for name, rt := range clientsUnderTest(DefaultMaxIdleConnsPerHost) {
		b.Run(strings.ReplaceAll(name, "/", ""), func(b *testing.B) {
			b.Cleanup(rt.CloseIdleConnections)
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				req, _ := http.NewRequest(http.MethodGet, "http://backend.localhost:"+p+"/", nil)
				req.Header["User-Agent"] = []string{""}
				buf := make([]byte, 512)
				for pb.Next() {
					resp, err := rt.RoundTrip(req)
					if err != nil {
						b.Error(err)
						return
					}
					for {
						if _, err := resp.Body.Read(buf); err != nil {
							break
						}
					}
					_ = resp.Body.Close()
				}
			})
		})
	}
}
