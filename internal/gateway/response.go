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
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
)

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
	var decl map[string]struct{} // the trailers announced before the body
	if len(resp.Trailer) > 0 {
		names := make([]string, 0, len(resp.Trailer))
		decl = make(map[string]struct{}, len(resp.Trailer))
		for k := range resp.Trailer {
			if forwardTrailer(resp.Header, k) {
				names = append(names, k)
				decl[k] = struct{}{}
			}
		}
		if len(names) > 0 {
			h["Trailer"] = []string{strings.Join(names, ", ")}
		}
	}
	w.WriteHeader(resp.StatusCode)
	bp := copyBufs.Get().(*[]byte)
	err := copyBody(w, resp.Body, *bp, resp.ContentLength == -1)
	copyBufs.Put(bp)
	if err != nil {
		panic(http.ErrAbortHandler)
	}
	for k, vv := range resp.Trailer {
		if !forwardTrailer(resp.Header, k) {
			continue
		}
		if _, ok := decl[k]; ok {
			h[k] = vv
		} else {
			// Not announced before the body (HTTP/2 trailers, as gRPC's grpc-status, need no
			// announcement): net/http sends it as a trailer by this prefix.
			h[http.TrailerPrefix+k] = vv
		}
	}
}

// forwardTrailer reports whether the upstream trailer k passes the filters of response headers:
// not hop-by-hop, not named by the response's Connection header, not the gateway's own
// X-Resilience-* (which an upstream could otherwise forge, as a trailer, past the header filter).
func forwardTrailer(respHeader http.Header, k string) bool {
	if isHopByHop(k) || isResilienceHeader(k) {
		return false
	}
	for _, v := range respHeader["Connection"] {
		for f := range strings.SplitSeq(v, ",") {
			if strings.EqualFold(strings.TrimSpace(f), k) {
				return false
			}
		}
	}
	return true
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
	if l := x.rate.limit; l != nil {
		// One string holds both values: "<remaining>" then `"<name>";r=<remaining>;t=<seconds>`.
		var buf [160]byte
		b := strconv.AppendInt(buf[:0], x.rate.remaining, 10)
		k := len(b)
		b = append(b, l.quotedName...)
		b = append(b, ";r="...)
		b = strconv.AppendInt(b, x.rate.remaining, 10)
		b = append(b, ";t="...)
		b = strconv.AppendInt(b, x.rate.reset, 10)
		v := string(b)
		x.mem.hdrVals[1], x.mem.hdrVals[2] = v[:k], v[k:]
		h["X-Ratelimit-Limit"] = l.limitValue
		h["X-Ratelimit-Remaining"] = x.mem.hdrVals[1:2:2]
		h["Ratelimit-Policy"] = l.policyValue
		h["Ratelimit"] = x.mem.hdrVals[2:3:3]
	}
	if x.route.hasRetry {
		if n := int(x.tries.attempts.Load()); n < len(attemptValues) {
			h["X-Resilience-Attempts"] = attemptValues[n]
		} else {
			h["X-Resilience-Attempts"] = []string{strconv.Itoa(n)}
		}
	}
	if stale {
		h["X-Resilience-Stale"] = staleTrue
	}
}

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
	if x.grpc {
		if ge.circuit != "" {
			w.Header()["X-Resilience-Circuit"] = []string{ge.circuit}
		}
		x.decorate(w.Header(), false)
		code := grpcCodeOf(ge, status)
		x.grpcCode = int16(code)
		writeGRPCStatus(w, code, "Service "+x.route.label+": "+msg, ge.wait)
		return status
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

// refuse answers a request that names no routable Service (a gRPC request with a gRPC status).
func (g *Gateway) refuse(w http.ResponseWriter, r *http.Request, status int, msg string) {
	g.unrouted.inc(status)
	if isGRPC(r) {
		writeGRPCStatus(w, grpcCodeOf(&gwError{kind: kindReject}, status), msg, 0)
		return
	}
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
