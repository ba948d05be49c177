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
	pr := &portRoute{svc: sr, port: p.Port, label: sr.label, latency: sr.latency, noEndpoint: sr.noEndpoint}
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
		pr.eps = append(pr.eps, &endpoint{hostPort: hp, idx: len(pr.eps)})
	}
	pr.bal = balancer{eps: pr.eps}

	var inner tryStage = &upstream{g: g, route: pr}
	if r := p.Retry; r != nil && r.PerTryTimeout > 0 {
		inner = &perTryStage{next: inner, d: r.PerTryTimeout.D(), clk: g.clk}
		pr.tryTimeoutMsg = "no response within the per-try timeout of " + r.PerTryTimeout.D().String()
	}
	if cb := p.CircuitBreaker; cb != nil {
		var err error
		if inner, err = g.newBreakerStages(inner, pr, cb, prev, reg); err != nil {
			return nil, err
		}
	}
	var outer stage
	if r := p.Retry; r != nil {
		rs, err := g.newRetryStage(inner, pr, r, prev, reg)
		if err != nil {
			return nil, err
		}
		outer = rs
		pr.hasRetry = true
		pr.replay = r.MaxAttempts > 1
		if r.Timeout > 0 {
			outer = &timeoutStage{next: outer, d: r.Timeout.D(), clk: g.clk,
				msg: "no response within the timeout of " + r.Timeout.D().String()}
		}
	} else {
		outer = &singleStage{next: inner}
	}
	if rl := p.RateLimit; rl != nil {
		var err error
		if outer, err = g.newRateLimitStage(outer, pr, rl, prev, reg); err != nil {
			return nil, err
		}
	}
	pr.chain = outer
	return pr, nil
}
