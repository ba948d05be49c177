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
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"resilience.dev/operator/internal/patterns/bulkhead"
	"resilience.dev/operator/internal/snapshot"
)

// doneCtx is an ended context: a DryRun bulkhead acquires with it so that it never waits.
var doneCtx = func() context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	return ctx
}()

// bulkheadStage bounds the tries in flight to the target (CircuitBreaker concurrency).
type bulkheadStage struct {
	next     tryStage
	bh       *bulkhead.Bulkhead
	dryRun   bool
	status   int
	msg      string
	rejected prometheus.Counter
	dry      prometheus.Counter
}

func (s *bulkheadStage) try(ctx context.Context, x *exchange, t *try) (*http.Response, error) {
	if s.dryRun {
		switch err := s.bh.Acquire(doneCtx); {
		case err == nil:
			t.bulk = s.bh
		case errors.Is(err, bulkhead.ErrFull):
			s.dry.Inc()
		}
		return s.next.try(ctx, x, t)
	}
	switch err := s.bh.Acquire(ctx); {
	case err == nil:
		t.bulk = s.bh
	case errors.Is(err, bulkhead.ErrFull), errors.Is(err, bulkhead.ErrQueueTimeout):
		s.rejected.Inc()
		return nil, &gwError{kind: kindReject, status: s.status, retryAfter: 1, circuit: "full", msg: s.msg}
	default:
		return nil, &gwError{kind: kindCanceled, msg: "left the concurrency queue", err: err}
	}
	return s.next.try(ctx, x, t)
}

// newBulkheadStage bounds the tries of the CircuitBreaker's concurrency section; its state is kept
// across snapshots by state key and parameters.
func (g *Gateway) newBulkheadStage(next tryStage, pr *portRoute, cb *snapshot.CircuitBreaker, prev, reg *registry) (*bulkheadStage, error) {
	c := cb.Concurrency
	bcfg := bulkhead.Config{MaxConcurrent: c.MaxRequests, MaxQueued: c.MaxQueued, QueueTimeout: c.QueueTimeout.D()}
	bh, err := reuse(prev.bulkheads(), reg.bulkheadMap, fmt.Sprintf("%s|%+v", cb.StateKey, bcfg), func() (*bulkhead.Bulkhead, error) {
		return bulkhead.New(g.clk, bcfg)
	})
	if err != nil {
		return nil, fmt.Errorf("circuit breaker %s: concurrency: %w", cb.Policy.Name, err)
	}
	ns, svc := pr.svc.ns, pr.svc.name
	return &bulkheadStage{next: next, bh: bh, dryRun: cb.DryRun, status: fallbackStatus(cb),
		msg:      "concurrency limit of circuit breaker " + cb.Policy.Name + " is full",
		rejected: g.m.rejections.WithLabelValues(ns, svc, cb.Policy.Name, "", reasonBulkheadFull),
		dry:      g.m.dryRun.WithLabelValues(ns, svc, cb.Policy.Name, "", reasonBulkheadFull),
	}, nil
}
