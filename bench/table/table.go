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
	"io"
	"math"
	"path"
	"slices"
	"strings"
)

// Measure is the median of one benchmark's runs.
type Measure struct {
	Name        string   `json:"name"` // sub-benchmark name: "ours", "xrate", ...
	NsPerOp     *float64 `json:"ns_per_op,omitempty"`
	BytesPerOp  *float64 `json:"bytes_per_op,omitempty"`
	AllocsPerOp *float64 `json:"allocs_per_op,omitempty"`
	Runs        int      `json:"runs"`
}

// Row pairs our benchmark with one anchor (or none).
type Row struct {
	Package   string   `json:"package"`
	Benchmark string   `json:"benchmark"` // e.g. "BenchmarkFoo", or a full name when it has no "ours"
	Procs     int      `json:"procs"`
	Ours      Measure  `json:"ours"`
	Anchor    *Measure `json:"anchor,omitempty"`
	Ratio     *float64 `json:"ratio,omitempty"` // ours ns/op / anchor ns/op
}

type benchKey struct {
	pkg, name string
	procs     int
}

// Rows takes the median of repeated runs (-count) and pairs every "<parent>/ours" with each sibling
// "<parent>/<anchor>" of the same package and GOMAXPROCS, one row per anchor. A benchmark that is
// neither an "ours" nor the sibling of one gets a row of its own, without anchor. Rows follow the
// order in which their benchmarks first appear.
func Rows(results []Result) []Row {
	var order []benchKey
	runs := map[benchKey][]Result{}
	children := map[benchKey][]benchKey{} // by parent name, in order of appearance
	for _, r := range results {
		k := benchKey{r.Pkg, r.Name, r.Procs}
		if _, ok := runs[k]; !ok {
			order = append(order, k)
			if parent, _, ok := splitLeaf(r.Name); ok {
				pk := benchKey{r.Pkg, parent, r.Procs}
				children[pk] = append(children[pk], k)
			}
		}
		runs[k] = append(runs[k], r)
	}
	var rows []Row
	done := map[benchKey]bool{}
	for _, k := range order {
		if done[k] {
			continue
		}
		parent, _, _ := splitLeaf(k.name)
		ok := benchKey{k.pkg, parent + "/ours", k.procs}
		if _, paired := runs[ok]; !paired || parent == k.name {
			rows = append(rows, Row{Package: k.pkg, Benchmark: k.name, Procs: k.procs, Ours: median("ours", runs[k])})
			done[k] = true
			continue
		}
		ours := median("ours", runs[ok])
		done[ok] = true
		n := len(rows)
		for _, ak := range children[benchKey{k.pkg, parent, k.procs}] {
			if ak == ok {
				continue
			}
			_, leaf, _ := splitLeaf(ak.name)
			a := median(leaf, runs[ak])
			rows = append(rows, Row{Package: k.pkg, Benchmark: parent, Procs: k.procs, Ours: ours, Anchor: &a, Ratio: ratio(ours, a)})
			done[ak] = true
		}
		if len(rows) == n {
			rows = append(rows, Row{Package: k.pkg, Benchmark: parent, Procs: k.procs, Ours: ours})
		}
	}
	return rows
}

// splitLeaf splits "BenchmarkFoo/bar/ours" into "BenchmarkFoo/bar" and "ours"; ok is false for a
// name without sub-benchmark, which is returned whole as parent.
func splitLeaf(name string) (parent, leaf string, ok bool) {
	i := strings.LastIndexByte(name, '/')
	if i < 0 {
		return name, "", false
	}
	return name[:i], name[i+1:], true
}

func ratio(ours, anchor Measure) *float64 {
	if ours.NsPerOp == nil || anchor.NsPerOp == nil || *anchor.NsPerOp == 0 {
		return nil
	}
	r := *ours.NsPerOp / *anchor.NsPerOp
	return &r
}

func median(name string, rs []Result) Measure {
	m := Measure{Name: name, Runs: len(rs)}
	m.NsPerOp = medianOf(rs, "ns/op")
	m.BytesPerOp = medianOf(rs, "B/op")
	m.AllocsPerOp = medianOf(rs, "allocs/op")
	return m
}

// medianOf returns the median of unit over the runs that report it; with an even count, the mean
// of the middle two.
func medianOf(rs []Result, unit string) *float64 {
	var vs []float64
	for _, r := range rs {
		if v, ok := r.Values[unit]; ok {
			vs = append(vs, v)
		}
	}
	if len(vs) == 0 {
		return nil
	}
	slices.Sort(vs)
	m := vs[len(vs)/2]
	if len(vs)%2 == 0 {
		m = (vs[len(vs)/2-1] + m) / 2
	}
	return &m
}

// Markdown writes rows as a markdown table. The benchmark column is "<package base>.<benchmark>",
// with "-N" added when the input ran it at several GOMAXPROCS values.
func Markdown(w io.Writer, rows []Row) error {
	procs := map[[2]string]map[int]bool{}
	for _, r := range rows {
		k := [2]string{r.Package, r.Benchmark}
		if procs[k] == nil {
			procs[k] = map[int]bool{}
		}
		procs[k][r.Procs] = true
	}
	var b strings.Builder
	b.WriteString("| benchmark | ours ns/op | ours B/op | ours allocs/op | anchor | anchor ns/op | anchor allocs/op | ratio |\n")
	b.WriteString("|---|---:|---:|---:|---|---:|---:|---:|\n")
	for _, r := range rows {
		name := r.Benchmark
		if r.Package != "" {
			name = path.Base(r.Package) + "." + name
		}
		if len(procs[[2]string{r.Package, r.Benchmark}]) > 1 {
			name = fmt.Sprintf("%s-%d", name, r.Procs)
		}
		anchor, ans, aallocs, rat := "-", "-", "-", "-"
		if r.Anchor != nil {
			anchor, ans, aallocs = r.Anchor.Name, ns(r.Anchor.NsPerOp), count(r.Anchor.AllocsPerOp)
		}
		if r.Ratio != nil {
			rat = fmt.Sprintf("%.2fx", *r.Ratio)
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s | %s | %s |\n", name,
			ns(r.Ours.NsPerOp), count(r.Ours.BytesPerOp), count(r.Ours.AllocsPerOp), anchor, ans, aallocs, rat)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// ns formats ns/op with three significant digits at most below 1000.
func ns(v *float64) string {
	switch {
	case v == nil:
		return "-"
	case *v >= 100:
		return fmt.Sprintf("%.0f", *v)
	case *v >= 10:
		return fmt.Sprintf("%.1f", *v)
	default:
		return fmt.Sprintf("%.2f", *v)
	}
}

// count formats B/op and allocs/op: whole numbers as such, a median between two as one decimal.
func count(v *float64) string {
	switch {
	case v == nil:
		return "-"
	case *v == math.Trunc(*v):
		return fmt.Sprintf("%.0f", *v)
	default:
		return fmt.Sprintf("%.1f", *v)
	}
}
