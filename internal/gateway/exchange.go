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
	"net/url"
	"sync/atomic"
	"time"
)

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
