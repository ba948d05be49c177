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
	// By configuration: the load generator's clients, and what the rounds measured.
	closedClients, openClients []*loadgen.Client
	figs                       []Figures
	cpuUsed                    []time.Duration
	cpuReqs                    []int64
	opens                      [][]*loadgen.Result
}

func newMeasurement(o options, configs []config, addrs map[string]string) *measurement {
	n := len(configs)
	m := &measurement{o: o, configs: configs, addrs: addrs, closedClients: make([]*loadgen.Client, n),
		openClients: make([]*loadgen.Client, n), figs: make([]Figures, n), cpuUsed: make([]time.Duration, n),
		cpuReqs: make([]int64, n), opens: make([][]*loadgen.Result, n)}
	for i := range configs {
		m.closedClients[i] = loadgen.NewClient(o.conc)
		m.openClients[i] = loadgen.NewClient(o.openConns)
	}
	return m
}

// run warms every configuration up, then runs the rounds; each round runs every configuration once,
// the order rotating, so that drift on the machine hits them alike.
func (m *measurement) run(ctx context.Context) error {
	for i, c := range m.configs {
		if m.o.warmup > 0 {
			if _, err := loadgen.Closed(ctx, m.closedClients[i], target(c), m.o.conc, m.o.warmup); err != nil {
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
	cpu0, cpuOK := procCPU(c.pid)
	res, err := loadgen.Closed(ctx, m.closedClients[i], target(c), m.o.conc, m.o.closedDur)
	if cpu1, ok := procCPU(c.pid); ok && cpuOK && err == nil {
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
	open, err := loadgen.Open(ctx, m.openClients[i], target(c), m.o.openConns, m.o.rate, m.o.openDur)
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
// the ratios to the backend directly (the first configuration) and the bare proxy (the second).
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
	for i := range figs {
		figs[i].VsDirect = figs[i].RPS / figs[0].RPS
		figs[i].VsProxy = figs[i].RPS / figs[1].RPS
		figs[i].P99OverDirUs = figs[i].P99us - figs[0].P99us
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
