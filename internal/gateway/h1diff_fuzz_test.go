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
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// h1DiffSeeds are upstream responses, byte for byte, on which the lean client and net/http's
// Transport must agree: the cases of the HTTP/1.1 hygiene fixes and the usual framings.
var h1DiffSeeds = []string{
	"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-A: 1\r\nX-A: 2\r\n\r\nhello",
	"HTTP/1.1 413 Content Too Large\r\nContent-Length: 8\r\n\r\ntoo much",
	"HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Basic\r\nContent-Length: 0\r\n\r\n",
	"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-Sum\r\n\r\n3\r\nabc\r\n0\r\nX-Sum: " + strings.Repeat("v", 10<<10) + "\r\n\r\n",
	"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\nX-Sum: " + strings.Repeat("v", 40<<10) + "\r\n\r\n",
	"HTTP/1.1 200 OK\r\nX-Long: " + strings.Repeat("v", 10<<10) + "\r\nContent-Length: 2\r\n\r\nok",
	"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n",
	"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi",
	"HTTP/1.1 103 Early Hints\r\nLink: </a.css>\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n",
	"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: X-Hop\r\nTrailer: X-Resilience-Attempts, X-Hop\r\n\r\n" +
		"3\r\nabc\r\n0\r\nX-Resilience-Attempts: 99\r\nX-Hop: 1\r\nKeep-Alive: timeout=5\r\n\r\n",
	"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
	"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd",
	"HTTP/1.1 200 OK\r\nX_Resilience_Attempts: 7\r\nContent-Length: 0\r\n\r\n",
	"HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\n\r\n",
	"HTTP/1.0 200 OK\r\n\r\nold body",
	"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort",
	"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab",
	"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3;e=" + strings.Repeat("v", 5<<10) + "\r\nabc\r\n0\r\n\r\n",
	"HTTP/1.1 abc Nope\r\n\r\n",
	"HTTP/1.1 200 OK\r\nContent-Le",
	"",
}

// diffServer is a raw upstream that answers each request with the response registered for its
// path, and closes the connection; one serves a whole test (or fuzzing process), as a listener per
// input would use up the loopback ports.
type diffServer struct {
	*rawServer
	responses sync.Map // path -> raw response
	n         atomic.Int64
}

func newDiffServer(t testing.TB) *diffServer {
	d := &diffServer{}
	d.rawServer = newRawServer(t, scripted(func(c net.Conn, _ *bufio.Reader, req *http.Request, _, _ int) bool {
		if raw, ok := d.responses.Load(req.URL.Path); ok {
			_, _ = io.WriteString(c, raw.(string))
		}
		return false
	}))
	return d
}

// h1DiffOutcome sends a request (GET, or HEAD) with rt to d, which answers raw and closes the
// connection, and renders what the gateway sees of it. A 101 is the error the upstream stage makes
// of it (the gateway never asks for an upgrade).
func h1DiffOutcome(t testing.TB, d *diffServer, rt http.RoundTripper, method, raw string) string {
	t.Helper()
	path := "/s/" + strconv.FormatInt(d.n.Add(1), 10)
	d.responses.Store(path, raw)
	defer d.responses.Delete(path)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, "http://"+d.addr+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := rt.RoundTrip(req)
	if err == nil && resp.StatusCode == http.StatusSwitchingProtocols {
		_ = resp.Body.Close()
		resp, err = nil, errH1Switch
	}
	if err != nil {
		return fmt.Sprintf("error kind=%d", (&portRoute{}).classify(ctx, err).kind)
	}
	b, err := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	return fmt.Sprintf("status=%d proto=%s header=%v length=%d te=%v body=%q bodyErr=%v trailer=%v",
		resp.StatusCode, resp.Proto, resp.Header, resp.ContentLength, resp.TransferEncoding, b, err != nil, resp.Trailer)
}

// h1Diff requires both clients to see raw alike.
func h1Diff(t *testing.T, d *diffServer, clients map[string]upstreamTransport, method, raw string) {
	t.Helper()
	got := map[string]string{}
	for name, rt := range clients {
		got[name] = h1DiffOutcome(t, d, rt, method, raw)
	}
	if got[UpstreamClientFast] != got[UpstreamClientNetHTTP] {
		t.Fatalf("the clients differ on %.200q:\n fast     %.400s\n net/http %.400s", raw, got[UpstreamClientFast], got[UpstreamClientNetHTTP])
	}
}

// The lean client and net/http's Transport see the same of each seed response.
func TestH1ClientDifferential(t *testing.T) {
	t.Parallel()
	d := newDiffServer(t)
	for i, raw := range h1DiffSeeds {
		for _, method := range []string{http.MethodGet, http.MethodHead} {
			t.Run(fmt.Sprintf("%d/%s", i, method), func(t *testing.T) {
				t.Parallel()
				clients := clientsUnderTest(4)
				defer closeIdle(clients)
				h1Diff(t, d, clients, method, raw)
			})
		}
	}
}

// FuzzH1ClientMatchesNetHTTP feeds the same upstream response bytes to the lean client and to
// net/http's Transport and requires the same outcome: status, header, body, trailers, or the same
// kind of failure.
func FuzzH1ClientMatchesNetHTTP(f *testing.F) {
	for _, raw := range h1DiffSeeds {
		f.Add(raw, false)
	}
	f.Add(h1DiffSeeds[0], true)
	d := newDiffServer(f)
	f.Fuzz(func(t *testing.T, raw string, head bool) {
		if len(raw) > 256<<10 {
			t.Skip()
		}
		method := http.MethodGet
		if head {
			method = http.MethodHead
		}
		// New clients for each input: an upstream's extra bytes after a response can fail
		// net/http's next request on that connection, when it reused it before its reader saw
		// them (a race of net/http's, where the lean client checks the connection first).
		clients := clientsUnderTest(4)
		defer closeIdle(clients)
		h1Diff(t, d, clients, method, raw)
	})
}

func closeIdle(clients map[string]upstreamTransport) {
	for _, rt := range clients {
		rt.CloseIdleConnections()
	}
}
