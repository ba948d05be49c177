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
	"errors"
	"io"
	"net"
	"syscall"
	"time"
)

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

var errKindNames = [...]string{"error", "rejected", "connect_error", "reset", "protocol_error", "try_timeout",
	"timeout", "canceled", "bad_request", "too_large"}

// String names the kind as traces show it.
func (k errKind) String() string {
	if int(k) < len(errKindNames) {
		return errKindNames[k]
	}
	return "error"
}

// gwError is a failure the gateway answers itself, with a one-line body naming the Service.
type gwError struct {
	kind       errKind
	status     int
	retryAfter int64         // seconds; 0 for no Retry-After
	wait       time.Duration // the exact wait behind retryAfter, when known (gRPC's pushback)
	circuit    string        // X-Resilience-Circuit
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

var (
	errPerTryTimeout    = errors.New("per-try timeout")
	errOverallTimeout   = errors.New("overall timeout")
	errStalled          = errors.New("response body stalled")
	errForbiddenAddress = errors.New("address forbidden by the dial guard")
)

// classify maps a transport error of a try to what it means for retries and breakers.
func (pr *portRoute) classify(ctx context.Context, err error) *gwError {
	if ctx.Err() != nil {
		if context.Cause(ctx) == errPerTryTimeout {
			return pr.tryTimeoutErr()
		}
		return &gwError{kind: kindCanceled, msg: "try cancelled", err: context.Cause(ctx)}
	}
	var op *net.OpError
	switch {
	case errors.Is(err, errH1Switch):
		return &gwError{kind: kindProtocol, msg: errH1Switch.Error(), err: err}
	case errors.Is(err, errForbiddenAddress):
		return &gwError{kind: kindConnect, msg: "the endpoint address is refused by the gateway (loopback, link-local, metadata or unspecified)", err: err}
	case errors.As(err, &op) && op.Op == "dial", errors.Is(err, syscall.ECONNREFUSED):
		return &gwError{kind: kindConnect, msg: "could not connect to the upstream", err: err}
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.ECONNABORTED), errors.Is(err, syscall.EPIPE),
		errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return &gwError{kind: kindReset, msg: "the upstream closed the connection before responding", err: err}
	}
	return &gwError{kind: kindProtocol, msg: "the upstream failed", err: err}
}

func (pr *portRoute) tryTimeoutErr() *gwError {
	return &gwError{kind: kindTryTimeout, msg: pr.tryTimeoutMsg}
}

// errNoConfig answers requests before the first snapshot.
var errNoConfig = errors.New("the gateway has no configuration yet")
