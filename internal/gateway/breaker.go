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
	"errors"
	"fmt"
	"hash/maphash"
	"io"
	"math"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"resilience.dev/operator/internal/patterns/breaker"
	"resilience.dev/operator/internal/patterns/bulkhead"
	"resilience.dev/operator/internal/patterns/codes"
	"resilience.dev/operator/internal/patterns/stalecache"
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

func (g *Gateway) newBreakerStages(next tryStage, pr *portRoute, cb *snapshot.CircuitBreaker, prev, reg *registry) (tryStage, error) {
	fc, err := codes.Parse(cb.FailureStatusCodes)
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
		failCodes: fc, failConnect: cb.FailOnConnectError, failTimeout: cb.FailOnTimeout,
		dryRun: cb.DryRun, status: cb.FallbackStatus,
		msg:         "circuit breaker " + cb.Policy.Name + " is open",
		staleFor:    cb.ServeStale.D(),
		staleKey:    cb.StateKey + "\x00",
		rejected:    g.m.rejections.WithLabelValues(ns, svc, cb.Policy.Name, "", reasonCircuitOpen),
		dry:         g.m.dryRun.WithLabelValues(ns, svc, cb.Policy.Name, "", reasonCircuitOpen),
		staleServed: g.m.stale.WithLabelValues(ns, svc),
	}
	if s.status == 0 {
		s.status = http.StatusServiceUnavailable
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
	var out tryStage = s
	if c := cb.Concurrency; c != nil {
		bcfg := bulkhead.Config{MaxConcurrent: c.MaxRequests, MaxQueued: c.MaxQueued, QueueTimeout: c.QueueTimeout.D()}
		bh, err := reuse(prev.bulkheads(), reg.bulkheadMap, fmt.Sprintf("%s|%+v", cb.StateKey, bcfg), func() (*bulkhead.Bulkhead, error) {
			return bulkhead.New(g.clk, bcfg)
		})
		if err != nil {
			return nil, fmt.Errorf("circuit breaker %s: concurrency: %w", cb.Policy.Name, err)
		}
		out = &bulkheadStage{next: s, bh: bh, dryRun: cb.DryRun, status: s.status,
			msg:      "concurrency limit of circuit breaker " + cb.Policy.Name + " is full",
			rejected: g.m.rejections.WithLabelValues(ns, svc, cb.Policy.Name, "", reasonBulkheadFull),
			dry:      g.m.dryRun.WithLabelValues(ns, svc, cb.Policy.Name, "", reasonBulkheadFull),
		}
	}
	return out, nil
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
	tried := x.tried.Load()
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
	r := x.in
	if s.staleFor > 0 && r.Method == http.MethodGet && storableRequest(r) {
		if e, ok := s.g.stale.Lookup(t.now, s.staleKey+r.URL.RequestURI(), r.Header.Get, s.staleFor); ok {
			s.staleServed.Inc()
			resp := staleResponse(e, t.now)
			x.staleResp.Store(resp)
			return resp, nil
		}
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
		if s.failCodes.Contains(resp.StatusCode) {
			s.fail(t, br, permit, now)
			return
		}
		permit.Success(now)
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

// storableRequest reports whether a request's response may be stored or served stale: never for
// requests with credentials.
func storableRequest(r *http.Request) bool {
	return len(r.Header["Authorization"]) == 0 && len(r.Header["Cookie"]) == 0
}

// storableResponse reports whether a 200 may be kept for serveStale: not with Set-Cookie, nor
// Cache-Control private or no-store.
func storableResponse(h http.Header) bool {
	if len(h["Set-Cookie"]) > 0 {
		return false
	}
	for _, v := range h["Cache-Control"] {
		for d := range strings.SplitSeq(v, ",") {
			name, _, _ := strings.Cut(d, "=")
			name = strings.TrimSpace(name)
			if strings.EqualFold(name, "private") || strings.EqualFold(name, "no-store") {
				return false
			}
		}
	}
	return true
}

// maybeStore arranges for a storable 200 to GET to be kept once its body has been read whole.
func (s *breakerStage) maybeStore(x *exchange, t *try, resp *http.Response) {
	r := x.in
	if r.Method != http.MethodGet || resp.StatusCode != http.StatusOK || !storableRequest(r) ||
		!storableResponse(resp.Header) || resp.ContentLength > int64(s.g.maxStale) {
		return
	}
	names, ok := stalecache.ParseVary(resp.Header.Values("Vary"))
	if !ok {
		return
	}
	var pairs []string
	for k, vv := range resp.Header {
		if isHopByHop(k) || isResilienceHeader(k) || k == "Age" {
			continue
		}
		for _, v := range vv {
			pairs = append(pairs, k, v)
		}
	}
	key, at, cache, get := s.staleKey+r.URL.RequestURI(), t.end, s.g.stale, r.Header.Get
	tb := &teeBody{rc: resp.Body, max: s.g.maxStale}
	if resp.ContentLength > 0 {
		tb.buf = make([]byte, 0, resp.ContentLength)
	}
	tb.done = func(body []byte) {
		cache.Store(at, key, names, get, stalecache.Entry{Header: pairs, Body: body})
	}
	resp.Body = tb
}

// teeBody keeps a copy of a body of at most max bytes and hands it to done at EOF.
type teeBody struct {
	rc   io.ReadCloser
	buf  []byte
	max  int
	over bool
	done func([]byte)
}

func (b *teeBody) Read(p []byte) (int, error) {
	n, err := b.rc.Read(p)
	if !b.over {
		if len(b.buf)+n > b.max {
			b.over, b.buf = true, nil
		} else {
			b.buf = append(b.buf, p[:n]...)
		}
	}
	if err == io.EOF && !b.over && b.done != nil {
		b.done(b.buf)
		b.done = nil
	}
	return n, err
}

func (b *teeBody) Close() error { return b.rc.Close() }

// staleShards spreads the stale responses over several byte-bounded caches by primary key (policy
// state key and URL), so that storing a response takes no lock shared by every request. A primary
// key and its Vary record always live in the same shard. The bound is the sum of the shards'.
type staleShards struct {
	seed       maphash.Seed
	shards     []*stalecache.Cache
	shardBytes int64
}

func newStaleShards(total int64) (*staleShards, error) {
	n := 1
	if total >= 16<<20 {
		n = 16
	}
	s := &staleShards{seed: maphash.MakeSeed(), shardBytes: total / int64(n)}
	for range n {
		c, err := stalecache.New(s.shardBytes)
		if err != nil {
			return nil, err
		}
		s.shards = append(s.shards, c)
	}
	return s, nil
}

func (s *staleShards) shard(primary string) *stalecache.Cache {
	if len(s.shards) == 1 {
		return s.shards[0]
	}
	return s.shards[maphash.String(s.seed, primary)%uint64(len(s.shards))]
}

// Store is stalecache.Cache.Store on primary's shard.
func (s *staleShards) Store(now time.Time, primary string, vary []string, value func(string) string, e stalecache.Entry) bool {
	return s.shard(primary).Store(now, primary, vary, value, e)
}

// Lookup is stalecache.Cache.Lookup on primary's shard.
func (s *staleShards) Lookup(now time.Time, primary string, value func(string) string, maxAge time.Duration) (stalecache.Entry, bool) {
	return s.shard(primary).Lookup(now, primary, value, maxAge)
}

// staleResponse rebuilds a stored response; decorate adds X-Resilience-Stale.
func staleResponse(e stalecache.Entry, now time.Time) *http.Response {
	h := make(http.Header, len(e.Header)/2+1)
	for i := 0; i+1 < len(e.Header); i += 2 {
		h[e.Header[i]] = append(h[e.Header[i]], e.Header[i+1])
	}
	h["Age"] = []string{strconv.FormatInt(int64(max(now.Sub(e.StoredAt), 0)/time.Second), 10)}
	return &http.Response{
		Status: "200 OK", StatusCode: http.StatusOK, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: h, Body: io.NopCloser(bytes.NewReader(e.Body)), ContentLength: int64(len(e.Body)),
	}
}

// breakerMeta names a breaker for its events; a new snapshot may update it (a new generation of
// the same policy) while the breaker keeps its state.
type breakerMeta struct {
	policy   snapshot.PolicyRef
	ns, svc  string
	port     int32
	endpoint string
}

// breakerState is a breaker kept across snapshots, with what its events need.
type breakerState struct {
	g         *Gateway
	b         *breaker.Breaker
	key       string
	meta      atomic.Pointer[breakerMeta]
	last      atomic.Pointer[BreakerEvent]
	openUntil atomic.Int64 // unix ns while open
	gauge     prometheus.Gauge
	labels    []string
	dropped   atomic.Bool
}

func (g *Gateway) breakerFor(key string, cfg breaker.Config, meta breakerMeta, prev, reg *registry) (*breakerState, error) {
	bs, err := reuse(prev.breakers(), reg.breakerMap, key, func() (*breakerState, error) {
		bs := &breakerState{g: g, key: key}
		bs.labels = []string{meta.ns, meta.policy.Name, meta.svc, strconv.Itoa(int(meta.port)), meta.endpoint}
		bs.gauge = g.m.breakerState.WithLabelValues(bs.labels...)
		bs.gauge.Set(breakerGaugeClosed)
		c := cfg
		c.OnStateChange = bs.onChange
		b, err := breaker.New(c, g.clk.Now())
		if err != nil {
			g.m.breakerState.DeleteLabelValues(bs.labels...)
			return nil, err
		}
		bs.b = b
		m := meta
		bs.meta.Store(&m)
		return bs, nil
	})
	if err != nil {
		return nil, err
	}
	reg.metas[bs] = meta // a kept breaker takes the new names when the table is swapped in
	return bs, nil
}

// openLeft returns how long the breaker stays open from now (0 when it is not open).
func (bs *breakerState) openLeft(now time.Time) time.Duration {
	if bs.b.State(now) != breaker.Open {
		return 0
	}
	return max(time.Duration(bs.openUntil.Load()-now.UnixNano()), 0)
}

func (bs *breakerState) event(tr breaker.Transition) BreakerEvent {
	m := bs.meta.Load()
	return BreakerEvent{Policy: m.policy, Namespace: m.ns, Service: m.svc, Port: m.port, Endpoint: m.endpoint,
		From: tr.From.String(), To: tr.To.String(), Cause: tr.Cause, At: tr.At}
}

func (bs *breakerState) onChange(tr breaker.Transition) {
	if tr.To == breaker.Open {
		bs.openUntil.Store(tr.OpenUntil.UnixNano())
	}
	ev := bs.event(tr)
	bs.last.Store(&ev)
	if bs.dropped.Load() { // out of force: its gauge series may belong to its successor now
		return
	}
	switch tr.To {
	case breaker.Open:
		bs.gauge.Set(breakerGaugeOpen)
	case breaker.HalfOpen:
		bs.gauge.Set(breakerGaugeHalfOpn)
	default:
		bs.gauge.Set(breakerGaugeClosed)
	}
	bs.g.log.Info("circuit breaker "+strings.ToLower(ev.To), "policy", ev.Policy.Namespace+"/"+ev.Policy.Name,
		"service", ev.Namespace+"/"+ev.Service, "port", ev.Port, "endpoint", ev.Endpoint,
		"from", ev.From, "to", ev.To, "cause", ev.Cause)
	if f := bs.g.opts.OnBreakerChange; f != nil {
		f(ev)
	}
}
