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

// Command benchgateway measures the data path of the gateway (`make bench-gateway`, issue #6).
//
// Four processes share the machine: the project's backend (cmd/demo-backend); the gateway process
// (this binary re-run with -serve gateway), which holds the gateway IN-PROCESS (gateway.New, Apply of
// a snapshot compiled by compile.Compile from synthetic objects, HTTPServer on 127.0.0.1:0) with the
// garbage-collector settings cmd/gateway applies by default (-gc-percent, -memory-limit); the bare
// proxy process (-serve proxy), an httputil.ReverseProxy with a tuned Transport and Go's default
// runtime settings; and this process as the load generator (bench/loadgen, a raw HTTP/1.1 client that
// costs far less CPU than net/http's). No manager runs: the gateway gets its snapshot from Apply
// instead of the stream. -profile writes CPU and allocation profiles of the proxy processes (last
// round, closed loop) and of the load generator.
//
// Four configurations are measured in alternating rounds (each round runs all four, the order
// rotating), so drift on the machine hits them alike: the backend directly, the bare proxy, the
// gateway with a managed Service and no policy, and the gateway with a RateLimit that never rejects,
// a CircuitBreaker that never opens and a RetryPolicy that never retries on the same Service. Each
// round runs a closed loop (throughput at fixed concurrency) and an open loop (latency at a fixed
// rate, measured from each request's scheduled send time).
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"

	"resilience.dev/operator/api/v1alpha1"
	"resilience.dev/operator/bench/loadgen"
	"resilience.dev/operator/cmd/gateway/gctune"
	"resilience.dev/operator/internal/compile"
	"resilience.dev/operator/internal/gateway"
	"resilience.dev/operator/internal/snapshot"
)

const (
	ns        = "bench"
	plainHost = "plain." + ns // managed Service, no policy
	fullHost  = "full." + ns  // RateLimit + CircuitBreaker + RetryPolicy
	userID    = "user-42"
)

type config struct {
	Name string `json:"name"`
	pid  int    // the process serving it (the backend for direct), for its CPU time
	desc string
	url  string
	host string
}

// Figures of one configuration over all rounds.
type Figures struct {
	Name string `json:"name"`
	// Closed loop: requests/s of each round and their mean.
	RPSRounds []float64 `json:"rpsRounds"`
	RPS       float64   `json:"rps"`
	// Open loop, every round's latencies together, in microseconds.
	OpenRequests int64   `json:"openRequests"`
	OpenRPS      float64 `json:"openRps"`
	P50us        float64 `json:"p50us"`
	P99us        float64 `json:"p99us"`
	P999us       float64 `json:"p999us"`
	SendLagP99us float64 `json:"sendLagP99us"`
	// P99RoundsUs is each round's own open-loop p99 (the pooled P99us mixes rounds, so one round
	// hit by other work on the machine sets it).
	P99RoundsUs []float64 `json:"p99RoundsUs"`
	Errors      int64     `json:"errors"`
	Non2xx      int64     `json:"non2xx"`
	// CPUPerReqUs is the CPU time (user+system) the serving process (the proxy process, or the
	// backend for direct) spent per request in the closed loops: unlike req/s, it does not depend on
	// how much of the shared machine the process got.
	CPUPerReqUs float64 `json:"cpuPerRequestUs"`
	// Ratios of the closed-loop req/s, and the p99 difference.
	VsDirect     float64 `json:"rpsVsDirect"`
	VsProxy      float64 `json:"rpsVsProxy"`
	P99OverDirUs float64 `json:"p99OverDirectUs"`
}

// Report is the JSON file.
type Report struct {
	Mode        string    `json:"mode"`
	Started     time.Time `json:"started"`
	GoVersion   string    `json:"goVersion"`
	CPUs        int       `json:"cpus"`
	Rounds      int       `json:"rounds"`
	Concurrency int       `json:"concurrency"`
	ClosedSecs  float64   `json:"closedSeconds"`
	OpenRate    float64   `json:"openRate"`
	OpenConns   int       `json:"openConnections"`
	OpenSecs    float64   `json:"openSeconds"`
	Configs     []Figures `json:"configs"`
	Goals       []Goal    `json:"goals"`
}

// Goal is one goal of the issue, reported and not asserted.
type Goal = loadgen.Goal

func main() {
	serve := flag.String("serve", "", "internal: run a proxy process (gateway or proxy) for the backend at -backend")
	backendAddr := flag.String("backend", "", "internal: the backend address for -serve")
	bin := flag.String("bin", "bin", "directory holding demo-backend")
	rounds := flag.Int("rounds", 3, "alternating rounds (each runs every configuration once)")
	closedDur := flag.Duration("duration", 3*time.Second, "closed-loop run per configuration per round")
	conc := flag.Int("c", 32, "connections of the closed loop")
	rate := flag.Float64("rate", 1600, "requests per second of the open loop")
	openDur := flag.Duration("open-duration", 3*time.Second, "open-loop run per configuration per round")
	openConns := flag.Int("open-c", 32, "connections of the open loop")
	warmup := flag.Duration("warmup", time.Second, "closed-loop warm-up of each configuration before the rounds")
	jsonPath := flag.String("json", "bin/bench-gateway.json", "write the results here as JSON")
	profile := flag.String("profile", "", "write CPU and allocation profiles here: of the proxy process during the last round's closed loop of each gateway configuration, and of the load generator over the whole run")
	pprofOn := flag.Bool("pprof", false, "internal: serve net/http/pprof in the proxy process (with -serve)")
	gcPercent := flag.Int("gc-percent", gctune.DefaultPercent, "the gateway process's -gc-percent, as cmd/gateway's (0: Go's default)")
	memoryLimit := flag.String("memory-limit", "auto", "the gateway process's -memory-limit, as cmd/gateway's")
	upstreamClient := flag.String("upstream-client", "", "the gateway's upstream client, as cmd/gateway's --upstream-client (fast or net/http; empty: the gateway's default)")
	flag.Parse()
	log.SetFlags(0)
	if *serve != "" {
		if err := runServe(*serve, *backendAddr, *pprofOn, *gcPercent, *memoryLimit, *upstreamClient); err != nil {
			log.Fatal(err)
		}
		return
	}
	gcArgs := []string{"-gc-percent", strconv.Itoa(*gcPercent), "-memory-limit", *memoryLimit}
	if *upstreamClient != "" {
		gcArgs = append(gcArgs, "-upstream-client", *upstreamClient)
	}
	if err := run(*bin, *rounds, *closedDur, *conc, *rate, *openDur, *openConns, *warmup, *jsonPath, *profile, gcArgs); err != nil {
		log.Fatal(err)
	}
}

// startChild starts a process and returns the first line of its standard output that starts with
// prefix, after the prefix.
func startChild(ctx context.Context, prefix, name string, args ...string) (*exec.Cmd, []string, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, nil, err
	}
	lines := make(chan []string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		var got []string
		for sc.Scan() {
			if prefix != "listening on " && sc.Text() == "serving done" {
				lines <- got
				break
			}
			if rest, ok := strings.CutPrefix(sc.Text(), prefix); ok {
				got = append(got, rest)
				if prefix != "listening on " {
					continue
				}
				lines <- got
				break
			}
		}
		_, _ = io.Copy(io.Discard, out)
	}()
	select {
	case l := <-lines:
		return cmd, l, nil
	case <-time.After(30 * time.Second):
		_ = cmd.Process.Kill()
		return nil, nil, fmt.Errorf("%s printed no %q line within 30s", name, prefix)
	}
}

func run(bin string, rounds int, closedDur time.Duration, conc int, rate float64, openDur time.Duration, openConns int,
	warmup time.Duration, jsonPath, profileDir string, gcArgs []string) error {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	backend, l, err := startChild(ctx, "listening on ", filepath.Join(bin, "demo-backend"), "-listen", "127.0.0.1:0", "-name", "bench")
	if err != nil {
		return fmt.Errorf("start the backend: %w", err)
	}
	defer func() { cancel(); _ = backend.Wait() }()
	backendAddr := l[0]
	self, err := os.Executable()
	if err != nil {
		return err
	}
	var extra []string
	if profileDir != "" {
		extra = append(extra, "-pprof")
		if err := os.MkdirAll(profileDir, 0o755); err != nil {
			return err
		}
		stop, err := profileSelf(filepath.Join(profileDir, "loadgen"))
		if err != nil {
			return err
		}
		defer stop()
	}
	// The gateway and the bare proxy each run in a process of their own, so that each has the
	// runtime settings it ships with: the gateway cmd/gateway's GC defaults (gcArgs), the bare
	// proxy Go's.
	addrs := map[string]string{}
	pids := map[string]int{"direct": backend.Process.Pid}
	for _, which := range []string{"gateway", "proxy"} {
		args := append([]string{"-serve", which, "-backend", backendAddr}, extra...)
		if which == "gateway" {
			args = append(args, gcArgs...)
		}
		child, l, err := startChild(ctx, "serving ", self, args...)
		if err != nil {
			return fmt.Errorf("start the %s process: %w", which, err)
		}
		defer func() { cancel(); _ = child.Wait() }()
		pids[which] = child.Process.Pid
		for _, s := range l {
			k, v, _ := strings.Cut(s, " ")
			addrs[which+"-"+k] = v
		}
	}
	configs := []config{
		{Name: "direct", desc: "the backend directly", url: "http://" + backendAddr + "/"},
		{Name: "bare-proxy", desc: "httputil.ReverseProxy, tuned Transport", url: "http://" + addrs["proxy-proxy"] + "/"},
		{Name: "gateway-no-policy", desc: "gateway, managed Service, no policy", url: "http://" + addrs["gateway-gateway"] + "/", host: plainHost},
		{Name: "gateway-3-policies", desc: "gateway, RateLimit+CircuitBreaker+RetryPolicy", url: "http://" + addrs["gateway-gateway"] + "/", host: fullHost},
	}
	// Each configuration answers 200 before anything is measured, and the gateway's policies are in force.
	for i := range configs {
		configs[i].pid = pids[process(configs[i].Name)]
	}
	for _, c := range configs {
		if err := check(c); err != nil {
			return err
		}
	}
	rep := &Report{Mode: "gateway in-process (gateway.New + Apply of a compiled snapshot, no manager, cmd/gateway's GC defaults: " + strings.Join(gcArgs, " ") + ") in one process, a bare httputil.ReverseProxy (Go's defaults) in another; backend = cmd/demo-backend process; load generator = this process (bench/loadgen, raw HTTP/1.1)",
		Started: time.Now().UTC(), GoVersion: runtime.Version(), CPUs: runtime.NumCPU(), Rounds: rounds, Concurrency: conc,
		ClosedSecs: closedDur.Seconds(), OpenRate: rate, OpenConns: openConns, OpenSecs: openDur.Seconds()}
	fmt.Printf("bench-gateway: %s\n", rep.Mode)
	fmt.Printf("%d CPUs, %s, GOMAXPROCS default; %d rounds; closed loop %d connections x %s; open loop %.0f req/s over %d connections x %s\n",
		rep.CPUs, rep.GoVersion, rounds, conc, closedDur, rate, openConns, openDur)

	clients := make([]*loadgen.Client, len(configs))
	openClients := make([]*loadgen.Client, len(configs))
	for i := range configs {
		clients[i] = loadgen.NewClient(conc)
		openClients[i] = loadgen.NewClient(openConns)
	}
	for i, c := range configs {
		if warmup > 0 {
			if _, err := loadgen.Closed(ctx, clients[i], target(c), conc, warmup); err != nil {
				return fmt.Errorf("%s warm-up: %w", c.Name, err)
			}
		}
	}
	figs := make([]Figures, len(configs))
	cpuUsed := make([]time.Duration, len(configs))
	cpuReqs := make([]int64, len(configs))
	opens := make([][]*loadgen.Result, len(configs))
	for r := range rounds {
		for j := range configs {
			i := (j + r) % len(configs) // rotate the order each round
			c := configs[i]
			var prof func() error
			if pp := addrs[process(c.Name)+"-pprof"]; pp != "" && r == rounds-1 {
				prof = profileProxy(ctx, pp, filepath.Join(profileDir, c.Name), closedDur)
			}
			cpu0, cpuOK := procCPU(c.pid)
			res, err := loadgen.Closed(ctx, clients[i], target(c), conc, closedDur)
			if cpu1, ok := procCPU(c.pid); ok && cpuOK && err == nil {
				cpuUsed[i] += cpu1 - cpu0
				cpuReqs[i] += res.Requests
			}
			if prof != nil {
				if perr := prof(); perr != nil {
					return fmt.Errorf("%s profile: %w", c.Name, perr)
				}
			}
			if err != nil {
				return fmt.Errorf("%s closed loop: %w", c.Name, err)
			}
			figs[i].RPSRounds = append(figs[i].RPSRounds, res.RPS())
			figs[i].Errors += res.Errors
			figs[i].Non2xx += res.Non2xx
			open, err := loadgen.Open(ctx, openClients[i], target(c), openConns, rate, openDur)
			if err != nil {
				return fmt.Errorf("%s open loop: %w", c.Name, err)
			}
			opens[i] = append(opens[i], open)
			figs[i].P99RoundsUs = append(figs[i].P99RoundsUs, us(open.Quantile(0.99)))
			figs[i].Errors += open.Errors
			figs[i].Non2xx += open.Non2xx
			fmt.Printf("  round %d %-19s closed %9.0f req/s   open p99 %8s\n", r+1, c.Name, res.RPS(), open.Quantile(0.99).Round(time.Microsecond))
		}
	}
	for i, c := range configs {
		f := &figs[i]
		f.Name = c.Name
		if cpuReqs[i] > 0 {
			f.CPUPerReqUs = us(cpuUsed[i]) / float64(cpuReqs[i])
		}
		for _, v := range f.RPSRounds {
			f.RPS += v / float64(len(f.RPSRounds))
		}
		all := &loadgen.Result{}
		var elapsed time.Duration
		for _, o := range opens[i] {
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
	for i := range figs {
		figs[i].VsDirect = figs[i].RPS / figs[0].RPS
		figs[i].VsProxy = figs[i].RPS / figs[1].RPS
		figs[i].P99OverDirUs = figs[i].P99us - figs[0].P99us
	}
	rep.Configs = figs
	full := figs[3]
	rep.Goals = []Goal{
		{Goal: "gateway with all three policies >= 0.30x the direct backend's req/s", Actual: fmt.Sprintf("%.2fx", full.VsDirect), Met: full.VsDirect >= 0.30},
		{Goal: "gateway with all three policies >= 1.5x the bare reverse proxy's req/s", Actual: fmt.Sprintf("%.2fx", full.VsProxy), Met: full.VsProxy >= 1.5},
		{Goal: fmt.Sprintf("p99 at %.0f req/s at most 1 ms above direct", rate), Actual: fmt.Sprintf("%+.0f us", full.P99OverDirUs), Met: full.P99OverDirUs <= 1000},
	}

	fmt.Printf("\n%-19s %-46s %10s %9s %9s %8s %9s %9s %9s %8s %8s %9s %6s\n", "config", "", "req/s", "x direct", "x proxy",
		"cpu/req", "p50", "p99", "p99.9", "p99-dir", "lag p99", "open req", "errors")
	for i, f := range figs {
		fmt.Printf("%-19s %-46s %10.0f %8.2fx %8.2fx %8s %9s %9s %9s %8s %8s %9d %6d\n", f.Name, configs[i].desc, f.RPS, f.VsDirect, f.VsProxy,
			fmtUS(f.CPUPerReqUs), fmtUS(f.P50us), fmtUS(f.P99us), fmtUS(f.P999us), fmtUS(f.P99OverDirUs), fmtUS(f.SendLagP99us), f.OpenRequests, f.Errors+f.Non2xx)
	}
	fmt.Printf("\ncpu/req: CPU time of the serving process (the proxy process; the backend for direct) per closed-loop request; x proxy by CPU: ")
	for i, f := range figs {
		if i > 0 {
			fmt.Print("; ")
		}
		if f.CPUPerReqUs > 0 {
			fmt.Printf("%s %.2fx", f.Name, figs[1].CPUPerReqUs/f.CPUPerReqUs)
		}
	}
	fmt.Println()
	fmt.Printf("\nreq/s: closed loop, mean of %d rounds (per round: ", rounds)
	for i, f := range figs {
		if i > 0 {
			fmt.Print("; ")
		}
		fmt.Printf("%s", f.Name)
		for _, v := range f.RPSRounds {
			fmt.Printf(" %.0f", v)
		}
	}
	fmt.Printf(")\np99 per round:")
	for i, f := range figs {
		if i > 0 {
			fmt.Print(";")
		}
		fmt.Printf(" %s", f.Name)
		for _, v := range f.P99RoundsUs {
			fmt.Printf(" %s", fmtUS(v))
		}
	}
	fmt.Printf("\nlatency: open loop at %.0f req/s, from the scheduled send time, all rounds pooled; lag = how late the load generator started a send (included in the latency)\n", rate)
	loadgen.PrintGoals(rep.Goals, 72)
	if jsonPath != "" {
		return loadgen.WriteJSON(jsonPath, rep)
	}
	return nil
}

// process names the process serving a configuration: direct, proxy or gateway.
func process(config string) string {
	switch {
	case config == "bare-proxy":
		return "proxy"
	case strings.HasPrefix(config, "gateway"):
		return "gateway"
	}
	return config
}

func target(c config) loadgen.Target {
	return loadgen.Target{URL: c.url, Host: c.host, Header: http.Header{"X-User-Id": {userID}}}
}

func check(c config) error {
	req, _ := http.NewRequest(http.MethodGet, c.url, nil)
	if c.host != "" {
		req.Host = c.host
	}
	req.Header.Set("X-User-ID", userID)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("%s: %w", c.Name, err)
	}
	body, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s answered %d: %s", c.Name, resp.StatusCode, body)
	}
	if c.host == fullHost && resp.Header.Get("X-RateLimit-Limit") == "" {
		return fmt.Errorf("%s: no X-RateLimit-Limit, the RateLimit is not in force: %v", c.Name, resp.Header)
	}
	if c.host == plainHost && resp.Header.Get("X-RateLimit-Limit") != "" {
		return fmt.Errorf("%s: X-RateLimit-Limit on the Service without policy", c.Name)
	}
	return nil
}

func us(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }

func fmtUS(v float64) string {
	if v >= 10000 || v <= -10000 {
		return fmt.Sprintf("%.1fms", v/1000)
	}
	return fmt.Sprintf("%.0fus", v)
}

// runServe is a proxy process: the gateway (with the GC settings cmd/gateway applies by default)
// or the bare proxy (with Go's), on a listener of its own, and net/http/pprof with pprofOn.
func runServe(which, backendAddr string, pprofOn bool, gcPercent int, memoryLimit, upstreamClient string) error {
	var h http.Handler
	var srv *http.Server
	switch which {
	case "gateway":
		lim, err := gctune.ParseMemoryLimit(memoryLimit)
		if err != nil {
			return err
		}
		fmt.Fprintln(os.Stderr, "bench gateway process:", gctune.Apply(gctune.Settings{Percent: gcPercent, MemoryLimit: lim}, true, true))
		g, err := newBenchGateway(backendAddr, upstreamClient)
		if err != nil {
			return err
		}
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		go g.Run(ctx)
		srv = g.HTTPServer("")
	case "proxy":
		h = bareProxy(backendAddr)
		srv = &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 120 * time.Second}
	default:
		return fmt.Errorf("-serve %q: want gateway or proxy", which)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	errs := make(chan error, 2)
	go func() { errs <- srv.Serve(l) }()
	fmt.Printf("serving %s %s\n", which, l.Addr())
	if pprofOn {
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
func newBenchGateway(backendAddr, upstreamClient string) (*gateway.Gateway, error) {
	host, portStr, err := net.SplitHostPort(backendAddr)
	if err != nil || host == "" {
		return nil, fmt.Errorf("-backend %q: want host:port", backendAddr)
	}
	var port int32
	if _, err := fmt.Sscanf(portStr, "%d", &port); err != nil {
		return nil, err
	}
	snap, err := benchSnapshot(port)
	if err != nil {
		return nil, err
	}
	g, err := gateway.New(gateway.Options{LocalDev: true, UpstreamClient: upstreamClient})
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

// benchSnapshot compiles the Service "full" (the three policies, as the compiler defaults them) from
// synthetic cluster objects, and adds the Service "plain": the same port with no policy.
func benchSnapshot(backendPort int32) (*snapshot.Snapshot, error) {
	created := metav1.NewTime(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	meta := func(kind string) metav1.ObjectMeta {
		return metav1.ObjectMeta{Namespace: ns, Name: "full", UID: types.UID("uid-" + kind), Generation: 1, CreationTimestamp: created}
	}
	refs := []v1alpha1.PolicyTargetReference{{Kind: "Service", Name: "full"}}
	in := compile.Input{
		Services: []corev1.Service{{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "full"},
			Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{{Name: "http", Port: 80}}}}},
		EndpointSlices: []discoveryv1.EndpointSlice{{
			ObjectMeta:  metav1.ObjectMeta{Namespace: ns, Name: "full-local", Labels: map[string]string{discoveryv1.LabelServiceName: "full"}},
			AddressType: discoveryv1.AddressTypeFQDN,
			Ports:       []discoveryv1.EndpointPort{{Name: ptr.To("http"), Port: ptr.To(backendPort)}},
			Endpoints:   []discoveryv1.Endpoint{{Addresses: []string{"bench.localhost"}}},
		}},
		RateLimits: []v1alpha1.RateLimit{{ObjectMeta: meta("rl"), Spec: v1alpha1.RateLimitSpec{TargetRefs: refs, Limits: []v1alpha1.Limit{
			{Name: "total", Requests: 1_000_000_000, Period: "1s"},
			{Name: "per-user", Requests: 1_000_000_000, Period: "1s", Key: []v1alpha1.KeyPart{{Header: ptr.To(v1alpha1.HeaderName("X-User-ID"))}}},
		}}}},
		CircuitBreakers: []v1alpha1.CircuitBreaker{{ObjectMeta: meta("cb"), Spec: v1alpha1.CircuitBreakerSpec{TargetRefs: refs}}},
		RetryPolicies:   []v1alpha1.RetryPolicy{{ObjectMeta: meta("rp"), Spec: v1alpha1.RetryPolicySpec{TargetRefs: refs}}},
		GatewayReplicas: 1,
	}
	snap, err := compile.Compile(in)
	if err != nil {
		return nil, err
	}
	if len(snap.Services) != 1 || len(snap.Policies) != 3 {
		return nil, fmt.Errorf("compiled %d Services and %d policies, want 1 and 3", len(snap.Services), len(snap.Policies))
	}
	p := snap.Services[0].Ports[0]
	if p.RateLimit == nil || p.CircuitBreaker == nil || p.Retry == nil {
		return nil, fmt.Errorf("the three policies are not all on the port: %+v", p)
	}
	plain := snapshot.Service{Namespace: ns, Name: "plain", Ports: []snapshot.Port{{Name: p.Name, Port: p.Port, Endpoints: p.Endpoints}}}
	snap.Services = append(snap.Services, plain)
	snap.Version = 1
	return snap, nil
}
