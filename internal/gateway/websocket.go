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
	"io"
	"net"
	"net/http"
	"strings"
	"time"

	"golang.org/x/net/http/httpguts"
)

// WebSocket (the contract's section 6): an HTTP/1.1 GET with "Connection: Upgrade" and
// "Upgrade: websocket" goes through the port's chain like any request, with Upgrade and Connection
// forwarded (request.go). Its 101 is a try's good response: the breaker counts it as a success, the
// retry stage neither retries nor hedges it, the timeouts stop at it (unwrapStall). Then
// the gateway hijacks the client's connection, gives back the try's bulkhead slot, writes the 101
// head and copies frames both ways (wstunnel.go) until either side closes, or until CloseTunnels.
// The request itself ends at the switch: it is counted and logged with status 101 then.

// isWebSocketUpgrade reports whether r asks for a WebSocket (RFC 6455 4.1): HTTP/1.1 or later over
// HTTP/1, GET, no body, Connection naming upgrade and Upgrade naming websocket.
func isWebSocketUpgrade(r *http.Request) bool {
	return r.ProtoMajor == 1 && r.ProtoMinor >= 1 && r.Method == http.MethodGet &&
		r.ContentLength == 0 && len(r.TransferEncoding) == 0 &&
		httpguts.HeaderValuesContainsToken(r.Header["Connection"], "upgrade") &&
		httpguts.HeaderValuesContainsToken(r.Header["Upgrade"], "websocket")
}

var connectionUpgrade = []string{"Upgrade"}[:1:1]

// forwardUpgrade puts back in the outbound header h the hop-by-hop fields of a WebSocket upgrade,
// which outboundHeader leaves out.
func forwardUpgrade(h, in http.Header) {
	h["Connection"] = connectionUpgrade
	h["Upgrade"] = in["Upgrade"][:len(in["Upgrade"]):len(in["Upgrade"])]
}

// checkSwitch checks an upstream 101: only a WebSocket upgrade request may get one, and it must
// switch to websocket on a connection the gateway can write to (net/http's Transport gives it as
// the body of the 101).
func (pr *portRoute) checkSwitch(ctx context.Context, x *exchange, resp *http.Response) *gwError {
	if !x.upgrade {
		return pr.classify(ctx, errH1Switch)
	}
	if !httpguts.HeaderValuesContainsToken(resp.Header["Upgrade"], "websocket") {
		return &gwError{kind: kindProtocol, msg: "the upstream switched to " + quote(resp.Header.Get("Upgrade")) + " when websocket was asked for"}
	}
	if _, ok := resp.Body.(io.ReadWriteCloser); !ok {
		return &gwError{kind: kindProtocol, msg: "the upstream's 101 gave no connection to write to"}
	}
	// The upstream has switched: the request cannot be sent again, so the retry stage returns the
	// 101 whatever its retry codes say. (Hedges never start for an upgrade: hedge.go.)
	x.body.replayable = false
	return nil
}

// tunnel answers a WebSocket upgrade that the upstream accepted: it hijacks the client's
// connection, frees the try (its bulkhead slot), forwards the 101 and starts copying frames both
// ways. It returns the status to count: 101, or the error it wrote instead.
func (g *Gateway) tunnel(w http.ResponseWriter, x *exchange, resp *http.Response) (int, error) {
	tb, _ := unwrapStall(resp.Body).(*tryBody)
	var up io.ReadWriteCloser
	if tb != nil {
		up, _ = tb.rc.(io.ReadWriteCloser)
	}
	if up == nil {
		_ = resp.Body.Close()
		err := &gwError{kind: kindProtocol, msg: "the upstream's 101 gave no connection to write to"}
		return g.writeError(w, x, err), err
	}
	conn, brw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		_ = resp.Body.Close()
		ge := &gwError{kind: kindProtocol, msg: "the client's connection cannot be upgraded", err: err}
		return g.writeError(w, x, ge), ge
	}
	_ = conn.SetDeadline(time.Time{}) // the server's read and write timeouts no longer apply
	// The 101 is being forwarded: the try ends (its bulkhead slot is free) before the client can
	// see the head, so that an upgrade it sends next finds the slot free.
	tb.t.finish()
	if _, err := conn.Write(switchHead(x, resp)); err != nil {
		_ = conn.Close()
		_ = resp.Body.Close()
		return statusClientGone, nil
	}
	client := conn
	if fc, ok := conn.(*framingConn); ok {
		client = fc.Conn // no more request heads to watch; and the raw conn can CloseWrite
	}
	var src io.Reader = client
	if n := brw.Reader.Buffered(); n > 0 { // frames the client sent right after its request
		b, _ := brw.Reader.Peek(n)
		src = io.MultiReader(bytes.NewReader(bytes.Clone(b)), client)
	}
	// The tunnel outlives the handler: the request is done (counted, logged, its span ended) at
	// the switch, and after the 101 neither its context nor the server holds the connections.
	g.tunnels.start(newWSTunnel(client, src, up))
	return http.StatusSwitchingProtocols, nil
}

// unwrapStall takes the overall timeout's stall guard (timeout.go) off the body of a 101, if it
// has one: the timeout stops at the 101, and the tunnel needs the connection underneath.
func unwrapStall(body io.ReadCloser) io.ReadCloser {
	sb, ok := body.(*stallBody)
	if !ok {
		return body
	}
	sb.mu.Lock()
	sb.closed = true
	if sb.timer != nil {
		sb.timer.Stop()
	}
	sb.mu.Unlock()
	sb.cancel(nil)
	return sb.rc
}

// switchHead is the 101 head sent to the client: the upstream's fields but the hop-by-hop ones
// (those its Connection names too) and X-Resilience-*, with Connection and Upgrade set again, and
// the gateway's own fields.
func switchHead(x *exchange, resp *http.Response) []byte {
	h := make(http.Header, len(resp.Header)+6)
	for k, vv := range resp.Header {
		if !isHopByHop(k) && !isResilienceHeader(k) {
			h[k] = vv
		}
	}
	for _, v := range resp.Header["Connection"] {
		for f := range strings.SplitSeq(v, ",") {
			if f = strings.TrimSpace(f); f != "" {
				delete(h, http.CanonicalHeaderKey(f))
			}
		}
	}
	h["Connection"] = connectionUpgrade
	h["Upgrade"] = resp.Header["Upgrade"]
	x.decorate(h, false)
	var b bytes.Buffer
	b.WriteString("HTTP/1.1 101 Switching Protocols\r\n")
	_ = h.Write(&b)
	b.WriteString("\r\n")
	return b.Bytes()
}

// newWSTunnel joins the client's connection (read through src) and the upstream's.
func newWSTunnel(client net.Conn, src io.Reader, up io.ReadWriteCloser) *wsTunnel {
	tn := &wsTunnel{client: client, upstream: up, done: make(chan struct{})}
	tn.toUpstream = wsPipe{src: bufio.NewReaderSize(src, wsBufSize), dst: up, mask: true}
	tn.toClient = wsPipe{src: bufio.NewReaderSize(up, wsBufSize), dst: client}
	return tn
}
