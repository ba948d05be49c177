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

// Command demo-backend is a small HTTP backend that misbehaves on request, for `make demo` and the
// benchmarks: it answers OK, fails a given share of requests, answers slowly, or sends 503 with
// Retry-After.
//
// Every path accepts these query parameters; a few paths only change their defaults:
//
//	d=3s            wait this long before answering (a Go duration, at most 5m; the wait ends early
//	                when the client goes away)
//	rate=0.5        the share of requests that fail, 0..1
//	code=503        the status of a failure (default 500)
//	retry-after=2   add Retry-After (seconds) to failures
//
//	/                 200 "ok <name>"; the flags -delay, -fail-rate and -fail-code apply to it and to
//	                  every path that does not override them
//	/fail             rate=1 unless given: GET /fail?rate=0.5 fails half the requests with 500
//	/slow             d=1s unless given:   GET /slow?d=3s answers after three seconds
//	/unavailable      503 with Retry-After: 1 unless given otherwise
//	/healthz          200, never delayed nor failed, not counted
//	/stats            {"requests":N,"failures":M} since start, not counted
//
// Responses carry X-Backend: <name>. Run it with -listen 127.0.0.1:0 to get a free port: the first
// line on standard output is "listening on <address>". SIGINT or SIGTERM stops it.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"sync/atomic"
	"syscall"
	"time"
)

// maxDelay bounds the d parameter, so a typo cannot hold a connection for hours.
const maxDelay = 5 * time.Minute

// flags are the backend's settings; their zero value answers every request with 200.
type flags struct {
	name     string
	delay    time.Duration // default wait (flag -delay)
	failRate float64       // default share of failures (flag -fail-rate)
	failCode int           // default status of a failure (flag -fail-code); 0 means 500
}

// backend is the handler.
type backend struct {
	flags
	random func() float64 // [0,1); nil: math/rand/v2

	requests, failures atomic.Int64
}

func (b *backend) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("X-Backend", b.name)
	switch r.URL.Path {
	case "/healthz":
		_, _ = fmt.Fprintln(w, "ok")
		return
	case "/stats":
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]int64{"requests": b.requests.Load(), "failures": b.failures.Load()})
		return
	}
	b.requests.Add(1)

	delay, rate, code, retryAfter := b.delay, b.failRate, b.failCode, ""
	if code == 0 {
		code = http.StatusInternalServerError
	}
	switch r.URL.Path {
	case "/fail":
		rate = 1
	case "/slow":
		delay = time.Second
	case "/unavailable":
		rate, code, retryAfter = 1, http.StatusServiceUnavailable, "1"
	}
	q := r.URL.Query()
	var err error
	if v := q.Get("d"); v != "" {
		if delay, err = time.ParseDuration(v); err != nil || delay < 0 || delay > maxDelay {
			http.Error(w, "d: want a duration between 0 and "+maxDelay.String(), http.StatusBadRequest)
			return
		}
	}
	if v := q.Get("rate"); v != "" {
		if rate, err = strconv.ParseFloat(v, 64); err != nil || rate < 0 || rate > 1 {
			http.Error(w, "rate: want a number between 0 and 1", http.StatusBadRequest)
			return
		}
	}
	if v := q.Get("code"); v != "" {
		if code, err = strconv.Atoi(v); err != nil || code < 200 || code > 599 {
			http.Error(w, "code: want an HTTP status between 200 and 599", http.StatusBadRequest)
			return
		}
	}
	if v := q.Get("retry-after"); v != "" {
		if n, err := strconv.Atoi(v); err != nil || n < 0 {
			http.Error(w, "retry-after: want whole seconds", http.StatusBadRequest)
			return
		}
		retryAfter = v
	}

	if delay > 0 {
		t := time.NewTimer(delay)
		select {
		case <-t.C:
		case <-r.Context().Done(): // the client (or the gateway's timeout) gave up
			t.Stop()
			return
		}
	}
	if rate > 0 && b.rand() < rate {
		b.failures.Add(1)
		if retryAfter != "" {
			w.Header().Set("Retry-After", retryAfter)
		}
		http.Error(w, fmt.Sprintf("%s: failing on purpose (%d)", b.name, code), code)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, _ = fmt.Fprintln(w, "ok", b.name)
}

func (b *backend) rand() float64 {
	if b.random != nil {
		return b.random()
	}
	return rand.Float64()
}

func main() {
	b := &backend{}
	listen := flag.String("listen", "127.0.0.1:8080", "address to listen on (port 0: a free one, printed on start)")
	flag.StringVar(&b.name, "name", "demo-backend", "name shown in responses and in the X-Backend header")
	flag.DurationVar(&b.delay, "delay", 0, "wait this long before every answer (the d parameter overrides it)")
	flag.Float64Var(&b.failRate, "fail-rate", 0, "share of requests that fail, 0..1 (the rate parameter overrides it)")
	flag.IntVar(&b.failCode, "fail-code", http.StatusInternalServerError, "status of a failure (the code parameter overrides it)")
	flag.Parse()
	if err := run(*listen, b); err != nil {
		fmt.Fprintln(os.Stderr, "demo-backend:", err)
		os.Exit(1)
	}
}

func run(addr string, b *backend) error {
	if b.failRate < 0 || b.failRate > 1 {
		return fmt.Errorf("-fail-rate %v is outside 0..1", b.failRate)
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	fmt.Printf("listening on %s\n", l.Addr())
	srv := &http.Server{Handler: b, ReadHeaderTimeout: 10 * time.Second}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(l) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	// Finish what is in flight for a moment, then cut slow requests.
	sctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	return srv.Close()
}
