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

// Command benchcontrol measures the control path (`make bench-control`, issue #6):
//
//  1. compile: compile.Compile on synthetic input (n Services with three endpoints and one policy
//     each, the kinds in turn) for each -compile size: time (min and median of -runs) and the size of
//     the snapshot as JSON;
//  2. memory, in-process: a child process (this binary with -mem-child) compiles -mem-policies
//     policies plus one keyed RateLimit, applies the snapshot to a gateway.New with an in-memory
//     upstream, then drives -keys distinct X-User-ID values through the keyed limit; it reports heap
//     in use (runtime.ReadMemStats after a GC) and VmRSS of its own process;
//  3. the real stack: a local control plane, the manager and gateway binaries (from -bin) as
//     processes, as `make run-local` runs them; for each -stack size, Services, FQDN EndpointSlices
//     under .localhost and policies are created up to that size, then -changes times one RateLimit
//     is changed with `kubectl apply --server-side` (or an API merge patch, -apply=api) and the gateway
//     polled by Host until X-RateLimit-Limit shows the new value, the latency counted from just before
//     the apply; and VmRSS of the manager and gateway processes (found in /proc by their command line).
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	k8sruntime "k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	"resilience.dev/operator/api/v1alpha1"
	"resilience.dev/operator/bench/loadgen"
	"resilience.dev/operator/internal/compile"
	"resilience.dev/operator/internal/controlplane"
	"resilience.dev/operator/internal/gateway"
	"resilience.dev/operator/internal/localstack"
	"resilience.dev/operator/internal/snapshot"
)

const namespaces = 10

// stackKeys is the -stack-keys flag.
var stackKeys int

// heapProfiles is the -heap-profiles flag: a directory for the gateway's heap profiles ("" for none).
var heapProfiles string

// tracePath is the -trace flag: where the processes' logs are kept ("" to trace nothing).
var tracePath string

// Report is the JSON file.
type Report struct {
	Started   time.Time     `json:"started"`
	GoVersion string        `json:"goVersion"`
	CPUs      int           `json:"cpus"`
	Compile   []CompileFig  `json:"compile"`
	Memory    *MemFig       `json:"memoryInProcess,omitempty"`
	Stack     []StackFig    `json:"stack,omitempty"`
	StackMem  []StackMemFig `json:"stackMemory,omitempty"`
	Trace     [][]Stages    `json:"trace,omitempty"`
	Goals     []Goal        `json:"goals"`
	Notes     []string      `json:"notes"`
}

// CompileFig is compile.Compile at one size.
type CompileFig struct {
	Policies      int     `json:"policies"`
	Runs          int     `json:"runs"`
	MinMs         float64 `json:"minMs"`
	MedianMs      float64 `json:"medianMs"`
	SnapshotBytes int     `json:"snapshotBytes"`
	ApplyMs       float64 `json:"gatewayApplyMs"`
}

// MemFig is the in-process gateway memory.
type MemFig struct {
	Policies       int     `json:"policies"`
	Keys           int     `json:"keys"`
	KeysServed     int     `json:"keysServed"`
	Status429      int     `json:"status429"`
	HeapAppliedMiB float64 `json:"heapAfterApplyMiB"`
	RSSAppliedMiB  float64 `json:"rssAfterApplyMiB"`
	HeapKeysMiB    float64 `json:"heapAfterKeysMiB"`
	RSSKeysMiB     float64 `json:"rssAfterKeysMiB"`
	SysKeysMiB     float64 `json:"goSysAfterKeysMiB"`
}

// StackFig is the real stack at one size.
type StackFig struct {
	Policies       int     `json:"policies"`
	CreateSecs     float64 `json:"createSeconds"`
	EnforcedSecs   float64 `json:"allEnforcedSeconds"`
	SettledSecs    float64 `json:"statusSettledSeconds"`
	Changes        int     `json:"changes"`
	ApplyVia       string  `json:"applyVia"`
	P50Ms          float64 `json:"applyToEnforcedP50Ms"`
	P99Ms          float64 `json:"applyToEnforcedP99Ms"`
	MaxMs          float64 `json:"applyToEnforcedMaxMs"`
	ApplyCallP50Ms float64 `json:"applyCallP50Ms"`
	ManagerRSSMiB  float64 `json:"managerRssMiB"`
	GatewayRSSMiB  float64 `json:"gatewayRssMiB"`
	ManagerHWMMiB  float64 `json:"managerPeakRssMiB"`
	GatewayHWMMiB  float64 `json:"gatewayPeakRssMiB"`
}

// Goal is one goal of the issue, reported and not asserted.
type Goal = loadgen.Goal

func main() {
	bin := flag.String("bin", "bin", "directory holding the manager and gateway binaries")
	compileSizes := flag.String("compile", "1000,10000", "policy counts to compile")
	runs := flag.Int("runs", 5, "compile runs per size")
	memPolicies := flag.Int("mem-policies", 10000, "policies in force for the in-process memory figure (0 skips it)")
	keys := flag.Int("keys", 100000, "distinct X-User-ID values driven through a keyed limit for the memory figure")
	stackSizes := flag.String("stack", "1000", "policy counts on the real stack, ascending (empty skips the stack)")
	flag.IntVar(&stackKeys, "stack-keys", 100000, "after the timed changes at each stack size, drive this many distinct X-User-ID values through a keyed RateLimit on the real gateway, "+
		"then 5 more changes and 30 s idle, reading the processes' RSS and the gateway's live heap in each phase (0 skips it)")
	changes := flag.Int("changes", 50, "policy changes timed per stack size")
	applyVia := flag.String("apply", "kubectl,api", "how changes are applied, each timed in turn: kubectl (kubectl apply --server-side) and/or api (one merge patch from this process)")
	jsonPath := flag.String("json", "bin/bench-control.json", "write the results here as JSON")
	memChild := flag.Bool("mem-child", false, "internal: measure memory in this process and print it as JSON")
	flag.StringVar(&heapProfiles, "heap-profiles", "", "run the gateway with --pprof and keep its heap profile (after a GC) at the end of each memory phase in this directory")
	flag.StringVar(&tracePath, "trace", "", "trace the real stack: run the manager with debug logs, keep the processes' logs in this file, "+
		"and line up per change the API write, the manager's informer event, the build, the gateway's receipt and apply, and enforcement")
	flag.Parse()
	log.SetFlags(0)
	ctrllog.SetLogger(logr.Discard()) // the client's API warnings would interleave with the tables
	if *memChild {
		m, err := measureMemory(*memPolicies, *keys)
		if err != nil {
			log.Fatal(err)
		}
		_ = json.NewEncoder(os.Stdout).Encode(m)
		return
	}
	if err := run(*bin, *compileSizes, *runs, *memPolicies, *keys, *stackSizes, *changes, *applyVia, *jsonPath); err != nil {
		log.Fatal("bench-control: ", err)
	}
}

func sizes(s string) ([]int, error) {
	var out []int
	for f := range strings.SplitSeq(s, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		n, err := strconv.Atoi(f)
		if err != nil || n < 3 {
			return nil, fmt.Errorf("size %q: want a number of at least 3", f)
		}
		out = append(out, n)
	}
	return out, nil
}

func run(bin, compileSizes string, runs, memPolicies, keys int, stackSizes string, changes int, applyVia, jsonPath string) error {
	rep := &Report{Started: time.Now().UTC(), GoVersion: runtime.Version(), CPUs: runtime.NumCPU(), Notes: []string{
		"compile: synthetic input, n Services with 3 IPv4 endpoints and one policy each, kinds in turn; no test files imported",
		"memory in-process: a child process holding gateway.New with an in-memory upstream (no sockets); the keyed limit is on svc0 with maxKeys = keys",
		"stack: Services are headless (the local API server's Service CIDR holds only ~250 cluster IPs); one in-process backend behind every <svc>.localhost FQDN endpoint",
		"stack RSS: VmRSS of the manager and gateway processes, found in /proc by their unique listen-address arguments",
		"stack memory: VmRSS every second; the gateway's live heap (go_gc_heap_live_bytes) and heap in use scraped from its /metrics every 15 s and at each phase end; keys through a keyed RateLimit on Service ns0/keyed (one more policy)",
	}}
	fmt.Printf("bench-control: %d CPUs, %s\n", rep.CPUs, rep.GoVersion)
	cs, err := sizes(compileSizes)
	if err != nil {
		return err
	}
	fmt.Println("\ncompile (compile.Compile on synthetic input; gateway Apply of the result into a fresh in-process gateway):")
	fmt.Printf("  %9s %5s %10s %10s %14s %10s\n", "policies", "runs", "min", "median", "snapshot JSON", "apply")
	for _, n := range cs {
		f, err := measureCompile(n, runs)
		if err != nil {
			return err
		}
		rep.Compile = append(rep.Compile, f)
		fmt.Printf("  %9d %5d %8.1fms %8.1fms %11.2f MiB %8.1fms\n", n, f.Runs, f.MinMs, f.MedianMs, mib(f.SnapshotBytes), f.ApplyMs)
	}

	if memPolicies > 0 {
		self, err := os.Executable()
		if err != nil {
			return err
		}
		out, err := exec.Command(self, "-mem-child", "-mem-policies", strconv.Itoa(memPolicies), "-keys", strconv.Itoa(keys)).Output()
		if err != nil {
			return fmt.Errorf("memory child: %w", err)
		}
		var m MemFig
		if err := json.Unmarshal(out, &m); err != nil {
			return fmt.Errorf("memory child said %q: %w", out, err)
		}
		rep.Memory = &m
		fmt.Printf("\ngateway memory, in-process (a child process: gateway.New with an in-memory upstream, no sockets; heap in use after a GC, VmRSS of the process):\n")
		fmt.Printf("  %d policies applied:                   heap %6.1f MiB   RSS %6.1f MiB\n", m.Policies, m.HeapAppliedMiB, m.RSSAppliedMiB)
		fmt.Printf("  + %d distinct X-User-ID keys (%d served, %d got 429): heap %6.1f MiB   RSS %6.1f MiB   Go sys %6.1f MiB\n",
			m.Keys, m.KeysServed, m.Status429, m.HeapKeysMiB, m.RSSKeysMiB, m.SysKeysMiB)
	}

	ss, err := sizes(stackSizes)
	if err != nil {
		return err
	}
	if len(ss) > 0 {
		figs, trace, mem, err := runStack(bin, ss, changes, applyVia)
		rep.Stack, rep.Trace, rep.StackMem = figs, trace, mem
		if err != nil {
			return err
		}
	}

	for _, f := range rep.Compile {
		if f.Policies == 10000 {
			rep.Goals = append(rep.Goals, Goal{Goal: "compiling 10,000 policies under 1 s", Actual: fmt.Sprintf("%.0f ms (median)", f.MedianMs), Met: f.MedianMs < 1000})
		}
	}
	for _, f := range rep.Stack {
		if f.Policies == 1000 {
			rep.Goals = append(rep.Goals, Goal{Goal: "apply->enforced p99 under 200 ms with 1,000 policies (apply via " + f.ApplyVia + ")",
				Actual: fmt.Sprintf("%.0f ms", f.P99Ms), Met: f.P99Ms < 200})
		}
	}
	for _, f := range rep.StackMem {
		if f.Policies == 10000 && f.Keys == 100000 {
			rep.Goals = append(rep.Goals, Goal{Goal: "gateway memory with 10,000 policies and 100,000 keys under 200 MiB (real gateway process, peak VmHWM)",
				Actual: fmt.Sprintf("%.0f MiB", f.GatewayHWMMiB), Met: f.GatewayHWMMiB < 200})
		}
	}
	if m := rep.Memory; m != nil && m.Policies == 10000 && m.Keys == 100000 {
		rep.Goals = append(rep.Goals, Goal{Goal: "gateway memory with 10,000 policies and 100,000 keys under 200 MiB (in-process RSS)",
			Actual: fmt.Sprintf("%.0f MiB", m.RSSKeysMiB), Met: m.RSSKeysMiB < 200})
	}
	loadgen.PrintGoals(rep.Goals, 86)
	if jsonPath != "" {
		return loadgen.WriteJSON(jsonPath, rep)
	}
	return nil
}

func mib[T int | int64 | uint64](b T) float64 { return float64(b) / (1 << 20) }

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// synthetic makes n Services in ten namespaces, each with one port, an EndpointSlice of three IPv4
// endpoints and one policy, the kinds in turn (RateLimit, CircuitBreaker, RetryPolicy).
func synthetic(n int) compile.Input {
	var in compile.Input
	created := metav1.NewTime(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	for i := range n {
		ns, name := fmt.Sprintf("ns%d", i%namespaces), fmt.Sprintf("svc%d", i)
		in.Services = append(in.Services, corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
			Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{{Name: "http", Port: 80}}}})
		var eps []discoveryv1.Endpoint
		for e := 1; e <= 3; e++ {
			eps = append(eps, discoveryv1.Endpoint{Addresses: []string{fmt.Sprintf("10.%d.%d.%d", i/250%250, i%250, e)}})
		}
		in.EndpointSlices = append(in.EndpointSlices, discoveryv1.EndpointSlice{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name + "-x", Labels: map[string]string{
				discoveryv1.LabelServiceName: name, discoveryv1.LabelManagedBy: "endpointslice-controller.k8s.io"}},
			AddressType: discoveryv1.AddressTypeIPv4,
			Ports:       []discoveryv1.EndpointPort{{Name: ptr.To("http"), Port: ptr.To[int32](8080)}},
			Endpoints:   eps,
		})
		meta := metav1.ObjectMeta{Namespace: ns, Name: name, UID: types.UID(fmt.Sprintf("uid-%d", i)), Generation: 1, CreationTimestamp: created}
		spec := policySpecs(i, name)
		switch s := spec.(type) {
		case v1alpha1.RateLimitSpec:
			in.RateLimits = append(in.RateLimits, v1alpha1.RateLimit{ObjectMeta: meta, Spec: s})
		case v1alpha1.CircuitBreakerSpec:
			in.CircuitBreakers = append(in.CircuitBreakers, v1alpha1.CircuitBreaker{ObjectMeta: meta, Spec: s})
		case v1alpha1.RetryPolicySpec:
			in.RetryPolicies = append(in.RetryPolicies, v1alpha1.RetryPolicy{ObjectMeta: meta, Spec: s})
		}
	}
	in.GatewayReplicas = 1
	return in
}

// initialRequests is the rate of every synthetic RateLimit: high enough that polling never hits it.
const initialRequests = 1_000_000

// policySpecs is the spec of the policy of Service i.
func policySpecs(i int, name string) any {
	refs := []v1alpha1.PolicyTargetReference{{Kind: "Service", Name: name}}
	switch i % 3 {
	case 0:
		return v1alpha1.RateLimitSpec{TargetRefs: refs, Limits: []v1alpha1.Limit{{Name: "all", Requests: initialRequests, Period: "1s", MaxKeys: 10000}}}
	case 1:
		return v1alpha1.CircuitBreakerSpec{TargetRefs: refs, Trip: &v1alpha1.Trip{ConsecutiveFailures: ptr.To[int32](5)}, OpenDuration: "30s"}
	default:
		return v1alpha1.RetryPolicySpec{TargetRefs: refs, MaxAttempts: 3}
	}
}

func measureCompile(n, runs int) (CompileFig, error) {
	in := synthetic(n)
	var times []time.Duration
	var snap *snapshot.Snapshot
	for range max(runs, 1) {
		runtime.GC()
		start := time.Now()
		s, err := compile.Compile(in)
		if err != nil {
			return CompileFig{}, err
		}
		times = append(times, time.Since(start))
		snap = s
	}
	if len(snap.Policies) != n {
		return CompileFig{}, fmt.Errorf("%d policies in force, want %d", len(snap.Policies), n)
	}
	data, err := json.Marshal(snap)
	if err != nil {
		return CompileFig{}, err
	}
	g, err := gateway.New(gateway.Options{Transport: okRT{}})
	if err != nil {
		return CompileFig{}, err
	}
	snap.Version = 1
	start := time.Now()
	e, err := snapshot.Encode(snap)
	if err != nil {
		return CompileFig{}, err
	}
	if err := g.Apply(e); err != nil {
		return CompileFig{}, err
	}
	apply := time.Since(start)
	slices.Sort(times)
	return CompileFig{Policies: n, Runs: len(times), MinMs: ms(times[0]), MedianMs: ms(times[len(times)/2]),
		SnapshotBytes: len(data), ApplyMs: ms(apply)}, nil
}

// okRT is an in-memory upstream: 200 with an empty body.
type okRT struct{}

func (okRT) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Body != nil {
		_ = r.Body.Close()
	}
	return &http.Response{StatusCode: 200, Header: http.Header{}, Body: http.NoBody, Request: r}, nil
}

// discardWriter is a ResponseWriter that writes nowhere.
type discardWriter struct {
	h    http.Header
	code int
}

func (w *discardWriter) Header() http.Header         { return w.h }
func (w *discardWriter) Write(p []byte) (int, error) { return len(p), nil }
func (w *discardWriter) WriteHeader(code int)        { w.code = code }

// measureMemory runs in the child: n policies plus one keyed RateLimit with room for keys buckets.
func measureMemory(n, keys int) (*MemFig, error) {
	in := synthetic(n)
	// Service svc0 (a RateLimit) gets a second, keyed limit.
	in.RateLimits[0].Spec.Limits = append(in.RateLimits[0].Spec.Limits, v1alpha1.Limit{Name: "per-user", Requests: initialRequests,
		Period: "1s", MaxKeys: int32(max(keys, 1)), Key: []v1alpha1.KeyPart{{Header: ptr.To(v1alpha1.HeaderName("X-User-ID"))}}})
	snap, err := compile.Compile(in)
	if err != nil {
		return nil, err
	}
	snap.Version = 1
	g, err := gateway.New(gateway.Options{Transport: okRT{}})
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
	in, snap, e = compile.Input{}, nil, nil
	m := &MemFig{Policies: n, Keys: keys}
	heap, rss, _ := memNow()
	m.HeapAppliedMiB, m.RSSAppliedMiB = mib(heap), mib(rss)
	req, err := http.NewRequest(http.MethodGet, "http://svc0.ns0/", nil)
	if err != nil {
		return nil, err
	}
	w := &discardWriter{h: http.Header{}}
	for k := range keys {
		req.Header.Set("X-User-ID", "user-"+strconv.Itoa(k))
		clear(w.h)
		w.code = 0
		g.ServeHTTP(w, req)
		switch w.code {
		case 200:
			m.KeysServed++
		case 429:
			m.Status429++
		default:
			return nil, fmt.Errorf("key %d: status %d", k, w.code)
		}
	}
	heap, rss, sys := memNow()
	m.HeapKeysMiB, m.RSSKeysMiB, m.SysKeysMiB = mib(heap), mib(rss), mib(sys)
	runtime.KeepAlive(g)
	return m, nil
}

// memNow collects garbage, returns freed memory to the OS and reads the heap in use, VmRSS and the
// Go runtime's total.
func memNow() (heap, rss, sys uint64) {
	runtime.GC()
	debug.FreeOSMemory()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	rss, _ = procStatus(os.Getpid(), "VmRSS")
	return ms.HeapInuse, rss, ms.Sys
}

// procStatus reads a "kB" field of /proc/<pid>/status, in bytes.
func procStatus(pid int, field string) (uint64, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for line := range strings.SplitSeq(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			f := strings.Fields(v)
			if len(f) == 0 {
				break
			}
			kb, err := strconv.ParseUint(f[0], 10, 64)
			return kb << 10, err
		}
	}
	return 0, fmt.Errorf("no %s in /proc/%d/status", field, pid)
}

// pidByArg finds the process whose command line has arg (the stack's unique listen addresses tell
// our manager and gateway from any other).
func pidByArg(arg string) (int, error) {
	dirs, err := os.ReadDir("/proc")
	if err != nil {
		return 0, err
	}
	for _, d := range dirs {
		pid, err := strconv.Atoi(d.Name())
		if err != nil {
			continue
		}
		cmdline, err := os.ReadFile(filepath.Join("/proc", d.Name(), "cmdline"))
		if err != nil {
			continue
		}
		if slices.Contains(strings.Split(string(cmdline), "\x00"), arg) {
			return pid, nil
		}
	}
	return 0, fmt.Errorf("no process with argument %q", arg)
}

func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// stack is the real stack and what the benchmark keeps about it.
type stack struct {
	ls          *localstack.Stack
	opts        localstack.Options
	k8s         client.Client
	backendPort int32
	http        *http.Client
	keysHTTP    *http.Client
	created     int
	trace       [][]Stages
}

func runStack(bin string, sizes []int, changes int, applyVia string) (figs []StackFig, trace [][]Stages, mem []StackMemFig, err error) {
	vias := strings.Split(applyVia, ",")
	for _, v := range vias {
		if v != "kubectl" && v != "api" {
			return nil, nil, nil, fmt.Errorf("-apply %q: want kubectl, api or both", applyVia)
		}
	}
	tmp, err := os.MkdirTemp("", "bench-control-")
	if err != nil {
		return nil, nil, nil, err
	}
	defer os.RemoveAll(tmp)
	logName := filepath.Join(tmp, "processes.log")
	if tracePath != "" {
		logName = tracePath
	}
	logFile, err := os.Create(logName)
	if err != nil {
		return nil, nil, nil, err
	}
	defer logFile.Close()
	absBin, err := filepath.Abs(bin)
	if err != nil {
		return nil, nil, nil, err
	}
	fmt.Printf("\nreal stack: local control plane (kube-apiserver + etcd), %s/manager and %s/gateway as processes (--local-dev)\n", bin, bin)
	cp, err := controlplane.Start()
	if err != nil {
		return nil, nil, nil, err
	}
	defer func() { _ = cp.Stop() }()
	cp.Config.QPS, cp.Config.Burst = 1000, 2000
	addrs := make([]string, 6)
	for i := range addrs {
		if addrs[i], err = freeAddr(); err != nil {
			return nil, nil, nil, err
		}
	}
	s := &stack{opts: localstack.Options{BinDir: absBin, Dir: tmp, Output: logFile,
		GatewayListen: addrs[0], GatewayHealth: addrs[1], GatewayMetrics: addrs[2],
		ManagerMetrics: addrs[3], ManagerHealth: addrs[4], ManagerStream: addrs[5]},
		http:     &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 4}},
		keysHTTP: &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 16}}}
	if s.ls, err = localstack.Start(s.opts, cp); err != nil {
		return nil, nil, nil, err
	}
	defer s.ls.Close()
	defer func() {
		if err != nil {
			fmt.Fprintf(os.Stderr, "--- tail of the manager and gateway logs ---\n%s\n", tail(logFile.Name(), 40))
		}
	}()
	scheme := k8sruntime.NewScheme()
	utilruntime.Must(clientgoscheme.AddToScheme(scheme))
	utilruntime.Must(v1alpha1.AddToScheme(scheme))
	if s.k8s, err = client.New(cp.Config, client.Options{Scheme: scheme}); err != nil {
		return nil, nil, nil, err
	}
	ctx := context.Background()
	var managerArgs []string
	if tracePath != "" {
		managerArgs = []string{"--zap-log-level=debug", "--zap-time-encoding=rfc3339nano"}
	}
	if err := s.ls.StartManager(ctx, managerArgs...); err != nil {
		return nil, nil, nil, err
	}
	var gatewayArgs []string
	if heapProfiles != "" {
		gatewayArgs = append(gatewayArgs, "--pprof")
	}
	if err := s.ls.StartGateway(gatewayArgs...); err != nil {
		return nil, nil, nil, err
	}
	// One backend for every Service: each Service's FQDN endpoint <name>.localhost dials loopback.
	bl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, nil, nil, err
	}
	bs := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok\n") }),
		ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = bs.Serve(bl) }()
	defer bs.Close()
	s.backendPort = int32(bl.Addr().(*net.TCPAddr).Port)
	for i := range namespaces {
		err := s.k8s.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("ns%d", i)}})
		if err != nil && !apierrors.IsAlreadyExists(err) {
			return nil, nil, nil, err
		}
	}
	fmt.Printf("  %9s %10s %12s %10s %7s %8s %10s %10s %10s %12s %12s %12s\n", "policies", "create", "all enforced", "settled", "changes",
		"via", "p50", "p99", "max", "apply call", "manager RSS", "gateway RSS")
	w := s.watchMemory(time.Now())
	defer w.close()
	from := 0
	for round, n := range sizes {
		w.setPhase("populate")
		base, err := s.populate(ctx, n)
		if err != nil {
			return figs, s.trace, mem, fmt.Errorf("%d policies: %w", n, err)
		}
		w.setPhase("timed changes")
		for vi, via := range vias {
			f, err := s.changes(ctx, base, changes, via, vi)
			if err != nil {
				return figs, s.trace, mem, fmt.Errorf("%d policies: %w", n, err)
			}
			figs = append(figs, f)
			fmt.Printf("  %9d %9.1fs %11.1fs %9.1fs %7d %8s %8.1fms %8.1fms %8.1fms %10.1fms %8.0f MiB %8.0f MiB\n", f.Policies, f.CreateSecs,
				f.EnforcedSecs, f.SettledSecs, f.Changes, f.ApplyVia, f.P50Ms, f.P99Ms, f.MaxMs, f.ApplyCallP50Ms, f.ManagerRSSMiB, f.GatewayRSSMiB)
		}
		if stackKeys > 0 {
			phases, err := s.memoryPhases(ctx, w, n, stackKeys, round)
			var mf StackMemFig
			mf, from = w.fig(n, stackKeys, phases, from)
			mem = append(mem, mf)
			printMemFig(mf)
			if err != nil {
				return figs, s.trace, mem, fmt.Errorf("%d policies, memory: %w", n, err)
			}
		}
	}
	fmt.Println("  create: creating the Services, EndpointSlices and policies (controller-runtime client, 16 at a time);" +
		" all enforced: until the gateway enforces the last policy of each kind;\n  settled: until every policy's status says Programmed at its generation (changes are timed after that);\n  p50/p99/max: one changed RateLimit applied (via kubectl: kubectl apply --server-side; via api: one merge patch) -> X-RateLimit-Limit shows it at the gateway" +
		" (polled every 2 ms); apply call: the apply command alone;\n  RSS: VmRSS from /proc/<pid>/status after the changes (peak VmHWM in the JSON)")
	return figs, s.trace, mem, nil
}

func tail(path string, lines int) string {
	data, _ := os.ReadFile(path)
	all := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(all) > lines {
		all = all[len(all)-lines:]
	}
	return strings.Join(all, "\n")
}

// objects returns Service i, its EndpointSlice and its policy.
func (s *stack) objects(i int) []client.Object {
	ns, name := fmt.Sprintf("ns%d", i%namespaces), fmt.Sprintf("svc%d", i)
	meta := metav1.ObjectMeta{Namespace: ns, Name: name}
	out := []client.Object{
		// Headless: the local API server's Service CIDR has room for only ~250 cluster IPs.
		&corev1.Service{ObjectMeta: meta, Spec: corev1.ServiceSpec{ClusterIP: corev1.ClusterIPNone,
			Ports: []corev1.ServicePort{{Name: "http", Port: 80}}}},
		&discoveryv1.EndpointSlice{
			ObjectMeta:  metav1.ObjectMeta{Namespace: ns, Name: name + "-local", Labels: map[string]string{discoveryv1.LabelServiceName: name}},
			AddressType: discoveryv1.AddressTypeFQDN,
			Ports:       []discoveryv1.EndpointPort{{Name: ptr.To("http"), Port: ptr.To(s.backendPort)}},
			Endpoints:   []discoveryv1.Endpoint{{Addresses: []string{name + ".localhost"}}},
		},
	}
	switch spec := policySpecs(i, name).(type) {
	case v1alpha1.RateLimitSpec:
		out = append(out, &v1alpha1.RateLimit{ObjectMeta: meta, Spec: spec})
	case v1alpha1.CircuitBreakerSpec:
		out = append(out, &v1alpha1.CircuitBreaker{ObjectMeta: meta, Spec: spec})
	case v1alpha1.RetryPolicySpec:
		out = append(out, &v1alpha1.RetryPolicy{ObjectMeta: meta, Spec: spec})
	}
	return out
}

// get sends GET / for Service i through the gateway.
func (s *stack) get(i int) (int, http.Header, error) {
	req, err := http.NewRequest(http.MethodGet, "http://"+s.opts.GatewayListen+"/", nil)
	if err != nil {
		return 0, nil, err
	}
	req.Host = fmt.Sprintf("svc%d.ns%d", i, i%namespaces)
	resp, err := s.http.Do(req)
	if err != nil {
		return 0, nil, err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	return resp.StatusCode, resp.Header, nil
}

// populate creates objects up to n policies and waits for them to be enforced.
func (s *stack) populate(ctx context.Context, n int) (StackFig, error) {
	f := StackFig{Policies: n}
	start := time.Now()
	next := atomic.Int64{}
	next.Store(int64(s.created))
	var wg sync.WaitGroup
	var firstErr error
	var errOnce sync.Once
	for range 16 {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				for _, o := range s.objects(i) {
					if err := s.k8s.Create(ctx, o); err != nil && !apierrors.IsAlreadyExists(err) {
						errOnce.Do(func() { firstErr = err })
						return
					}
				}
			}
		})
	}
	wg.Wait()
	if firstErr != nil {
		return f, firstErr
	}
	s.created = n
	f.CreateSecs = time.Since(start).Seconds()
	// The last policy of each kind is enforced: the manager compiled the whole set.
	deadline := time.Now().Add(10 * time.Minute)
	for i := n - 3; i < n; i++ {
		for {
			code, h, err := s.get(i)
			if err == nil && code == 200 && (i%3 != 0 || h.Get("X-RateLimit-Limit") != "") {
				break
			}
			if time.Now().After(deadline) {
				return f, fmt.Errorf("svc%d not enforced within 10 minutes (last: %d %v)", i, code, err)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	f.EnforcedSecs = time.Since(start).Seconds()
	// The changes are timed in a steady state: every policy's status written (Programmed at its
	// generation). Until then the manager is still writing the status of the policies just created, and
	// those writes compete with the changes for the API server and the CPU.
	for {
		settled, err := s.statusSettled(ctx)
		if err != nil {
			return f, err
		}
		if settled == n {
			break
		}
		if time.Now().After(deadline) {
			return f, fmt.Errorf("status of only %d of %d policies settled within 10 minutes", settled, n)
		}
		time.Sleep(250 * time.Millisecond)
	}
	f.SettledSecs = time.Since(start).Seconds()
	return f, nil
}

// statusSettled counts the policies whose Programmed condition is True at their generation.
func (s *stack) statusSettled(ctx context.Context) (int, error) {
	var rls v1alpha1.RateLimitList
	var cbs v1alpha1.CircuitBreakerList
	var rps v1alpha1.RetryPolicyList
	settled := 0
	count := func(p v1alpha1.Policy) {
		if p.GetName() == keyedName { // the memory phases' own policy, not one of the n
			return
		}
		c := meta.FindStatusCondition(p.GetPolicyStatus().Conditions, v1alpha1.ConditionProgrammed)
		if c != nil && c.Status == metav1.ConditionTrue && c.ObservedGeneration == p.GetGeneration() {
			settled++
		}
	}
	for _, l := range []client.ObjectList{&rls, &cbs, &rps} {
		if err := s.k8s.List(ctx, l); err != nil {
			return 0, err
		}
	}
	for i := range rls.Items {
		count(&rls.Items[i])
	}
	for i := range cbs.Items {
		count(&cbs.Items[i])
	}
	for i := range rps.Items {
		count(&rps.Items[i])
	}
	return settled, nil
}

// changes times changes of one RateLimit each (round distinguishes the values of successive calls)
// and reads the processes' memory.
func (s *stack) changes(ctx context.Context, f StackFig, changes int, applyVia string, round int) (StackFig, error) {
	f.ApplyVia = applyVia
	n := f.Policies

	var lat, calls []time.Duration
	var times []changeTimes
	procs := map[string]string{"manager": "--distribution-bind-address=" + s.opts.ManagerStream, "gateway": "--listen=" + s.opts.GatewayListen,
		"kube-apiserver": "child:kube-apiserver", "etcd": "child:etcd", "benchmark": "self"}
	cpuBefore, wallStart := cpuTimes(procs), time.Now()
	rls := n / 3
	for k := range changes {
		i := 3 * ((k * 7919) % rls) // a different RateLimit each time
		requests := initialRequests + n + 1000*round + k + 1
		ns, name := fmt.Sprintf("ns%d", i%namespaces), fmt.Sprintf("svc%d", i)
		t0 := time.Now()
		if err := s.apply(ctx, applyVia, ns, name, requests); err != nil {
			return f, err
		}
		calls = append(calls, time.Since(t0))
		want := strconv.Itoa(requests)
		ct := changeTimes{Namespace: ns, Name: name, Start: t0, Called: t0.Add(calls[len(calls)-1])}
		for {
			code, h, err := s.get(i)
			ct.Polls++
			if err == nil && code == 200 && h.Get("X-RateLimit-Limit") == want {
				break
			}
			if time.Since(t0) > 30*time.Second {
				return f, fmt.Errorf("change %d of %s/%s not enforced within 30s (last: %d %v %v)", k, ns, name, code, h.Get("X-RateLimit-Limit"), err)
			}
			time.Sleep(2 * time.Millisecond)
		}
		ct.Enforced = time.Now()
		lat = append(lat, ct.Enforced.Sub(t0))
		times = append(times, ct)
	}
	cpuAfter, wall := cpuTimes(procs), time.Since(wallStart)
	if tracePath != "" {
		time.Sleep(500 * time.Millisecond) // let the last log lines reach the file
		st, err := traceChanges(tracePath, times)
		if err != nil {
			return f, fmt.Errorf("trace: %w", err)
		}
		printStages(st)
		printCPU(cpuBefore, cpuAfter, len(times), wall)
		s.trace = append(s.trace, st)
	}
	slices.Sort(lat)
	slices.Sort(calls)
	f.Changes = len(lat)
	if len(lat) > 0 {
		q := func(s []time.Duration, p float64) float64 {
			return ms(s[max(0, min(len(s)-1, int(p*float64(len(s))+0.5)-1))])
		}
		f.P50Ms, f.P99Ms, f.MaxMs, f.ApplyCallP50Ms = q(lat, 0.5), q(lat, 0.99), ms(lat[len(lat)-1]), q(calls, 0.5)
	}
	for _, p := range []struct {
		arg      string
		rss, hwm *float64
	}{
		{"--distribution-bind-address=" + s.opts.ManagerStream, &f.ManagerRSSMiB, &f.ManagerHWMMiB},
		{"--listen=" + s.opts.GatewayListen, &f.GatewayRSSMiB, &f.GatewayHWMMiB},
	} {
		pid, err := pidByArg(p.arg)
		if err != nil {
			return f, err
		}
		rss, err := procStatus(pid, "VmRSS")
		if err != nil {
			return f, err
		}
		hwm, _ := procStatus(pid, "VmHWM")
		*p.rss, *p.hwm = mib(rss), mib(hwm)
	}
	return f, nil
}

// apply changes the requests of RateLimit ns/name.
func (s *stack) apply(ctx context.Context, via, ns, name string, requests int) error {
	if via == "api" {
		patch := fmt.Sprintf(`{"spec":{"limits":[{"name":"all","requests":%d,"period":"1s","maxKeys":10000}]}}`, requests)
		return s.k8s.Patch(ctx, &v1alpha1.RateLimit{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}},
			client.RawPatch(types.MergePatchType, []byte(patch)))
	}
	manifest := fmt.Sprintf(`apiVersion: resilience.dev/v1alpha1
kind: RateLimit
metadata: {name: %s, namespace: %s}
spec:
  targetRefs: [{kind: Service, name: %s}]
  limits: [{name: all, requests: %d, period: 1s, maxKeys: 10000}]
`, name, ns, name, requests)
	cmd := exec.CommandContext(ctx, "kubectl", "--kubeconfig", s.ls.KubeconfigPath, "apply", "--server-side", "--force-conflicts",
		"--field-manager=bench-control", "-f", "-")
	cmd.Stdin = strings.NewReader(manifest)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("kubectl apply: %w: %s", err, out.String())
	}
	return nil
}
