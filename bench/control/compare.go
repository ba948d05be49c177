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
	"encoding/json"
	"fmt"
	"os"
)

// Comparison is this run beside another run's report (-compare-json), figure by figure. The stack
// holds a whole control plane, so two builds run one after the other rather than in alternating
// rounds as bench-gateway's do: compare runs made on an equally quiet machine.
type Comparison struct {
	File string       `json:"file"`
	Rows []CompareRow `json:"rows"`
}

// CompareRow is one figure of both runs; Ratio is this run's over the other's (below 1: this build
// is faster or smaller).
type CompareRow struct {
	Figure string  `json:"figure"`
	This   float64 `json:"this"`
	That   float64 `json:"that"`
	Ratio  float64 `json:"ratio"`
}

// compareReports pairs the figures of rep with those of the report in file that have the same size
// (and, on the stack, the same way of applying).
func compareReports(file string, rep *Report) (*Comparison, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	var old Report
	if err := json.Unmarshal(data, &old); err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	c := &Comparison{File: file}
	add := func(figure string, this, that float64) {
		r := CompareRow{Figure: figure, This: this, That: that}
		if that != 0 {
			r.Ratio = this / that
		}
		c.Rows = append(c.Rows, r)
	}
	for _, f := range rep.Compile {
		for _, o := range old.Compile {
			if o.Policies == f.Policies {
				add(fmt.Sprintf("compile %d policies, median ms", f.Policies), f.MedianMs, o.MedianMs)
				add(fmt.Sprintf("snapshot %d policies, MiB", f.Policies), mib(f.SnapshotBytes), mib(o.SnapshotBytes))
				add(fmt.Sprintf("gateway apply %d policies, ms", f.Policies), f.ApplyMs, o.ApplyMs)
			}
		}
	}
	if m, o := rep.Memory, old.Memory; m != nil && o != nil && m.Policies == o.Policies && m.Keys == o.Keys {
		add(fmt.Sprintf("in-process RSS, %d policies + %d keys, MiB", m.Policies, m.Keys), m.RSSKeysMiB, o.RSSKeysMiB)
	}
	for _, f := range rep.Stack {
		for _, o := range old.Stack {
			if o.Policies == f.Policies && o.ApplyVia == f.ApplyVia {
				add(fmt.Sprintf("stack %d, %s: apply->enforced p50 ms", f.Policies, f.ApplyVia), f.P50Ms, o.P50Ms)
				add(fmt.Sprintf("stack %d, %s: apply->enforced p99 ms", f.Policies, f.ApplyVia), f.P99Ms, o.P99Ms)
				add(fmt.Sprintf("stack %d, %s: manager peak RSS MiB", f.Policies, f.ApplyVia), f.ManagerHWMMiB, o.ManagerHWMMiB)
				add(fmt.Sprintf("stack %d, %s: gateway peak RSS MiB", f.Policies, f.ApplyVia), f.GatewayHWMMiB, o.GatewayHWMMiB)
			}
		}
	}
	for _, f := range rep.StackMem {
		for _, o := range old.StackMem {
			if o.Policies == f.Policies && o.Keys == f.Keys {
				add(fmt.Sprintf("stack %d + %d keys: gateway peak RSS MiB", f.Policies, f.Keys), f.GatewayHWMMiB, o.GatewayHWMMiB)
				add(fmt.Sprintf("stack %d + %d keys: gateway live heap max MiB", f.Policies, f.Keys), f.MaxGatewayLiveMiB, o.MaxGatewayLiveMiB)
			}
		}
	}
	return c, nil
}

func printComparison(c *Comparison) {
	fmt.Printf("\nthis run / %s (run before it; ratio < 1 favours this build):\n", c.File)
	fmt.Printf("  %-52s %12s %12s %8s\n", "figure", "this", "that", "ratio")
	for _, r := range c.Rows {
		fmt.Printf("  %-52s %12.1f %12.1f %7.2fx\n", r.Figure, r.This, r.That, r.Ratio)
	}
}
