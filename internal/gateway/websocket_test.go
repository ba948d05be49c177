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
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"

	"resilience.dev/operator/internal/snapshot"
)

// The tests of this file run a real gateway on a loopback listener in front of a real WebSocket
// backend, both sides with github.com/coder/websocket.

// wsEcho is a backend that echoes every message; closed gets the status of how each tunnel ended
// on the backend's side.
func wsEcho(closed chan<- websocket.StatusCode) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer c.CloseNow()
		c.SetReadLimit(1 << 20)
		for {
			typ, msg, err := c.Read(r.Context())
			if err != nil {
				if closed != nil {
					closed <- websocket.CloseStatus(err)
				}
				return
			}
			if err := c.Write(r.Context(), typ, msg); err != nil {
				return
			}
		}
	}
}

// wsGateway serves a gateway on a loopback listener for Service shop/api port 80, whose one
// endpoint is the backend h; edit sets the port's policies (and may give it a capture port). It
// returns the gateway and its address.
func wsGateway(t *testing.T, h http.Handler, edit func(*snapshot.Port)) (*Gateway, string) {
	t.Helper()
	be := httptest.NewServer(h)
	t.Cleanup(be.Close)
	bePort := be.Listener.Addr().(*net.TCPAddr).Port
	pt := port(snapshot.Endpoint{Address: "ws.localhost", Port: int32(bePort), Type: snapshot.AddressFQDN, HandMade: true})
	if edit != nil {
		edit(&pt)
	}
	g := newGW(t, Options{LocalDev: true, CaptureHost: "127.0.0.1", CaptureRange: snapshot.PortRange{First: 1024, Last: 65535}}, nil, snap(1, pt))
	t.Cleanup(func() { g.ShutdownCapture(context.Background()) })
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := g.HTTPServer("")
	go func() { _ = srv.Serve(WatchFraming(l)) }()
	t.Cleanup(func() { _ = srv.Close(); g.CloseTunnels(context.Background()) })
	return g, l.Addr().String()
}

// wsDial opens a WebSocket to shop/api through the gateway at addr.
func wsDial(ctx context.Context, addr string) (*websocket.Conn, *http.Response, error) {
	return wsDialURL(ctx, addr, "ws://api.shop/chat", websocket.CompressionDisabled)
}

// wsDialURL opens a WebSocket to u through the gateway at addr, asking for compression mode cm.
func wsDialURL(ctx context.Context, addr, u string, cm websocket.CompressionMode) (*websocket.Conn, *http.Response, error) {
	d := &net.Dialer{}
	client := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return d.DialContext(ctx, "tcp", addr)
	}}}
	c, resp, err := websocket.Dial(ctx, u, &websocket.DialOptions{HTTPClient: client, CompressionMode: cm})
	if c != nil {
		c.SetReadLimit(1 << 20)
	}
	return c, resp, err
}

func mustDial(t *testing.T, ctx context.Context, addr string) *websocket.Conn {
	t.Helper()
	c, resp, err := wsDial(ctx, addr)
	if err != nil {
		t.Fatalf("dial through the gateway: %v (response %v)", err, resp)
	}
	t.Cleanup(func() { _ = c.CloseNow() })
	return c
}

// echo sends msg and checks it comes back intact.
func echo(ctx context.Context, c *websocket.Conn, msg []byte) error {
	if err := c.Write(ctx, websocket.MessageBinary, msg); err != nil {
		return fmt.Errorf("write: %w", err)
	}
	_, got, err := c.Read(ctx)
	if err != nil {
		return fmt.Errorf("read: %w", err)
	}
	if !bytes.Equal(got, msg) {
		return fmt.Errorf("echo of %d bytes came back as %d different bytes", len(msg), len(got))
	}
	return nil
}

// TestWebSocketEcho: 1,000 messages of 0 to 41 KiB (frames within and beyond the tunnel's buffer)
// go to the backend and back intact, pipelined, and the client's normal close reaches it. The
// upgrade is counted (status 101) at the switch, not when the tunnel ends.
func TestWebSocketEcho(t *testing.T) {
	t.Parallel()
	closed := make(chan websocket.StatusCode, 1)
	g, addr := wsGateway(t, wsEcho(closed), nil)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c := mustDial(t, ctx, addr)
	waitFor(t, "the upgrade to be counted at the switch", func() bool {
		return metricValue(t, g, "resilience_gateway_requests_total", map[string]string{"code": "101"}) == 1
	})
	if got := metricValue(t, g, "resilience_gateway_websocket_tunnels", nil); got != 1 {
		t.Errorf("resilience_gateway_websocket_tunnels %v with a tunnel open, want 1", got)
	}

	const n = 1000
	msgs := make([][]byte, n)
	for i := range msgs {
		size := (i * 7919) % 4096
		if i%10 == 0 {
			size = 40<<10 + i // beyond the tunnel's buffer: copied frame by frame
		}
		msgs[i] = make([]byte, size)
		for j := range msgs[i] {
			msgs[i][j] = byte(i + j*31)
		}
	}
	errc := make(chan error, 1)
	go func() {
		for _, m := range msgs {
			if err := c.Write(ctx, websocket.MessageBinary, m); err != nil {
				errc <- err
				return
			}
		}
		errc <- nil
	}()
	for i, m := range msgs {
		_, got, err := c.Read(ctx)
		if err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
		if !bytes.Equal(got, m) {
			t.Fatalf("message %d: %d bytes came back as %d different bytes", i, len(m), len(got))
		}
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	if err := c.Close(websocket.StatusNormalClosure, "done"); err != nil {
		t.Fatalf("close: %v", err)
	}
	if got := <-closed; got != websocket.StatusNormalClosure {
		t.Errorf("the backend saw the tunnel end with %v, want %v", got, websocket.StatusNormalClosure)
	}
	waitFor(t, "the tunnel gauge to go back to 0", func() bool {
		return metricValue(t, g, "resilience_gateway_websocket_tunnels", nil) == 0
	})
}

// TestWebSocketRateLimit: the upgrade takes a token, and its 101 carries the rate-limit headers;
// over the limit it gets 429 and no tunnel.
func TestWebSocketRateLimit(t *testing.T) {
	t.Parallel()
	_, addr := wsGateway(t, wsEcho(nil), func(p *snapshot.Port) {
		p.RateLimit = rateLimit(limit("l", 3, time.Hour, 3))
	})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for i := range 3 {
		c, resp, err := wsDial(ctx, addr)
		if err != nil {
			t.Fatalf("upgrade %d: %v", i, err)
		}
		defer c.CloseNow()
		if got := resp.Header.Get("X-Ratelimit-Remaining"); got != fmt.Sprint(2-i) {
			t.Errorf("upgrade %d: X-RateLimit-Remaining %q in the 101, want %d", i, got, 2-i)
		}
		if err := echo(ctx, c, []byte(fmt.Sprint("hello ", i))); err != nil {
			t.Fatalf("tunnel %d: %v", i, err)
		}
	}
	c, resp, err := wsDial(ctx, addr)
	if err == nil {
		_ = c.CloseNow()
		t.Fatal("the fourth upgrade within a limit of 3 got a tunnel")
	}
	if resp == nil || resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("the fourth upgrade: %v, want 429 with Retry-After", resp)
	}
}

// TestWebSocketTimeoutsStopAtSwitch: a per-try timeout of 100ms and an overall timeout of 200ms do
// not cut a tunnel that lives a second.
func TestWebSocketTimeoutsStopAtSwitch(t *testing.T) {
	t.Parallel()
	_, addr := wsGateway(t, wsEcho(nil), func(p *snapshot.Port) {
		r := retry(3)
		r.PerTryTimeout, r.Timeout = snapshot.Duration(100*time.Millisecond), snapshot.Duration(200*time.Millisecond)
		r.MaxHedges, r.HedgeDelay = 1, snapshot.Duration(10*time.Millisecond)
		p.Retry = r
	})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c := mustDial(t, ctx, addr)
	for i := range 4 {
		time.Sleep(300 * time.Millisecond)
		if err := echo(ctx, c, []byte(fmt.Sprint("after ", (i+1)*300, "ms"))); err != nil {
			t.Fatalf("after %d ms: %v", (i+1)*300, err)
		}
	}
}

// TestWebSocketBulkheadFreedAtSwitch: with a bulkhead of one and no queue, a second upgrade
// succeeds while the first tunnel is open, and both tunnels work.
func TestWebSocketBulkheadFreedAtSwitch(t *testing.T) {
	t.Parallel()
	_, addr := wsGateway(t, wsEcho(nil), func(p *snapshot.Port) {
		cb := circuitBreaker(5)
		cb.Concurrency = &snapshot.Concurrency{MaxRequests: 1}
		p.CircuitBreaker = cb
	})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	a := mustDial(t, ctx, addr)
	b := mustDial(t, ctx, addr)
	for i, c := range []*websocket.Conn{a, b} {
		if err := echo(ctx, c, []byte(fmt.Sprint("tunnel ", i))); err != nil {
			t.Fatalf("tunnel %d: %v", i, err)
		}
	}
}

// TestWebSocketCloseTunnels: on shutdown both sides of an open tunnel get a close frame with 1001
// (going away), and an upgrade after it is closed the same way at once.
func TestWebSocketCloseTunnels(t *testing.T) {
	t.Parallel()
	closed := make(chan websocket.StatusCode, 2)
	g, addr := wsGateway(t, wsEcho(closed), nil)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c := mustDial(t, ctx, addr)
	if err := echo(ctx, c, []byte("before")); err != nil {
		t.Fatal(err)
	}
	readErr := make(chan error, 1)
	go func() { _, _, err := c.Read(ctx); readErr <- err }()
	start := time.Now()
	g.CloseTunnels(ctx)
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("CloseTunnels took %v", d)
	}
	err := <-readErr
	if got := websocket.CloseStatus(err); got != websocket.StatusGoingAway {
		t.Errorf("the client read %v (status %v), want %v", err, got, websocket.StatusGoingAway)
	}
	if got := <-closed; got != websocket.StatusGoingAway {
		t.Errorf("the backend saw %v, want %v", got, websocket.StatusGoingAway)
	}

	late := mustDial(t, ctx, addr)
	if _, _, err := late.Read(ctx); websocket.CloseStatus(err) != websocket.StatusGoingAway {
		t.Errorf("a tunnel opened after CloseTunnels: %v, want %v", err, websocket.StatusGoingAway)
	}
}

// TestWebSocketRefused: an upstream refusing the upgrade passes its status through, and the
// breaker counts it like any response.
func TestWebSocketRefused(t *testing.T) {
	t.Parallel()
	g, addr := wsGateway(t, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "no websockets for you", http.StatusForbidden)
	}), func(p *snapshot.Port) { p.CircuitBreaker = circuitBreaker(5) })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, resp, err := wsDial(ctx, addr)
	if err == nil {
		_ = c.CloseNow()
		t.Fatal("got a tunnel from an upstream that refused the upgrade")
	}
	if resp == nil || resp.StatusCode != http.StatusForbidden {
		t.Fatalf("refused upgrade: %v (%v), want 403", resp, err)
	}
	if got := metricValue(t, g, "resilience_gateway_requests_total", map[string]string{"code": "403"}); got != 1 {
		t.Errorf("403 counted %v times, want 1", got)
	}
	if errors.Is(err, context.DeadlineExceeded) {
		t.Fatal(err)
	}
}

// TestWebSocketNotHedgedNorRetried: an upgrade is never hedged (one upstream per tunnel), and a
// 101 is never retried, even with 101 among the retry codes.
func TestWebSocketNotHedgedNorRetried(t *testing.T) {
	t.Parallel()
	var upgrades atomic.Int32
	echo := wsEcho(nil)
	_, addr := wsGateway(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		upgrades.Add(1)
		time.Sleep(50 * time.Millisecond) // past the hedge delay
		echo(w, r)
	}), func(p *snapshot.Port) {
		r := retry(3)
		r.RetryStatusCodes = []string{"101", "502", "503", "504"}
		r.MaxHedges, r.HedgeDelay = 2, snapshot.Duration(5*time.Millisecond)
		p.Retry = r
	})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, resp, err := wsDial(ctx, addr)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	defer c.CloseNow()
	if err := echo2(ctx, c); err != nil {
		t.Fatal(err)
	}
	if got := resp.Header.Get("X-Resilience-Attempts"); got != "1" {
		t.Errorf("X-Resilience-Attempts %q, want 1", got)
	}
	time.Sleep(100 * time.Millisecond) // a hedge would have reached the backend by now
	if n := upgrades.Load(); n != 1 {
		t.Errorf("the backend got %d upgrade requests, want 1", n)
	}
}

func echo2(ctx context.Context, c *websocket.Conn) error { return echo(ctx, c, []byte("ping")) }

// TestWebSocketCapturePort: upgrades pass on a capture port too, whatever the Host.
func TestWebSocketCapturePort(t *testing.T) {
	t.Parallel()
	cp := freePort(t)
	g, _ := wsGateway(t, wsEcho(nil), func(p *snapshot.Port) { p.CapturePort = cp })
	waitFor(t, "the capture port", func() bool { return len(g.CapturePorts()) == 1 })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, resp, err := wsDialURL(ctx, fmt.Sprintf("127.0.0.1:%d", cp), "ws://10.96.0.10/chat", websocket.CompressionDisabled)
	if err != nil {
		t.Fatalf("dial the capture port: %v (%v)", err, resp)
	}
	defer c.CloseNow()
	if err := echo2(ctx, c); err != nil {
		t.Fatal(err)
	}
}

// TestWebSocketUpstreamGone: when the upstream drops the connection, the client's read ends at
// once (the gateway half-closes the client's side), and once the client closes too the tunnel is
// forgotten, without waiting for wsLinger.
func TestWebSocketUpstreamGone(t *testing.T) {
	t.Parallel()
	g, addr := wsGateway(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		_, _, _ = c.Read(r.Context())
		_ = c.CloseNow() // no close frame: the TCP connection just ends
	}), nil)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c := mustDial(t, ctx, addr)
	start := time.Now()
	if err := c.Write(ctx, websocket.MessageText, []byte("bye")); err != nil {
		t.Fatal(err)
	}
	if _, _, err := c.Read(ctx); err == nil {
		t.Fatal("read a message from an upstream that went away")
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("the client saw the end after %v", d)
	}
	_ = c.CloseNow()
	waitFor(t, "the tunnel to be forgotten", func() bool {
		g.tunnels.mu.Lock()
		defer g.tunnels.mu.Unlock()
		return len(g.tunnels.open) == 0
	})
}

// TestWebSocketWrongSwitch: an upstream switching to another protocol than websocket is a 502.
func TestWebSocketWrongSwitch(t *testing.T) {
	t.Parallel()
	_, addr := wsGateway(t, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Connection", "Upgrade")
		w.Header().Set("Upgrade", "h2c")
		w.WriteHeader(http.StatusSwitchingProtocols)
	}), nil)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, resp, err := wsDial(ctx, addr)
	if err == nil {
		_ = c.CloseNow()
		t.Fatal("got a tunnel to an upstream that switched to h2c")
	}
	if resp == nil || resp.StatusCode != http.StatusBadGateway {
		t.Fatalf("switch to h2c: %v (%v), want 502", resp, err)
	}
}
