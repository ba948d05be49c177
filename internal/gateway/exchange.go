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
	"io"
	"net/http"
	"sync/atomic"
	"time"
)

// exchange is one client request on its way through the chain. Its parts are grouped by who
// writes them, so that each stage touches only its own: the request template and body are filled
// before the chain runs (request.go, body.go), each stage then writes one part (rate, deadline,
// tries, staleResp) that the stages after it or the response read. Every part is a value inside the
// exchange, so the request still costs one allocation for all of them.
type exchange struct {
	route *portRoute
	in    *http.Request
	now   time.Time // read once when the request arrived (moved on after a Delay wait)
	grpc  bool      // a gRPC request (grpc.go)
	// grpcCode is the final grpc-status sent, for the access log; -1 when unknown. Small, beside
	// grpc, to keep the exchange within its allocation size class.
	grpcCode int16

	upgrade bool // a WebSocket upgrade (websocket.go), set by prepare

	out  outbound // the outbound request every try copies (request.go)
	body reqBody  // the request body and its limit (body.go)

	rate     rateHeaders // written by the rate-limit stage, read by decorate
	deadline time.Time   // of the overall timeout (timeout.go); zero without one; read by retry
	tries    tryLog      // written by the upstream stage, read by the balancer, breaker and decorate

	// staleResp is the stale response served while the breaker was open, if any (a try of a hedged
	// round may make one that then loses): the response written gets X-Resilience-Stale only if it
	// is this one.
	staleResp atomic.Pointer[http.Response]

	mem scratch
}

// scratch is storage for what every request needs once, kept in the exchange so that it costs no
// allocation of its own: the first try, the rate-limit key bytes, header values, the stall guard of
// the overall timeout.
type scratch struct {
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
	return io.NopCloser(bytes.NewReader(x.body.buf)), nil
}

// request returns the outbound request of try t to endpoint ep.
func (x *exchange) request(ctx context.Context, t *try, ep *endpoint) *http.Request {
	t.url = x.out.url
	t.url.Host = ep.hostPort
	req := x.out.req.WithContext(ctx)
	req.URL = &t.url
	switch {
	case x.body.buf != nil:
		t.rb.Reset(x.body.buf)
		req.Body = &t.rb
		req.GetBody = x.getBody
	case x.body.rec != nil:
		req.Body = x.body.rec.view()
	case x.body.once != nil:
		req.Body = x.body.once
	}
	return req
}

// runTry runs one try through s and makes sure the try ends exactly once: at once on error, or
// when the response body is closed.
func (x *exchange) runTry(ctx context.Context, s tryStage, now time.Time) (*http.Response, error) {
	var t *try
	if x.mem.firstUsed.CompareAndSwap(false, true) {
		t = &x.mem.first
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
