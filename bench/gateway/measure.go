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
	"fmt"
	"path/filepath"
	"slices"
	"time"

	"resilience.dev/operator/bench/loadgen"
)

// measurement runs every configuration in alternating rounds and collects what each round measured.
type measurement struct {
	o       options
	configs []config
	addrs   map[string]string // the processes' listeners, for their pprof endpoints
	// By configuration: the load generator's loads, and what the rounds measured.
	loads   []load
	figs    []Figures
	cpuUsed []time.Duration
	cpuReqs []int64
	opens   [][]*loadgen.Result
}

// load drives one configuration: its closed loop and its open loop.
type load interface {
	closed(ctx context.Context, conc int, d time.Duration) (*loadgen.Result, error)
	open(ctx context.Context, conns int, rate float64, d time.Duration) (*loadgen.Result, error)
	close()
}

// httpLoad is an HTTP/1.1 configuration's load: loadgen's raw client, one pool per loop.
type httpLoad struct {
	t                    loadgen.Target
	closedPool, openPool *loadgen.Client
}

func (h *httpLoad) closed(ctx context.Context, conc int, d time.Duration) (*loadgen.Result, error) {
	return loadgen.Closed(ctx, h.closedPool, h.t, conc, d)
}

func (h *httpLoad) open(ctx context.Context, conns int, rate float64, d time.Duration) (*loadgen.Result, error) {
	return loadgen.Open(ctx, h.openPool, h.t, conns, rate, d)
}

func (h *httpLoad) close() {}

// grpcLoads is a gRPC configuration's load: grpc-go clients, the same connections for both loops.
type grpcLoads struct{ g *grpcLoad }

func (l grpcLoads) closed(ctx context.Context, conc int, d time.Duration) (*loadgen.Result, error) {
	return loadgen.ClosedCalls(ctx, conc, d, l.g.call)
}

func (l grpcLoads) open(ctx context.Context, conns int, rate float64, d time.Duration) (*loadgen.Result, error) {
	return loadgen.OpenCalls(ctx, conns, rate, d, l.g.call)
}

func (l grpcLoads) close() { l.g.close() }

func newMeasurement(o options, configs []config, addrs map[string]string) (*measurement, error) {
	n := len(configs)
	m := &measurement{o: o, configs: configs, addrs: addrs, loads: make([]load, n), figs: make([]Figures, n),
		cpuUsed: make([]time.Duration, n), cpuReqs: make([]int64, n), opens: make([][]*loadgen.Result, n)}
	for i, c := range configs {
		if !c.isGRPC() {
			m.loads[i] = &httpLoad{t: target(c), closedPool: loadgen.NewClient(o.conc), openPool: loadgen.NewClient(o.openConns)}
			continue
		}
		g, err := dialGRPC(c.grpcAddr, c.host, o.grpcConns)
		if err != nil {
			m.close()
			return nil, fmt.Errorf("%s: %w", c.Name, err)
		}
		m.loads[i] = grpcLoads{g}
	}
	return m, nil
}

// close closes the gRPC connections.
func (m *measurement) close() {
	for _, l := range m.loads {
		if l != nil {
			l.close()
		}
	}
}

// run warms every configuration up, then runs the rounds; each round runs every configuration once,
// the order rotating, so that drift on the machine hits them alike.
func (m *measurement) run(ctx context.Context) error {
	for i, c := range m.configs {
		if m.o.warmup > 0 {
			if _, err := m.loads[i].closed(ctx, m.o.conc, m.o.warmup); err != nil {
				return fmt.Errorf("%s warm-up: %w", c.Name, err)
			}
		}
	}
	for r := range m.o.rounds {
		for j := range m.configs {
			i := (j + r) % len(m.configs) // rotate the order each round
			closed, err := m.closedLoop(ctx, i, r == m.o.rounds-1)
			if err != nil {
				return err
			}
			open, err := m.openLoop(ctx, i)
			if err != nil {
				return err
			}
			fmt.Printf("  round %d %-*s closed %9.0f req/s   open p99 %8s\n", r+1, m.nameWidth(), m.configs[i].Name, closed.RPS(), open.Quantile(0.99).Round(time.Microsecond))
		}
	}
	return nil
}

// nameWidth is the width of the longest configuration name, at least 19 as before -compare-bin.
func (m *measurement) nameWidth() int {
	w := 19
	for _, c := range m.configs {
		w = max(w, len(c.Name))
	}
	return w
}

// closedLoop measures configuration i's throughput and its serving process's CPU time; in the last
// round, with -profile, it also profiles the proxy process.
func (m *measurement) closedLoop(ctx context.Context, i int, last bool) (*loadgen.Result, error) {
	c := m.configs[i]
	var prof func() error
	if pp := m.addrs[c.proc+"-pprof"]; pp != "" && last {
		prof = profileProxy(ctx, pp, filepath.Join(m.o.profileDir, c.Name), m.o.closedDur)
	}
	cpu0, cpuOK := treeCPU(c.pid)
	res, err := m.loads[i].closed(ctx, m.o.conc, m.o.closedDur)
	if cpu1, ok := treeCPU(c.pid); ok && cpuOK && err == nil {
		m.cpuUsed[i] += cpu1 - cpu0
		m.cpuReqs[i] += res.Requests
	}
	if prof != nil {
		if perr := prof(); perr != nil {
			return nil, fmt.Errorf("%s profile: %w", c.Name, perr)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("%s closed loop: %w", c.Name, err)
	}
	f := &m.figs[i]
	f.RPSRounds = append(f.RPSRounds, res.RPS())
	f.Errors += res.Errors
	f.Non2xx += res.Non2xx
	return res, nil
}

// openLoop measures configuration i's latency at the fixed rate.
func (m *measurement) openLoop(ctx context.Context, i int) (*loadgen.Result, error) {
	c := m.configs[i]
	open, err := m.loads[i].open(ctx, m.o.openConns, m.o.rate, m.o.openDur)
	if err != nil {
		return nil, fmt.Errorf("%s open loop: %w", c.Name, err)
	}
	m.opens[i] = append(m.opens[i], open)
	f := &m.figs[i]
	f.P99RoundsUs = append(f.P99RoundsUs, us(open.Quantile(0.99)))
	f.Errors += open.Errors
	f.Non2xx += open.Non2xx
	return open, nil
}

// figures sums the rounds up: the mean req/s, CPU per request, the pooled open-loop latencies, and
// the ratios to the backend directly, the bare proxy (HTTP/1.1 only) and nginx, each of the same
// protocol.
func (m *measurement) figures() []Figures {
	figs := m.figs
	for i, c := range m.configs {
		f := &figs[i]
		f.Name = c.Name
		if m.cpuReqs[i] > 0 {
			f.CPUPerReqUs = us(m.cpuUsed[i]) / float64(m.cpuReqs[i])
		}
		for _, v := range f.RPSRounds {
			f.RPS += v / float64(len(f.RPSRounds))
		}
		pooled(f, m.opens[i])
	}
	for i, c := range m.configs {
		direct, proxy, nginx := byName(figs, "direct"), byName(figs, "bare-proxy"), byName(figs, "nginx")
		if c.isGRPC() {
			direct, proxy, nginx = byName(figs, "grpc-direct"), Figures{}, byName(figs, "grpc-nginx")
		}
		f := &figs[i]
		f.VsDirect = ratio(f.RPS, direct.RPS)
		f.VsProxy = ratio(f.RPS, proxy.RPS)
		f.VsNginx = ratio(f.RPS, nginx.RPS)
		f.P99OverDirUs = f.P99us - direct.P99us
	}
	return figs
}

// pooled sets f's open-loop figures from every round's latencies together.
func pooled(f *Figures, opens []*loadgen.Result) {
	all := &loadgen.Result{}
	var elapsed time.Duration
	for _, o := range opens {
		all.Latencies = append(all.Latencies, o.Latencies...)
		all.SendLag = append(all.SendLag, o.SendLag...)
		all.Requests += o.Requests
		elapsed += o.Elapsed
	}
	slices.Sort(all.Latencies)
	slices.Sort(all.SendLag)
	f.OpenRequests = all.Requests
	f.OpenRPS = float64(all.Requests) / elapsed.Seconds()
	f.P50us, f.P99us, f.P999us = us(all.Quantile(0.50)), us(all.Quantile(0.99)), us(all.Quantile(0.999))
	f.SendLagP99us = us(all.LagQuantile(0.99))
}

func us(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }
