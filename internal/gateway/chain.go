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
	"net/http"

	"resilience.dev/operator/internal/snapshot"
)

// The chain of a Service port, outermost first (the contract's "Order"). Each stage is a small type
// holding the next one, in a file of its own; buildPort assembles them once per snapshot.
//
//	stage (sees the whole request)
//	  ratelimit.go   rateLimitStage  refuses or delays a request over a RateLimit
//	  timeout.go     timeoutStage    the RetryPolicy's overall timeout, until the response headers
//	  retry.go       retryStage      sends again after a retryable failure (hedge.go: hedged rounds)
//	  chain.go       singleStage     instead of retryStage without a RetryPolicy: one try
//	tryStage (sees one try; try.go holds what a try must give back)
//	  bulkhead.go    bulkheadStage   bounds the tries in flight (CircuitBreaker concurrency)
//	  breaker.go     breakerStage    the circuit breaker (breakerstate.go; stalecache.go serves stale)
//	  trytimeout.go  perTryStage     the per-try timeout, until the response headers
//	  upstream.go    upstream        picks an endpoint (balancer.go) and sends (transport.go)
//
// Around the chain: route.go finds the port (host.go parses the Host), request.go and body.go build
// the outbound request, response.go writes the answer and errors.go classifies failures;
// websocket.go tunnels a WebSocket upgrade that the upstream switched (101), wstunnel.go copies its
// frames.

// stage is a step of the chain that sees the whole request (rate limit, overall timeout, retry).
type stage interface {
	serve(ctx context.Context, x *exchange) (*http.Response, error)
}

// tryStage is a step that sees one try (bulkhead, breaker, per-try timeout, upstream). t.now is the
// time the try starts.
type tryStage interface {
	try(ctx context.Context, x *exchange, t *try) (*http.Response, error)
}

// singleStage sends the request once: the chain of a port without a RetryPolicy.
type singleStage struct{ next tryStage }

func (s *singleStage) serve(ctx context.Context, x *exchange) (*http.Response, error) {
	return x.runTry(ctx, s.next, x.now)
}

// buildPort assembles the chain of one Service port, in the contract's order.
func (g *Gateway) buildPort(sr *serviceRoute, p snapshot.Port, prev, reg *registry) (*portRoute, error) {
	pr := &portRoute{svc: sr, port: p.Port, label: sr.label, latency: sr.latency, noEndpoint: sr.noEndpoint,
		h2c: p.H2C(), portName: p.Name}
	pr.eps = g.endpoints(p)
	pr.bal = balancer{eps: pr.eps}
	inner, err := g.tryStages(pr, p, prev, reg)
	if err != nil {
		return nil, err
	}
	if pr.chain, err = g.requestStages(inner, pr, p, prev, reg); err != nil {
		return nil, err
	}
	return pr, nil
}

// endpoints lists the port's endpoints the gateway may send to, each once.
func (g *Gateway) endpoints(p snapshot.Port) []*endpoint {
	var eps []*endpoint
	seen := map[string]bool{}
	for _, e := range p.Endpoints {
		if e.HandMade && !g.opts.AllowHandMadeEndpoints {
			continue
		}
		hp := e.HostPort()
		if seen[hp] {
			continue
		}
		seen[hp] = true
		eps = append(eps, &endpoint{hostPort: hp, idx: len(eps)})
	}
	return eps
}

// tryStages builds the stages of one try, innermost first: upstream, per-try timeout, circuit
// breaker, bulkhead.
func (g *Gateway) tryStages(pr *portRoute, p snapshot.Port, prev, reg *registry) (tryStage, error) {
	var s tryStage = &upstream{g: g, route: pr}
	if r := p.Retry; r != nil && r.PerTryTimeout > 0 {
		s = g.newPerTryStage(s, pr, r)
	}
	cb := p.CircuitBreaker
	if cb == nil {
		return s, nil
	}
	br, err := g.newBreakerStage(s, pr, cb, prev, reg)
	if err != nil {
		return nil, err
	}
	if cb.Concurrency == nil {
		return br, nil
	}
	return g.newBulkheadStage(br, pr, cb, prev, reg)
}

// requestStages builds the stages that see the whole request, innermost first: retry (or a single
// try), overall timeout, rate limit.
func (g *Gateway) requestStages(inner tryStage, pr *portRoute, p snapshot.Port, prev, reg *registry) (stage, error) {
	var s stage = &singleStage{next: inner}
	if r := p.Retry; r != nil {
		rs, err := g.newRetryStage(inner, pr, r, prev, reg)
		if err != nil {
			return nil, err
		}
		s = rs
		pr.hasRetry = true
		pr.replay = r.MaxAttempts > 1
		if r.Timeout > 0 {
			s = g.newTimeoutStage(s, r)
		}
	}
	if rl := p.RateLimit; rl != nil {
		return g.newRateLimitStage(s, pr, rl, prev, reg)
	}
	return s, nil
}
