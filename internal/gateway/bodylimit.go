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
	"errors"
	"io"
	"net/http"
	"strconv"
	"sync/atomic"
)

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
