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
	"slices"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
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
//
// The counters and the histogram of a Service or policy are made when its route is built, but their
// series only on first use (lazyCounterVec, lazyHistogramVec): a series costs about a kilobyte (its
// label pairs, and the buckets of a histogram), and most of 10,000 Services never see a retry or a
// rejection. A series that was never incremented is zero, which Prometheus reads the same as absent
// (rate() and increase() of a series that appears are counted from its first sample). The
// circuit_breaker_state gauge is the exception: every breaker in force exports its state at once.
//
// Labels that name the target carry a target_ prefix: namespace, service and endpoint are the labels
// the Prometheus Operator (and most Kubernetes scrape configs) give to the scraped pod's own Service,
// so unprefixed they would be overwritten or renamed to exported_* at scrape time.
type metrics struct {
	requests       *prometheus.CounterVec // target_namespace, target_service, code (children made on first use: codeCounters)
	rejections     lazyCounterVec         // target_namespace, target_service, policy, limit, reason
	dryRun         lazyCounterVec         // target_namespace, target_service, policy, limit, reason
	breakerState   *prometheus.GaugeVec   // target_namespace, policy, target_service, target_port, target_endpoint
	retries        lazyCounterVec         // target_namespace, target_service, reason
	retriesSkipped lazyCounterVec         // target_namespace, target_service, reason
	hedges         lazyCounterVec         // target_namespace, target_service
	stale          lazyCounterVec         // target_namespace, target_service
	latency        lazyHistogramVec       // target_namespace, target_service
	version        prometheus.Gauge
	applyErrors    prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: metricPrefix + "requests_total",
			Help: "Requests answered by the gateway, by target Service and status code (499: the client went away).",
		}, []string{"target_namespace", "target_service", "code"}),
		rejections: lazyCounterVec{prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: metricPrefix + "rejections_total",
			Help: "Requests (or tries) the gateway refused itself, by policy, limit (rate limits only) and reason.",
		}, []string{"target_namespace", "target_service", "policy", "limit", "reason"})},
		dryRun: lazyCounterVec{prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: metricPrefix + "dry_run_rejections_total",
			Help: "Requests a policy in DryRun mode would have refused, by policy, limit and reason.",
		}, []string{"target_namespace", "target_service", "policy", "limit", "reason"})},
		breakerState: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: metricPrefix + "circuit_breaker_state",
			Help: "State of each circuit breaker: 0 closed, 1 open, 2 half-open (endpoint empty for scope Service).",
		}, []string{"target_namespace", "policy", "target_service", "target_port", "target_endpoint"}),
		retries: lazyCounterVec{prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: metricPrefix + "retries_total",
			Help: "Retries sent, by the reason of the try they replace (status, connect_error, reset, timeout).",
		}, []string{"target_namespace", "target_service", "reason"})},
		retriesSkipped: lazyCounterVec{prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: metricPrefix + "retries_skipped_total",
			Help: "Retries or hedges not sent although allowed by the policy, by reason (budget_exhausted, retry_after_too_long, hedge_budget_exhausted).",
		}, []string{"target_namespace", "target_service", "reason"})},
		hedges: lazyCounterVec{prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: metricPrefix + "hedges_total",
			Help: "Hedged tries sent because no response arrived within the hedge delay.",
		}, []string{"target_namespace", "target_service"})},
		stale: lazyCounterVec{prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: metricPrefix + "stale_responses_total",
			Help: "Stale responses served while a circuit breaker was open.",
		}, []string{"target_namespace", "target_service"})},
		latency: lazyHistogramVec{prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    metricPrefix + "upstream_duration_seconds",
			Help:    "Time from sending a try upstream to its response headers (or error).",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"target_namespace", "target_service"})},
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

// lazyCounterVec is a CounterVec whose WithLabelValues makes the series on first use.
type lazyCounterVec struct{ *prometheus.CounterVec }

// WithLabelValues returns the counter of lvs (which it keeps: the caller must not change them); its
// series is made when it is first used.
func (v lazyCounterVec) WithLabelValues(lvs ...string) prometheus.Counter {
	return &lazyCounter{vec: v.CounterVec, lvs: lvs}
}

// lazyCounter is a prometheus.Counter whose series is made on first use.
type lazyCounter struct {
	c   atomic.Pointer[counter]
	vec *prometheus.CounterVec
	lvs []string
}

func (l *lazyCounter) get() prometheus.Counter {
	if p := l.c.Load(); p != nil {
		return p.c
	}
	p := &counter{l.vec.WithLabelValues(l.lvs...)} // the same child for every caller
	l.c.Store(p)
	return p.c
}

func (l *lazyCounter) Inc()                                { l.get().Inc() }
func (l *lazyCounter) Add(v float64)                       { l.get().Add(v) }
func (l *lazyCounter) Desc() *prometheus.Desc              { return l.get().Desc() }
func (l *lazyCounter) Write(m *dto.Metric) error           { return l.get().Write(m) }
func (l *lazyCounter) Describe(ch chan<- *prometheus.Desc) { l.get().Describe(ch) }
func (l *lazyCounter) Collect(ch chan<- prometheus.Metric) { l.get().Collect(ch) }

// lazyHistogramVec is a HistogramVec whose WithLabelValues makes the series on first use.
type lazyHistogramVec struct{ *prometheus.HistogramVec }

// WithLabelValues returns the observer of lvs (kept, as lazyCounterVec's).
func (v lazyHistogramVec) WithLabelValues(lvs ...string) prometheus.Observer {
	return &lazyObserver{vec: v.HistogramVec, lvs: lvs}
}

type lazyObserver struct {
	o   atomic.Pointer[observer]
	vec *prometheus.HistogramVec
	lvs []string
}

type observer struct{ o prometheus.Observer }

func (l *lazyObserver) Observe(v float64) {
	p := l.o.Load()
	if p == nil {
		p = &observer{l.vec.WithLabelValues(l.lvs...)}
		l.o.Store(p)
	}
	p.o.Observe(v)
}

// codeCounters caches the requests_total children of one Service by status code, so the hot path
// does no label lookup after the first request with a code. The cache is a short list, copied on
// write: a Service sees a handful of codes, and a list costs nothing until the first request (a
// table of every code would be 4.8 KB per Service).
type codeCounters struct {
	vec     *prometheus.CounterVec
	ns, svc string
	mu      sync.Mutex // serialises additions to codes
	codes   atomic.Pointer[[]codeCounter]
}

type codeCounter struct {
	code int
	c    prometheus.Counter
}

// maxCachedCodes bounds the list; codes beyond it are looked up in vec each time.
const maxCachedCodes = 32

type counter struct{ c prometheus.Counter }

func (cc *codeCounters) inc(code int) {
	if p := cc.codes.Load(); p != nil {
		for i := range *p {
			if (*p)[i].code == code {
				(*p)[i].c.Inc()
				return
			}
		}
	}
	cc.add(code).Inc()
}

// add returns the counter of code, caching it when there is room.
func (cc *codeCounters) add(code int) prometheus.Counter {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	var cur []codeCounter
	if p := cc.codes.Load(); p != nil {
		cur = *p
		for _, e := range cur {
			if e.code == code {
				return e.c
			}
		}
	}
	c := cc.vec.WithLabelValues(cc.ns, cc.svc, strconv.Itoa(code))
	if len(cur) < maxCachedCodes {
		next := append(slices.Clip(cur), codeCounter{code, c})
		cc.codes.Store(&next)
	}
	return c
}
