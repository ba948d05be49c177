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

package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"regexp"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"resilience.dev/operator/internal/gateway"
)

// servers are the gateway's three listeners: proxied traffic, health probes and metrics.
func (c config) servers(gw *gateway.Gateway, draining *atomic.Bool) []*http.Server {
	traffic := gw.HTTPServer(c.listen)
	traffic.ReadHeaderTimeout = c.readHeaderTimeout
	return []*http.Server{
		traffic,
		{Addr: c.healthListen, Handler: healthMux(gw, draining), ReadHeaderTimeout: 5 * time.Second},
		{Addr: c.metricsListen, Handler: metricsMux(gw, c.pprof), ReadHeaderTimeout: 5 * time.Second},
	}
}

func healthMux(gw *gateway.Gateway, draining *atomic.Bool) *http.ServeMux {
	health := http.NewServeMux()
	health.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok\n")) })
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
	return health
}

func metricsMux(gw *gateway.Gateway, withPprof bool) *http.ServeMux {
	// The Go collector adds the live heap after the last GC, the figure that shows a leak whatever
	// GOGC lets the heap grow to between collections.
	gw.Registry().MustRegister(collectors.NewGoCollector(collectors.WithGoCollectorRuntimeMetrics(
		collectors.GoRuntimeMetricsRule{Matcher: regexp.MustCompile(`^/gc/heap/live:bytes$`)})),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	metrics := http.NewServeMux()
	metrics.Handle("/metrics", promhttp.HandlerFor(gw.Registry(), promhttp.HandlerOpts{}))
	if withPprof {
		metrics.HandleFunc("/debug/pprof/", pprof.Index)
		metrics.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
		metrics.HandleFunc("/debug/pprof/profile", pprof.Profile)
		metrics.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		metrics.HandleFunc("/debug/pprof/trace", pprof.Trace)
	}
	return metrics
}

// serve starts every server; a server that fails to serve reports on errs. The traffic server (the
// first) watches its clients' request framing (gateway.WatchFraming), so that a request with both
// Transfer-Encoding and Content-Length gets Connection: close.
func serve(servers []*http.Server, errs chan<- error) {
	for i, s := range servers {
		go func() {
			ln, err := net.Listen("tcp", s.Addr)
			if err == nil {
				if i == 0 {
					ln = gateway.WatchFraming(ln)
				}
				err = s.Serve(ln)
			}
			if err != nil && !errors.Is(err, http.ErrServerClosed) {
				errs <- fmt.Errorf("serve %s: %w", s.Addr, err)
			}
		}()
	}
}

// drain waits for a signal (ctx) or an error. On a signal it stops being ready first and keeps
// serving for delay: the endpoints controller removes this pod from the Service only after a failed
// probe, and requests routed here meanwhile must be answered. Then it shuts the servers and the
// capture listeners down together, and closes the WebSocket tunnels (which the servers forget).
func drain(ctx context.Context, delay time.Duration, log *slog.Logger, servers []*http.Server, shutdownCapture, closeTunnels func(context.Context), draining *atomic.Bool, errs <-chan error) error {
	var runErr error
	select {
	case <-ctx.Done():
		draining.Store(true)
		log.Info("draining", "delay", delay.String())
		select {
		case <-time.After(delay):
		case runErr = <-errs:
		}
	case runErr = <-errs:
	}
	shutdown, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	wg.Go(func() { shutdownCapture(shutdown) })
	wg.Go(func() { closeTunnels(shutdown) })
	for _, s := range servers {
		wg.Go(func() { _ = s.Shutdown(shutdown) })
	}
	wg.Wait()
	return runErr
}
