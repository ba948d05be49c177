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
	"errors"
	"fmt"
	"math"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// Upstream clients of the built-in transport (Options.UpstreamClient).
const (
	// UpstreamClientFast sends plain HTTP/1.1 requests whose body is absent or buffered, of at most
	// 16 KiB with their head, with the gateway's own lean client (h1Client), and everything else
	// with net/http's Transport.
	UpstreamClientFast = "fast"
	// UpstreamClientNetHTTP sends every request with net/http's Transport.
	UpstreamClientNetHTTP = "net/http"
)

const (
	// h1MaxRequestBytes bounds a request the lean client sends (request line, header and body, in
	// one write). The lean client reads the response only once the write is done, so the write must
	// not depend on the upstream reading: a request this small fits the socket buffers (the send
	// buffer alone is 16 KiB by default on Linux), and an upstream that answers early (413, 401)
	// without reading the body is read at once, as net/http's Transport (which reads while it
	// writes) does. Anything larger goes to net/http's Transport.
	h1MaxRequestBytes = 16 << 10
	// h1ReadBufferSize is the size of the bufio.Reader a connection borrows while it carries a
	// request, and net/http's Transport's ReadBufferSize: the same, because it bounds what
	// http.ReadResponse accepts (the trailer section of a chunked body must fit it), so that both
	// clients accept the same responses. Reads as large (the gateway copies bodies 32 KiB at a
	// time) bypass it.
	h1ReadBufferSize = 32 << 10
	// h1IdleTimeout is how long an idle connection is kept (http.Transport.IdleConnTimeout).
	h1IdleTimeout = 90 * time.Second
	// h1MaxResponseHeaderBytes is http.Transport.MaxResponseHeaderBytes of the built-in transport.
	h1MaxResponseHeaderBytes = 1 << 20
)

// h1Client is a lean HTTP/1.1 client (an http.RoundTripper) for the gateway's common case: a plain
// http:// request with no body or a buffered one of known length, of at most h1MaxRequestBytes in
// all, no Expect, no upgrade, nothing unusual. Every other request goes to fallback (net/http's Transport, which shares the dialer).
//
// It runs the whole exchange on the caller's goroutine, where net/http's Transport hands each
// request to a writer and a reader goroutine per connection: the request goes out in one write,
// the response head is read with http.ReadResponse, and the body is read by the caller straight
// off the connection. Its connections are kept per endpoint (host:port), most recently used first,
// at most maxIdle idle, each for up to idleTimeout.
//
// It behaves as net/http's Transport does where the gateway can tell:
//   - the request context (per-try timeout, overall timeout, lost hedge, client gone) aborts a
//     blocked write or read at once (a deadline in the past, set by context.AfterFunc) and the error
//     is context.Cause of the context;
//   - dial errors are those of the dialer (the dial guard's included), read and write errors those of
//     the connection, io.EOF or io.ErrUnexpectedEOF for a connection closed before or within the
//     response head;
//   - a reused connection the server had closed does not surface: a request whose write fails on
//     one is sent again on a new connection when nothing of it was written (never once part of it
//     went out); a request written whole that fails before any response byte arrived is sent
//     again when net/http would retry it too (GET, HEAD, OPTIONS, TRACE, or an Idempotency-Key).
//     Before it reuses a connection, it also checks without blocking that the server has not
//     closed it (as net/http's reader goroutine would have noticed);
//   - 1xx responses before the final one are skipped; HEAD, 204, 304 and Content-Length: 0 have no
//     body; chunked bodies and trailers, Connection: close and HTTP/1.0 are as http.ReadResponse
//     reads them; a response head over 1 MiB fails.
//
// A connection goes back to the pool only when its response body was read to the end (or it had
// none), the response allows it (no Connection: close, not HTTP/1.0 without keep-alive), nothing
// failed and nothing more arrived after the response; a body closed early closes its connection.
type h1Client struct {
	dial        func(ctx context.Context, network, addr string) (net.Conn, error)
	fallback    *http.Transport
	maxIdle     int
	idleTimeout time.Duration
	maxHeader   int64

	mu    sync.Mutex                         // serialises changes to pools
	pools atomic.Pointer[map[string]*h1pool] // copied on write: lookups take no lock
}

func newH1Client(dial func(ctx context.Context, network, addr string) (net.Conn, error), fallback *http.Transport, maxIdle int) *h1Client {
	return &h1Client{dial: dial, fallback: fallback, maxIdle: maxIdle, idleTimeout: h1IdleTimeout, maxHeader: h1MaxResponseHeaderBytes}
}

// CloseIdleConnections closes the idle connections of both clients.
func (c *h1Client) CloseIdleConnections() {
	c.fallback.CloseIdleConnections()
	if m := c.pools.Load(); m != nil {
		for _, p := range *m {
			p.closeIdle()
		}
	}
}

var (
	errH1ReadOnClosedBody = errors.New("http: read on closed response body")
	errH1Switch           = errors.New("the upstream switched protocols (101) on a request without Upgrade")
	aLongTimeAgo          = time.Unix(1, 0)
)

// h1Bufs holds the buffers requests are written from.
var h1Bufs = sync.Pool{New: func() any { b := make([]byte, 0, 4<<10); return &b }}

// h1Readers holds the bufio.Readers connections borrow while they carry a request.
var h1Readers = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, h1ReadBufferSize) }}

func (c *h1Client) RoundTrip(req *http.Request) (*http.Response, error) {
	addr, ok := h1Eligible(req)
	if !ok {
		return c.fallback.RoundTrip(req)
	}
	bp := h1Bufs.Get().(*[]byte)
	wire, ok := appendRequestHead((*bp)[:0], req)
	if !ok || len(wire)+int(req.ContentLength) > h1MaxRequestBytes {
		*bp = wire[:0]
		h1Bufs.Put(bp)
		return c.fallback.RoundTrip(req)
	}
	if req.ContentLength > 0 {
		var err error
		wire, err = appendBody(wire, req.Body, req.ContentLength)
		_ = req.Body.Close()
		if err != nil {
			*bp = wire[:0]
			h1Bufs.Put(bp)
			return nil, err
		}
	} else if req.Body != nil {
		_ = req.Body.Close()
	}
	resp, err := c.roundTrip(req, addr, wire)
	*bp = wire[:0]
	h1Bufs.Put(bp)
	return resp, err
}

// roundTrip sends wire, the whole of req, to addr: on an idle connection if there is one, else on a
// new one, and again on a new connection when a reused one fails as a closed one would.
func (c *h1Client) roundTrip(req *http.Request, addr string, wire []byte) (*http.Response, error) {
	ctx := req.Context()
	if ctx.Err() != nil {
		return nil, context.Cause(ctx)
	}
	p := c.pool(addr)
	for fresh := false; ; fresh = true {
		var pc *h1conn
		if !fresh {
			for {
				var ok bool
				if pc, ok = p.get(); ok {
					break
				}
				p = c.pool(addr) // the pool was retired meanwhile
			}
		} else {
			p.take()
		}
		if pc == nil {
			conn, err := c.dial(ctx, "tcp", addr)
			if err != nil {
				p.put(nil)
				if ctx.Err() != nil {
					return nil, context.Cause(ctx)
				}
				return nil, err
			}
			pc = newH1Conn(conn)
		}
		resp, retry, err := c.send(ctx, req, p, pc, wire)
		if err == nil {
			return resp, nil
		}
		if !retry || fresh {
			return nil, err
		}
	}
}

// send writes wire on pc and reads the response head. retry reports whether the failure is that of
// a reused connection the server had closed, with the request safe to send again.
func (c *h1Client) send(ctx context.Context, req *http.Request, p *h1pool, pc *h1conn, wire []byte) (*http.Response, bool, error) {
	var stop func() bool
	if ctx.Done() != nil {
		stop = context.AfterFunc(ctx, pc.abortFn)
	}
	pc.br = h1Readers.Get().(*bufio.Reader)
	pc.br.Reset(pc)
	pc.nread, pc.limit = 0, c.maxHeader
	n, err := pc.conn.Write(wire)
	if err != nil {
		reused := pc.reused
		p.release(pc, stop, false, true)
		if ctx.Err() != nil {
			return nil, false, context.Cause(ctx)
		}
		// Sent again only when none of it went out: a request cut in the middle may have reached
		// the server in part, and net/http's Transport does not send it again either (its write
		// error is "connection broken", which it never retries).
		return nil, reused && n == 0, err
	}
	var resp *http.Response
	for {
		resp, err = http.ReadResponse(pc.br, req)
		if err != nil || resp.StatusCode < 100 || resp.StatusCode > 199 {
			break
		}
		if resp.StatusCode == http.StatusSwitchingProtocols {
			err = errH1Switch
			break
		}
		// An informational response: skip it (net/http's Transport does, with no trace hook).
	}
	if err != nil {
		reused, nothing := pc.reused, pc.nread == 0
		limited := pc.limit <= 0
		p.release(pc, stop, false, true)
		if ctx.Err() != nil {
			return nil, false, context.Cause(ctx)
		}
		if limited {
			err = fmt.Errorf("net/http: server response headers exceeded %d bytes; aborted", c.maxHeader)
		}
		return nil, reused && nothing && isReplayable(req), err
	}
	pc.limit = math.MaxInt64
	if resp.Body == http.NoBody {
		p.release(pc, stop, !resp.Close, true)
		return resp, false, nil
	}
	resp.Body = &h1Body{p: p, pc: pc, rc: resp.Body, stop: stop, ctx: ctx, reuse: !resp.Close}
	return resp, false, nil
}
