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
	"io"
	"math"
	"net"
	"net/http"
	"net/http/httptrace"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/net/http/httpguts"
)

// Upstream clients of the built-in transport (Options.UpstreamClient).
const (
	// UpstreamClientFast sends plain HTTP/1.1 requests whose body is absent or buffered with the
	// gateway's own lean client (h1Client), and everything else with net/http's Transport.
	UpstreamClientFast = "fast"
	// UpstreamClientNetHTTP sends every request with net/http's Transport.
	UpstreamClientNetHTTP = "net/http"
)

const (
	// h1MaxRequestBytes bounds a request the lean client sends (request line, header and body, in
	// one write): a buffered body of MaxReplayBody with a header of up to 8 KiB fits. Anything
	// larger goes to net/http's Transport.
	h1MaxRequestBytes = MaxReplayBody + 8<<10
	// h1ReadBufferSize is the size of the bufio.Reader a connection borrows while it carries a
	// request. Larger reads (the gateway copies bodies 32 KiB at a time) bypass it.
	h1ReadBufferSize = 8 << 10
	// h1IdleTimeout is how long an idle connection is kept (http.Transport.IdleConnTimeout).
	h1IdleTimeout = 90 * time.Second
	// h1MaxResponseHeaderBytes is http.Transport.MaxResponseHeaderBytes of the built-in transport.
	h1MaxResponseHeaderBytes = 1 << 20
)

// h1Client is a lean HTTP/1.1 client (an http.RoundTripper) for the gateway's common case: a plain
// http:// request with no body or a buffered one of known length, no Expect, no upgrade, nothing
// unusual. Every other request goes to fallback (net/http's Transport, which shares the dialer).
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
//   - a reused connection the server had closed does not surface: a request that fails on one
//     before any response byte arrived is sent again on a new connection when nothing of it was
//     written, or when net/http would retry it too (GET, HEAD, OPTIONS, TRACE, or an
//     Idempotency-Key). Before it reuses a connection, it also checks without blocking that the
//     server has not closed it (as net/http's reader goroutine would have noticed);
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
	errH1Switch           = errors.New("gateway: the upstream switched protocols (101) on a request without Upgrade")
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

// h1Eligible reports whether the lean client may send req, and the address to dial.
func h1Eligible(req *http.Request) (string, bool) {
	u := req.URL
	if u == nil || u.Scheme != "http" || u.Host == "" || u.Opaque != "" || req.Header == nil ||
		req.Close || len(req.TransferEncoding) != 0 || len(req.Trailer) != 0 {
		return "", false
	}
	switch {
	case req.Body == nil:
		if req.ContentLength != 0 {
			return "", false // net/http refuses it: let it say so
		}
	case req.Body == http.NoBody:
	default:
		// A buffered body: replayable, of known length.
		if req.GetBody == nil || req.ContentLength <= 0 || req.ContentLength > h1MaxRequestBytes {
			return "", false
		}
	}
	h := req.Header
	if _, ok := h["Expect"]; ok {
		return "", false
	}
	if _, ok := h["Connection"]; ok {
		return "", false
	}
	if _, ok := h["Upgrade"]; ok {
		return "", false
	}
	if httptrace.ContextClientTrace(req.Context()) != nil {
		return "", false
	}
	host := u.Host
	colon, bracket := strings.LastIndexByte(host, ':'), strings.LastIndexByte(host, ']')
	if colon > bracket && colon < len(host)-1 {
		return host, true
	}
	if colon == len(host)-1 {
		return "", false
	}
	return net.JoinHostPort(u.Hostname(), "80"), true
}

// appendRequestHead appends the request line and header of req as net/http's Request.Write does
// (Host, User-Agent, Content-Length, then the other fields), or reports false when net/http would
// refuse or rewrite something (an invalid method, field, value or host, control characters in the
// URL, non-ASCII), or the head passes h1MaxRequestBytes: then net/http's Transport sends it.
func appendRequestHead(b []byte, req *http.Request) ([]byte, bool) {
	method := req.Method
	if method == "" {
		method = http.MethodGet
	} else if !httpguts.ValidHeaderFieldName(method) {
		return b, false
	}
	host := req.Host
	if host == "" {
		host = req.URL.Host
	}
	if !h1PlainHost(host) {
		return b, false
	}
	path := req.URL.EscapedPath()
	if path == "" {
		path = "/"
	}
	if hasCTL(path) || hasCTL(req.URL.RawQuery) {
		return b, false
	}
	b = append(b, method...)
	b = append(b, ' ')
	b = append(b, path...)
	if req.URL.ForceQuery || req.URL.RawQuery != "" {
		b = append(b, '?')
		b = append(b, req.URL.RawQuery...)
	}
	b = append(b, " HTTP/1.1\r\nHost: "...)
	b = append(b, host...)
	b = append(b, "\r\n"...)
	ua := "Go-http-client/1.1"
	if _, ok := req.Header["User-Agent"]; ok {
		ua = req.Header.Get("User-Agent")
	}
	if ua != "" {
		if !httpguts.ValidHeaderFieldValue(ua) {
			return b, false
		}
		b = append(b, "User-Agent: "...)
		b = append(b, textTrim(ua)...)
		b = append(b, "\r\n"...)
	}
	// Content-Length as net/http's transferWriter: the body's length, or 0 for POST, PUT and PATCH
	// without a body.
	if req.Body != nil && req.Body != http.NoBody {
		b = append(b, "Content-Length: "...)
		b = strconv.AppendInt(b, req.ContentLength, 10)
		b = append(b, "\r\n"...)
	} else if method == http.MethodPost || method == http.MethodPut || method == http.MethodPatch {
		b = append(b, "Content-Length: 0\r\n"...)
	}
	for k, vv := range req.Header {
		switch k {
		case "Host", "User-Agent", "Content-Length", "Transfer-Encoding", "Trailer":
			// As net/http's reqWriteExcludeHeader: written above, or never from the map.
			continue
		}
		if !httpguts.ValidHeaderFieldName(k) {
			return b, false
		}
		for _, v := range vv {
			if !httpguts.ValidHeaderFieldValue(v) {
				return b, false
			}
			b = append(b, k...)
			b = append(b, ": "...)
			b = append(b, textTrim(v)...)
			b = append(b, "\r\n"...)
		}
		if len(b) > h1MaxRequestBytes {
			return b, false
		}
	}
	b = append(b, "\r\n"...)
	return b, len(b) <= h1MaxRequestBytes
}

// h1PlainHost reports whether host goes out unchanged by net/http: printable ASCII that
// httpguts.ValidHostHeader accepts, without an IPv6 zone.
func h1PlainHost(host string) bool {
	for i := 0; i < len(host); i++ {
		if c := host[i]; c <= ' ' || c >= 0x7f || c == '%' {
			return false
		}
	}
	return httpguts.ValidHostHeader(host)
}

func hasCTL(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < ' ' || c == 0x7f {
			return true
		}
	}
	return false
}

// textTrim is textproto.TrimString: without leading and trailing ASCII white space.
func textTrim(s string) string {
	for len(s) > 0 && isASCIISpace(s[0]) {
		s = s[1:]
	}
	for len(s) > 0 && isASCIISpace(s[len(s)-1]) {
		s = s[:len(s)-1]
	}
	return s
}

func isASCIISpace(b byte) bool { return b == ' ' || b == '\t' || b == '\n' || b == '\r' }

// appendBody appends exactly n bytes of body, failing as net/http does when it has another length.
func appendBody(b []byte, body io.Reader, n int64) ([]byte, error) {
	start := len(b)
	b = append(b, make([]byte, n)...)
	got, err := io.ReadFull(body, b[start:])
	if err == nil {
		var one [1]byte
		var extra int
		extra, err = body.Read(one[:])
		if extra > 0 {
			return b[:start], fmt.Errorf("http: ContentLength=%d with Body length %d", n, n+int64(extra))
		}
		if err == io.EOF {
			err = nil
		}
	}
	if err == io.EOF || err == io.ErrUnexpectedEOF {
		return b[:start], fmt.Errorf("http: ContentLength=%d with Body length %d", n, got)
	}
	if err != nil {
		return b[:start], err
	}
	return b, nil
}

// isReplayable is net/http's Request.isReplayable: whether net/http's Transport would send req
// again after a reused connection failed once some of it had been written.
func isReplayable(req *http.Request) bool {
	switch req.Method {
	case "", http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace:
		return true
	}
	_, a := req.Header["Idempotency-Key"]
	_, b := req.Header["X-Idempotency-Key"]
	return a || b
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
		return nil, reused && (n == 0 || isReplayable(req)), err
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

// h1conn is one connection to an endpoint.
type h1conn struct {
	conn   net.Conn
	raw    syscall.RawConn // for the liveness check; nil if the connection has none
	br     *bufio.Reader   // borrowed from h1Readers while the connection carries a request
	idleAt time.Time       // when it went idle
	reused bool            // it carried a request before
	broken bool            // a read failed or saw EOF: never reuse
	nread  int64           // bytes read for the current request
	limit  int64           // bytes that may still be read before the response head is too large

	abortFn func() // pc.abort, made once

	// For alive (the liveness check), made once.
	peek      func(fd uintptr) bool
	peekBuf   [1]byte
	peekAlive bool
}

func newH1Conn(conn net.Conn) *h1conn {
	pc := &h1conn{conn: conn}
	pc.abortFn = pc.abort
	if sc, ok := conn.(syscall.Conn); ok {
		if raw, err := sc.SyscallConn(); err == nil {
			pc.raw = raw
		}
	}
	return pc
}

func (pc *h1conn) Read(b []byte) (int, error) {
	if pc.limit <= 0 {
		return 0, errors.New("gateway: response header read limit exhausted")
	}
	if int64(len(b)) > pc.limit {
		b = b[:pc.limit]
	}
	n, err := pc.conn.Read(b)
	pc.nread += int64(n)
	pc.limit -= int64(n)
	if err != nil {
		pc.broken = true
	}
	return n, err
}

// abort unblocks a write or read of the connection; it is never reused after.
func (pc *h1conn) abort() { _ = pc.conn.SetDeadline(aLongTimeAgo) }

// h1Body is the body of a response of the lean client: it reads off the connection, and gives the
// connection back to its pool at the end of the body, or closes it.
type h1Body struct {
	p     *h1pool
	pc    *h1conn
	rc    io.ReadCloser
	stop  func() bool
	ctx   context.Context
	reuse bool
	err   error         // the error of the last Read, returned again (Read only)
	state atomic.Uint32 // h1Open, h1Done
}

const (
	h1Open uint32 = iota
	h1Done
)

func (b *h1Body) Read(p []byte) (int, error) {
	if b.err != nil {
		return 0, b.err
	}
	if b.state.Load() != h1Open {
		return 0, errH1ReadOnClosedBody
	}
	n, err := b.rc.Read(p)
	if err == nil {
		return n, nil
	}
	if err != io.EOF && b.ctx.Err() != nil {
		err = context.Cause(b.ctx)
	}
	b.err = err
	if b.state.CompareAndSwap(h1Open, h1Done) {
		b.p.release(b.pc, b.stop, err == io.EOF && b.reuse, true)
	}
	return n, err
}

// Close ends the body; before its end, it closes the connection (as net/http's Transport does),
// which also ends a Read running at the same time. The connection's bufio.Reader is then left to
// that Read, not recycled.
func (b *h1Body) Close() error {
	if b.state.CompareAndSwap(h1Open, h1Done) {
		b.p.release(b.pc, b.stop, false, false)
	}
	return nil
}

// h1pool holds the idle connections of one endpoint, most recently used last.
type h1pool struct {
	c    *h1Client
	addr string

	mu    sync.Mutex
	idle  []*h1conn
	out   int // connections taken (or being dialled) and not yet given back
	timer *time.Timer
	dead  bool // retired from the client's map: connections given back are closed
}

// pool returns the pool of addr, making it if needed.
func (c *h1Client) pool(addr string) *h1pool {
	if m := c.pools.Load(); m != nil {
		if p := (*m)[addr]; p != nil {
			return p
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	old := c.pools.Load()
	if old != nil {
		if p := (*old)[addr]; p != nil {
			return p
		}
	}
	m := make(map[string]*h1pool, 1+lenMap(old))
	if old != nil {
		for k, v := range *old {
			m[k] = v
		}
	}
	p := &h1pool{c: c, addr: addr}
	m[addr] = p
	c.pools.Store(&m)
	return p
}

func lenMap(m *map[string]*h1pool) int {
	if m == nil {
		return 0
	}
	return len(*m)
}

// get takes the most recently used idle connection that is still open, or returns nil (the caller
// dials). Either way the caller owes the pool a put or release. ok is false when the pool has been
// retired: the caller looks the endpoint's pool up again.
func (p *h1pool) get() (pc *h1conn, ok bool) {
	now := time.Now()
	for {
		p.mu.Lock()
		if p.dead {
			p.mu.Unlock()
			return nil, false
		}
		n := len(p.idle)
		if n == 0 {
			p.out++
			p.mu.Unlock()
			return nil, true
		}
		pc = p.idle[n-1]
		p.idle[n-1] = nil
		p.idle = p.idle[:n-1]
		if now.Sub(pc.idleAt) >= p.c.idleTimeout {
			// This one and all older ones have expired.
			expired := append(p.idle[:0:0], p.idle...)
			clear(p.idle)
			p.idle = p.idle[:0]
			p.mu.Unlock()
			_ = pc.conn.Close()
			for _, e := range expired {
				_ = e.conn.Close()
			}
			continue
		}
		p.out++
		p.mu.Unlock()
		if pc.alive() {
			return pc, true
		}
		_ = pc.conn.Close()
		p.put(nil)
	}
}

// take counts a connection the caller dials itself.
func (p *h1pool) take() {
	p.mu.Lock()
	p.out++
	p.mu.Unlock()
}

// release gives pc back after a request: to the idle list when reuse holds and the connection is
// clean (the context's abort never ran, nothing failed, nothing unread), else closed. recycle
// says whether no Read can be using the connection's bufio.Reader any more (the caller is the
// reader), so that it goes back to h1Readers.
func (p *h1pool) release(pc *h1conn, stop func() bool, reuse, recycle bool) {
	if stop != nil && !stop() {
		reuse = false // the context ended: the abort ran, or is running
	}
	if reuse && (pc.broken || pc.br.Buffered() != 0) {
		reuse = false
	}
	if recycle {
		pc.br.Reset(nil)
		h1Readers.Put(pc.br)
		pc.br = nil
	}
	if !reuse {
		_ = pc.conn.Close()
		p.put(nil)
		return
	}
	p.put(pc)
}

// put ends a take: pc (if not nil) becomes idle, unless the pool is full or retired.
func (p *h1pool) put(pc *h1conn) {
	p.mu.Lock()
	p.out--
	if pc == nil {
		p.mu.Unlock()
		return
	}
	if p.dead || len(p.idle) >= p.c.maxIdle {
		p.mu.Unlock()
		_ = pc.conn.Close()
		return
	}
	pc.reused = true
	pc.idleAt = time.Now()
	p.idle = append(p.idle, pc)
	if p.timer == nil {
		p.timer = time.AfterFunc(p.c.idleTimeout, p.sweep)
	}
	p.mu.Unlock()
}

// closeIdle closes every idle connection of the pool.
func (p *h1pool) closeIdle() {
	p.mu.Lock()
	idle := append(p.idle[:0:0], p.idle...)
	clear(p.idle)
	p.idle = p.idle[:0]
	p.mu.Unlock()
	for _, pc := range idle {
		_ = pc.conn.Close()
	}
}

// sweep closes the connections idle for longer than the idle timeout; it retires a pool left with
// no connection at all, so that the pools of endpoints gone do not pile up.
func (p *h1pool) sweep() {
	c := p.c
	c.mu.Lock()
	p.mu.Lock()
	now := time.Now()
	k := 0
	for k < len(p.idle) && now.Sub(p.idle[k].idleAt) >= c.idleTimeout {
		k++
	}
	expired := append(p.idle[:0:0], p.idle[:k]...)
	n := copy(p.idle, p.idle[k:])
	clear(p.idle[n:])
	p.idle = p.idle[:n]
	switch {
	case len(p.idle) > 0:
		p.timer.Reset(p.idle[0].idleAt.Add(c.idleTimeout).Sub(now) + time.Millisecond)
	default:
		p.timer = nil
		if p.out == 0 {
			p.dead = true
			if old := c.pools.Load(); old != nil && (*old)[p.addr] == p {
				m := make(map[string]*h1pool, len(*old))
				for a, q := range *old {
					if a != p.addr {
						m[a] = q
					}
				}
				c.pools.Store(&m)
			}
		}
	}
	p.mu.Unlock()
	c.mu.Unlock()
	for _, pc := range expired {
		_ = pc.conn.Close()
	}
}
