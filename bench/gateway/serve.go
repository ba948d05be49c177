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
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"resilience.dev/operator/cmd/gateway/gctune"
	"resilience.dev/operator/internal/gateway"
	"resilience.dev/operator/internal/globalstore"
	"resilience.dev/operator/internal/snapshot"
)

// runServe is a proxy process: the gateway (with the GC settings cmd/gateway applies by default)
// or the bare proxy (with Go's), on a listener of its own, and net/http/pprof with so.pprof.
func runServe(so serveOptions) error {
	var srv *http.Server
	switch so.which {
	case "gateway":
		lim, err := gctune.ParseMemoryLimit(so.memoryLimit)
		if err != nil {
			return err
		}
		fmt.Fprintln(os.Stderr, "bench gateway process:", gctune.Apply(gctune.Settings{Percent: so.gcPercent, MemoryLimit: lim}, true, true))
		g, err := newBenchGateway(so.backendAddr, so.grpcBackendAddr, so.upstreamClient, so.storeURL)
		if err != nil {
			return err
		}
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		go g.Run(ctx)
		srv = g.HTTPServer("")
		ml, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return err
		}
		go func() { _ = http.Serve(ml, promhttp.HandlerFor(g.Registry(), promhttp.HandlerOpts{})) }()
		fmt.Printf("serving metrics %s\n", ml.Addr())
	case "grpc-backend":
		return runGRPCBackend()
	case "proxy":
		srv = &http.Server{Handler: bareProxy(so.backendAddr), ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 120 * time.Second}
	default:
		return fmt.Errorf("-serve %q: want gateway, proxy or grpc-backend", so.which)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	errs := make(chan error, 2)
	go func() { errs <- srv.Serve(l) }()
	fmt.Printf("serving %s %s\n", so.which, l.Addr())
	if so.pprof {
		ql, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return err
		}
		go func() { errs <- http.Serve(ql, pprofMux()) }()
		fmt.Printf("serving pprof %s\n", ql.Addr())
	}
	fmt.Println("serving done")
	// Stop when the parent goes away (our stdin is /dev/null; the parent kills us on exit).
	err = <-errs
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// newBenchGateway is the gateway of the benchmark: the bench snapshot applied, in local-development
// mode (the endpoint is bench.localhost).
func newBenchGateway(backendAddr, grpcBackendAddr, upstreamClient, storeURL string) (*gateway.Gateway, error) {
	port, err := portOf("-backend", backendAddr)
	if err != nil {
		return nil, err
	}
	var grpcPort int32
	if grpcBackendAddr != "" {
		if grpcPort, err = portOf("-grpc-backend", grpcBackendAddr); err != nil {
			return nil, err
		}
	}
	snap, err := benchSnapshot(port, grpcPort)
	if err != nil {
		return nil, err
	}
	o := gateway.Options{LocalDev: true, UpstreamClient: upstreamClient}
	if storeURL != "" {
		st, err := globalstore.Open(globalstore.Options{URL: storeURL, ClientName: "bench-gateway"})
		if err != nil {
			return nil, err
		}
		o.GlobalStore = st
	}
	g, err := gateway.New(o)
	if err != nil {
		return nil, err
	}
	e, err := snapshot.Encode(snap)
	if err != nil {
		return nil, err
	}
	if err := g.Apply(e); err != nil {
		return nil, err
	}
	return g, nil
}

// portOf is the port of a loopback host:port flag.
func portOf(flagName, addr string) (int32, error) {
	host, portStr, err := net.SplitHostPort(addr)
	if err != nil || host == "" {
		return 0, fmt.Errorf("%s %q: want host:port", flagName, addr)
	}
	var port int32
	if _, err := fmt.Sscanf(portStr, "%d", &port); err != nil {
		return 0, fmt.Errorf("%s %q: %w", flagName, addr, err)
	}
	return port, nil
}

// bareProxy is httputil.ReverseProxy to the backend, as a user would set one up.
func bareProxy(backendAddr string) http.Handler {
	backendURL := &url.URL{Scheme: "http", Host: backendAddr}
	return &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(backendURL)
			pr.SetXForwarded()
		},
		// Tuned as the gateway's own transport is: keep-alive connections to the backend, no
		// compression, no proxy from the environment, 32 KiB buffers.
		Transport: &http.Transport{
			Proxy:                 nil,
			DialContext:           (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
			MaxIdleConns:          0,
			MaxIdleConnsPerHost:   gateway.DefaultMaxIdleConnsPerHost,
			IdleConnTimeout:       90 * time.Second,
			ExpectContinueTimeout: time.Second,
			DisableCompression:    true,
			WriteBufferSize:       32 << 10,
			ReadBufferSize:        32 << 10,
		},
		ErrorLog: log.New(io.Discard, "", 0),
	}
}
