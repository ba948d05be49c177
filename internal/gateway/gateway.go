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

// Package gateway is the data plane of the resilience operator: an HTTP proxy that routes each request
// to a managed Service (by the URL of an absolute-form request, else the Host header), runs it through
// the chain of patterns the Service port's policies ask for, balances it over the port's ready
// endpoints and forwards it.
//
// The chain has the contract's fixed order, assembled once per snapshot (chain.go) from small stages
// that each hold the next one, one file per stage:
//
//	ratelimit.go -> timeout.go -> retry.go (hedge.go) -> bulkhead.go -> breaker.go (stalecache.go)
//	  -> trytimeout.go -> upstream.go (balancer.go, transport.go; h1*.go is the lean HTTP/1.1 client)
//
// A request enters at route.go (ServeHTTP), which finds the Service port; request.go and body.go
// build the outbound request, exchange.go carries it through the chain and try.go accounts for each
// try; response.go writes the answer and errors.go the gateway's own failures.
//
// A new snapshot (Apply, apply.go) builds a whole new routing table (table.go) and swaps it in
// atomically; requests in flight finish on the table they started with. Pattern state (token
// buckets, breakers, bulkheads, retry budgets, stale responses) lives in a registry keyed by the
// StateKey the compiler gives each policy part, so a snapshot that leaves a part's parameters alone
// keeps its state; a rollout of the backend (new endpoints) neither refills buckets nor closes an
// open Service breaker.
//
// The hot path takes no lock shared by all requests: the table is an atomic pointer, and the
// patterns are lock-free on their fast paths.
package gateway

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/trace"

	"resilience.dev/operator/internal/patterns/backoff"
	"resilience.dev/operator/internal/patterns/breaker"
	"resilience.dev/operator/internal/patterns/clock"
	"resilience.dev/operator/internal/patterns/globallimit"
	"resilience.dev/operator/internal/snapshot"
)

// Defaults of Options.
const (
	DefaultClusterDomain         = "cluster.local"
	DefaultStaleCacheBytes       = 64 << 20
	DefaultDialTimeout           = 5 * time.Second
	DefaultMaxIdleConnsPerHost   = 256
	DefaultDelayQueueCapacity    = 1024
	DefaultMaxRequestHeaderBytes = 1 << 20

	// MaxReplayBody is the largest request body the gateway buffers so that it can send it again
	// (retries, hedges); a larger body is streamed once and its request is never retried.
	MaxReplayBody = 64 << 10
)

// Options configure a Gateway. The zero value is usable: every field has a default.
type Options struct {
	// ClusterDomain is the domain of in-cluster Service names (svc.ns.svc.<ClusterDomain>).
	ClusterDomain string
	// AllowHandMadeEndpoints follows endpoints of EndpointSlices not made by the EndpointSlice
	// controller (IPv4, IPv6 and FQDN); otherwise they are ignored.
	AllowHandMadeEndpoints bool
	// LocalDev is the local-development mode: it implies AllowHandMadeEndpoints, and FQDN endpoints
	// named "localhost" or under ".localhost" dial the loopback address (RFC 6761). Those are the
	// only dials that may reach loopback.
	LocalDev bool
	// AllowPassThrough forwards requests for in-cluster Services without a policy (svc.ns.svc.<domain>,
	// resolved by DNS, with the dial guard) instead of refusing them with 403.
	AllowPassThrough bool
	// StaleCacheBytes bounds the memory of the stale responses kept for serveStale.
	StaleCacheBytes int64
	// DelayQueueCapacity is how many requests may wait at once in the Delay queue of one RateLimit.
	DelayQueueCapacity int
	// Clock is the source of time of every pattern (clock.Real{} by default).
	Clock clock.Clock
	// Rand is the random source of backoff jitter; it must be safe for concurrent use. Nil uses
	// math/rand/v2's global generator.
	Rand backoff.Source
	// Logger receives structured logs; nil discards them.
	Logger *slog.Logger
	// Registerer receives the gateway's metrics; nil registers them in a private registry that
	// Registry returns.
	Registerer prometheus.Registerer
	// OnBreakerChange, when set, is called on every transition of a circuit breaker in force (for
	// the distribution client to forward to the manager). It runs on the goroutine of the request or
	// tick that caused the transition, never with a lock of the gateway held, and must return
	// quickly (hand the event to a buffered channel).
	OnBreakerChange func(BreakerEvent)
	// Transport, when set, replaces the built-in transport to the endpoints (tests and benchmarks
	// use an in-memory one). The dial guard belongs to the built-in transport only.
	Transport http.RoundTripper
	// DialTimeout bounds connecting to an endpoint (default 5s).
	DialTimeout time.Duration
	// MaxIdleConnsPerHost is the number of idle keep-alive connections kept per endpoint (default 256).
	MaxIdleConnsPerHost int
	// UpstreamClient chooses the built-in transport's client: UpstreamClientFast ("fast", the
	// default) sends plain HTTP/1.1 requests with no body or a buffered one with the gateway's own
	// lean client and the rest with net/http's Transport; UpstreamClientNetHTTP ("net/http") sends
	// everything with net/http's Transport. Both dial through the dial guard.
	UpstreamClient string
	// MaxRequestHeaderBytes is the http.Server's MaxHeaderBytes in HTTPServer (default 1 MiB).
	MaxRequestHeaderBytes int
	// MaxRequestBodyBytes is the largest request body forwarded: a request whose Content-Length
	// exceeds it gets 413 at once and nothing goes upstream; a body without Content-Length is cut
	// when it passes it (413 if no response has been sent yet, the upstream request aborted, the
	// try neither retried nor counted by the breaker). 0, the default, means no limit, as in Envoy,
	// Istio and Linkerd: the gateway streams bodies (it buffers at most MaxReplayBody for retries),
	// so a large body costs it no memory, and the right bound (uploads, bulk APIs) is the
	// application's to choose. Negative values are refused.
	MaxRequestBodyBytes int64
	// RequestBodyReadTimeout bounds each read of a client's request body (default 60s; negative:
	// none): a body that stalls longer ends the client's connection. It bounds a stall, not the
	// upload: a long body that keeps coming is read whole.
	RequestBodyReadTimeout time.Duration
	// GlobalStore is the shared store of Global rate limits (--store-url); nil: Global limits run as
	// their onStoreError says and the store is reported unavailable.
	GlobalStore globallimit.Store
	// StoreBudget bounds each store call (default 5ms): a slower store counts as unavailable.
	StoreBudget time.Duration
	// OnStoreChange, when set, is called when the store becomes unavailable or available again.
	OnStoreChange func(available bool, err error)
	// Tracer, when set, traces every request: a span per request (continuing the caller's W3C
	// traceparent), a child per try, events for retries, hedges and the gateway's own refusals.
	Tracer trace.Tracer
	// AccessLog, when set, receives one line per request (cmd/gateway: JSON on stdout).
	AccessLog *slog.Logger
	// CaptureHost is the address capture ports listen on ("" for every interface; local mode: the
	// replica's loopback address).
	CaptureHost string
	// CaptureRange bounds the capture ports opened (snapshot.DefaultCaptureRange when zero).
	CaptureRange snapshot.PortRange
}

// BreakerEvent is a transition of one circuit breaker, or (from BreakerStates) the current state of
// one that is not closed.
type BreakerEvent struct {
	Policy    snapshot.PolicyRef
	Namespace string
	Service   string
	Port      int32
	// Endpoint is the endpoint address ("10.0.0.7:8080") with scope Endpoint, "" with scope Service.
	Endpoint string
	// From and To are "Closed", "Open" or "HalfOpen" (From is "" in BreakerStates when unknown).
	From, To string
	Cause    string
	At       time.Time
}

// Gateway is the data plane: an http.Handler enforcing the last snapshot applied.
type Gateway struct {
	opts     Options
	clk      clock.Clock
	domain   string
	log      *slog.Logger
	registry *prometheus.Registry // nil when Options.Registerer was given
	m        *metrics
	rt       http.RoundTripper
	ownRT    upstreamTransport // the built-in transport, nil when Options.Transport was given
	rtH2C    http.RoundTripper // to the endpoints of h2c and grpc ports (h2c.go)
	ownH2C   *http.Transport   // the built-in one, nil when Options.Transport was given
	stale    *staleShards
	maxStale int // the largest body stored for serveStale

	// Metrics of requests with no managed Service (refused, or passed through): their labels are
	// empty, as the host is the client's choice.
	unrouted       *codeCounters
	passLatency    prometheus.Observer
	passNoEndpoint prometheus.Counter

	global  *globalLimits
	capture *captureListeners
	tunnels tunnels // the open WebSocket tunnels (wstunnel.go)

	table   atomic.Pointer[table]
	version atomic.Uint64
	ready   atomic.Bool

	applyMu sync.Mutex // serialises Apply
}

// New returns a Gateway that refuses every request until the first Apply.
func New(o Options) (*Gateway, error) {
	if o.ClusterDomain == "" {
		o.ClusterDomain = DefaultClusterDomain
	}
	domain := strings.Trim(strings.ToLower(o.ClusterDomain), ".")
	if !isDomain(domain) {
		return nil, fmt.Errorf("gateway: cluster domain %q is not a DNS name", o.ClusterDomain)
	}
	if o.LocalDev {
		o.AllowHandMadeEndpoints = true
	}
	if o.StaleCacheBytes == 0 {
		o.StaleCacheBytes = DefaultStaleCacheBytes
	}
	if o.StaleCacheBytes < 0 {
		return nil, fmt.Errorf("gateway: stale cache bytes %d is negative", o.StaleCacheBytes)
	}
	if o.DelayQueueCapacity <= 0 {
		o.DelayQueueCapacity = DefaultDelayQueueCapacity
	}
	if o.Clock == nil {
		o.Clock = clock.Real{}
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.DialTimeout <= 0 {
		o.DialTimeout = DefaultDialTimeout
	}
	if o.MaxIdleConnsPerHost <= 0 {
		o.MaxIdleConnsPerHost = DefaultMaxIdleConnsPerHost
	}
	if o.MaxRequestHeaderBytes <= 0 {
		o.MaxRequestHeaderBytes = DefaultMaxRequestHeaderBytes
	}
	if o.StoreBudget <= 0 {
		o.StoreBudget = DefaultStoreBudget
	}
	if o.MaxRequestBodyBytes < 0 {
		return nil, fmt.Errorf("gateway: max request body bytes %d is negative", o.MaxRequestBodyBytes)
	}
	switch o.UpstreamClient {
	case "":
		o.UpstreamClient = UpstreamClientFast
	case UpstreamClientFast, UpstreamClientNetHTTP:
	default:
		return nil, fmt.Errorf("gateway: upstream client %q: want %q or %q", o.UpstreamClient, UpstreamClientFast, UpstreamClientNetHTTP)
	}
	g := &Gateway{opts: o, clk: o.Clock, domain: domain, log: o.Logger}
	reg := o.Registerer
	if reg == nil {
		g.registry = prometheus.NewRegistry()
		reg = g.registry
	}
	if err := g.register(reg); err != nil {
		return nil, err
	}
	m := g.m
	g.unrouted = &codeCounters{vec: m.requests}
	// Made at once (not lazily): every metric family is there from the start.
	g.passLatency = m.latency.HistogramVec.WithLabelValues("", "")
	g.passNoEndpoint = m.rejections.CounterVec.WithLabelValues("", "", "", "", reasonNoEndpoint)
	stale, err := newStaleShards(o.StaleCacheBytes)
	if err != nil {
		return nil, fmt.Errorf("gateway: %w", err)
	}
	g.stale = stale
	g.maxStale = int(min(stale.shardBytes/2, 1<<20))
	if o.Transport != nil {
		g.rt, g.rtH2C = o.Transport, o.Transport
	} else {
		d := newDialer(o)
		g.ownRT, g.ownH2C = newTransport(o, d), newH2CTransport(o, d)
		g.rt, g.rtH2C = g.ownRT, g.ownH2C
	}
	return g, nil
}

// register makes the metrics, and the parts that come with metrics of their own (Global limits,
// capture listeners, WebSocket tunnels), registering them all with reg.
func (g *Gateway) register(reg prometheus.Registerer) error {
	m, err := newMetrics(reg)
	if err != nil {
		return fmt.Errorf("gateway: register metrics: %w", err)
	}
	g.m = m
	if g.global, err = newGlobalLimits(g, reg); err != nil {
		return fmt.Errorf("gateway: register store metrics: %w", err)
	}
	if g.capture, err = newCaptureListeners(g, reg); err != nil {
		return fmt.Errorf("gateway: register capture metrics: %w", err)
	}
	if err := reg.Register(g.tunnels.gauge()); err != nil {
		return fmt.Errorf("gateway: register tunnel metrics: %w", err)
	}
	return nil
}

// Registry returns the private registry holding the gateway's metrics, or nil when they were
// registered with Options.Registerer.
func (g *Gateway) Registry() *prometheus.Registry { return g.registry }

// Version returns the version of the last snapshot applied (0 before the first).
func (g *Gateway) Version() uint64 { return g.version.Load() }

// Ready reports whether a snapshot has been applied.
func (g *Gateway) Ready() bool { return g.ready.Load() }

// Close releases the idle connections of the built-in transports.
func (g *Gateway) Close() {
	if g.ownRT != nil {
		g.ownRT.CloseIdleConnections()
		g.ownH2C.CloseIdleConnections()
	}
}

// HTTPServer returns an http.Server for the traffic listener serving g, with the header limit of
// the options and timeouts that bound slow clients without cutting long responses. Serve it on a
// listener of WatchFraming (srv.Serve(WatchFraming(l)), not srv.ListenAndServe), so that a request
// with both Transfer-Encoding and Content-Length gets its connection closed (framing.go).
//
// It speaks HTTP/1.1 and HTTP/2 over cleartext with prior knowledge (h2c, as gRPC clients use) on
// the same port, with net/http's own HTTP/2 server; its resources are bounded per connection
// (concurrent streams, frame size, and the header list by MaxRequestHeaderBytes, which net/http
// advertises as SETTINGS_MAX_HEADER_LIST_SIZE).
func (g *Gateway) HTTPServer(addr string) *http.Server {
	var protos http.Protocols
	protos.SetHTTP1(true)
	protos.SetUnencryptedHTTP2(true)
	return &http.Server{
		Addr:              addr,
		Handler:           g,
		ConnContext:       framingContext,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    g.opts.MaxRequestHeaderBytes,
		ErrorLog:          slog.NewLogLogger(g.log.Handler(), slog.LevelWarn),
		Protocols:         &protos,
		HTTP2: &http.HTTP2Config{
			MaxConcurrentStreams:      h2MaxConcurrentStreams,
			MaxReadFrameSize:          h2MaxReadFrameSize,
			MaxDecoderHeaderTableSize: 64 << 10,
			MaxEncoderHeaderTableSize: 64 << 10,
			SendPingTimeout:           h2SendPingTimeout,
			PingTimeout:               15 * time.Second,
		},
	}
}

// Bounds of the listeners' HTTP/2 connections.
const (
	h2MaxConcurrentStreams = 250              // streams a client may have open at once on one connection
	h2MaxReadFrameSize     = 1 << 20          // the largest frame read
	h2SendPingTimeout      = 60 * time.Second // a silent connection is pinged, and closed without an answer
)

// Tick makes every breaker in force look at the time (breaker.State), so that an open breaker whose
// open duration has passed becomes half-open, and reports it, without waiting for traffic. Run
// calls it every second; callers with their own loop may call it instead.
func (g *Gateway) Tick(now time.Time) {
	t := g.table.Load()
	if t == nil {
		return
	}
	for _, b := range t.state.breakerList {
		b.b.State(now)
	}
}

// Run calls Tick every second, and gives back lapsed Global tokens every 250ms, until ctx ends.
func (g *Gateway) Run(ctx context.Context) {
	go g.runSweeper(ctx)
	for {
		tm := g.clk.NewTimer(time.Second)
		select {
		case <-ctx.Done():
			tm.Stop()
			return
		case now := <-tm.C():
			g.Tick(now)
			g.capture.retry()
		}
	}
}

// BreakerStates returns the breakers in force that are not closed, each as the event that brought
// it to its current state (for a resync after the manager connection comes back).
func (g *Gateway) BreakerStates() []BreakerEvent {
	t := g.table.Load()
	if t == nil {
		return nil
	}
	now := g.clk.Now()
	var out []BreakerEvent
	for _, b := range t.state.breakerList {
		st := b.b.State(now)
		if st == breaker.Closed {
			continue
		}
		if ev := b.last.Load(); ev != nil && ev.To == st.String() {
			out = append(out, *ev)
			continue
		}
		ev := b.event(breaker.Transition{To: st, At: now})
		ev.From = ""
		out = append(out, ev)
	}
	return out
}
