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
	"bufio"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
)

// Result is one benchmark line of `go test -bench` output.
type Result struct {
	Pkg   string // from the last "pkg:" line before it; "" if none
	Name  string // without the -N GOMAXPROCS suffix, e.g. "BenchmarkFoo/ours"
	Procs int    // GOMAXPROCS from the suffix; 1 when there is none
	// Values maps a unit ("ns/op", "B/op", "allocs/op", or any b.ReportMetric unit) to its value.
	Values map[string]float64
}

// Parse reads `go test -bench` output and returns its benchmark lines in order. Lines that are not
// benchmark results (headers, PASS, ok, logs, failures) are skipped.
func Parse(r io.Reader) ([]Result, error) {
	var (
		out []Result
		pkg string
	)
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64*1024), 1024*1024)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if p, ok := strings.CutPrefix(line, "pkg:"); ok {
			pkg = strings.TrimSpace(p)
			continue
		}
		if res, ok := parseLine(line); ok {
			res.Pkg = pkg
			out = append(out, res)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read benchmark output: %w", err)
	}
	return out, nil
}

// parseLine parses "BenchmarkName-N  iterations  value unit  value unit ...".
func parseLine(line string) (Result, bool) {
	f := strings.Fields(line)
	if len(f) < 4 || len(f)%2 != 0 || !strings.HasPrefix(f[0], "Benchmark") {
		return Result{}, false
	}
	if n, err := strconv.ParseInt(f[1], 10, 64); err != nil || n <= 0 {
		return Result{}, false
	}
	name, procs := splitProcs(f[0])
	res := Result{Name: name, Procs: procs, Values: make(map[string]float64, (len(f)-2)/2)}
	for i := 2; i < len(f); i += 2 {
		v, err := strconv.ParseFloat(f[i], 64)
		if err != nil || v < 0 || math.IsInf(v, 0) || math.IsNaN(v) {
			return Result{}, false
		}
		res.Values[f[i+1]] = v
	}
	return res, true
}

// splitProcs strips the "-N" suffix go test adds when GOMAXPROCS is not 1. A benchmark whose own
// name ends in "-digits", run with -cpu=1, is indistinguishable and loses that part too.
func splitProcs(name string) (string, int) {
	i := strings.LastIndexByte(name, '-')
	if i < 0 || i == len(name)-1 {
		return name, 1
	}
	n, err := strconv.Atoi(name[i+1:])
	if err != nil || n <= 0 || strings.ContainsAny(name[i+1:], "+-") {
		return name, 1
	}
	return name[:i], n
}
