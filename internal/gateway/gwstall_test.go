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
