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
	"errors"
	"io"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"
)

// DefaultRequestBodyReadTimeout is the default of Options.RequestBodyReadTimeout.
const DefaultRequestBodyReadTimeout = 60 * time.Second

// reqBody is the request body as the tries send it: buffered when it may be sent again, else
// streamed once. upstream reads cut to tell the client's fault (a body past the limit) from the
// endpoint's.
type reqBody struct {
	buf        []byte        // a buffered body, sent again by each try
	once       io.ReadCloser // a body that can be sent once only
	rec        *recordBody   // a gRPC stream, recorded while it fits MaxReplayBody (grpcbody.go)
	replayable bool          // tries after the first can send the body again

	limit int64       // Options.MaxRequestBodyBytes; 0 for none
	cut   atomic.Bool // the body passed limit while streaming upstream

	stall clientStallBody // the client's body, each read bounded (Options.RequestBodyReadTimeout)
}

// readDeadliner is what a ResponseWriter of net/http's servers offers to bound request body reads.
type readDeadliner interface{ SetReadDeadline(time.Time) error }

// clientStallBody is the client's request body, read with a stall timeout: before each read it
// sets the client connection's read deadline timeout ahead, and clears it at the end of the body
// (net/http's server then reads the connection in the background, to notice a client gone, and
// must not time out). A client that stops sending its body fails the read, and net/http's server
// ends its connection; a long upload that keeps coming is never cut. (http.Server.ReadTimeout
// would bound the whole request instead.)
type clientStallBody struct {
	rc      io.ReadCloser
	timeout time.Duration // Options.RequestBodyReadTimeout: 0 for the default, < 0 for none
	dl      readDeadliner // nil once cleared, or when the writer cannot set deadlines
}

// guardBody makes x read the client's body through x.body.stall, when it has one and w can set
// read deadlines (net/http's servers' writers can, directly or through Unwrap).
func (x *exchange) guardBody(w http.ResponseWriter) {
	b := &x.body.stall
	r := x.in
	if b.timeout < 0 || r.Body == nil || r.Body == http.NoBody || r.ContentLength == 0 {
		return
	}
	if b.timeout == 0 {
		b.timeout = DefaultRequestBodyReadTimeout
	}
	if d, ok := w.(readDeadliner); ok {
		b.dl = d
	} else {
		b.dl = http.NewResponseController(w)
	}
	b.rc = r.Body
}

func (b *clientStallBody) Read(p []byte) (int, error) {
	if b.dl != nil && b.dl.SetReadDeadline(time.Now().Add(b.timeout)) != nil {
		b.dl = nil // not supported (a test's recorder): no deadline
	}
	n, err := b.rc.Read(p)
	if err == io.EOF && b.dl != nil {
		_ = b.dl.SetReadDeadline(time.Time{})
		b.dl = nil
	}
	// After a timeout the deadline stays: the server's own reads of the rest of the body fail at
	// once too, and it closes the connection.
	return n, err
}

func (b *clientStallBody) Close() error { return b.rc.Close() }

// clientBody is the client's request body as the gateway reads it.
func (x *exchange) clientBody() io.ReadCloser {
	if x.body.stall.rc != nil {
		return &x.body.stall
	}
	return x.in.Body
}

// takeBody sets how the tries send the request body: not at all, streamed once (a port without
// retries, or a body too large to keep), or buffered to be sent again.
func (x *exchange) takeBody() error {
	r := x.in
	x.body.replayable = true
	switch {
	case r.Body == nil || r.Body == http.NoBody || r.ContentLength == 0:
	case x.grpc && x.route.replay && r.ContentLength <= MaxReplayBody:
		x.body.rec = &recordBody{src: x.limited(x.clientBody(), 0)}
		x.out.req.ContentLength = r.ContentLength
	case !x.route.replay || r.ContentLength > MaxReplayBody:
		x.body.once, x.body.replayable = x.limited(x.clientBody(), 0), false
		x.out.req.ContentLength = r.ContentLength
	default:
		return x.bufferBody()
	}
	return nil
}

// bufferBody reads a body of at most MaxReplayBody bytes so that every try can send it; a longer
// one (of unknown length) is streamed once, what was read first.
func (x *exchange) bufferBody() error {
	r := x.in
	body := x.clientBody()
	var data []byte
	var err error
	if r.ContentLength > 0 {
		data = make([]byte, r.ContentLength)
		_, err = io.ReadFull(body, data)
	} else {
		read := int64(MaxReplayBody)
		if x.body.limit > 0 {
			read = min(read, x.body.limit)
		}
		data, err = io.ReadAll(io.LimitReader(body, read+1))
		if err == nil && x.body.limit > 0 && int64(len(data)) > x.body.limit {
			return tooLargeErr(-1, x.body.limit)
		}
	}
	if err != nil {
		return &gwError{kind: kindBadRequest, status: http.StatusBadRequest, msg: "could not read the request body"}
	}
	if len(data) > MaxReplayBody {
		x.body.once = struct {
			io.Reader
			io.Closer
		}{io.MultiReader(bytes.NewReader(data), x.limited(body, int64(len(data)))), body}
		x.body.replayable = false
		x.out.req.ContentLength = -1
		return nil
	}
	if len(data) > 0 {
		x.body.buf = data
		x.out.req.ContentLength = int64(len(data))
	}
	return nil
}

// limited returns body, cut at the body limit when it has one and its length is unknown (net/http's
// server holds a body with a Content-Length to that length); already is how much of it was read.
func (x *exchange) limited(body io.ReadCloser, already int64) io.ReadCloser {
	if x.body.limit <= 0 || x.in.ContentLength >= 0 {
		return body
	}
	return &limitedBody{rc: body, n: x.body.limit - already, hit: &x.body.cut}
}

// The request body limit (Options.MaxRequestBodyBytes). A Content-Length above the limit is refused
// before the chain runs (serve), so the request takes no rate-limit token and nothing is sent
// upstream. A body of unknown length (chunked) is read through limitedBody: the read that would pass
// the limit fails instead, which makes the transport abort the upstream request (it closes the
// connection in the middle of the body), and marks the exchange, so that the try's error is
// classified as the client's (kindTooLarge: never retried, neither success nor failure for the
// breaker) and the client gets 413 if nothing has been written to it yet.

// errBodyTooLarge is what limitedBody returns once the body passes the limit.
var errBodyTooLarge = errors.New("request body larger than the gateway's limit")

// limitedBody passes at most n bytes of rc; the read that would pass them sets hit and fails.
type limitedBody struct {
	rc  io.ReadCloser
	n   int64 // bytes still allowed
	hit *atomic.Bool
}

func (b *limitedBody) Read(p []byte) (int, error) {
	if b.n < 0 {
		return 0, errBodyTooLarge
	}
	if int64(len(p)) > b.n+1 {
		p = p[:b.n+1] // one byte more than allowed tells a body at the limit from one past it
	}
	n, err := b.rc.Read(p)
	if int64(n) > b.n {
		b.n = -1
		b.hit.Store(true)
		return 0, errBodyTooLarge // the bytes of this read are not forwarded: the body is cut
	}
	b.n -= int64(n)
	return n, err
}

func (b *limitedBody) Close() error { return b.rc.Close() }

// tooLargeErr is the 413 of a request whose body passes limit; size is its Content-Length, or -1
// when it was cut while streaming.
func tooLargeErr(size, limit int64) *gwError {
	msg := "request body exceeds the gateway's limit of " + strconv.FormatInt(limit, 10) + " bytes"
	if size >= 0 {
		msg = "request body of " + strconv.FormatInt(size, 10) + " bytes exceeds the gateway's limit of " +
			strconv.FormatInt(limit, 10) + " bytes"
	}
	return &gwError{kind: kindTooLarge, status: http.StatusRequestEntityTooLarge, msg: msg}
}
