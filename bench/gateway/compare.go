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
)

// comparePrefix names the configurations served by -compare-bin's gateway.
const comparePrefix = "compare-"

// Comparison is this build over another build (-compare-bin), configuration by configuration, both
// measured in the same alternating rounds so that drift on the machine hits them alike.
type Comparison struct {
	Bin    string  `json:"bin"`
	Ratios []Ratio `json:"ratios"`
}

// Ratio is this build's figure over the other build's for one configuration: req/s above 1 means
// this build is faster; CPU per request and latencies below 1 mean it is cheaper and quicker.
type Ratio struct {
	Name      string    `json:"name"`
	RPS       float64   `json:"rps"`
	RPSRounds []float64 `json:"rpsRounds"`
	CPUPerReq float64   `json:"cpuPerRequest"`
	P50       float64   `json:"p50"`
	P99       float64   `json:"p99"`
}

// compareBuilds pairs each configuration of the other build with this build's of the same name.
func compareBuilds(bin string, figs []Figures) *Comparison {
	c := &Comparison{Bin: bin}
	for _, old := range figs {
		name, ok := strings.CutPrefix(old.Name, comparePrefix)
		if !ok {
			continue
		}
		cur := byName(figs, name)
		r := Ratio{Name: name, RPS: ratio(cur.RPS, old.RPS), CPUPerReq: ratio(cur.CPUPerReqUs, old.CPUPerReqUs),
			P50: ratio(cur.P50us, old.P50us), P99: ratio(cur.P99us, old.P99us)}
		for i := range min(len(cur.RPSRounds), len(old.RPSRounds)) {
			r.RPSRounds = append(r.RPSRounds, ratio(cur.RPSRounds[i], old.RPSRounds[i]))
		}
		c.Ratios = append(c.Ratios, r)
	}
	return c
}

func ratio(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return a / b
}

func printComparison(c *Comparison) {
	fmt.Printf("\nthis build / -compare-bin %s (same rounds; req/s > 1 and the rest < 1 favour this build):\n", c.Bin)
	fmt.Printf("  %-19s %8s %8s %8s %8s   %s\n", "config", "req/s", "cpu/req", "p50", "p99", "req/s per round")
	for _, r := range c.Ratios {
		rounds := make([]string, len(r.RPSRounds))
		for i, v := range r.RPSRounds {
			rounds[i] = fmt.Sprintf("%.2f", v)
		}
		fmt.Printf("  %-19s %7.2fx %7.2fx %7.2fx %7.2fx   %s\n", r.Name, r.RPS, r.CPUPerReq, r.P50, r.P99, strings.Join(rounds, " "))
	}
}
