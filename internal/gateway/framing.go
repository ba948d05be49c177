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
	"context"
	"net"
	"net/http"
	"sync/atomic"
)

// A request with both Transfer-Encoding and Content-Length has an ambiguous framing (a request
// smuggling attempt, RFC 9112 6.1: "the server MUST close the connection after responding to such
// a request"). net/http's server reads it by Transfer-Encoding, as it should, but deletes the
// Content-Length from the request before the handler runs and keeps the connection: the gateway
// cannot tell from the request. So the traffic listener's connections watch the request heads
// their client sends (WatchFraming), and the handler adds Connection: close to every response on
// a connection where such a head was seen; net/http's server then closes it after the response.

// WatchFraming returns l, whose connections watch their client's request heads for a framing with
// both Transfer-Encoding and Content-Length. Serve the gateway's servers (HTTPServer, which reads
// what the connections saw) on it.
func WatchFraming(l net.Listener) net.Listener { return framingListener{l} }

type framingListener struct{ net.Listener }

func (l framingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &framingConn{Conn: c}, nil
}

// framingConn scans what its client sends, line by line: a line starting with
// "Transfer-Encoding:" or "Content-Length:" (in any case) is noted, and an empty line (the end of
// a head) with both noted since the last one marks the connection ambiguous, for good. It scans
// bodies too: a body's lines can only mark a connection (closed after one more response, which
// is harmless), never hide a head. A head read ahead (pipelined) marks the connection before the
// responses to the requests before it, which then close it early: the client sends those again.
type framingConn struct {
	net.Conn
	ambiguous atomic.Bool

	// Scanner state, of the reading goroutine (net/http's server never reads concurrently).
	line   [len("transfer-encoding:")]byte // the start of the current line, in lower case
	n      int                             // the length of the current line
	te, cl bool                            // seen in the current head
}

func (c *framingConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if n > 0 && !c.ambiguous.Load() {
		c.scan(p[:n])
	}
	return n, err
}

func (c *framingConn) scan(b []byte) {
	for _, ch := range b {
		switch ch {
		case '\n':
			if c.n == 0 {
				if c.te && c.cl {
					c.ambiguous.Store(true)
					return
				}
				c.te, c.cl = false, false
				continue
			}
			line := string(c.line[:min(c.n, len(c.line))])
			c.te = c.te || line == "transfer-encoding:"
			c.cl = c.cl || (len(line) >= len("content-length:") && line[:len("content-length:")] == "content-length:")
			c.n = 0
		case '\r':
			// part of the line end (a stray CR inside a line is skipped: at worst a false mark)
		default:
			if c.n < len(c.line) {
				if 'A' <= ch && ch <= 'Z' {
					ch += 'a' - 'A'
				}
				c.line[c.n] = ch
			}
			c.n++
		}
	}
}

type framingKey struct{}

// framingContext is the ConnContext of the gateway's servers: it lets the handler find the
// connection's framingConn, if it has one.
func framingContext(ctx context.Context, c net.Conn) context.Context {
	if fc, ok := c.(*framingConn); ok {
		return context.WithValue(ctx, framingKey{}, fc)
	}
	return ctx
}

var connectionClose = []string{"close"}[:1:1]

// closeIfAmbiguous adds Connection: close to the response when the request's connection has seen
// a head with both Transfer-Encoding and Content-Length.
func closeIfAmbiguous(w http.ResponseWriter, r *http.Request) {
	if r.ProtoMajor != 1 {
		return // HTTP/2 frames its messages itself: the scan of its binary frames means nothing
	}
	if fc, ok := r.Context().Value(framingKey{}).(*framingConn); ok && fc.ambiguous.Load() {
		w.Header()["Connection"] = connectionClose
	}
}
