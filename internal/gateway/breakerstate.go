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
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"resilience.dev/operator/internal/patterns/breaker"
	"resilience.dev/operator/internal/snapshot"
)

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
