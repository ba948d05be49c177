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
	"strconv"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
)

const metricPrefix = "resilience_gateway_"

// Rejection and dry-run reasons, the values of the reason label.
const (
	reasonRateLimited   = "rate_limited"
	reasonDelayQueue    = "delay_queue_full"
	reasonCircuitOpen   = "circuit_open"
	reasonBulkheadFull  = "bulkhead_full"
	reasonNoEndpoint    = "no_ready_endpoint"
	reasonRetryBudget   = "budget_exhausted"
	reasonRetryAfter    = "retry_after_too_long"
	reasonHedgeBudget   = "hedge_budget_exhausted"
	retryReasonStatus   = "status"
	retryReasonConnect  = "connect_error"
	retryReasonReset    = "reset"
	retryReasonTimeout  = "timeout"
	breakerGaugeClosed  = 0
	breakerGaugeOpen    = 1
	breakerGaugeHalfOpn = 2
)

// metrics are the gateway's Prometheus collectors. Label values come from the snapshot (namespaces,
// Service, policy and limit names, endpoint addresses) or are fixed strings; nothing a client sends
// (a rate-limit key, a host name) ever becomes a label value.
type metrics struct {
	requests       *prometheus.CounterVec   // namespace, service, code
	rejections     *prometheus.CounterVec   // namespace, service, policy, limit, reason
	dryRun         *prometheus.CounterVec   // namespace, service, policy, limit, reason
	breakerState   *prometheus.GaugeVec     // namespace, policy, service, port, endpoint
	retries        *prometheus.CounterVec   // namespace, service, reason
	retriesSkipped *prometheus.CounterVec   // namespace, service, reason
	hedges         *prometheus.CounterVec   // namespace, service
	stale          *prometheus.CounterVec   // namespace, service
	latency        *prometheus.HistogramVec // namespace, service
	version        prometheus.Gauge
	applyErrors    prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: metricPrefix + "requests_total",
			Help: "Requests answered by the gateway, by target Service and status code (499: the client went away).",
		}, []string{"namespace", "service", "code"}),
		rejections: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: metricPrefix + "rejections_total",
			Help: "Requests (or tries) the gateway refused itself, by policy, limit (rate limits only) and reason.",
		}, []string{"namespace", "service", "policy", "limit", "reason"}),
		dryRun: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: metricPrefix + "dry_run_rejections_total",
			Help: "Requests a policy in DryRun mode would have refused, by policy, limit and reason.",
		}, []string{"namespace", "service", "policy", "limit", "reason"}),
		breakerState: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: metricPrefix + "circuit_breaker_state",
			Help: "State of each circuit breaker: 0 closed, 1 open, 2 half-open (endpoint empty for scope Service).",
		}, []string{"namespace", "policy", "service", "port", "endpoint"}),
		retries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: metricPrefix + "retries_total",
			Help: "Retries sent, by the reason of the try they replace (status, connect_error, reset, timeout).",
		}, []string{"namespace", "service", "reason"}),
		retriesSkipped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: metricPrefix + "retries_skipped_total",
			Help: "Retries or hedges not sent although allowed by the policy, by reason (budget_exhausted, retry_after_too_long, hedge_budget_exhausted).",
		}, []string{"namespace", "service", "reason"}),
		hedges: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: metricPrefix + "hedges_total",
			Help: "Hedged tries sent because no response arrived within the hedge delay.",
		}, []string{"namespace", "service"}),
		stale: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: metricPrefix + "stale_responses_total",
			Help: "Stale responses served while a circuit breaker was open.",
		}, []string{"namespace", "service"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    metricPrefix + "upstream_duration_seconds",
			Help:    "Time from sending a try upstream to its response headers (or error).",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"namespace", "service"}),
		version: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: metricPrefix + "snapshot_version",
			Help: "Version of the configuration snapshot in force.",
		}),
		applyErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: metricPrefix + "snapshot_apply_errors_total",
			Help: "Snapshots refused (invalid or impossible to build); the previous one stays in force.",
		}),
	}
	for _, c := range []prometheus.Collector{m.requests, m.rejections, m.dryRun, m.breakerState, m.retries,
		m.retriesSkipped, m.hedges, m.stale, m.latency, m.version, m.applyErrors} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// codeCounters caches the requests_total children of one Service by status code, so the hot path
// does no label lookup after the first request with a code.
type codeCounters struct {
	vec     *prometheus.CounterVec
	ns, svc string
	byCode  [600]atomic.Pointer[counter]
}

type counter struct{ c prometheus.Counter }

func (cc *codeCounters) inc(code int) {
	if code < 0 || code >= len(cc.byCode) {
		cc.vec.WithLabelValues(cc.ns, cc.svc, strconv.Itoa(code)).Inc()
		return
	}
	p := cc.byCode[code].Load()
	if p == nil {
		p = &counter{cc.vec.WithLabelValues(cc.ns, cc.svc, strconv.Itoa(code))}
		cc.byCode[code].Store(p)
	}
	p.c.Inc()
}
