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
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"resilience.dev/operator/bench/loadgen"
	"resilience.dev/operator/internal/redisserver"
)

// run is the parent process: it starts the processes, checks every configuration, measures them in
// alternating rounds, then prints and writes the report.
func run(o options) error {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var err error
	if redisserver.Installed() {
		st, err := redisserver.Start(ctx, "127.0.0.1:0", io.Discard)
		if err != nil {
			return err
		}
		defer st.Stop()
		o.storeURL = st.URL()
	} else {
		fmt.Println("bench-gateway: redis-server is not installed; the Global-limit configurations are left out")
	}
	if o.workDir, err = os.MkdirTemp("", "bench-gateway-"); err != nil {
		return err
	}
	defer os.RemoveAll(o.workDir)
	procs, err := startProcesses(ctx, o)
	if procs != nil {
		defer func() { cancel(); procs.wait() }()
	}
	if err != nil {
		return err
	}
	if o.profileDir != "" {
		if err := os.MkdirAll(o.profileDir, 0o755); err != nil {
			return err
		}
		stop, err := profileSelf(filepath.Join(o.profileDir, "loadgen"))
		if err != nil {
			return err
		}
		defer stop()
	}
	configs := procs.configs(o.compareBin != "")
	for _, c := range configs {
		if err := check(c); err != nil {
			return err
		}
	}
	rep := newReport(o)
	fmt.Printf("bench-gateway: %s\n", rep.Mode)
	fmt.Printf("%d CPUs, %s, GOMAXPROCS default; %d rounds; closed loop %d connections x %s; open loop %.0f req/s over %d connections x %s\n",
		rep.CPUs, rep.GoVersion, o.rounds, o.conc, o.closedDur, o.rate, o.openConns, o.openDur)
	m, err := newMeasurement(o, configs, procs.addrs)
	if err != nil {
		return err
	}
	defer m.close()
	if err := m.run(ctx); err != nil {
		return err
	}
	rep.Configs = m.figures()
	rep.Goals = goals(rep.Configs, o.rate)
	rep.AnchorVersions, rep.Anchors = procs.versions, anchorRatios(rep.Configs)
	if o.storeURL != "" {
		if rep.Store, err = storeFigures(procs.addrs["gateway-metrics"]); err != nil {
			return err
		}
		rep.Goals = append(rep.Goals, globalGoals(rep.Configs, rep.Store, o.rate)...)
	}
	if o.compareBin != "" {
		rep.Compare = compareBuilds(o.compareBin, rep.Configs)
	}
	printReport(rep, configs)
	if o.jsonPath != "" {
		return loadgen.WriteJSON(o.jsonPath, rep)
	}
	return nil
}

func newReport(o options) *Report {
	return &Report{Mode: "gateway in-process (gateway.New + Apply of a compiled snapshot, no manager, cmd/gateway's GC defaults: " + strings.Join(o.gatewayArgs, " ") + ") in one process, a bare httputil.ReverseProxy (Go's defaults) in another; backend = cmd/demo-backend process; load generator = this process (bench/loadgen, raw HTTP/1.1)",
		Started: time.Now().UTC(), GoVersion: runtime.Version(), CPUs: runtime.NumCPU(), Rounds: o.rounds, Concurrency: o.conc,
		ClosedSecs: o.closedDur.Seconds(), OpenRate: o.rate, OpenConns: o.openConns, OpenSecs: o.openDur.Seconds()}
}
