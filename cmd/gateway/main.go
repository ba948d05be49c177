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
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/pprof"
	"os"
	"os/signal"
	"regexp"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"resilience.dev/operator/internal/distribution"
	distclient "resilience.dev/operator/internal/distribution/client"
	"resilience.dev/operator/internal/gateway"
	"resilience.dev/operator/internal/snapshot"
)

type config struct {
	listen, healthListen, metricsListen string
	managerURL, caFile, tokenFile       string
	replica, clusterDomain              string
	handMade, localDev, passThrough     bool
	staleBytes                          int64
	maxRequestBodyBytes                 int64
	drainDelay                          time.Duration
	readHeaderTimeout                   time.Duration
	pprof                               bool
	upstreamClient                      string
}

func main() {
	host, _ := os.Hostname()
	var c config
	flag.StringVar(&c.listen, "listen", ":8080", "address for proxied traffic")
	flag.StringVar(&c.healthListen, "health-listen", ":8081", "address for /healthz and /readyz")
	flag.StringVar(&c.metricsListen, "metrics-listen", ":9090", "address for /metrics (Prometheus)")
	flag.StringVar(&c.managerURL, "manager-url", "https://resilience-manager.resilience-system.svc:9443", "the manager's snapshot stream")
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
	gcPercent := flag.Int("gc-percent", gateway.DefaultGCPercent, "garbage collector target percentage (as GOGC; fewer collections under load for a larger heap); an explicit GOGC wins unless this flag is given")
	memoryLimit := flag.String("memory-limit", "auto", "soft memory limit of the Go runtime (as GOMEMLIMIT): auto (90% of the cgroup memory limit, none without one), off, or bytes such as 512MiB; an explicit GOMEMLIMIT wins unless this flag is given")
	flag.Parse()

	log := slog.New(slog.NewJSONHandler(os.Stderr, nil))
	gcFlags := map[string]bool{}
	flag.Visit(func(f *flag.Flag) { gcFlags[f.Name] = true })
	memLimit, err := gateway.ParseMemoryLimit(*memoryLimit)
	if err != nil {
		log.Error("bad flag", "error", err.Error())
		os.Exit(2)
	}
	log.Info("garbage collector", "settings", gateway.ApplyGC(gateway.GCSettings{Percent: *gcPercent, MemoryLimit: memLimit}, gcFlags["gc-percent"], gcFlags["memory-limit"]))
	if err := run(c, log); err != nil {
		log.Error("gateway stopped", "error", err.Error())
		os.Exit(1)
	}
}

func run(c config, log *slog.Logger) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	caPEM, err := os.ReadFile(c.caFile)
	if err != nil {
		return fmt.Errorf("read the manager's CA: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		return fmt.Errorf("%s holds no PEM certificate", c.caFile)
	}

	client := &distclient.Client{
		URL: c.managerURL, TLS: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12},
		Token: distclient.TokenFile(c.tokenFile), Replica: c.replica,
		Log: logr.FromSlogHandler(log.Handler()).WithName("stream"),
	}
	gw, err := gateway.New(gateway.Options{
		ClusterDomain: c.clusterDomain, AllowHandMadeEndpoints: c.handMade, LocalDev: c.localDev,
		AllowPassThrough: c.passThrough, StaleCacheBytes: c.staleBytes, Logger: log, MaxRequestBodyBytes: c.maxRequestBodyBytes,
		UpstreamClient:  c.upstreamClient,
		OnBreakerChange: func(e gateway.BreakerEvent) { client.Send(toChange(e)) },
	})
	if err != nil {
		return err
	}
	defer gw.Close()
	// The client decodes and validates each snapshot (whole, or a delta against the one before) and
	// hands it over with each Service's encoding, so the gateway rebuilds only the Services that changed.
	// The gateway logs "snapshot applied", and the client "received snapshot" with decode and apply times.
	client.Apply = func(_ uint64, snap *snapshot.Encoded) error { return gw.ApplyEncoded(snap) }
	client.Resync = func() []distribution.BreakerChange {
		states := gw.BreakerStates()
		out := make([]distribution.BreakerChange, len(states))
		for i, s := range states {
			out[i] = toChange(s)
		}
		return out
	}

	health := http.NewServeMux()
	health.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok\n")) })
	var draining atomic.Bool
	health.HandleFunc("/readyz", func(w http.ResponseWriter, _ *http.Request) {
		if draining.Load() {
			http.Error(w, "shutting down", http.StatusServiceUnavailable)
			return
		}
		// Ready once it holds a configuration; it stays ready when the manager is unreachable.
		if !gw.Ready() {
			http.Error(w, "no snapshot from the manager yet", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintf(w, "ok: snapshot version %d\n", gw.Version())
	})
	// The Go collector adds the live heap after the last GC, the figure that shows a leak whatever
	// GOGC lets the heap grow to between collections.
	gw.Registry().MustRegister(collectors.NewGoCollector(collectors.WithGoCollectorRuntimeMetrics(
		collectors.GoRuntimeMetricsRule{Matcher: regexp.MustCompile(`^/gc/heap/live:bytes$`)})),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	metrics := http.NewServeMux()
	metrics.Handle("/metrics", promhttp.HandlerFor(gw.Registry(), promhttp.HandlerOpts{}))
	if c.pprof {
		metrics.HandleFunc("/debug/pprof/", pprof.Index)
		metrics.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
		metrics.HandleFunc("/debug/pprof/profile", pprof.Profile)
		metrics.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		metrics.HandleFunc("/debug/pprof/trace", pprof.Trace)
	}

	traffic := gw.HTTPServer(c.listen)
	traffic.ReadHeaderTimeout = c.readHeaderTimeout
	servers := []*http.Server{
		traffic,
		{Addr: c.healthListen, Handler: health, ReadHeaderTimeout: 5 * time.Second},
		{Addr: c.metricsListen, Handler: metrics, ReadHeaderTimeout: 5 * time.Second},
	}
	errs := make(chan error, len(servers)+1)
	for _, s := range servers {
		go func() {
			if err := s.ListenAndServe(); err != nil && !errors.Is(err, http.ErrServerClosed) {
				errs <- fmt.Errorf("serve %s: %w", s.Addr, err)
			}
		}()
	}
	go gw.Run(ctx)
	go func() {
		// The client returns when ctx ends; only an earlier return is an error worth stopping for.
		if err := client.Run(ctx); err != nil {
			errs <- err
		}
	}()
	log.Info("gateway started", "listen", c.listen, "manager", c.managerURL, "replica", c.replica, "localDev", c.localDev)

	var runErr error
	select {
	case <-ctx.Done():
		// Stop being ready first and keep serving: the endpoints controller removes this pod from
		// the Service only after a failed probe, and requests routed here meanwhile must be answered.
		draining.Store(true)
		log.Info("draining", "delay", c.drainDelay.String())
		select {
		case <-time.After(c.drainDelay):
		case runErr = <-errs:
		}
	case runErr = <-errs:
	}
	shutdown, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, s := range servers {
		_ = s.Shutdown(shutdown)
	}
	return runErr
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
