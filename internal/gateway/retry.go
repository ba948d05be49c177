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
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/attribute"

	"resilience.dev/operator/internal/patterns/backoff"
	"resilience.dev/operator/internal/patterns/budget"
	"resilience.dev/operator/internal/patterns/clock"
	"resilience.dev/operator/internal/patterns/codes"
	"resilience.dev/operator/internal/snapshot"
)

// Indexes of the retry reasons, for metrics.
const (
	retryStatus = iota
	retryConnect
	retryReset
	retryTimeout
	numRetryReasons
)

var retryReasonNames = [numRetryReasons]string{retryReasonStatus, retryReasonConnect, retryReasonReset, retryReasonTimeout}

// retryStage sends the request again after a retryable failure, and hedges safe requests.
type retryStage struct {
	next  tryStage
	clk   clock.Clock
	rand  backoff.Source
	route *portRoute

	maxAttempts int
	retryCodes  codes.Set
	connect     bool
	resets      bool
	timeouts    bool
	methods     []string
	backoff     *backoff.Backoff
	backoffMax  time.Duration
	budget      *budget.Budget
	respectRA   bool
	hedgeDelay  time.Duration
	maxHedges   int

	retries     [numRetryReasons]prometheus.Counter
	skipBudget  prometheus.Counter
	skipRA      prometheus.Counter
	skipHedge   prometheus.Counter
	hedgesTotal prometheus.Counter
}

func (g *Gateway) newRetryStage(next tryStage, pr *portRoute, r *snapshot.Retry, prev, reg *registry) (*retryStage, error) {
	rc, err := codes.Parse(r.RetryStatusCodes)
	if err != nil {
		return nil, fmt.Errorf("retry %s: %w", r.Policy.Name, err)
	}
	strat, err := backoff.ParseStrategy(r.BackoffStrategy)
	if err != nil {
		return nil, fmt.Errorf("retry %s: %w", r.Policy.Name, err)
	}
	jit, err := backoff.ParseJitter(r.Jitter)
	if err != nil {
		return nil, fmt.Errorf("retry %s: %w", r.Policy.Name, err)
	}
	bo, err := backoff.New(backoff.Config{Strategy: strat, Jitter: jit, Base: r.BackoffBase.D(), Max: r.BackoffMax.D()})
	if err != nil {
		return nil, fmt.Errorf("retry %s: %w", r.Policy.Name, err)
	}
	if r.MaxAttempts < 1 {
		return nil, fmt.Errorf("retry %s: maxAttempts %d", r.Policy.Name, r.MaxAttempts)
	}
	cfg := budget.Config{Percent: r.BudgetPercent, MinRetriesPerSecond: r.BudgetMinPerSecond, Window: r.BudgetWindow.D()}
	key := fmt.Sprintf("%s|%+v", r.StateKey, cfg)
	bud, err := reuse(prev.budgets(), reg.budgetMap, key, func() (*budget.Budget, error) {
		return budget.New(cfg, g.clk.Now())
	})
	if err != nil {
		return nil, fmt.Errorf("retry %s: %w", r.Policy.Name, err)
	}
	ns, svc := pr.svc.ns, pr.svc.name
	s := &retryStage{
		next: next, clk: g.clk, rand: g.opts.Rand, route: pr,
		maxAttempts: r.MaxAttempts, retryCodes: rc,
		connect: r.RetryConnect, resets: r.RetryResets, timeouts: r.RetryTimeouts,
		methods: r.Methods, backoff: bo, backoffMax: r.BackoffMax.D(), budget: bud,
		respectRA: r.RespectRetryAfter, hedgeDelay: r.HedgeDelay.D(), maxHedges: r.MaxHedges,
		skipBudget:  g.m.retriesSkipped.WithLabelValues(ns, svc, reasonRetryBudget),
		skipRA:      g.m.retriesSkipped.WithLabelValues(ns, svc, reasonRetryAfter),
		skipHedge:   g.m.retriesSkipped.WithLabelValues(ns, svc, reasonHedgeBudget),
		hedgesTotal: g.m.hedges.WithLabelValues(ns, svc),
	}
	for i, name := range retryReasonNames {
		s.retries[i] = g.m.retries.WithLabelValues(ns, svc, name)
	}
	return s, nil
}

func (s *retryStage) serve(ctx context.Context, x *exchange) (*http.Response, error) {
	r := x.in
	now := x.now
	s.budget.Request(now)
	idempotent := slices.Contains(s.methods, r.Method) ||
		((r.Method == http.MethodPost || r.Method == http.MethodPatch) && r.Header.Get("Idempotency-Key") != "")
	hedging := s.maxHedges > 0 && x.body.replayable && safeMethod(r.Method)
	seq := s.backoff.Start(s.rand)
	tries := 0
	for {
		var resp *http.Response
		var err error
		if hedging && s.maxAttempts-tries > 1 {
			var n int
			resp, n, err = s.hedged(ctx, x, tries, now)
			tries += n
		} else {
			resp, err = x.runTry(ctx, s.next, now)
			tries++
		}
		why := s.reason(resp, err)
		if why < 0 || tries >= s.maxAttempts || !x.body.replayable || ctx.Err() != nil ||
			(!idempotent && why != retryConnect) {
			return resp, err
		}
		now = s.clk.Now()
		wait := seq.Next()
		if resp != nil && s.respectRA {
			if v := resp.Header.Get("Retry-After"); v != "" {
				if ra, ok := parseRetryAfter(v, now); ok {
					if !s.fits(ra, x, now) {
						s.skipRA.Inc()
						return resp, nil
					}
					wait = ra
				}
			}
		}
		if !s.budget.AllowRetry(now) {
			s.skipBudget.Inc()
			return resp, err
		}
		s.retries[why].Inc()
		traceEvent(ctx, "retry", attribute.Int("resilience.after_attempts", tries), attribute.Stringer("resilience.wait", wait))
		discardResponse(resp)
		if wait > 0 {
			if err := sleep(ctx, s.clk, wait); err != nil {
				return nil, &gwError{kind: kindCanceled, msg: "request ended during backoff", err: err}
			}
			now = s.clk.Now()
		}
	}
}

// fits reports whether an upstream's Retry-After wait may be honoured: within the time left of the
// overall timeout, or, without one, no longer than the backoff maximum.
func (s *retryStage) fits(ra time.Duration, x *exchange, now time.Time) bool {
	if !x.deadline.IsZero() {
		return ra < x.deadline.Sub(now)
	}
	return ra <= s.backoffMax
}

// good reports whether a try's result ends hedging: a response whose status is not retryable.
func (s *retryStage) good(resp *http.Response, err error) bool {
	return err == nil && !s.retryCodes.Contains(resp.StatusCode)
}

// reason returns why a try's result may be retried, or -1 when it may not.
func (s *retryStage) reason(resp *http.Response, err error) int {
	if err == nil {
		if resp != nil && s.retryCodes.Contains(resp.StatusCode) {
			return retryStatus
		}
		return -1
	}
	ge, ok := err.(*gwError)
	if !ok {
		return -1
	}
	switch {
	case ge.kind == kindConnect && s.connect:
		return retryConnect
	case ge.kind == kindReset && s.resets:
		return retryReset
	case ge.kind == kindTryTimeout && s.timeouts:
		return retryTimeout
	}
	return -1
}

// sleep waits d on clk, or until ctx ends.
func sleep(ctx context.Context, clk clock.Clock, d time.Duration) error {
	tm := clk.NewTimer(d)
	select {
	case <-tm.C():
		return nil
	case <-ctx.Done():
		tm.Stop()
		return context.Cause(ctx)
	}
}

// maxRetryAfter caps a parsed Retry-After, so arithmetic on it cannot overflow.
const maxRetryAfter = 100 * 365 * 24 * time.Hour

// parseRetryAfter reads a Retry-After value (RFC 9110 10.2.3): delta-seconds or an HTTP-date, the
// latter relative to now (a date in the past means no wait). ok is false for anything else.
func parseRetryAfter(v string, now time.Time) (time.Duration, bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	if v[0] >= '0' && v[0] <= '9' {
		var secs int64
		for i := 0; i < len(v); i++ {
			c := v[i]
			if c < '0' || c > '9' {
				return 0, false
			}
			if secs < int64(maxRetryAfter/time.Second) {
				secs = secs*10 + int64(c-'0')
			}
		}
		return time.Duration(min(secs, int64(maxRetryAfter/time.Second))) * time.Second, true
	}
	t, err := http.ParseTime(v)
	if err != nil {
		return 0, false
	}
	d := t.Sub(now)
	return min(max(d, 0), maxRetryAfter), true
}
