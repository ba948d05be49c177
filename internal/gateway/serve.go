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
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// stage is a step of the chain that sees the whole request (rate limit, overall timeout, retry).
type stage interface {
	serve(ctx context.Context, x *exchange) (*http.Response, error)
}

// tryStage is a step that sees one try (bulkhead, breaker, per-try timeout, upstream). t.now is the
// time the try starts.
type tryStage interface {
	try(ctx context.Context, x *exchange, t *try) (*http.Response, error)
}

// exchange is one client request on its way through the chain.
type exchange struct {
	route *portRoute
	in    *http.Request
	now   time.Time // read once when the request arrived (moved on after a Delay wait)

	base    http.Request // the outbound request every try copies
	baseURL url.URL

	body       []byte        // a buffered body, sent again by each try
	bodyOnce   io.ReadCloser // a body that can be sent once only
	replayable bool          // tries after the first can send the body again

	bodyLimit   int64       // Options.MaxRequestBodyBytes; 0 for none
	bodyLimited atomic.Bool // the body passed bodyLimit while streaming upstream

	deadline time.Time     // of the overall timeout; zero without one
	tried    atomic.Uint64 // endpoints tried, by index (the first 64)
	attempts atomic.Int32  // tries that went past the breaker to the upstream stage

	// Rate-limit headers, for the matching limit with the fewest tokens left.
	rl          *limitEntry
	rlRemaining int64
	rlReset     int64

	// staleResp is the stale response served while the breaker was open, if any (a try of a hedged
	// round may make one that then loses): the response written gets X-Resilience-Stale only if it
	// is this one.
	staleResp atomic.Pointer[http.Response]

	// Storage for what every request needs once, kept here so that it costs no allocation of its
	// own: the first try, the rate-limit key bytes, header values.
	first     try
	firstUsed atomic.Bool
	keyBuf    [128]byte
	hdrVals   [3]string
	stall     stallBody
}

// replayBody is a buffered request body, one per try.
type replayBody struct{ bytes.Reader }

func (*replayBody) Close() error { return nil }

func (x *exchange) getBody() (io.ReadCloser, error) {
	return io.NopCloser(bytes.NewReader(x.body)), nil
}

// request returns the outbound request of try t to endpoint ep.
func (x *exchange) request(ctx context.Context, t *try, ep *endpoint) *http.Request {
	t.url = x.baseURL
	t.url.Host = ep.hostPort
	req := x.base.WithContext(ctx)
	req.URL = &t.url
	switch {
	case x.body != nil:
		t.rb.Reset(x.body)
		req.Body = &t.rb
		req.GetBody = x.getBody
	case x.bodyOnce != nil:
		req.Body = x.bodyOnce
	}
	return req
}

// runTry runs one try through s and makes sure the try ends exactly once: at once on error, or
// when the response body is closed.
func (x *exchange) runTry(ctx context.Context, s tryStage, now time.Time) (*http.Response, error) {
	var t *try
	if x.firstUsed.CompareAndSwap(false, true) {
		t = &x.first
		t.x, t.now = x, now
	} else {
		t = &try{x: x, now: now}
	}
	resp, err := s.try(ctx, x, t)
	if err != nil || resp == nil {
		t.finish()
		if err == nil {
			err = &gwError{kind: kindProtocol, status: http.StatusBadGateway, msg: "no response from the upstream"}
		}
		return nil, err
	}
	t.body = tryBody{rc: resp.Body, t: t}
	resp.Body = &t.body
	return resp, nil
}

// ServeHTTP routes the request to its Service and runs it through the Service port's chain.
func (g *Gateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodConnect {
		g.refuse(w, http.StatusForbidden, "CONNECT is refused: the gateway forwards plain HTTP requests to managed Services only")
		return
	}
	host := r.Host
	if r.URL.Scheme != "" || r.URL.Host != "" {
		if !strings.EqualFold(r.URL.Scheme, "http") {
			g.refuse(w, http.StatusForbidden, "only http:// URLs are forwarded, not "+quote(r.URL.Scheme+"://"))
			return
		}
		host = r.URL.Host
	}
	t := g.table.Load()
	if t == nil {
		g.refuse(w, http.StatusServiceUnavailable, errNoConfig.Error())
		return
	}
	tg, ok := parseHost(host, g.domain)
	if !ok {
		g.refuse(w, http.StatusForbidden, "host "+quote(host)+" is not a Service of this cluster (svc.ns, svc.ns.svc or svc.ns.svc."+g.domain+", with an optional :port)")
		return
	}
	var pr *portRoute
	switch sr := t.services[svcKey{tg.namespace, tg.service}]; {
	case sr != nil:
		if pr = sr.port(tg.port, tg.hasPort); pr == nil {
			p := tg.port
			if !tg.hasPort {
				p = 80
			}
			g.refuse(w, http.StatusForbidden, fmt.Sprintf("port %d is not a port of Service %s/%s", p, tg.namespace, tg.service))
			return
		}
	case g.opts.AllowPassThrough:
		pr = g.passThrough(t, tg)
	default:
		g.refuse(w, http.StatusForbidden, "Service "+tg.namespace+"/"+tg.service+" is not managed by a resilience policy")
		return
	}
	g.serve(w, r, pr)
}

func (g *Gateway) serve(w http.ResponseWriter, r *http.Request, pr *portRoute) {
	x := &exchange{route: pr, in: r, now: g.clk.Now(), bodyLimit: g.opts.MaxRequestBodyBytes}
	if err := x.prepare(); err != nil {
		pr.svc.counters.inc(g.writeError(w, x, err))
		return
	}
	resp, err := pr.chain.serve(r.Context(), x)
	if err == nil && x.bodyLimited.Load() {
		// The upstream answered before the body passed the limit, and nothing has been written to
		// the client yet: it gets the 413 rather than an answer to a request never sent whole.
		_ = resp.Body.Close()
		resp, err = nil, tooLargeErr(-1, x.bodyLimit)
	}
	if err != nil {
		pr.svc.counters.inc(g.writeError(w, x, err))
		return
	}
	pr.svc.counters.inc(resp.StatusCode)
	g.writeResponse(w, x, resp)
}

// prepare builds the outbound request template: the headers cleaned, X-Forwarded-For extended,
// and the body buffered when the request may be sent more than once. A body over the limit is
// refused here when its length is known, or when it passes the limit while being buffered.
func (x *exchange) prepare() error {
	r := x.in
	if x.bodyLimit > 0 && r.ContentLength > x.bodyLimit {
		return tooLargeErr(r.ContentLength, x.bodyLimit)
	}
	h := outboundHeader(r.Header)
	if _, ok := h["User-Agent"]; !ok {
		h["User-Agent"] = noUserAgent // no Go default User-Agent
	}
	if ip, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		if prior, ok := h["X-Forwarded-For"]; ok && len(prior) > 0 {
			ip = strings.Join(prior, ", ") + ", " + ip
		}
		x.hdrVals[0] = ip
		h["X-Forwarded-For"] = x.hdrVals[0:1:1]
	}
	x.baseURL = url.URL{Scheme: "http", Path: r.URL.Path, RawPath: r.URL.RawPath, RawQuery: r.URL.RawQuery}
	x.base = http.Request{
		Method:     r.Method,
		URL:        &x.baseURL,
		Proto:      "HTTP/1.1",
		ProtoMajor: 1,
		ProtoMinor: 1,
		Header:     h,
		Host:       r.Host,
	}
	x.replayable = true
	switch {
	case r.Body == nil || r.Body == http.NoBody || r.ContentLength == 0:
	case !x.route.replay || r.ContentLength > MaxReplayBody:
		x.bodyOnce, x.replayable = x.limited(r.Body, 0), false
		x.base.ContentLength = r.ContentLength
	default:
		var data []byte
		var err error
		if r.ContentLength > 0 {
			data = make([]byte, r.ContentLength)
			_, err = io.ReadFull(r.Body, data)
		} else {
			read := int64(MaxReplayBody)
			if x.bodyLimit > 0 {
				read = min(read, x.bodyLimit)
			}
			data, err = io.ReadAll(io.LimitReader(r.Body, read+1))
			if err == nil && x.bodyLimit > 0 && int64(len(data)) > x.bodyLimit {
				return tooLargeErr(-1, x.bodyLimit)
			}
		}
		if err != nil {
			return &gwError{kind: kindBadRequest, status: http.StatusBadRequest, msg: "could not read the request body"}
		}
		if len(data) > MaxReplayBody {
			x.bodyOnce = struct {
				io.Reader
				io.Closer
			}{io.MultiReader(bytes.NewReader(data), x.limited(r.Body, int64(len(data)))), r.Body}
			x.replayable = false
			x.base.ContentLength = -1
			break
		}
		if len(data) > 0 {
			x.body = data
			x.base.ContentLength = int64(len(data))
		}
	}
	return nil
}

// limited returns body, cut at the body limit when it has one and its length is unknown (net/http's
// server holds a body with a Content-Length to that length); already is how much of it was read.
func (x *exchange) limited(body io.ReadCloser, already int64) io.ReadCloser {
	if x.bodyLimit <= 0 || x.in.ContentLength >= 0 {
		return body
	}
	return &limitedBody{rc: body, n: x.bodyLimit - already, hit: &x.bodyLimited}
}

// noUserAgent is shared by every outbound request; its capacity of 1 makes any append copy it.
var noUserAgent = []string{""}[:1:1]

// hopByHop are the headers of one connection (RFC 9110 7.6.1), never forwarded. isHopByHop
// matches exactly these, by length first.
var hopByHop = []string{"Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate",
	"Proxy-Authorization", "Te", "Trailer", "Transfer-Encoding", "Upgrade"}

func isHopByHop(k string) bool {
	switch len(k) {
	case 2:
		return strings.EqualFold(k, "Te")
	case 7:
		return strings.EqualFold(k, "Trailer") || strings.EqualFold(k, "Upgrade")
	case 10:
		return strings.EqualFold(k, "Connection") || strings.EqualFold(k, "Keep-Alive")
	case 16:
		return strings.EqualFold(k, "Proxy-Connection")
	case 17:
		return strings.EqualFold(k, "Transfer-Encoding")
	case 18:
		return strings.EqualFold(k, "Proxy-Authenticate")
	case 19:
		return strings.EqualFold(k, "Proxy-Authorization")
	}
	return false
}

func isResilienceHeader(k string) bool {
	const p = "X-Resilience-"
	return len(k) >= len(p) && strings.EqualFold(k[:len(p)], p)
}

// teTrailers is the only TE value forwarded; its capacity of 1 makes any append copy it.
var teTrailers = []string{"trailers"}[:1:1]

// outboundHeader returns the header of the outbound request: in's fields without the hop-by-hop
// ones (those named by Connection too) and without any X-Resilience-* header a client sent. It
// copies the map in one pass and shares the value slices of in, which nothing modifies (their
// capacity is cut to their length, so an append copies); room is left for the gateway's own fields.
func outboundHeader(in http.Header) http.Header {
	h := make(http.Header, len(in)+2)
	for k, vv := range in {
		if isHopByHop(k) || isResilienceHeader(k) {
			continue
		}
		h[k] = vv[:len(vv):len(vv)]
	}
	te := in["Te"]
	for _, v := range in["Connection"] {
		for f := range strings.SplitSeq(v, ",") {
			if f = strings.TrimSpace(f); f != "" {
				k := http.CanonicalHeaderKey(f)
				delete(h, k)
				if k == "Te" {
					te = nil
				}
			}
		}
	}
	for _, v := range te { // "TE: trailers" says the client accepts trailers: keep it, as httputil.ReverseProxy does
		if strings.EqualFold(strings.TrimSpace(v), "trailers") {
			h["Te"] = teTrailers
		}
	}
	return h
}

var copyBufs = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

// writeResponse copies an upstream (or stale) response to the client. An upstream failure after
// the headers are out resets the client's stream (http.ErrAbortHandler), as the contract says.
func (g *Gateway) writeResponse(w http.ResponseWriter, x *exchange, resp *http.Response) {
	defer resp.Body.Close()
	h := w.Header()
	autoLength := serverSendsLength(x.in, resp)
	for k, vv := range resp.Header {
		if isHopByHop(k) || isResilienceHeader(k) || (autoLength && k == "Content-Length") {
			continue
		}
		h[k] = vv
	}
	for _, v := range resp.Header["Connection"] {
		for f := range strings.SplitSeq(v, ",") {
			if f = strings.TrimSpace(f); f != "" {
				delete(h, http.CanonicalHeaderKey(f))
			}
		}
	}
	x.decorate(h, resp == x.staleResp.Load())
	if len(resp.Trailer) > 0 {
		names := make([]string, 0, len(resp.Trailer))
		for k := range resp.Trailer {
			names = append(names, k)
		}
		h["Trailer"] = []string{strings.Join(names, ", ")}
	}
	w.WriteHeader(resp.StatusCode)
	bp := copyBufs.Get().(*[]byte)
	err := copyBody(w, resp.Body, *bp, resp.ContentLength == -1)
	copyBufs.Put(bp)
	if err != nil {
		panic(http.ErrAbortHandler)
	}
	for k, vv := range resp.Trailer {
		h[k] = vv
	}
}

// bufferBeforeChunking is the size of the buffer net/http's server fills before it sends a
// response's header (bufferBeforeChunkingSize in net/http/server.go).
const bufferBeforeChunking = 2048

// serverSendsLength reports whether net/http's server will itself send resp's Content-Length, the
// same value, so the gateway need not put it in the response header map: an HTTP/1.1 response
// with a body of known length that fits the server's first buffer, to a request other than HEAD,
// without trailers, written without a flush. The server then sends the header only when the
// handler is done and sets Content-Length to the bytes written (chunkWriter.writeHeader), which
// is resp.ContentLength. Leaving it out keeps a typical response header within the 8 fields a
// small Go map holds, so the server's header map neither grows nor is cloned (at WriteHeader)
// into a larger table: several allocations a request fewer.
func serverSendsLength(in *http.Request, resp *http.Response) bool {
	return resp.ContentLength >= 0 && resp.ContentLength <= bufferBeforeChunking &&
		in.ProtoMajor == 1 && in.ProtoMinor >= 1 && in.Method != http.MethodHead &&
		bodyAllowed(resp.StatusCode) && len(resp.Trailer) == 0 && len(resp.Header["Content-Length"]) == 1
}

// bodyAllowed reports whether a response with this status may have a body (RFC 9110 6.4.1).
func bodyAllowed(status int) bool {
	return (status < 100 || status > 199) && status != http.StatusNoContent && status != http.StatusNotModified
}

func copyBody(w http.ResponseWriter, src io.Reader, buf []byte, flush bool) error {
	f, _ := w.(http.Flusher)
	if !flush {
		f = nil
	}
	for {
		n, rerr := src.Read(buf)
		if n > 0 {
			if _, werr := w.Write(buf[:n]); werr != nil {
				return werr
			}
			if f != nil {
				f.Flush()
			}
		}
		if rerr == io.EOF {
			return nil
		}
		if rerr != nil {
			return rerr
		}
	}
}

var staleTrue = []string{"true"}[:1:1]

var attemptValues = func() (v [16][]string) {
	for i := range v {
		v[i] = []string{strconv.Itoa(i)}
	}
	return v
}()

// decorate adds the gateway's own response headers: the rate-limit headers, X-Resilience-Attempts
// and X-Resilience-Stale.
func (x *exchange) decorate(h http.Header, stale bool) {
	if l := x.rl; l != nil {
		// One string holds both values: "<remaining>" then `"<name>";r=<remaining>;t=<seconds>`.
		var buf [160]byte
		b := strconv.AppendInt(buf[:0], x.rlRemaining, 10)
		k := len(b)
		b = append(b, l.quotedName...)
		b = append(b, ";r="...)
		b = strconv.AppendInt(b, x.rlRemaining, 10)
		b = append(b, ";t="...)
		b = strconv.AppendInt(b, x.rlReset, 10)
		v := string(b)
		x.hdrVals[1], x.hdrVals[2] = v[:k], v[k:]
		h["X-Ratelimit-Limit"] = l.limitValue
		h["X-Ratelimit-Remaining"] = x.hdrVals[1:2:2]
		h["Ratelimit-Policy"] = l.policyValue
		h["Ratelimit"] = x.hdrVals[2:3:3]
	}
	if x.route.hasRetry {
		if n := int(x.attempts.Load()); n < len(attemptValues) {
			h["X-Resilience-Attempts"] = attemptValues[n]
		} else {
			h["X-Resilience-Attempts"] = []string{strconv.Itoa(n)}
		}
	}
	if stale {
		h["X-Resilience-Stale"] = staleTrue
	}
}

// errKind classifies what went wrong with a request or a try.
type errKind uint8

const (
	kindReject     errKind = iota + 1 // the gateway's own refusal: rate limit, breaker, bulkhead, no endpoint
	kindConnect                       // no connection to the endpoint: the request was never sent
	kindReset                         // the endpoint closed or reset the connection before responding
	kindProtocol                      // another transport failure (a malformed response, say)
	kindTryTimeout                    // the per-try timeout cut the try
	kindTimeout                       // the overall timeout passed before the response headers
	kindCanceled                      // the gateway (lost hedge, deadline) or the client ended it
	kindBadRequest                    // the client's request could not be read
	kindTooLarge                      // the client's request body passed the body limit
)

// gwError is a failure the gateway answers itself, with a one-line body naming the Service.
type gwError struct {
	kind       errKind
	status     int
	retryAfter int64  // seconds; 0 for no Retry-After
	circuit    string // X-Resilience-Circuit
	msg        string
	err        error
}

func (e *gwError) Error() string {
	if e.err != nil {
		return e.msg + ": " + e.err.Error()
	}
	return e.msg
}

func (e *gwError) Unwrap() error { return e.err }

// asGatewayError maps any error of the chain to a gwError.
func asGatewayError(err error) *gwError {
	if ge, ok := err.(*gwError); ok {
		return ge
	}
	return &gwError{kind: kindCanceled, msg: "request ended", err: err}
}

// statusClientGone is the status counted (never sent) when the client went away: nginx's 499.
const statusClientGone = 499

// writeError answers with the gateway's own error and returns the status, for metrics.
func (g *Gateway) writeError(w http.ResponseWriter, x *exchange, err error) int {
	ge := asGatewayError(err)
	status, msg := ge.status, ge.msg
	switch ge.kind {
	case kindCanceled:
		if x.in.Context().Err() != nil {
			return statusClientGone
		}
		status, msg = http.StatusBadGateway, "the request was cancelled"
	case kindTimeout, kindTryTimeout:
		status = http.StatusGatewayTimeout
	case kindConnect, kindReset, kindProtocol:
		status = http.StatusBadGateway
	}
	if status == 0 {
		status = http.StatusBadGateway
	}
	h := w.Header()
	if ge.retryAfter > 0 {
		h["Retry-After"] = []string{strconv.FormatInt(ge.retryAfter, 10)}
	}
	if ge.circuit != "" {
		h["X-Resilience-Circuit"] = []string{ge.circuit}
	}
	x.decorate(h, false)
	writePlain(w, status, "Service "+x.route.label+": "+msg)
	return status
}

// refuse answers a request that names no routable Service.
func (g *Gateway) refuse(w http.ResponseWriter, status int, msg string) {
	g.unrouted.inc(status)
	writePlain(w, status, msg)
}

// writePlain writes a one-line text/plain body.
func writePlain(w http.ResponseWriter, status int, msg string) {
	h := w.Header()
	h["Content-Type"] = []string{"text/plain; charset=utf-8"}
	h["X-Content-Type-Options"] = []string{"nosniff"}
	h["Content-Length"] = []string{strconv.Itoa(len(msg) + 1)}
	w.WriteHeader(status)
	_, _ = io.WriteString(w, msg+"\n")
}

// quote renders a client-supplied string for a one-line message: quoted, escaped and truncated.
func quote(s string) string {
	if len(s) > 128 {
		s = s[:128] + "..."
	}
	return strconv.Quote(s)
}
