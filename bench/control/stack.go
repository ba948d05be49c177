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
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	k8sruntime "k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"resilience.dev/operator/api/v1alpha1"
	"resilience.dev/operator/internal/controlplane"
	"resilience.dev/operator/internal/localstack"
)

// stack is the real stack and what the benchmark keeps about it.
type stack struct {
	o           options
	ls          *localstack.Stack
	opts        localstack.Options
	k8s         client.Client
	backendPort int32
	http        *http.Client
	keysHTTP    *http.Client
	created     int
	trace       [][]Stages
	logFile     *os.File
	closers     []func() // run in reverse order by close
}

func (s *stack) close() {
	for i := len(s.closers) - 1; i >= 0; i-- {
		s.closers[i]()
	}
}

func runStack(o options, sizes []int) (figs []StackFig, trace [][]Stages, mem []StackMemFig, err error) {
	vias := strings.Split(o.applyVia, ",")
	for _, v := range vias {
		if v != "kubectl" && v != "api" {
			return nil, nil, nil, fmt.Errorf("-apply %q: want kubectl, api or both", o.applyVia)
		}
	}
	s, err := newStack(o)
	defer s.close()
	if err != nil {
		return nil, nil, nil, err
	}
	defer func() {
		if err != nil && s.ls != nil {
			fmt.Fprintf(os.Stderr, "--- tail of the manager and gateway logs ---\n%s\n", tail(s.logFile.Name(), 40))
		}
	}()
	ctx := context.Background()
	if err := s.start(ctx); err != nil {
		return nil, nil, nil, err
	}
	fmt.Printf("  %9s %10s %12s %10s %7s %8s %10s %10s %10s %12s %12s %12s\n", "policies", "create", "all enforced", "settled", "changes",
		"via", "p50", "p99", "max", "apply call", "manager RSS", "gateway RSS")
	w := s.watchMemory(time.Now())
	defer w.close()
	from := 0
	for round, n := range sizes {
		f, mf, err := s.measureSize(ctx, w, vias, n, round, &from)
		figs, mem = append(figs, f...), append(mem, mf...)
		if err != nil {
			return figs, s.trace, mem, err
		}
	}
	fmt.Println("  create: creating the Services, EndpointSlices and policies (controller-runtime client, 16 at a time);" +
		" all enforced: until the gateway enforces the last policy of each kind;\n  settled: until every policy's status says Programmed at its generation (changes are timed after that);\n  p50/p99/max: one changed RateLimit applied (via kubectl: kubectl apply --server-side; via api: one merge patch) -> X-RateLimit-Limit shows it at the gateway" +
		" (polled every 2 ms); apply call: the apply command alone;\n  RSS: VmRSS from /proc/<pid>/status after the changes (peak VmHWM in the JSON)")
	return figs, s.trace, mem, nil
}

// measureSize populates the stack up to n policies, times the changes applied each way, and with
// -stack-keys runs the memory phases; from is the first memory sample of this size, advanced.
func (s *stack) measureSize(ctx context.Context, w *memWatch, vias []string, n, round int, from *int) ([]StackFig, []StackMemFig, error) {
	var figs []StackFig
	w.setPhase("populate")
	base, err := s.populate(ctx, n)
	if err != nil {
		return nil, nil, fmt.Errorf("%d policies: %w", n, err)
	}
	w.setPhase("timed changes")
	for vi, via := range vias {
		f, err := s.changes(ctx, base, s.o.changes, via, vi)
		if err != nil {
			return figs, nil, fmt.Errorf("%d policies: %w", n, err)
		}
		figs = append(figs, f)
		fmt.Printf("  %9d %9.1fs %11.1fs %9.1fs %7d %8s %8.1fms %8.1fms %8.1fms %10.1fms %8.0f MiB %8.0f MiB\n", f.Policies, f.CreateSecs,
			f.EnforcedSecs, f.SettledSecs, f.Changes, f.ApplyVia, f.P50Ms, f.P99Ms, f.MaxMs, f.ApplyCallP50Ms, f.ManagerRSSMiB, f.GatewayRSSMiB)
	}
	if s.o.stackKeys <= 0 {
		return figs, nil, nil
	}
	phases, err := s.memoryPhases(ctx, w, n, s.o.stackKeys, round)
	var mf StackMemFig
	mf, *from = w.fig(n, s.o.stackKeys, phases, *from)
	printMemFig(mf)
	if err != nil {
		return figs, []StackMemFig{mf}, fmt.Errorf("%d policies, memory: %w", n, err)
	}
	return figs, []StackMemFig{mf}, nil
}

// newStack prepares the stack's directory, log file (the -trace file when tracing) and free
// addresses; it starts nothing. close undoes it, also after an error.
func newStack(o options) (*stack, error) {
	s := &stack{o: o,
		http:     &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 4}},
		keysHTTP: &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 16}}}
	tmp, err := os.MkdirTemp("", "bench-control-")
	if err != nil {
		return s, err
	}
	s.closers = append(s.closers, func() { _ = os.RemoveAll(tmp) })
	logName := filepath.Join(tmp, "processes.log")
	if o.tracePath != "" {
		logName = o.tracePath
	}
	if s.logFile, err = os.Create(logName); err != nil {
		return s, err
	}
	s.closers = append(s.closers, func() { _ = s.logFile.Close() })
	absBin, err := filepath.Abs(o.bin)
	if err != nil {
		return s, err
	}
	addrs := make([]string, 6)
	for i := range addrs {
		if addrs[i], err = freeAddr(); err != nil {
			return s, err
		}
	}
	s.opts = localstack.Options{BinDir: absBin, Dir: tmp, Output: s.logFile,
		GatewayListen: addrs[0], GatewayHealth: addrs[1], GatewayMetrics: addrs[2],
		ManagerMetrics: addrs[3], ManagerHealth: addrs[4], ManagerStream: addrs[5]}
	return s, nil
}

// start starts the control plane, the manager and the gateway (as `make run-local` runs them), one
// backend for every Service, and the namespaces.
func (s *stack) start(ctx context.Context) error {
	fmt.Printf("\nreal stack: local control plane (kube-apiserver + etcd), %s/manager and %s/gateway as processes (--local-dev)\n", s.o.bin, s.o.bin)
	cp, err := controlplane.Start()
	if err != nil {
		return err
	}
	s.closers = append(s.closers, func() { _ = cp.Stop() })
	cp.Config.QPS, cp.Config.Burst = 1000, 2000
	if s.ls, err = localstack.Start(s.opts, cp); err != nil {
		return err
	}
	s.closers = append(s.closers, s.ls.Close)
	scheme := k8sruntime.NewScheme()
	utilruntime.Must(clientgoscheme.AddToScheme(scheme))
	utilruntime.Must(v1alpha1.AddToScheme(scheme))
	if s.k8s, err = client.New(cp.Config, client.Options{Scheme: scheme}); err != nil {
		return err
	}
	if err := s.startProcesses(ctx); err != nil {
		return err
	}
	for i := range namespaces {
		err := s.k8s.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("ns%d", i)}})
		if err != nil && !apierrors.IsAlreadyExists(err) {
			return err
		}
	}
	return nil
}

// startProcesses starts the manager (with debug logs when tracing), the gateway (with --pprof for
// -heap-profiles) and the backend.
func (s *stack) startProcesses(ctx context.Context) error {
	var managerArgs []string
	if s.o.tracePath != "" {
		managerArgs = []string{"--zap-log-level=debug", "--zap-time-encoding=rfc3339nano"}
	}
	if err := s.ls.StartManager(ctx, managerArgs...); err != nil {
		return err
	}
	var gatewayArgs []string
	if s.o.heapProfiles != "" {
		gatewayArgs = append(gatewayArgs, "--pprof")
	}
	if err := s.ls.StartGateway(gatewayArgs...); err != nil {
		return err
	}
	// One backend for every Service: each Service's FQDN endpoint <name>.localhost dials loopback.
	bl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	bs := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok\n") }),
		ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = bs.Serve(bl) }()
	s.closers = append(s.closers, func() { _ = bs.Close() })
	s.backendPort = int32(bl.Addr().(*net.TCPAddr).Port)
	return nil
}
