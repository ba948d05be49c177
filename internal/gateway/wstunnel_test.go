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
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"

	"resilience.dev/operator/internal/snapshot"
)

// tcpPair returns the two ends of a loopback TCP connection.
func tcpPair(t *testing.T) (*net.TCPConn, *net.TCPConn) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	a, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	b, err := l.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = a.Close(); _ = b.Close() })
	return a.(*net.TCPConn), b.(*net.TCPConn)
}

// wsFrame is a final frame with opcode op, masked (with a fixed key) when mask is set.
func wsFrame(op byte, payload []byte, mask bool) []byte {
	f := []byte{0x80 | op, 0}
	switch n := len(payload); {
	case n < 126:
		f[1] = byte(n)
	case n < 1<<16:
		f[1] = 126
		f = binary.BigEndian.AppendUint16(f, uint16(n))
	default:
		f[1] = 127
		f = binary.BigEndian.AppendUint64(f, uint64(n))
	}
	if !mask {
		return append(f, payload...)
	}
	f[1] |= 0x80
	key := []byte{1, 2, 3, 4}
	f = append(f, key...)
	for i, c := range payload {
		f = append(f, c^key[i%4])
	}
	return f
}

// startTunnel runs a tunnel between two loopback connections and returns the client's and the
// upstream's ends, and the tunnel.
func startTunnel(t *testing.T, ts *tunnels) (client, upstream *net.TCPConn, tn *wsTunnel) {
	t.Helper()
	client, clientGW := tcpPair(t)
	upGW, upstream := tcpPair(t)
	tn = newWSTunnel(clientGW, clientGW, upGW)
	ts.start(tn)
	return client, upstream, tn
}

// TestWSTunnelHalfClose: when the client half-closes, the upstream gets its frames then EOF, and
// can still answer; the tunnel ends when the upstream closes too.
func TestWSTunnelHalfClose(t *testing.T) {
	t.Parallel()
	var ts tunnels
	client, upstream, tn := startTunnel(t, &ts)
	_ = client.SetDeadline(time.Now().Add(5 * time.Second))
	_ = upstream.SetDeadline(time.Now().Add(5 * time.Second))
	hello := wsFrame(0x2, []byte("hello"), true)
	if _, err := client.Write(hello); err != nil {
		t.Fatal(err)
	}
	_ = client.CloseWrite()
	got, err := io.ReadAll(upstream)
	if err != nil || !bytes.Equal(got, hello) {
		t.Fatalf("the upstream read %x, %v; want %x then EOF", got, err, hello)
	}
	answer := wsFrame(0x1, bytes.Repeat([]byte("a"), 70000), false)
	if _, err := upstream.Write(answer); err != nil {
		t.Fatalf("the upstream could not answer after the client's half-close: %v", err)
	}
	_ = upstream.Close()
	got, err = io.ReadAll(client)
	if err != nil || !bytes.Equal(got, answer) {
		t.Fatalf("the client read %d bytes, %v; want the %d-byte answer then EOF", len(got), err, len(answer))
	}
	select {
	case <-tn.done:
	case <-time.After(2 * time.Second):
		t.Fatal("the tunnel did not end when both sides had closed")
	}
}

// TestWSTunnelCloseBetweenFrames: the close frame of CloseTunnels waits for the frame being copied
// to end, then goes to both sides (masked to the upstream) with 1001.
func TestWSTunnelCloseBetweenFrames(t *testing.T) {
	t.Parallel()
	g := &Gateway{}
	client, upstream, tn := startTunnel(t, &g.tunnels)
	waitFor(t, "the tunnel to be open", func() bool {
		g.tunnels.mu.Lock()
		defer g.tunnels.mu.Unlock()
		return len(g.tunnels.open) == 1
	})
	big := wsFrame(0x2, bytes.Repeat([]byte("b"), 100000), true)
	half := len(big) / 2
	if _, err := client.Write(big[:half]); err != nil {
		t.Fatal(err)
	}
	ur := bufio.NewReader(upstream)
	if _, err := io.ReadFull(ur, make([]byte, 40000)); err != nil { // the copy of the big frame is under way
		t.Fatal(err)
	}
	closed := make(chan struct{})
	go func() { g.CloseTunnels(context.Background()); close(closed) }()

	// The client gets the close frame at once: nothing was being copied its way.
	cr := bufio.NewReader(client)
	_ = client.SetReadDeadline(time.Now().Add(5 * time.Second))
	f := readFrame(t, cr)
	if f.op != 0x8 || f.masked || f.status != 1001 {
		t.Fatalf("the client got %+v, want an unmasked close frame with 1001", f)
	}
	if _, err := client.Write(big[half:]); err != nil { // the rest of the big frame
		t.Fatal(err)
	}
	_ = upstream.SetReadDeadline(time.Now().Add(5 * time.Second))
	rest := make([]byte, len(big)-40000)
	if _, err := io.ReadFull(ur, rest); err != nil || !bytes.Equal(rest, big[40000:]) {
		t.Fatalf("the big frame was not copied whole before the close frame: %v", err)
	}
	if f := readFrame(t, ur); f.op != 0x8 || !f.masked || f.status != 1001 {
		t.Fatalf("the upstream got %+v, want a masked close frame with 1001", f)
	}
	// Both peers answer with their close frames and close.
	_, _ = client.Write(wsFrame(0x8, []byte{0x03, 0xe9}, true))
	_ = client.Close()
	_, _ = upstream.Write(wsFrame(0x8, []byte{0x03, 0xe9}, false))
	_ = upstream.Close()
	select {
	case <-closed:
	case <-time.After(5 * time.Second):
		t.Fatal("CloseTunnels did not return once the peers had closed")
	}
	<-tn.done
}

type frameSeen struct {
	op     byte
	masked bool
	status int
}

// readFrame reads one frame, unmasking it, and returns its opcode, masking and (close) status.
func readFrame(t *testing.T, r *bufio.Reader) frameSeen {
	t.Helper()
	hlen, plen, err := frameHead(r)
	if err != nil {
		t.Fatalf("frame head: %v", err)
	}
	b := make([]byte, int64(hlen)+plen)
	if _, err := io.ReadFull(r, b); err != nil {
		t.Fatalf("frame: %v", err)
	}
	f := frameSeen{op: b[0] & 0x0f, masked: b[1]&0x80 != 0}
	p := b[hlen:]
	if f.masked {
		key := b[hlen-4 : hlen]
		for i := range p {
			p[i] ^= key[i%4]
		}
	}
	if len(p) >= 2 {
		f.status = int(binary.BigEndian.Uint16(p))
	}
	return f
}

// TestWebSocketBreaker: the upgrade's status is the breaker's outcome: refusals with 500 open it,
// and, half-open, a 101 is the probe's success that closes it at once, while its tunnel is open.
func TestWebSocketBreaker(t *testing.T) {
	t.Parallel()
	var failing atomic.Bool
	failing.Store(true)
	echo := wsEcho(nil)
	_, addr := wsGateway(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if failing.Load() {
			http.Error(w, "down", http.StatusInternalServerError)
			return
		}
		echo(w, r)
	}), func(p *snapshot.Port) {
		cb := circuitBreaker(2)
		cb.OpenDuration = snapshot.Duration(200 * time.Millisecond)
		p.CircuitBreaker = cb
	})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, want := range []int{500, 500, 503} {
		_, resp, err := wsDial(ctx, addr)
		if err == nil || resp == nil || resp.StatusCode != want {
			t.Fatalf("upgrade: %v (%v), want %d", resp, err, want)
		}
		if want == 503 && resp.Header.Get("X-Resilience-Circuit") != "open" {
			t.Fatalf("the breaker's refusal: %v", resp.Header)
		}
	}
	failing.Store(false)
	time.Sleep(250 * time.Millisecond) // half-open
	probe := mustDial(t, ctx, addr)
	second := mustDial(t, ctx, addr) // one probe at a time while half-open: closed already by the 101
	for _, c := range []*websocket.Conn{probe, second} {
		if err := echo2(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
}

// TestWebSocketNoStale: an upgrade refused by an open breaker gets the fallback, never a stale
// 200 stored for its URL.
func TestWebSocketNoStale(t *testing.T) {
	t.Parallel()
	mem := newMem()
	var failing atomic.Bool
	mem.handle(epAddr(1), func(w http.ResponseWriter, r *http.Request) {
		if failing.Load() {
			w.WriteHeader(500)
			return
		}
		ok200(w, r)
	})
	cb := circuitBreaker(1)
	cb.ServeStale = snapshot.Duration(time.Hour)
	g := newGW(t, Options{}, mem, withBreaker(cb, ep(1)))
	if rec := get(g, "http://api.shop/chat"); rec.Code != 200 {
		t.Fatalf("warm: %d", rec.Code)
	}
	failing.Store(true)
	if rec := get(g, "http://api.shop/trip"); rec.Code != 500 {
		t.Fatalf("trip: %d", rec.Code)
	}
	if rec := get(g, "http://api.shop/chat"); rec.Code != 200 || rec.Header().Get("X-Resilience-Stale") != "true" {
		t.Fatalf("a plain GET while open: %d %v, want the stale 200", rec.Code, rec.Header())
	}
	rec := get(g, "http://api.shop/chat", "Connection: Upgrade", "Upgrade: websocket", "Sec-WebSocket-Version: 13",
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==")
	if rec.Code != http.StatusServiceUnavailable || rec.Header().Get("X-Resilience-Circuit") != "open" {
		t.Fatalf("an upgrade while open: %d %v, want 503 open", rec.Code, rec.Header())
	}
}

// TestWSTunnelCloseCut: peers that never answer the close frame are cut when CloseTunnels' context
// ends.
func TestWSTunnelCloseCut(t *testing.T) {
	t.Parallel()
	g := &Gateway{}
	client, upstream, tn := startTunnel(t, &g.tunnels)
	waitFor(t, "the tunnel to be open", func() bool {
		g.tunnels.mu.Lock()
		defer g.tunnels.mu.Unlock()
		return len(g.tunnels.open) == 1
	})
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	g.CloseTunnels(ctx)
	if d := time.Since(start); d < 150*time.Millisecond || d > 2*time.Second {
		t.Errorf("CloseTunnels returned after %v, want about 200ms", d)
	}
	<-tn.done
	for name, c := range map[string]*net.TCPConn{"client": client, "upstream": upstream} {
		_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
		r := bufio.NewReader(c)
		if f := readFrame(t, r); f.op != 0x8 || f.status != 1001 {
			t.Errorf("the %s got %+v, want a close frame with 1001", name, f)
		}
		if _, err := r.ReadByte(); err != io.EOF {
			t.Errorf("the %s's connection after the close frame: %v, want EOF", name, err)
		}
	}
}

// TestWebSocketRetriedBeforeSwitch: before its 101, an upgrade is retried like any GET (here
// after a 503), and the tunnel of the retry works.
func TestWebSocketRetriedBeforeSwitch(t *testing.T) {
	t.Parallel()
	var upgrades atomic.Int32
	echo := wsEcho(nil)
	_, addr := wsGateway(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if upgrades.Add(1) == 1 {
			http.Error(w, "starting", http.StatusServiceUnavailable)
			return
		}
		echo(w, r)
	}), func(p *snapshot.Port) { p.Retry = retry(3) })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, resp, err := wsDial(ctx, addr)
	if err != nil {
		t.Fatalf("dial: %v (%v)", err, resp)
	}
	defer c.CloseNow()
	if got := resp.Header.Get("X-Resilience-Attempts"); got != "2" {
		t.Errorf("X-Resilience-Attempts %q, want 2", got)
	}
	if err := echo2(ctx, c); err != nil {
		t.Fatal(err)
	}
}

// TestWebSocketCompressed: permessage-deflate, negotiated end to end (Sec-WebSocket-Extensions
// passes both ways), works through the tunnel: its frames (RSV1 set, with context takeover) pass
// untouched.
func TestWebSocketCompressed(t *testing.T) {
	t.Parallel()
	_, addr := wsGateway(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, &websocket.AcceptOptions{CompressionMode: websocket.CompressionContextTakeover})
		if err != nil {
			return
		}
		defer c.CloseNow()
		for {
			typ, msg, err := c.Read(r.Context())
			if err != nil || c.Write(r.Context(), typ, msg) != nil {
				return
			}
		}
	}), nil)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, resp, err := wsDialURL(ctx, addr, "ws://api.shop/chat", websocket.CompressionContextTakeover)
	if err != nil {
		t.Fatalf("dial: %v (%v)", err, resp)
	}
	defer c.CloseNow()
	if ext := resp.Header.Get("Sec-WebSocket-Extensions"); ext == "" {
		t.Fatal("permessage-deflate was not negotiated through the gateway")
	}
	for i := range 100 {
		msg := bytes.Repeat([]byte(fmt.Sprintf("message %d, compressible; ", i)), 20+i)
		if err := echo(ctx, c, msg); err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
	}
}
