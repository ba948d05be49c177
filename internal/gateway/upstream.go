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
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"sync/atomic"
	"syscall"
	"time"

	"resilience.dev/operator/internal/patterns/breaker"
	"resilience.dev/operator/internal/patterns/bulkhead"
	"resilience.dev/operator/internal/patterns/clock"
)

// endpoint is one ready backend address of a Service port, in one routing table.
type endpoint struct {
	hostPort string
	idx      int
	inflight atomic.Int64
	br       *breakerState // its breaker, with scope Endpoint
}

// balancer spreads tries over a port's endpoints by the power of two choices: it draws two
// endpoints at random and takes the one with fewer tries in flight. Round robin would hand a slow
// or stalled endpoint (the very case hedging and per-endpoint breakers exist for) its full share of
// requests, piling them up behind it; least-in-flight over two random choices steers new requests
// away from it within a few requests, yet needs no shared cursor (no contended atomic on every
// request) and keeps the herd behaviour of pure least-loaded in check when counts are stale
// (Mitzenmacher, "The Power of Two Choices in Randomized Load Balancing"; Envoy's LEAST_REQUEST).
// Retries and hedges prefer endpoints the request has not tried yet.
type balancer struct {
	eps []*endpoint
}

// pick returns the index of the endpoint for a try, or -1. Endpoints whose index bit is in skip are
// never chosen; those in tried only when nothing else is left. With breakers, endpoints whose breaker
// is open are passed over.
func (b *balancer) pick(now time.Time, tried, skip uint64, breakers bool) int {
	n := len(b.eps)
	if n == 0 {
		return -1
	}
	for pass := 0; pass < 2; pass++ {
		avoid := skip
		if pass == 0 {
			avoid |= tried
		} else if tried&^skip == 0 {
			break // the first pass avoided nothing more
		}
		a := b.scan(rand.IntN(n), avoid, now, breakers)
		if a < 0 {
			continue
		}
		if n == 1 {
			return a
		}
		c := b.scan(rand.IntN(n), avoid, now, breakers)
		if c >= 0 && c != a && b.eps[c].inflight.Load() < b.eps[a].inflight.Load() {
			return c
		}
		return a
	}
	return -1
}

// scan returns the first eligible endpoint from start on, cyclically, or -1.
func (b *balancer) scan(start int, avoid uint64, now time.Time, breakers bool) int {
	n := len(b.eps)
	for k := range n {
		i := start + k
		if i >= n {
			i -= n
		}
		if i < 64 && avoid&(1<<i) != 0 {
			continue
		}
		if breakers && b.eps[i].br != nil && b.eps[i].br.b.State(now) == breaker.Open {
			continue
		}
		return i
	}
	return -1
}

// try is one try of a request: the endpoint it went to and what it must give back when it ends.
type try struct {
	x   *exchange
	now time.Time // when the try started (the request's time for the first)
	end time.Time // when its response headers (or error) arrived; zero if it never reached the upstream

	ep       *endpoint
	inflight bool
	bulk     *bulkhead.Bulkhead
	cancel   context.CancelCauseFunc

	url      url.URL
	rb       replayBody
	body     tryBody
	finished atomic.Bool
}

// finish gives back what the try holds: its bulkhead slot, its in-flight count, its context.
func (t *try) finish() {
	if !t.finished.CompareAndSwap(false, true) {
		return
	}
	if t.inflight {
		t.ep.inflight.Add(-1)
	}
	if t.bulk != nil {
		t.bulk.Release()
	}
	if t.cancel != nil {
		t.cancel(nil)
	}
}

// tryBody ends its try when the response body is closed.
type tryBody struct {
	rc io.ReadCloser
	t  *try
}

func (b *tryBody) Read(p []byte) (int, error) { return b.rc.Read(p) }

func (b *tryBody) Close() error {
	err := b.rc.Close()
	b.t.finish()
	return err
}

// discardResponse closes a response the gateway will not forward, reading a little of it first so
// that its connection can be reused.
func discardResponse(resp *http.Response) {
	if resp == nil {
		return
	}
	_, _ = io.CopyN(io.Discard, resp.Body, 4<<10)
	_ = resp.Body.Close()
}

// upstream is the last stage: it picks an endpoint (unless the breaker stage did), and sends the try.
type upstream struct {
	g     *Gateway
	route *portRoute
	fixed *endpoint // pass-through: the Service's DNS name
}

func (u *upstream) try(ctx context.Context, x *exchange, t *try) (*http.Response, error) {
	ep := t.ep
	if ep == nil {
		if ep = u.fixed; ep == nil {
			i := u.route.bal.pick(t.now, x.tried.Load(), 0, false)
			if i < 0 {
				u.route.noEndpoint.Inc()
				return nil, &gwError{kind: kindReject, status: http.StatusServiceUnavailable,
					msg: fmt.Sprintf("no ready endpoint for port %d", u.route.port)}
			}
			ep = u.route.eps[i]
		}
		t.ep = ep
	}
	if ep.idx < 64 {
		x.tried.Or(1 << ep.idx)
	}
	x.attempts.Add(1)
	ep.inflight.Add(1)
	t.inflight = true
	req := x.request(ctx, t, ep)
	start := u.g.clk.Now()
	resp, err := u.g.rt.RoundTrip(req)
	t.end = u.g.clk.Now()
	u.route.latency.Observe(t.end.Sub(start).Seconds())
	if err != nil {
		if resp != nil && resp.Body != nil {
			_ = resp.Body.Close()
		}
		if x.bodyLimited.Load() { // the client's fault: neither retried nor a breaker failure
			return nil, tooLargeErr(-1, x.bodyLimit)
		}
		return nil, u.route.classify(ctx, err)
	}
	if x.bodyLimited.Load() {
		_ = resp.Body.Close()
		return nil, tooLargeErr(-1, x.bodyLimit)
	}
	return resp, nil
}

var (
	errPerTryTimeout    = errors.New("per-try timeout")
	errOverallTimeout   = errors.New("overall timeout")
	errStalled          = errors.New("response body stalled")
	errForbiddenAddress = errors.New("address forbidden by the dial guard")
)

// perTryStage bounds each try until its response headers.
type perTryStage struct {
	next tryStage
	d    time.Duration
	clk  clock.Clock
}

func (s *perTryStage) try(ctx context.Context, x *exchange, t *try) (*http.Response, error) {
	tctx, cancel := context.WithCancelCause(ctx)
	t.cancel = cancel
	tm := afterFunc(s.clk, s.d, func() { cancel(errPerTryTimeout) })
	resp, err := s.next.try(tctx, x, t)
	if !tm.Stop() && err == nil {
		// The timeout fired as the headers arrived: the try is late all the same.
		_ = resp.Body.Close()
		return nil, x.route.tryTimeoutErr()
	}
	return resp, err
}

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

// dialer connects to endpoints. Every dial is checked by the guard on the address actually dialled
// (after name resolution, in net.Dialer.Control); only names under ".localhost" in LocalDev mode go
// to loopback, and nowhere else.
type dialer struct {
	localDev bool
	strict   net.Dialer
	loopback net.Dialer
}

func (d *dialer) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	if d.localDev && isLocalhostName(host) {
		return d.loopback.DialContext(ctx, network, net.JoinHostPort("127.0.0.1", port))
	}
	return d.strict.DialContext(ctx, network, addr)
}

// guardControl returns a net.Dialer Control function refusing forbidden addresses; with
// loopbackOnly it accepts loopback addresses and nothing else.
func guardControl(loopbackOnly bool) func(network, address string, c syscall.RawConn) error {
	return func(_, address string, _ syscall.RawConn) error {
		ap, err := netip.ParseAddrPort(address)
		if err != nil {
			return fmt.Errorf("%w: %q is not an IP address", errForbiddenAddress, address)
		}
		a := ap.Addr().Unmap()
		if loopbackOnly {
			if !a.IsLoopback() {
				return fmt.Errorf("%w: %s is not loopback", errForbiddenAddress, a)
			}
			return nil
		}
		return checkAddr(a)
	}
}

var (
	metadataV6     = netip.MustParseAddr("fd00:ec2::254")   // AWS IMDS over IPv6
	metadataAlibab = netip.MustParseAddr("100.100.100.200") // Alibaba Cloud metadata
)

// checkAddr refuses loopback, link-local (169.254.0.0/16 with the metadata address
// 169.254.169.254, fe80::/10), the other cloud metadata addresses, unspecified and multicast.
func checkAddr(a netip.Addr) error {
	a = a.Unmap().WithZone("")
	switch {
	case !a.IsValid(), a.IsUnspecified():
		return fmt.Errorf("%w: %s is unspecified", errForbiddenAddress, a)
	case a.IsLoopback():
		return fmt.Errorf("%w: %s is loopback", errForbiddenAddress, a)
	case a.IsLinkLocalUnicast(), a.IsLinkLocalMulticast():
		return fmt.Errorf("%w: %s is link-local", errForbiddenAddress, a)
	case a == metadataV6, a == metadataAlibab:
		return fmt.Errorf("%w: %s is a cloud metadata address", errForbiddenAddress, a)
	case a.IsMulticast():
		return fmt.Errorf("%w: %s is multicast", errForbiddenAddress, a)
	}
	return nil
}
