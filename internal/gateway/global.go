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
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"resilience.dev/operator/internal/patterns/globallimit"
	"resilience.dev/operator/internal/patterns/ratelimit"
	"resilience.dev/operator/internal/snapshot"
)

// sweepEvery is how often held Global tokens are checked for their lapse (contract: tokens a replica
// took but did not spend go back within 1 s; globallimit's Lapse is 1s, so they go back within
// 1.25 s of their grant at worst, and within 1 s of the last request that could have spent them).
const sweepEvery = 250 * time.Millisecond

// DefaultStoreBudget bounds each store call (contract, section 7).
const DefaultStoreBudget = 5 * time.Millisecond

// errNoStore is the store error of a gateway started without --store-url: its Global limits run as
// their onStoreError says, and it reports the store unavailable.
var errNoStore = errors.New("no store configured (--store-url)")

// globalLimits is the gateway's side of the shared store: the guarded store every Global limit takes
// its tokens from, and the store metrics.
type globalLimits struct {
	guard *globallimit.Guard // nil without a store

	calls     *prometheus.CounterVec // outcome: ok, refused, error, skipped
	latency   prometheus.Histogram
	batch     prometheus.Histogram
	available prometheus.Gauge
	onStore   prometheus.Counter // requests decided by onStoreError
}

func newGlobalLimits(g *Gateway, reg prometheus.Registerer) (*globalLimits, error) {
	gl := &globalLimits{
		calls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: metricPrefix + "store_calls_total",
			Help: "Calls to the store of Global rate limits, by outcome: ok (tokens granted), refused (none left), error (failed or over budget), skipped (store down, not probed).",
		}, []string{"outcome"}),
		latency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    metricPrefix + "store_call_duration_seconds",
			Help:    "Duration of calls to the store of Global rate limits.",
			Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025},
		}),
		batch: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    metricPrefix + "store_batch_tokens",
			Help:    "Tokens asked for by each call to the store (the batch a replica spends locally).",
			Buckets: []float64{1, 2, 4, 8, 16, 32, 64, 128, 256, 1024},
		}),
		available: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: metricPrefix + "store_available",
			Help: "1 while the store of Global rate limits answers within its budget, else 0.",
		}),
		onStore: prometheus.NewCounter(prometheus.CounterOpts{
			Name: metricPrefix + "store_error_decisions_total",
			Help: "Requests a Global limit decided by its onStoreError because the store could not be asked.",
		}),
	}
	for _, outcome := range []string{"ok", "refused", "error", "skipped"} {
		gl.calls.WithLabelValues(outcome) // every series from the start: dashboards and alerts see zeros
	}
	for _, c := range []prometheus.Collector{gl.calls, gl.latency, gl.batch, gl.available, gl.onStore} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	if g.opts.GlobalStore == nil {
		return gl, nil
	}
	gl.available.Set(1)
	gl.guard = globallimit.NewGuard(g.opts.GlobalStore, g.clk, globallimit.GuardOptions{
		Budget:  g.opts.StoreBudget,
		Observe: gl.observe,
		OnChange: func(available bool, err error) {
			if available {
				gl.available.Set(1)
				g.log.Info("store of Global rate limits reached")
			} else {
				gl.available.Set(0)
				g.log.Warn("store of Global rate limits unavailable: Global limits follow their onStoreError", "error", err.Error())
			}
			if g.opts.OnStoreChange != nil {
				g.opts.OnStoreChange(available, err)
			}
		},
	})
	return gl, nil
}

func (gl *globalLimits) observe(c globallimit.Call) {
	switch {
	case c.SkippedWhileDown:
		gl.calls.WithLabelValues("skipped").Inc()
		return
	case c.Err != nil:
		gl.calls.WithLabelValues("error").Inc()
	case c.Granted == 0 && c.Want > 0:
		gl.calls.WithLabelValues("refused").Inc()
	default:
		gl.calls.WithLabelValues("ok").Inc()
	}
	gl.latency.Observe(c.Latency.Seconds())
	if c.Want > 0 {
		gl.batch.Observe(float64(c.Want))
	}
}

// store is what Global limiters take from: the guarded store, or one that always fails.
func (gl *globalLimits) store() globallimit.Store {
	if gl.guard == nil {
		return noStore{}
	}
	return gl.guard
}

// StoreAvailable reports whether Global limits reach the store, and why not.
func (g *Gateway) StoreAvailable() (bool, error) {
	if g.global.guard == nil {
		return false, errNoStore
	}
	if g.global.guard.Available() {
		return true, nil
	}
	return false, g.global.guard.LastError()
}

type noStore struct{}

func (noStore) Take(context.Context, string, globallimit.Rate, int64, int64) (globallimit.Grant, error) {
	return globallimit.Grant{}, errNoStore
}

// globalState is the replica's side of one Global limit: a limiter, or one per key value.
type globalState struct {
	limiter *globallimit.Limiter
	keyed   *globallimit.Keyed
}

func (gs *globalState) take(ctx context.Context, key []byte) globallimit.Decision {
	if gs.keyed != nil {
		return gs.keyed.Take(ctx, key, 1)
	}
	return gs.limiter.Take(ctx, 1)
}

func (gs *globalState) giveBack(key []byte) {
	if gs.keyed != nil {
		gs.keyed.Return(key, 1)
		return
	}
	gs.limiter.Return(1)
}

func (gs *globalState) sweep(ctx context.Context) {
	if gs.keyed != nil {
		_ = gs.keyed.Sweep(ctx)
		return
	}
	_ = gs.limiter.Sweep(ctx)
}

// newGlobalState builds the limiter of l. The bucket and its rate are the whole limit's; Replicas
// (the Split share's divisor) sizes the batches so that no replica hoards the bucket.
func (g *Gateway) newGlobalState(l snapshot.Limit) (*globalState, error) {
	rate, err := globallimit.RateOf(l.Requests, l.Period.D(), l.Global.Burst)
	if err != nil {
		return nil, err
	}
	o := globallimit.Options{Key: globallimit.BucketKey(l.Global.Bucket, nil), Rate: rate, Replicas: l.Replicas}
	if len(l.Key) > 0 {
		k, err := globallimit.NewKeyed(g.global.store(), g.clk, l.Global.Bucket, o, l.MaxKeys)
		return &globalState{keyed: k}, err
	}
	lim, err := globallimit.New(g.global.store(), g.clk, o)
	return &globalState{limiter: lim}, err
}

// sweepGlobal gives back the Global tokens held past their lapse, for every Global limit in force.
func (g *Gateway) sweepGlobal(ctx context.Context) {
	t := g.table.Load()
	if t == nil {
		return
	}
	for _, ls := range t.state.limitMap {
		if ls.global != nil {
			ls.global.sweep(ctx)
		}
	}
}

// pinger is a store that can be checked without taking tokens (globalstore.Store).
type pinger interface {
	Ping(ctx context.Context) error
}

// checkStore pings the store, so that its loss is noticed within a second even while no request asks
// it, and its return too. A failed ping takes the store down; a good one brings it back only when it
// was down, so that per-call budget failures (a slow store) are not undone by a ping.
func (g *Gateway) checkStore(ctx context.Context) {
	p, ok := g.opts.GlobalStore.(pinger)
	if !ok || g.global.guard == nil {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, max(4*g.opts.StoreBudget, 20*time.Millisecond))
	err := p.Ping(ctx)
	cancel()
	if err != nil || !g.global.guard.Available() {
		g.global.guard.Report(err)
	}
}

// runSweeper calls sweepGlobal every sweepEvery, and checks the store every other time, until ctx
// ends.
func (g *Gateway) runSweeper(ctx context.Context) {
	for i := 0; ; i++ {
		tm := g.clk.NewTimer(sweepEvery)
		select {
		case <-ctx.Done():
			tm.Stop()
			return
		case <-tm.C():
			g.sweepGlobal(ctx)
			if i%2 == 0 {
				g.checkStore(ctx)
			}
		}
	}
}

// globalHeaders are the rate-limit header values of the Global limit with the fewest tokens left,
// as this replica knows them.
type globalHeaders struct {
	limit     *limitEntry
	remaining int64
	reset     int64
}

// globalOutcome is the result of takeGlobal.
type globalOutcome struct {
	ok        bool
	refused   int           // index of the refusing limit
	after     time.Duration // its Retry-After
	storeDown bool          // refused by onStoreError Deny
	headers   globalHeaders
}

// takeGlobal takes one token from every Global limit in gl (keys: their key values), or from none.
// A limit whose store cannot be asked follows its onStoreError: Allow passes, Deny refuses, Local
// takes from the limit's Split share on this replica.
func (s *rateLimitStage) takeGlobal(x *exchange, gl []*limitEntry, keys [][]byte) globalOutcome {
	var (
		took [maxLimits]bool                  // a Global token was taken
		fb   [maxLimits]ratelimit.Reservation // a Local fallback token was taken
		out  = globalOutcome{ok: true}
	)
	// The store call is not the request's: a client that goes away must not count as a store failure.
	ctx := context.Background()
	for i, l := range gl {
		d := l.global.take(ctx, keys[i])
		if d.Err != nil {
			ok, after := s.storeError(x, l, keys[i], &fb[i])
			if !ok {
				out = globalOutcome{refused: i, after: after, storeDown: l.onStoreError == snapshot.OnStoreErrorDeny}
				giveBackGlobal(x.now, gl[:i], keys, took[:i], fb[:i])
				return out
			}
			if b := fb[i].Bucket(); b != nil && (out.headers.limit == nil || int64(b.Tokens(x.now)) < out.headers.remaining) {
				out.headers = globalHeaders{limit: l, remaining: int64(b.Tokens(x.now))}
			}
			continue
		}
		if !d.Allowed {
			giveBackGlobal(x.now, gl[:i], keys, took[:i], fb[:i])
			return globalOutcome{refused: i, after: d.RetryAfter}
		}
		took[i] = true
		if out.headers.limit == nil || d.Remaining < out.headers.remaining {
			out.headers = globalHeaders{limit: l, remaining: d.Remaining}
			if d.Remaining == 0 {
				out.headers.reset = 1
			}
		}
	}
	return out
}

// storeError applies l's onStoreError to a request the store could not decide.
func (s *rateLimitStage) storeError(x *exchange, l *limitEntry, key []byte, fb *ratelimit.Reservation) (bool, time.Duration) {
	s.storeDecisions.Inc()
	switch l.onStoreError {
	case snapshot.OnStoreErrorAllow:
		return true, 0
	case snapshot.OnStoreErrorDeny:
		return false, time.Second
	}
	ref := ratelimit.Ref{Bucket: l.bucket}
	if l.keyed != nil {
		ref = ratelimit.Ref{Keyed: l.keyed, Key: key}
	}
	var rs [1]ratelimit.Reservation
	out := ratelimit.TakeAll(x.now, []ratelimit.Ref{ref}, 1, rs[:])
	if !out.OK {
		return false, out.RetryAfter
	}
	*fb = rs[0]
	return true, 0
}

// giveBackGlobal returns what the Global limits before a refusal took: their tokens stay on this
// replica for the next request, and Local fallback reservations are cancelled.
func giveBackGlobal(now time.Time, gl []*limitEntry, keys [][]byte, took []bool, fb []ratelimit.Reservation) {
	for j, l := range gl {
		if took[j] {
			l.global.giveBack(keys[j])
		}
	}
	ratelimit.CancelAll(now, fb)
}
