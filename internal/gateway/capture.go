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
	"fmt"
	"net"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"resilience.dev/operator/internal/snapshot"
)

// captureDrain bounds how long a closed capture listener's in-flight requests may take to finish.
const captureDrain = 30 * time.Second

// captureListeners are the gateway's capture ports (contract, section 5): one HTTP server per capture
// port of the snapshot in force, opened and closed as snapshots come and go, without a restart.
// Everything arriving on one is for its front Service port: the Host header is not read.
type captureListeners struct {
	g    *Gateway
	host string
	r    snapshot.PortRange

	mu      sync.Mutex
	want    []int32 // the ports of the table in force
	open    map[int32]*http.Server
	stopped bool

	listening prometheus.Gauge
	failures  prometheus.Counter
	requests  *prometheus.CounterVec
}

func newCaptureListeners(g *Gateway, reg prometheus.Registerer) (*captureListeners, error) {
	c := &captureListeners{g: g, host: g.opts.CaptureHost, r: g.opts.CaptureRange, open: map[int32]*http.Server{},
		listening: prometheus.NewGauge(prometheus.GaugeOpts{Name: "resilience_gateway_capture_listeners",
			Help: "Capture ports the gateway listens on."}),
		failures: prometheus.NewCounter(prometheus.CounterOpts{Name: "resilience_gateway_capture_listen_errors_total",
			Help: "Capture ports of the snapshot that could not be opened (in use, outside --capture-range); retried every second."}),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "resilience_gateway_capture_requests_total",
			Help: "Requests received on each capture port."}, []string{"capture_port", "target_namespace", "target_service"}),
	}
	if c.r == (snapshot.PortRange{}) {
		c.r = snapshot.DefaultCaptureRange
	}
	for _, m := range []prometheus.Collector{c.listening, c.failures, c.requests} {
		if err := reg.Register(m); err != nil {
			return nil, err
		}
	}
	return c, nil
}

// set makes the table's capture ports the wanted ones and opens and closes listeners to match.
func (c *captureListeners) set(t *table) {
	ports := make([]int32, 0, len(t.capture))
	for p := range t.capture {
		ports = append(ports, p)
	}
	slices.Sort(ports)
	c.mu.Lock()
	c.want = ports
	c.mu.Unlock()
	c.sync()
}

// sync opens the wanted ports not yet open and closes, after draining, those no longer wanted. A port
// that cannot be opened is tried again at the next sync (Gateway.Run calls it every second).
func (c *captureListeners) sync() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.stopped {
		return
	}
	for p, srv := range c.open {
		if !slices.Contains(c.want, p) {
			delete(c.open, p)
			go c.close(p, srv)
		}
	}
	for _, p := range c.want {
		if c.open[p] != nil {
			continue
		}
		srv, err := c.listen(p)
		if err != nil {
			c.failures.Inc()
			c.g.log.Error("capture port not opened; retrying every second", "port", p, "error", err.Error())
			continue
		}
		c.open[p] = srv
		c.g.log.Info("capture port opened", "port", p, "address", srv.Addr)
	}
	c.listening.Set(float64(len(c.open)))
}

// retry syncs when a wanted port is not open (it could not be opened before).
func (c *captureListeners) retry() {
	c.mu.Lock()
	missing := len(c.open) != len(c.want)
	c.mu.Unlock()
	if missing {
		c.sync()
	}
}

func (c *captureListeners) listen(p int32) (*http.Server, error) {
	if !c.r.Contains(p) {
		return nil, fmt.Errorf("port %d is outside the capture range %s (--capture-range must match the manager's)", p, c.r)
	}
	addr := net.JoinHostPort(c.host, strconv.Itoa(int(p)))
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	srv := c.g.HTTPServer(addr)
	srv.Handler = &captureHandler{g: c.g, port: p, requests: c.requests}
	go func() {
		if err := srv.Serve(WatchFraming(ln)); err != nil && !errors.Is(err, http.ErrServerClosed) {
			c.g.log.Error("capture port stopped serving", "port", p, "error", err.Error())
		}
	}()
	return srv, nil
}

// close stops a listener that is no longer wanted, letting its requests finish.
func (c *captureListeners) close(p int32, srv *http.Server) {
	ctx, cancel := context.WithTimeout(context.Background(), captureDrain)
	defer cancel()
	_ = srv.Shutdown(ctx)
	c.g.log.Info("capture port closed", "port", p)
}

// shutdown closes every listener, letting in-flight requests finish until ctx ends; no port opens
// after it.
func (c *captureListeners) shutdown(ctx context.Context) {
	c.mu.Lock()
	c.stopped = true
	open := c.open
	c.open = map[int32]*http.Server{}
	c.listening.Set(0)
	c.mu.Unlock()
	var wg sync.WaitGroup
	for _, srv := range open {
		wg.Go(func() { _ = srv.Shutdown(ctx) })
	}
	wg.Wait()
}

// captureHandler serves one capture port: every request is for the front port that the table in
// force maps the port to.
type captureHandler struct {
	g        *Gateway
	port     int32
	requests *prometheus.CounterVec
}

func (h *captureHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodConnect {
		h.g.refuse(w, r, http.StatusForbidden, "CONNECT is refused: the gateway forwards plain HTTP requests to managed Services only")
		return
	}
	t := h.g.table.Load()
	var pr *portRoute
	if t != nil {
		pr = t.capture[h.port]
	}
	if pr == nil { // closing: the snapshot in force no longer has this port
		h.g.refuse(w, r, http.StatusServiceUnavailable, fmt.Sprintf("capture port %d is not in force on this gateway", h.port))
		return
	}
	h.requests.WithLabelValues(strconv.Itoa(int(h.port)), pr.svc.ns, pr.svc.name).Inc()
	h.g.serve(w, r, pr)
}

// ShutdownCapture closes the capture listeners (on shutdown, after the drain delay, with the other
// listeners), letting in-flight requests finish until ctx ends.
func (g *Gateway) ShutdownCapture(ctx context.Context) { g.capture.shutdown(ctx) }

// CapturePorts lists the capture ports open now, sorted (tests and debugging).
func (g *Gateway) CapturePorts() []int32 {
	g.capture.mu.Lock()
	defer g.capture.mu.Unlock()
	out := make([]int32, 0, len(g.capture.open))
	for p := range g.capture.open {
		out = append(out, p)
	}
	slices.Sort(out)
	return out
}
