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
// Command gateway is the enforcement gateway: an HTTP proxy that applies the resilience policies the
// manager streams to it (rate limits, circuit breakers, retries, timeouts, hedging) to live traffic.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"sync/atomic"
	"syscall"
	"time"

	"resilience.dev/operator/cmd/gateway/gctune"
	"resilience.dev/operator/internal/distribution"
	"resilience.dev/operator/internal/gateway"
	"resilience.dev/operator/internal/globalstore"
	"resilience.dev/operator/internal/patterns/globallimit"
	"resilience.dev/operator/internal/snapshot"
)

type config struct {
	listen, healthListen, metricsListen string
	managerURL, caFile, tokenFile       string
	namespace                           string
	replica, clusterDomain              string
	handMade, localDev, passThrough     bool
	staleBytes                          int64
	maxRequestBodyBytes                 int64
	drainDelay                          time.Duration
	readHeaderTimeout                   time.Duration
	pprof                               bool
	upstreamClient                      string
	store                               globalstore.Options
	storeBudget                         time.Duration
	accessLog                           bool
	captureRange, captureAddress        string
	bodyReadTimeout                     time.Duration
}

func main() {
	host, _ := os.Hostname()
	var c config
	flag.StringVar(&c.listen, "listen", ":8080", "address for proxied traffic")
	flag.StringVar(&c.healthListen, "health-listen", ":8081", "address for /healthz and /readyz")
	flag.StringVar(&c.metricsListen, "metrics-listen", ":9090", "address for /metrics (Prometheus)")
	flag.StringVar(&c.namespace, "namespace", os.Getenv("POD_NAMESPACE"), "the operator's namespace, where the manager's Service is (unset: $POD_NAMESPACE, which the manifests set from the pod)")
	flag.StringVar(&c.managerURL, "manager-url", "", "the manager's snapshot stream (unset: "+defaultManagerURL("<namespace>")+")")
	flag.StringVar(&c.caFile, "manager-ca-file", "/etc/resilience/ca/ca.crt", "CA certificate that signs the manager's stream certificate")
	flag.StringVar(&c.tokenFile, "token-file", "/var/run/secrets/resilience/token", "projected ServiceAccount token (audience "+distribution.Audience+")")
	flag.StringVar(&c.replica, "replica", envOr("POD_NAME", host), "this replica's name, as status messages show it")
	flag.StringVar(&c.clusterDomain, "cluster-domain", "cluster.local", "the cluster's DNS domain")
	flag.BoolVar(&c.handMade, "allow-hand-made-endpoints", false, "follow EndpointSlices not made by the EndpointSlice controller")
	flag.BoolVar(&c.localDev, "local-dev", false, "local development: hand-made EndpointSlices, and FQDN endpoints under .localhost dial loopback")
	flag.BoolVar(&c.passThrough, "allow-pass-through", false, "forward requests to in-cluster Services without a policy instead of refusing them")
	flag.Int64Var(&c.staleBytes, "stale-cache-bytes", 64<<20, "memory bound of the stale responses kept for serveStale")
	flag.Int64Var(&c.maxRequestBodyBytes, "max-request-body-bytes", 0, "largest request body forwarded, in bytes: a larger one gets 413 and is not sent upstream (0: no limit, as Envoy, Istio and Linkerd; bodies are streamed, so size costs the gateway no memory)")
	flag.DurationVar(&c.drainDelay, "drain-delay", 0, "on SIGTERM, how long to keep serving while /readyz fails, so load balancers that poll it stop sending first (in Kubernetes the preStop hook does this)")
	flag.BoolVar(&c.pprof, "pprof", false, "serve Go's profiler under /debug/pprof/ on the metrics address")
	flag.StringVar(&c.upstreamClient, "upstream-client", gateway.UpstreamClientFast, "client for requests to the endpoints: fast (the gateway's own HTTP/1.1 client for requests with no body or a buffered one, net/http's for the rest) or net/http (net/http's for all)")
	flag.DurationVar(&c.readHeaderTimeout, "read-header-timeout", 10*time.Second, "a client must send its request headers within this time, or its connection is closed (slow clients, slowloris)")
	flag.StringVar(&c.store.URL, "store-url", "", "the store of Global rate limits: redis://[user@]host:port[/db], or rediss:// for TLS (Redis 7 or Valkey 8, standalone); unset: Global limits follow their onStoreError")
	flag.StringVar(&c.store.PasswordFile, "store-password-file", "", "file holding the store's password (a mounted Secret)")
	flag.StringVar(&c.store.CAFile, "store-ca-file", "", "PEM CAs that sign the store's certificate (rediss:// only)")
	flag.DurationVar(&c.storeBudget, "store-budget", gateway.DefaultStoreBudget, "longest wait for one store call: a slower store counts as unavailable and Global limits follow their onStoreError")
	flag.DurationVar(&c.bodyReadTimeout, "request-body-read-timeout", gateway.DefaultRequestBodyReadTimeout, "a client sending a request body must send some of it within this time after the last part, or its connection is closed (a stall timeout, so long uploads that keep sending are never cut); negative: no timeout")
	flag.StringVar(&c.captureRange, "capture-range", snapshot.DefaultCaptureRange.String(), "ports the gateway may listen on for captured traffic (front Services), first-last: the manager's --capture-range")
	flag.StringVar(&c.captureAddress, "capture-address", "", "address capture ports listen on (unset: the host of --listen, so every interface with :8080)")
	gcPercent := flag.Int("gc-percent", gctune.DefaultPercent, "garbage collector target percentage (as GOGC; fewer collections under load for a larger heap); an explicit GOGC wins unless this flag is given")
	memoryLimit := flag.String("memory-limit", "auto", "soft memory limit of the Go runtime (as GOMEMLIMIT): auto (90% of the cgroup memory limit, none without one), off, or bytes such as 512MiB; an explicit GOMEMLIMIT wins unless this flag is given")
	showVersion := flag.Bool("version", false, "print the version and exit")
	flag.BoolVar(&c.accessLog, "access-log", false, "write one JSON line per request to standard output (off by default); traces are configured by the standard OTEL_* variables (off unless an OTLP endpoint or OTEL_TRACES_EXPORTER=otlp is set)")
	flag.Parse()
	if *showVersion {
		printVersion(os.Stdout)
		return
	}

	log := slog.New(slog.NewJSONHandler(os.Stderr, nil))
	gcFlags := map[string]bool{}
	flag.Visit(func(f *flag.Flag) { gcFlags[f.Name] = true })
	memLimit, err := gctune.ParseMemoryLimit(*memoryLimit)
	if err != nil {
		log.Error("bad flag", "error", err.Error())
		os.Exit(2)
	}
	log.Info("garbage collector", "settings", gctune.Apply(gctune.Settings{Percent: *gcPercent, MemoryLimit: memLimit}, gcFlags["gc-percent"], gcFlags["memory-limit"]))
	if err := run(c, log); err != nil {
		log.Error("gateway stopped", "error", err.Error())
		os.Exit(1)
	}
}

func run(c config, log *slog.Logger) error {
	if err := resolveManagerURL(&c); err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	client, err := newStreamClient(c, log)
	if err != nil {
		return err
	}
	var store globallimit.Store
	if c.store.URL != "" {
		c.store.ClientName = "resilience-gateway-" + c.replica
		st, err := globalstore.Open(c.store)
		if err != nil {
			return err
		}
		defer st.Close()
		store = st
	}
	tracer, stopTracing, err := setupTracing(ctx, c.replica)
	if err != nil {
		return err
	}
	defer func() { _ = stopTracing(context.WithoutCancel(ctx)) }()
	var accessLog *slog.Logger
	if c.accessLog {
		accessLog = slog.New(slog.NewJSONHandler(os.Stdout, nil))
	}
	captureRange, err := snapshot.ParsePortRange(c.captureRange)
	if err != nil {
		return fmt.Errorf("--capture-range: %w", err)
	}
	captureHost := c.captureAddress
	if captureHost == "" {
		captureHost, _, _ = net.SplitHostPort(c.listen)
	}
	gw, err := gateway.New(gateway.Options{
		CaptureHost: captureHost, CaptureRange: captureRange, RequestBodyReadTimeout: c.bodyReadTimeout,
		Tracer: tracer, AccessLog: accessLog,
		GlobalStore: store, StoreBudget: c.storeBudget, OnStoreChange: func(bool, error) { client.StoreChanged() },
		ClusterDomain: c.clusterDomain, AllowHandMadeEndpoints: c.handMade, LocalDev: c.localDev,
		AllowPassThrough: c.passThrough, StaleCacheBytes: c.staleBytes, Logger: log, MaxRequestBodyBytes: c.maxRequestBodyBytes,
		UpstreamClient:  c.upstreamClient,
		OnBreakerChange: func(e gateway.BreakerEvent) { client.Send(toChange(e)) },
	})
	if err != nil {
		return err
	}
	defer gw.Close()
	connect(client, gw)

	var draining atomic.Bool
	servers := c.servers(gw, &draining)
	errs := make(chan error, len(servers)+1)
	serve(servers, errs)
	go gw.Run(ctx)
	go func() {
		// The client returns when ctx ends; only an earlier return is an error worth stopping for.
		if err := client.Run(ctx); err != nil {
			errs <- err
		}
	}()
	log.Info("gateway started", "version", version, "tracing", tracer != nil, "accessLog", c.accessLog, "listen", c.listen, "manager", c.managerURL, "replica", c.replica, "localDev", c.localDev,
		"store", globalstore.Redact(c.store.URL))

	return drain(ctx, c.drainDelay, log, servers, gw.ShutdownCapture, gw.CloseTunnels, &draining, errs)
}

func toChange(e gateway.BreakerEvent) distribution.BreakerChange {
	return distribution.BreakerChange{Kind: e.Policy.Kind, Namespace: e.Policy.Namespace, Name: e.Policy.Name, UID: e.Policy.UID,
		Service: e.Service, Port: e.Port, Endpoint: e.Endpoint, From: e.From, To: e.To, Cause: e.Cause, At: e.At}
}

func envOr(key, dflt string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return dflt
}
