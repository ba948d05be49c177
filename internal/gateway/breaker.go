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
	"fmt"
	"math"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"resilience.dev/operator/internal/patterns/breaker"
	"resilience.dev/operator/internal/patterns/codes"
	"resilience.dev/operator/internal/snapshot"
)

// breakerStage lets a try through its circuit breaker (scope Service), or picks an endpoint whose
// breaker lets it through (scope Endpoint), and reports how the try went.
type breakerStage struct {
	next  tryStage
	g     *Gateway
	route *portRoute

	br          *breakerState // scope Service
	perEndpoint bool
	maxOpenPct  int
	failCodes   codes.Set
	failGRPC    grpcCodeSet
	failConnect bool
	failTimeout bool
	dryRun      bool
	status      int
	msg         string
	staleFor    time.Duration
	staleKey    string

	rejected    prometheus.Counter
	dry         prometheus.Counter
	staleServed prometheus.Counter
}

func (g *Gateway) newBreakerStage(next tryStage, pr *portRoute, cb *snapshot.CircuitBreaker, prev, reg *registry) (*breakerStage, error) {
	fc, err := codes.Parse(cb.FailureStatusCodes)
	if err != nil {
		return nil, fmt.Errorf("circuit breaker %s: %w", cb.Policy.Name, err)
	}
	fg, err := parseGRPCCodes(cb.FailureGRPCCodes)
	if err != nil {
		return nil, fmt.Errorf("circuit breaker %s: %w", cb.Policy.Name, err)
	}
	cfg := breaker.Config{
		ConsecutiveFailures: cb.ConsecutiveFailures,
		OpenDuration:        cb.OpenDuration.D(),
		MaxOpenDuration:     cb.MaxOpenDuration.D(),
		HalfOpenMaxRequests: cb.HalfOpenRequests,
		SuccessThreshold:    cb.SuccessThreshold,
		SlowCallDuration:    cb.SlowCallDuration.D(),
	}
	if r := cb.FailureRatio; r != nil {
		cfg.FailureRatio = &breaker.FailureRatio{Percent: r.Percent, MinimumRequests: r.MinimumRequests, Window: r.Window.D()}
	}
	ns, svc := pr.svc.ns, pr.svc.name
	s := &breakerStage{
		next: next, g: g, route: pr,
		perEndpoint: cb.PerEndpoint, maxOpenPct: cb.MaxOpenPercent,
		failCodes: fc, failGRPC: fg, failConnect: cb.FailOnConnectError, failTimeout: cb.FailOnTimeout,
		dryRun: cb.DryRun, status: fallbackStatus(cb),
		msg:         "circuit breaker " + cb.Policy.Name + " is open",
		staleFor:    cb.ServeStale.D(),
		staleKey:    cb.StateKey + "\x00",
		rejected:    g.m.rejections.WithLabelValues(ns, svc, cb.Policy.Name, "", reasonCircuitOpen),
		dry:         g.m.dryRun.WithLabelValues(ns, svc, cb.Policy.Name, "", reasonCircuitOpen),
		staleServed: g.m.stale.WithLabelValues(ns, svc),
	}
	key := fmt.Sprintf("%s|%+v", cb.StateKey, cfg)
	if cfg.FailureRatio != nil {
		key += fmt.Sprintf("|%+v", *cfg.FailureRatio)
	}
	meta := breakerMeta{policy: cb.Policy, ns: ns, svc: svc, port: pr.port}
	if cb.PerEndpoint {
		for _, ep := range pr.eps {
			m := meta
			m.endpoint = ep.hostPort
			if ep.br, err = g.breakerFor(key+"|"+ep.hostPort, cfg, m, prev, reg); err != nil {
				return nil, fmt.Errorf("circuit breaker %s: %w", cb.Policy.Name, err)
			}
		}
	} else if s.br, err = g.breakerFor(key, cfg, meta, prev, reg); err != nil {
		return nil, fmt.Errorf("circuit breaker %s: %w", cb.Policy.Name, err)
	}
	return s, nil
}

func (s *breakerStage) try(ctx context.Context, x *exchange, t *try) (*http.Response, error) {
	var permit breaker.Permit
	var br *breakerState
	if s.perEndpoint {
		ep, p, wait, ok := s.pick(x, t)
		switch {
		case ok:
			t.ep, permit, br = ep, p, ep.br
		case wait < 0: // no endpoints at all: the upstream stage says so
		case s.dryRun:
			s.dry.Inc()
		default:
			return s.reject(x, t, wait)
		}
	} else {
		p, wait, ok := s.br.b.Allow(t.now)
		switch {
		case ok:
			permit, br = p, s.br
		case s.dryRun:
			s.dry.Inc()
		default:
			return s.reject(x, t, wait)
		}
	}
	resp, err := s.next.try(ctx, x, t)
	if br != nil {
		s.report(t, br, permit, resp, err)
	}
	if err == nil && s.staleFor > 0 {
		s.maybeStore(x, t, resp)
	}
	return resp, err
}

// pick chooses an endpoint whose breaker admits the try. When none does, wait is how long until
// the first may half-open (-1 when the port has no endpoints).
func (s *breakerStage) pick(x *exchange, t *try) (*endpoint, breaker.Permit, time.Duration, bool) {
	eps := s.route.eps
	if len(eps) == 0 {
		return nil, breaker.Permit{}, -1, false
	}
	var skip uint64
	tried := x.tries.tried.Load()
	for range len(eps) {
		i := s.route.bal.pick(t.now, tried, skip, true)
		if i < 0 {
			break
		}
		if p, _, ok := eps[i].br.b.Allow(t.now); ok {
			return eps[i], p, 0, true
		}
		if i >= 64 {
			break
		}
		skip |= 1 << i
	}
	wait := time.Duration(math.MaxInt64)
	for _, ep := range eps {
		wait = min(wait, ep.br.openLeft(t.now))
	}
	return nil, breaker.Permit{}, wait, false
}

// reject answers a try the breaker refused: a stale response when there is one, else the fallback.
func (s *breakerStage) reject(x *exchange, t *try, wait time.Duration) (*http.Response, error) {
	if resp := s.serveStale(x, t); resp != nil {
		return resp, nil
	}
	s.rejected.Inc()
	return nil, &gwError{kind: kindReject, status: s.status, retryAfter: ceilSeconds(wait), circuit: "open", msg: s.msg}
}

// report ends the try's permit: success, failure, or, for a try the gateway or client cut, neither.
func (s *breakerStage) report(t *try, br *breakerState, permit breaker.Permit, resp *http.Response, err error) {
	now := t.end
	if now.IsZero() {
		now = s.g.clk.Now()
	}
	if err == nil {
		switch {
		case s.failCodes.Contains(resp.StatusCode):
			s.fail(t, br, permit, now)
		case t.x.grpc && resp.StatusCode == http.StatusOK:
			s.reportGRPC(t, br, permit, resp, now)
		default:
			permit.Success(now)
		}
		return
	}
	kind := kindCanceled
	if ge, ok := err.(*gwError); ok {
		kind = ge.kind
	}
	switch {
	case kind == kindConnect && s.failConnect, kind == kindTryTimeout && s.failTimeout,
		kind == kindReset, kind == kindProtocol:
		s.fail(t, br, permit, now)
	default:
		permit.Cancel()
	}
}

// fail reports a failure. With scope Endpoint, a closed endpoint breaker is not allowed to open
// while maxOpenPercent of the endpoints (at least one) are already not closed: its failure then
// counts as neither (as Envoy's max_ejection_percent keeps a share of hosts in rotation).
func (s *breakerStage) fail(t *try, br *breakerState, permit breaker.Permit, now time.Time) {
	if s.perEndpoint && br.b.State(now) == breaker.Closed {
		eps := s.route.eps
		limit := max(1, len(eps)*s.maxOpenPct/100)
		open := 0
		for _, ep := range eps {
			if ep.br.b.State(now) != breaker.Closed {
				open++
			}
		}
		if open >= limit {
			permit.Cancel()
			return
		}
	}
	permit.Failure(now)
}

// fallbackStatus is the status of a try the breaker or its bulkhead refuses.
func fallbackStatus(cb *snapshot.CircuitBreaker) int {
	if cb.FallbackStatus == 0 {
		return http.StatusServiceUnavailable
	}
	return cb.FallbackStatus
}
