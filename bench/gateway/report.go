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
	"strings"
	"time"

	"resilience.dev/operator/bench/loadgen"
)

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
	VsNginx      float64 `json:"rpsVsNginx"`
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
	// Store is what the gateway process counted of the Global configuration's store calls; absent
	// without redis-server.
	Store *StoreFigures `json:"store,omitempty"`
	// Compare is this build against -compare-bin's, measured in the same rounds; absent without it.
	Compare *Comparison `json:"compare,omitempty"`
	// AnchorVersions are the anchors' own words on their versions; Anchors the gateway (all three
	// policies) over each anchor of its protocol, in the same rounds.
	AnchorVersions []string      `json:"anchorVersions,omitempty"`
	Anchors        []AnchorRatio `json:"anchors,omitempty"`
}

// AnchorRatio is the gateway with all three policies over an anchor: req/s (> 1 favours the
// gateway), CPU per request (< 1 favours it) and the open-loop p99 difference (< 0 favours it).
type AnchorRatio struct {
	Gateway   string  `json:"gateway"`
	Anchor    string  `json:"anchor"`
	RPS       float64 `json:"rps"`
	CPUPerReq float64 `json:"cpuPerRequest"`
	P99DiffUs float64 `json:"p99DiffUs"`
}

// anchorRatios compares the gateway's configurations with all three policies to the anchors of their
// protocol that ran.
func anchorRatios(figs []Figures) []AnchorRatio {
	var out []AnchorRatio
	for _, pair := range [][2]string{{"gateway-3-policies", "nginx"}, {"gateway-3-policies", "haproxy"}, {"grpc-gateway-3-policies", "grpc-nginx"}} {
		gw, an := byName(figs, pair[0]), byName(figs, pair[1])
		if gw.Name == "" || an.Name == "" {
			continue
		}
		out = append(out, AnchorRatio{Gateway: gw.Name, Anchor: an.Name, RPS: ratio(gw.RPS, an.RPS),
			CPUPerReq: ratio(gw.CPUPerReqUs, an.CPUPerReqUs), P99DiffUs: gw.P99us - an.P99us})
	}
	return out
}

// Goal is one goal of the issue, reported and not asserted.
type Goal = loadgen.Goal

// goals are the goals for the gateway with all three policies.
func goals(figs []Figures, rate float64) []Goal {
	full := byName(figs, "gateway-3-policies")
	g := []Goal{
		{Goal: "gateway with all three policies >= 0.30x the direct backend's req/s", Actual: fmt.Sprintf("%.2fx", full.VsDirect), Met: full.VsDirect >= 0.30},
		{Goal: "gateway with all three policies >= 1.5x the bare reverse proxy's req/s", Actual: fmt.Sprintf("%.2fx", full.VsProxy), Met: full.VsProxy >= 1.5},
		{Goal: fmt.Sprintf("p99 at %.0f req/s at most 1 ms above direct", rate), Actual: fmt.Sprintf("%+.0f us", full.P99OverDirUs), Met: full.P99OverDirUs <= 1000},
	}
	if nginx := byName(figs, "nginx"); nginx.Name != "" {
		d := full.P99us - nginx.P99us
		g = append(g, Goal{Goal: fmt.Sprintf("p99 at %.0f req/s no worse than nginx's (HTTP/1.1, same rounds)", rate), Actual: fmt.Sprintf("%+.0f us", d), Met: d <= 0})
	}
	if grpcGW := byName(figs, "grpc-gateway-3-policies"); grpcGW.Name != "" {
		g = append(g, Goal{Goal: "gRPC: gateway with all three policies >= 0.30x direct calls/s", Actual: fmt.Sprintf("%.2fx", grpcGW.VsDirect), Met: grpcGW.VsDirect >= 0.30})
		if n := byName(figs, "grpc-nginx"); n.Name != "" {
			d := grpcGW.P99us - n.P99us
			g = append(g, Goal{Goal: fmt.Sprintf("gRPC: p99 at %.0f calls/s no worse than nginx grpc_pass's", rate), Actual: fmt.Sprintf("%+.0f us", d), Met: d <= 0})
		}
	}
	return g
}

// byName is the figures of configuration name, or zero figures.
func byName(figs []Figures, name string) Figures {
	for _, f := range figs {
		if f.Name == name {
			return f
		}
	}
	return Figures{}
}

// printReport prints the table of every configuration, the per-round figures, the goals and, with
// -compare-bin, the ratio table.
func printReport(rep *Report, configs []config) {
	figs := rep.Configs
	w := 19
	for _, f := range figs {
		w = max(w, len(f.Name))
	}
	fmt.Printf("\n%-*s %-46s %10s %9s %9s %9s %8s %9s %9s %9s %8s %8s %9s %6s\n", w, "config", "", "req/s", "x direct", "x proxy",
		"x nginx", "cpu/req", "p50", "p99", "p99.9", "p99-dir", "lag p99", "open req", "errors")
	for i, f := range figs {
		fmt.Printf("%-*s %-46s %10.0f %9s %9s %9s %8s %9s %9s %9s %8s %8s %9d %6d\n", w, f.Name, configs[i].desc, f.RPS, fmtX(f.VsDirect), fmtX(f.VsProxy),
			fmtX(f.VsNginx), fmtUS(f.CPUPerReqUs), fmtUS(f.P50us), fmtUS(f.P99us), fmtUS(f.P999us), fmtUS(f.P99OverDirUs), fmtUS(f.SendLagP99us), f.OpenRequests, f.Errors+f.Non2xx)
	}
	fmt.Printf("\ncpu/req: CPU time of the serving process and its children (the proxy; the backend for direct) per closed-loop request or call; gRPC rows compare with gRPC rows\n")
	if len(rep.AnchorVersions) > 0 {
		fmt.Printf("anchors: %s\n", strings.Join(rep.AnchorVersions, "; "))
	}
	for _, a := range rep.Anchors {
		fmt.Printf("  %-24s / %-11s req/s %.2fx   cpu/req %.2fx   p99 %s\n", a.Gateway, a.Anchor, a.RPS, a.CPUPerReq, fmtUS(a.P99DiffUs))
	}
	printRounds(figs, rep.Rounds)
	fmt.Printf("\nlatency: open loop at %.0f req/s, from the scheduled send time, all rounds pooled; lag = how late the load generator started a send (included in the latency)\n", rep.OpenRate)
	loadgen.PrintGoals(rep.Goals, 72)
	if rep.Compare != nil {
		printComparison(rep.Compare)
	}
}

// printRounds prints each round's req/s and p99, to show the spread the means hide.
func printRounds(figs []Figures, rounds int) {
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
}

// fmtX prints a ratio, or "-" without one.
func fmtX(v float64) string {
	if v == 0 {
		return "-"
	}
	return fmt.Sprintf("%.2fx", v)
}

func fmtUS(v float64) string {
	if v >= 10000 || v <= -10000 {
		return fmt.Sprintf("%.1fms", v/1000)
	}
	return fmt.Sprintf("%.0fus", v)
}
