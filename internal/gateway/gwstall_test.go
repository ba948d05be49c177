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
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"resilience.dev/operator/internal/snapshot"
)

// A request body that stalls longer than Options.RequestBodyReadTimeout ends the client's
// connection, whether the body is streamed (no retry) or buffered (retries), with either client;
// the timeout bounds each read, not the upload: a slow body that keeps coming is forwarded whole.
func TestGatewayRequestBodyStall(t *testing.T) {
	t.Parallel()
	const timeout = 400 * time.Millisecond
	for _, client := range []string{UpstreamClientFast, UpstreamClientNetHTTP} {
		for _, retries := range []bool{false, true} {
			name := client + "/streamed"
			edit := func(*snapshot.Port) {}
			if retries {
				name = client + "/buffered"
				edit = func(p *snapshot.Port) { p.Retry = retry(2) }
			}
			t.Run(name, func(t *testing.T) {
				t.Parallel()
				addr, _ := gatewayBefore(t, Options{UpstreamClient: client, RequestBodyReadTimeout: timeout}, echoRequest, edit)
				// Stalled: 3 of 10 bytes, then nothing; the gateway must end the connection.
				c, err := net.Dial("tcp", addr)
				if err != nil {
					t.Fatal(err)
				}
				defer c.Close()
				_ = c.SetDeadline(time.Now().Add(20 * time.Second))
				if _, err := io.WriteString(c, "PUT /p HTTP/1.1\r\nHost: api.shop\r\nContent-Length: 10\r\n\r\nabc"); err != nil {
					t.Fatal(err)
				}
				_, err = io.Copy(io.Discard, c) // any answer, then the end of the connection
				if errors.Is(err, os.ErrDeadlineExceeded) {
					t.Fatal("the connection of a stalled body was still open after 20s")
				}
				// Slow but steady: 30 bytes, one every timeout/8, in all longer than the timeout.
				c2, err := net.Dial("tcp", addr)
				if err != nil {
					t.Fatal(err)
				}
				defer c2.Close()
				_ = c2.SetDeadline(time.Now().Add(20 * time.Second))
				if _, err := io.WriteString(c2, "PUT /p HTTP/1.1\r\nHost: api.shop\r\nContent-Length: 30\r\n\r\n"); err != nil {
					t.Fatal(err)
				}
				for range 30 {
					time.Sleep(timeout / 8) // pacing, not an assertion
					if _, err := io.WriteString(c2, "s"); err != nil {
						t.Fatal(err)
					}
				}
				resp, err := http.ReadResponse(bufio.NewReader(c2), nil)
				if err != nil {
					t.Fatal(err)
				}
				b, _ := io.ReadAll(resp.Body)
				if resp.StatusCode != 200 || !strings.Contains(string(b), "cl=30") {
					t.Fatalf("slow body: got %d %q", resp.StatusCode, b)
				}
			})
		}
	}
}

// A request with both Transfer-Encoding and Content-Length gets Connection: close, and its
// connection ends after the response (RFC 9112 6.1: the framing is ambiguous, a smuggling
// attempt). One with either alone keeps its connection.
func TestGatewayClosesAmbiguousFraming(t *testing.T) {
	t.Parallel()
	tests := []struct {
		desc, raw string
		close     bool
	}{
		{desc: "both", close: true, raw: "POST /p HTTP/1.1\r\nHost: api.shop\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n3\r\nabc\r\n0\r\n\r\n"},
		{desc: "both, other case and order", close: true, raw: "POST /p HTTP/1.1\r\nhost: api.shop\r\ncontent-length: 3\r\nX-A: 1\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"},
		{desc: "after a keep-alive request", close: true, raw: "GET /g HTTP/1.1\r\nHost: api.shop\r\n\r\n|" +
			"POST /p HTTP/1.1\r\nHost: api.shop\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"},
		{desc: "chunked only", raw: "POST /p HTTP/1.1\r\nHost: api.shop\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"},
		{desc: "content-length only", raw: "POST /p HTTP/1.1\r\nHost: api.shop\r\nContent-Length: 3\r\n\r\nabc"},
		{desc: "names in a chunked body", raw: "POST /p HTTP/1.1\r\nHost: api.shop\r\nTransfer-Encoding: chunked\r\n\r\n" +
			"2a\r\nTransfer-Encoding: chunked\r\nContent-Length\r\n0\r\n\r\n"},
	}
	for _, client := range []string{UpstreamClientFast, UpstreamClientNetHTTP} {
		t.Run(client, func(t *testing.T) {
			t.Parallel()
			addr, _ := gatewayBefore(t, Options{UpstreamClient: client}, echoRequest)
			for _, tt := range tests {
				c, err := net.Dial("tcp", addr)
				if err != nil {
					t.Fatal(err)
				}
				_ = c.SetDeadline(time.Now().Add(20 * time.Second))
				br := bufio.NewReader(c)
				var resp *http.Response
				for raw := range strings.SplitSeq(tt.raw, "|") { // one request after the other
					if _, err := io.WriteString(c, raw); err != nil {
						t.Fatal(err)
					}
					if resp, err = http.ReadResponse(br, nil); err != nil {
						t.Fatalf("%s: %v", tt.desc, err)
					}
					_, _ = io.Copy(io.Discard, resp.Body)
				}
				if resp.StatusCode != 200 || resp.Close != tt.close {
					t.Errorf("%s: got %d, Connection: close %v, want 200, %v", tt.desc, resp.StatusCode, resp.Close, tt.close)
				}
				if tt.close {
					if _, err := br.ReadByte(); err != io.EOF {
						t.Errorf("%s: the connection was not closed after the response: %v", tt.desc, err)
					}
				}
				_ = c.Close()
			}
		})
	}
}

// The framing scanner finds a head with both fields wherever the reads split it, and only then.
func TestFramingScan(t *testing.T) {
	t.Parallel()
	tests := []struct {
		raw  string
		want bool
	}{
		{"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n", true},
		{"POST / HTTP/1.1\nCONTENT-LENGTH: 3\nTRANSFER-ENCODING: chunked\n\n", true},
		{"GET / HTTP/1.1\r\nHost: a\r\n\r\nPOST / HTTP/1.1\r\nContent-Length:3\r\nTransfer-Encoding:chunked\r\n\r\n", true},
		{"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n", false},
		{"POST / HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc", false},
		{"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nPOST / HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc", false},
		{"POST / HTTP/1.1\r\nX-Transfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n", false},
		{"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n", false}, // head not ended yet
	}
	for _, tt := range tests {
		for split := 0; split <= len(tt.raw); split++ {
			c := &framingConn{}
			c.scan([]byte(tt.raw[:split]))
			c.scan([]byte(tt.raw[split:]))
			if c.ambiguous.Load() != tt.want {
				t.Errorf("%q split at %d: ambiguous %v, want %v", tt.raw, split, !tt.want, tt.want)
				break
			}
		}
	}
}
