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
//  1. compile: a one-shot compile.Compiler on synthetic input (n Services with three endpoints and
//     one policy each, the kinds in turn) for each -compile size: time (min and median of -runs) and
//     the size of the snapshot as JSON;
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
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/go-logr/logr"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	"resilience.dev/operator/bench/loadgen"
)

const namespaces = 10

// options are the flags of a run.
type options struct {
	bin          string
	compileSizes string
	runs         int
	memPolicies  int
	keys         int
	stackSizes   string
	changes      int
	applyVia     string
	jsonPath     string
	// stackKeys: distinct X-User-ID values driven through the real gateway at each stack size (0: none).
	stackKeys int
	// heapProfiles: a directory for the gateway's heap profiles ("" for none).
	heapProfiles string
	// tracePath: where the processes' logs are kept ("" to trace nothing).
	tracePath string
	// compareJSON: another run's report to print ratios against ("" for none).
	compareJSON string
}

func main() {
	var o options
	flag.StringVar(&o.bin, "bin", "bin", "directory holding the manager and gateway binaries")
	flag.StringVar(&o.compileSizes, "compile", "1000,10000", "policy counts to compile")
	flag.IntVar(&o.runs, "runs", 5, "compile runs per size")
	flag.IntVar(&o.memPolicies, "mem-policies", 10000, "policies in force for the in-process memory figure (0 skips it)")
	flag.IntVar(&o.keys, "keys", 100000, "distinct X-User-ID values driven through a keyed limit for the memory figure")
	flag.StringVar(&o.stackSizes, "stack", "1000", "policy counts on the real stack, ascending (empty skips the stack)")
	flag.IntVar(&o.stackKeys, "stack-keys", 100000, "after the timed changes at each stack size, drive this many distinct X-User-ID values through a keyed RateLimit on the real gateway, "+
		"then 5 more changes and 30 s idle, reading the processes' RSS and the gateway's live heap in each phase (0 skips it)")
	flag.IntVar(&o.changes, "changes", 50, "policy changes timed per stack size")
	flag.StringVar(&o.applyVia, "apply", "kubectl,api", "how changes are applied, each timed in turn: kubectl (kubectl apply --server-side) and/or api (one merge patch from this process)")
	flag.StringVar(&o.jsonPath, "json", "bin/bench-control.json", "write the results here as JSON")
	memChild := flag.Bool("mem-child", false, "internal: measure memory in this process and print it as JSON")
	flag.StringVar(&o.heapProfiles, "heap-profiles", "", "run the gateway with --pprof and keep its heap profile (after a GC) at the end of each memory phase in this directory")
	flag.StringVar(&o.tracePath, "trace", "", "trace the real stack: run the manager with debug logs, keep the processes' logs in this file, "+
		"and line up per change the API write, the manager's informer event, the build, the gateway's receipt and apply, and enforcement")
	flag.StringVar(&o.compareJSON, "compare-json", "", "another run's JSON report (another build's, say): print this run's figures over that run's, and put them in the JSON")
	flag.Parse()
	log.SetFlags(0)
	ctrllog.SetLogger(logr.Discard()) // the client's API warnings would interleave with the tables
	if *memChild {
		m, err := measureMemory(o.memPolicies, o.keys)
		if err != nil {
			log.Fatal(err)
		}
		_ = json.NewEncoder(os.Stdout).Encode(m)
		return
	}
	if err := run(o); err != nil {
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

func run(o options) error {
	rep := &Report{Started: time.Now().UTC(), GoVersion: runtime.Version(), CPUs: runtime.NumCPU(), Notes: notes}
	fmt.Printf("bench-control: %d CPUs, %s\n", rep.CPUs, rep.GoVersion)
	if err := compileFigures(rep, o); err != nil {
		return err
	}
	if o.memPolicies > 0 {
		if err := memoryFigure(rep, o); err != nil {
			return err
		}
	}
	ss, err := sizes(o.stackSizes)
	if err != nil {
		return err
	}
	if len(ss) > 0 {
		figs, trace, mem, err := runStack(o, ss)
		rep.Stack, rep.Trace, rep.StackMem = figs, trace, mem
		if err != nil {
			return err
		}
	}
	rep.Goals = goals(rep)
	loadgen.PrintGoals(rep.Goals, 86)
	if o.compareJSON != "" {
		if rep.Compare, err = compareReports(o.compareJSON, rep); err != nil {
			return err
		}
		printComparison(rep.Compare)
	}
	if o.jsonPath != "" {
		return loadgen.WriteJSON(o.jsonPath, rep)
	}
	return nil
}

// compileFigures compiles and applies each -compile size.
func compileFigures(rep *Report, o options) error {
	cs, err := sizes(o.compileSizes)
	if err != nil {
		return err
	}
	fmt.Println("\ncompile (a one-shot compile.Compiler on synthetic input; gateway Apply of the result into a fresh in-process gateway):")
	fmt.Printf("  %9s %5s %10s %10s %14s %10s\n", "policies", "runs", "min", "median", "snapshot JSON", "apply")
	for _, n := range cs {
		f, err := measureCompile(n, o.runs)
		if err != nil {
			return err
		}
		rep.Compile = append(rep.Compile, f)
		fmt.Printf("  %9d %5d %8.1fms %8.1fms %11.2f MiB %8.1fms\n", n, f.Runs, f.MinMs, f.MedianMs, mib(f.SnapshotBytes), f.ApplyMs)
	}
	return nil
}

// memoryFigure measures the in-process gateway's memory in a child process (this binary with
// -mem-child), so that nothing this process allocated counts.
func memoryFigure(rep *Report, o options) error {
	self, err := os.Executable()
	if err != nil {
		return err
	}
	out, err := exec.Command(self, "-mem-child", "-mem-policies", strconv.Itoa(o.memPolicies), "-keys", strconv.Itoa(o.keys)).Output()
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
	return nil
}
