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
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// sample is captured `go test -bench . -benchmem -count 3` output over several packages, edited
// to cover the cases: medians of 3 and of 2 runs, two anchors, no anchor, no -N suffix, a -cpu list,
// a custom metric, no -benchmem, a failure and log lines, and the same name in two packages.
const sample = `goos: linux
goarch: amd64
pkg: resilience.dev/operator/internal/patterns/bulkhead
cpu: AMD EPYC 7B13
BenchmarkAcquireRelease/ours-2         	100000000	        16.00 ns/op	       0 B/op	       0 allocs/op
BenchmarkAcquireRelease/ours-2         	100000000	        18.00 ns/op	       0 B/op	       0 allocs/op
BenchmarkAcquireRelease/ours-2         	100000000	        15.00 ns/op	       0 B/op	       0 allocs/op
BenchmarkAcquireRelease/xsync-2        	37538964	        26.00 ns/op	       0 B/op	       0 allocs/op
BenchmarkAcquireRelease/xsync-2        	37538964	        30.00 ns/op	       0 B/op	       0 allocs/op
BenchmarkAcquireRelease/xsync-2        	37538964	        28.00 ns/op	       0 B/op	       0 allocs/op
PASS
ok  	resilience.dev/operator/internal/patterns/bulkhead	11.713s
goos: linux
goarch: amd64
pkg: resilience.dev/operator/internal/patterns/hedge
cpu: AMD EPYC 7B13
BenchmarkDo/ours-2      	  511840	      4406 ns/op	     584 B/op	       8 allocs/op
BenchmarkDo/ours-2      	  511840	      4500 ns/op	     600 B/op	       9 allocs/op
BenchmarkAcquireRelease/ours-2         	100000000	        99.00 ns/op	       0 B/op	       0 allocs/op
    hedge_test.go:12: some log line
--- FAIL: BenchmarkBroken/ours
BenchmarkBroken/ours-2 	--- FAIL: oops
BenchmarkTotal-2   	    1000	      1234567 ns/op	      10 B/op	       1 allocs/op
FAIL
pkg: resilience.dev/operator/internal/patterns/ratelimit
BenchmarkAllow/gobreaker 	 5000000	        40.00 ns/op	       0 B/op	       0 allocs/op
BenchmarkAllow/ours      	 9000000	        10.00 ns/op	       0 B/op	       0 allocs/op
BenchmarkAllow/xrate     	 5000000	        50.00 ns/op	       8 B/op	       1 allocs/op
BenchmarkKeyed/ours-2    	 1000	        12.5 ns/op	   3.00 req/op	       0 B/op	       0 allocs/op
BenchmarkKeyed/ours-4    	 1000	        7.5 ns/op	   3.00 req/op	       0 B/op	       0 allocs/op
BenchmarkPlain/ours-4   	 1000	        12.5 ns/op
BenchmarkGet/size-64/ours-2   	 1000	        3.333 ns/op	       0 B/op	       0 allocs/op
`

func f(v float64) *float64 { return &v }

func TestParseLine(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		desc string
		line string
		want Result
		ok   bool
	}{
		{desc: "with -2 suffix", line: "BenchmarkFoo/ours-2  \t 100\t 16.5 ns/op\t 0 B/op\t 0 allocs/op",
			want: Result{Name: "BenchmarkFoo/ours", Procs: 2, Values: map[string]float64{"ns/op": 16.5, "B/op": 0, "allocs/op": 0}}, ok: true},
		{desc: "no suffix", line: "BenchmarkFoo/xrate 100 3 ns/op",
			want: Result{Name: "BenchmarkFoo/xrate", Procs: 1, Values: map[string]float64{"ns/op": 3}}, ok: true},
		{desc: "dash inside a name", line: "BenchmarkFoo/size-64/ours-16 100 3 ns/op",
			want: Result{Name: "BenchmarkFoo/size-64/ours", Procs: 16, Values: map[string]float64{"ns/op": 3}}, ok: true},
		{desc: "trailing dash", line: "BenchmarkFoo- 100 3 ns/op",
			want: Result{Name: "BenchmarkFoo-", Procs: 1, Values: map[string]float64{"ns/op": 3}}, ok: true},
		{desc: "custom metric", line: "BenchmarkFoo-2 100 3 ns/op 7 req/s",
			want: Result{Name: "BenchmarkFoo", Procs: 2, Values: map[string]float64{"ns/op": 3, "req/s": 7}}, ok: true},
		{desc: "failure", line: "BenchmarkFoo-2 --- FAIL: oops"},
		{desc: "name only (log output follows)", line: "BenchmarkFoo-2"},
		{desc: "odd fields", line: "BenchmarkFoo-2 100 3 ns/op 0"},
		{desc: "zero iterations", line: "BenchmarkFoo-2 0 3 ns/op"},
		{desc: "NaN value", line: "BenchmarkFoo-2 100 NaN ns/op"},
		{desc: "negative value", line: "BenchmarkFoo-2 100 -1 ns/op"},
		{desc: "not a benchmark", line: "ok  resilience.dev/x 1.0s"},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			got, ok := parseLine(tc.line)
			if ok != tc.ok {
				t.Fatalf("parseLine(%q) ok = %v, want %v", tc.line, ok, tc.ok)
			}
			if diff := cmp.Diff(tc.want, got); ok && diff != "" {
				t.Errorf("parseLine(%q) (-want +got):\n%s", tc.line, diff)
			}
		})
	}
}

func TestParsePackages(t *testing.T) {
	t.Parallel()
	rs, err := Parse(strings.NewReader(sample))
	if err != nil {
		t.Fatal(err)
	}
	if len(rs) != 17 {
		t.Fatalf("parsed %d results, want 17", len(rs))
	}
	for _, tc := range []struct {
		desc string
		i    int
		pkg  string
	}{
		{desc: "first package", i: 0, pkg: "resilience.dev/operator/internal/patterns/bulkhead"},
		{desc: "second package", i: 6, pkg: "resilience.dev/operator/internal/patterns/hedge"},
		{desc: "third package", i: 10, pkg: "resilience.dev/operator/internal/patterns/ratelimit"},
	} {
		if rs[tc.i].Pkg != tc.pkg {
			t.Errorf("%s: result %d (%s) in package %q, want %q", tc.desc, tc.i, rs[tc.i].Name, rs[tc.i].Pkg, tc.pkg)
		}
	}
}

func TestRows(t *testing.T) {
	t.Parallel()
	rs, err := Parse(strings.NewReader(sample))
	if err != nil {
		t.Fatal(err)
	}
	const bh, hd, rl = "resilience.dev/operator/internal/patterns/bulkhead", "resilience.dev/operator/internal/patterns/hedge", "resilience.dev/operator/internal/patterns/ratelimit"
	zero := f(0)
	want := []Row{
		{bh, "BenchmarkAcquireRelease", 2,
			Measure{"ours", f(16), zero, zero, 3}, &Measure{"xsync", f(28), zero, zero, 3}, f(16.0 / 28)},
		{hd, "BenchmarkDo", 2, Measure{"ours", f(4453), f(592), f(8.5), 2}, nil, nil},
		{hd, "BenchmarkAcquireRelease", 2, Measure{"ours", f(99), zero, zero, 1}, nil, nil},
		{hd, "BenchmarkTotal", 2, Measure{"ours", f(1234567), f(10), f(1), 1}, nil, nil},
		{rl, "BenchmarkAllow", 1, Measure{"ours", f(10), zero, zero, 1}, &Measure{"gobreaker", f(40), zero, zero, 1}, f(0.25)},
		{rl, "BenchmarkAllow", 1, Measure{"ours", f(10), zero, zero, 1}, &Measure{"xrate", f(50), f(8), f(1), 1}, f(0.2)},
		{rl, "BenchmarkKeyed", 2, Measure{"ours", f(12.5), zero, zero, 1}, nil, nil},
		{rl, "BenchmarkKeyed", 4, Measure{"ours", f(7.5), zero, zero, 1}, nil, nil},
		{rl, "BenchmarkPlain", 4, Measure{"ours", f(12.5), nil, nil, 1}, nil, nil},
		{rl, "BenchmarkGet/size-64", 2, Measure{"ours", f(3.333), zero, zero, 1}, nil, nil},
	}
	if diff := cmp.Diff(want, Rows(rs)); diff != "" {
		t.Errorf("Rows (-want +got):\n%s", diff)
	}
}

func TestMarkdownAndJSON(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	jsonPath := filepath.Join(t.TempDir(), "bench.json")
	if err := run(strings.NewReader(sample), &out, jsonPath); err != nil {
		t.Fatal(err)
	}
	want := `| benchmark | ours ns/op | ours B/op | ours allocs/op | anchor | anchor ns/op | anchor allocs/op | ratio |
|---|---:|---:|---:|---|---:|---:|---:|
| bulkhead.BenchmarkAcquireRelease | 16.0 | 0 | 0 | xsync | 28.0 | 0 | 0.57x |
| hedge.BenchmarkDo | 4453 | 592 | 8.5 | - | - | - | - |
| hedge.BenchmarkAcquireRelease | 99.0 | 0 | 0 | - | - | - | - |
| hedge.BenchmarkTotal | 1234567 | 10 | 1 | - | - | - | - |
| ratelimit.BenchmarkAllow | 10.0 | 0 | 0 | gobreaker | 40.0 | 0 | 0.25x |
| ratelimit.BenchmarkAllow | 10.0 | 0 | 0 | xrate | 50.0 | 1 | 0.20x |
| ratelimit.BenchmarkKeyed-2 | 12.5 | 0 | 0 | - | - | - | - |
| ratelimit.BenchmarkKeyed-4 | 7.50 | 0 | 0 | - | - | - | - |
| ratelimit.BenchmarkPlain | 12.5 | - | - | - | - | - | - |
| ratelimit.BenchmarkGet/size-64 | 3.33 | 0 | 0 | - | - | - | - |
`
	if diff := cmp.Diff(want, out.String()); diff != "" {
		t.Errorf("markdown (-want +got):\n%s", diff)
	}
	data, err := os.ReadFile(jsonPath)
	if err != nil {
		t.Fatal(err)
	}
	var rows []Row
	if err := json.Unmarshal(data, &rows); err != nil {
		t.Fatal(err)
	}
	if len(rows) != 10 || rows[0].Anchor == nil || rows[0].Anchor.Name != "xsync" || *rows[0].Ratio != 16.0/28 || rows[1].Anchor != nil {
		t.Errorf("JSON rows do not match the table: %s", data)
	}
}

func TestRunWithoutBenchmarks(t *testing.T) {
	t.Parallel()
	if err := run(strings.NewReader("PASS\nok x 0.1s\n"), &bytes.Buffer{}, ""); err == nil {
		t.Error("run accepted input without benchmarks")
	}
}

func FuzzParse(f *testing.F) {
	f.Add(sample)
	f.Add("BenchmarkA/ours-2 10 1 ns/op\nBenchmarkA/x-2 10 0 ns/op\n")
	f.Add("pkg: p\nBenchmark-1 1 1e308 ns/op 1e308 B/op\n")
	f.Fuzz(func(t *testing.T, in string) {
		rs, err := Parse(strings.NewReader(in))
		if err != nil {
			return // only a line over 1 MiB
		}
		rows := Rows(rs)
		if len(rs) > 0 && len(rows) == 0 {
			t.Fatalf("%d results gave no rows", len(rs))
		}
		for _, r := range rows {
			if r.Ours.Runs < 1 || (r.Anchor != nil && r.Anchor.Runs < 1) || (r.Ratio != nil && r.Anchor == nil) {
				t.Fatalf("inconsistent row %+v", r)
			}
		}
		if err := Markdown(&bytes.Buffer{}, rows); err != nil {
			t.Fatal(err)
		}
		if _, err := json.Marshal(rows); err != nil {
			t.Fatalf("rows do not encode as JSON: %v", err)
		}
	})
}
