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
	"fmt"
	"time"

	"resilience.dev/operator/bench/loadgen"
)

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
	// Compare is this run beside -compare-json's report; absent without it.
	Compare *Comparison `json:"compare,omitempty"`
}

// CompileFig is a one-shot compile (new(compile.Compiler).Compile) at one size.
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

// notes explain how the figures were taken; they go into the JSON.
var notes = []string{
	"compile: synthetic input, n Services with 3 IPv4 endpoints and one policy each, kinds in turn; no test files imported",
	"memory in-process: a child process holding gateway.New with an in-memory upstream (no sockets); the keyed limit is on svc0 with maxKeys = keys",
	"stack: Services are headless (the local API server's Service CIDR holds only ~250 cluster IPs); one in-process backend behind every <svc>.localhost FQDN endpoint",
	"stack RSS: VmRSS of the manager and gateway processes, found in /proc by their unique listen-address arguments",
	"stack memory: VmRSS every second; the gateway's live heap (go_gc_heap_live_bytes) and heap in use scraped from its /metrics every 15 s and at each phase end; keys through a keyed RateLimit on Service ns0/keyed (one more policy)",
}

// goals are the goals that the figures of this run speak to.
func goals(rep *Report) []Goal {
	var gs []Goal
	for _, f := range rep.Compile {
		if f.Policies == 10000 {
			gs = append(gs, Goal{Goal: "compiling 10,000 policies under 1 s", Actual: fmt.Sprintf("%.0f ms (median)", f.MedianMs), Met: f.MedianMs < 1000})
		}
	}
	for _, f := range rep.Stack {
		if f.Policies == 1000 {
			gs = append(gs, Goal{Goal: "apply->enforced p99 under 200 ms with 1,000 policies (apply via " + f.ApplyVia + ")",
				Actual: fmt.Sprintf("%.0f ms", f.P99Ms), Met: f.P99Ms < 200})
		}
	}
	for _, f := range rep.StackMem {
		if f.Policies == 10000 && f.Keys == 100000 {
			gs = append(gs, Goal{Goal: "gateway memory with 10,000 policies and 100,000 keys under 200 MiB (real gateway process, peak VmHWM)",
				Actual: fmt.Sprintf("%.0f MiB", f.GatewayHWMMiB), Met: f.GatewayHWMMiB < 200})
		}
	}
	if m := rep.Memory; m != nil && m.Policies == 10000 && m.Keys == 100000 {
		gs = append(gs, Goal{Goal: "gateway memory with 10,000 policies and 100,000 keys under 200 MiB (in-process RSS)",
			Actual: fmt.Sprintf("%.0f MiB", m.RSSKeysMiB), Met: m.RSSKeysMiB < 200})
	}
	return gs
}

func mib[T int | int64 | uint64](b T) float64 { return float64(b) / (1 << 20) }

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
