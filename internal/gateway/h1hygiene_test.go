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
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// answersEarly reads the request head only, answers at once and keeps the connection open without
// reading the body, until stop is closed: an upstream refusing a large body (413, 401).
func answersEarly(answer string, stop <-chan struct{}) func(net.Conn, int) {
	return func(c net.Conn, _ int) {
		if _, err := http.ReadRequest(bufio.NewReader(c)); err != nil {
			return
		}
		if _, err := io.WriteString(c, answer); err != nil {
			return
		}
		<-stop
	}
}

// An upstream that answers before it reads the request body, and keeps the connection, has its
// answer returned by both clients, at once: neither waits for the whole body to be written.
func TestH1ClientEarlyResponse(t *testing.T) {
	t.Parallel()
	tests := []struct {
		desc     string
		size     int
		buffered bool
	}{
		{desc: "small buffered body", size: 1 << 10, buffered: true},
		{desc: "buffered body of 16 KiB", size: 16 << 10, buffered: true},
		{desc: "buffered body of MaxReplayBody", size: MaxReplayBody, buffered: true},
		{desc: "streamed body of 8 MiB", size: 8 << 20},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			t.Parallel()
			for name, rt := range clientsUnderTest(4) {
				stop := make(chan struct{})
				s := newRawServerOn(t, listenNarrow(t), answersEarly("HTTP/1.1 413 Content Too Large\r\nContent-Length: 8\r\n\r\ntoo much", stop))
				t.Cleanup(func() { close(stop) })
				ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
				data := bytes.Repeat([]byte("b"), tt.size)
				req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+s.addr+"/upload", bytes.NewReader(data))
				if err != nil {
					t.Fatal(err)
				}
				if !tt.buffered {
					req.GetBody = nil
				}
				resp, err := rt.RoundTrip(req)
				if err != nil {
					cancel()
					t.Errorf("%s: %v", name, err)
					continue
				}
				b, err := io.ReadAll(resp.Body)
				_ = resp.Body.Close()
				cancel()
				if resp.StatusCode != http.StatusRequestEntityTooLarge || string(b) != "too much" || err != nil {
					t.Errorf("%s: got %d %q %v, want 413 \"too much\"", name, resp.StatusCode, b, err)
				}
				rt.CloseIdleConnections()
			}
		})
	}
}

// Lines longer than the lean client's read buffer (a trailer, a header line, a chunk line) end as
// they do with net/http's Transport, whose buffer is 32 KiB.
func TestH1ClientLongLines(t *testing.T) {
	t.Parallel()
	long := func(n int) string { return strings.Repeat("v", n) }
	tests := []struct {
		desc     string
		response string
		keep     []string
	}{
		{desc: "trailer of 10 KiB", response: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-Sum\r\n\r\n" +
			"3\r\nabc\r\n0\r\nX-Sum: " + long(10<<10) + "\r\n\r\n"},
		{desc: "trailer of 40 KiB", response: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" +
			"3\r\nabc\r\n0\r\nX-Sum: " + long(40<<10) + "\r\n\r\n"},
		{desc: "trailers of 3 x 6 KiB", response: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" +
			"3\r\nabc\r\n0\r\nX-A: " + long(6<<10) + "\r\nX-B: " + long(6<<10) + "\r\nX-C: " + long(6<<10) + "\r\n\r\n"},
		{desc: "header line of 10 KiB", keep: []string{"X-Long"},
			response: "HTTP/1.1 200 OK\r\nX-Long: " + long(10<<10) + "\r\nContent-Length: 2\r\n\r\nok"},
		{desc: "status line of 10 KiB", response: "HTTP/1.1 200 " + long(10<<10) + "\r\nContent-Length: 2\r\n\r\nok"},
		{desc: "chunk extension of 10 KiB", response: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" +
			"3;e=" + long(10<<10) + "\r\nabc\r\n0\r\n\r\n"},
		{desc: "chunk extension of 3 KiB", response: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" +
			"3;e=" + long(3<<10) + "\r\nabc\r\n0\r\n\r\n"},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			t.Parallel()
			got := map[string]string{}
			for name, rt := range clientsUnderTest(4) {
				s := newRawServer(t, scripted(writes(tt.response)))
				req, err := http.NewRequest(http.MethodGet, "http://"+s.addr+"/s", nil)
				if err != nil {
					t.Fatal(err)
				}
				got[name] = exchangeOnce(t, rt, s, req, tt.keep...).String()
				rt.CloseIdleConnections()
			}
			if got[UpstreamClientFast] != got[UpstreamClientNetHTTP] {
				t.Errorf("outcomes differ:\n fast     %.300s\n net/http %.300s", got[UpstreamClientFast], got[UpstreamClientNetHTTP])
			}
		})
	}
}

// cutConn writes only half of its second write, then fails: a reused connection that breaks in the
// middle of a request. It leaves the connection open: the write error is all the client sees (a
// peer's reset would also fail the read, and net/http's Transport, when its reader sees that first,
// sends a replayable request again: that race is net/http's, not a rule to copy).
type cutConn struct {
	net.Conn
	writes int
}

var errCut = errors.New("test: connection cut in the middle of a write")

func (c *cutConn) Write(b []byte) (int, error) {
	c.writes++
	if c.writes < 2 {
		return c.Conn.Write(b)
	}
	n, _ := c.Conn.Write(b[:len(b)/2])
	return n, errCut
}

// A request partly written on a reused connection before it broke is not sent again, even when
// net/http's Transport would send it again had nothing been written (GET, an Idempotency-Key): the
// server may have acted on it. Both clients fail the request, on the one connection.
func TestH1ClientNoResendAfterPartialWrite(t *testing.T) {
	t.Parallel()
	tests := []struct {
		desc   string
		method string
		header string
	}{
		{desc: "GET", method: http.MethodGet},
		{desc: "HEAD", method: http.MethodHead},
		{desc: "POST with Idempotency-Key", method: http.MethodPost, header: "Idempotency-Key"},
		{desc: "POST", method: http.MethodPost},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			t.Parallel()
			d := &net.Dialer{}
			dial := func(ctx context.Context, network, addr string) (net.Conn, error) {
				_, p, _ := net.SplitHostPort(addr)
				c, err := d.DialContext(ctx, network, "127.0.0.1:"+p)
				if err != nil {
					return nil, err
				}
				return &cutConn{Conn: c}, nil
			}
			clients := map[string]upstreamTransport{
				UpstreamClientFast:    newH1Client(dial, &http.Transport{DialContext: dial}, 4),
				UpstreamClientNetHTTP: &http.Transport{DialContext: dial},
			}
			for name, rt := range clients {
				s := newRawServer(t, scripted(writes("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")))
				for i := range 2 {
					req, err := http.NewRequest(tt.method, "http://"+s.addr+"/s", nil)
					if err != nil {
						t.Fatal(err)
					}
					if tt.header != "" {
						req.Header.Set(tt.header, "k1")
					}
					resp, err := rt.RoundTrip(req)
					if i == 0 {
						if err != nil {
							t.Fatalf("%s: first request: %v", name, err)
						}
						_, _ = io.Copy(io.Discard, resp.Body)
						_ = resp.Body.Close()
						continue
					}
					if err == nil {
						_ = resp.Body.Close()
						t.Errorf("%s: the request cut on a reused connection succeeded (sent again)", name)
					}
				}
				rt.CloseIdleConnections()
				if n := s.conns.Load(); n != 1 {
					t.Errorf("%s: %d connections, want 1 (no second dial to send the request again)", name, n)
				}
			}
		})
	}
}
