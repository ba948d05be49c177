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

package codes

import (
	"errors"
	"strings"
	"testing"
)

func TestParseGood(t *testing.T) {
	t.Parallel()
	tests := []struct {
		desc    string
		specs   []string
		in, out []int
		str     string
	}{
		{desc: "nil list is empty", specs: nil, out: []int{100, 500, 599}, str: ""},
		{desc: "single code", specs: []string{"503"}, in: []int{503}, out: []int{502, 504, 0, -503}, str: "503"},
		{desc: "contract default for failures", specs: []string{"500-599"}, in: []int{500, 550, 599}, out: []int{499, 600, 1000}, str: "500-599"},
		{desc: "contract default for retries", specs: []string{"502", "503", "504"}, in: []int{502, 503, 504}, out: []int{500, 501, 505}, str: "502-504"},
		{desc: "bounds", specs: []string{"100", "599"}, in: []int{100, 599}, out: []int{99, 101, 598, 600}, str: "100,599"},
		{desc: "whole space", specs: []string{"100-599"}, in: []int{100, 163, 164, 227, 228, 599}, out: []int{99, 600}, str: "100-599"},
		{desc: "one-code range", specs: []string{"429-429"}, in: []int{429}, out: []int{428, 430}, str: "429"},
		{desc: "overlap and repeats merge", specs: []string{"500-510", "505-520", "503", "503"}, in: []int{500, 520}, out: []int{521}, str: "500-520"},
		{desc: "bitset word edges", specs: []string{"163-164", "227"}, in: []int{163, 164, 227}, out: []int{162, 165, 226, 228}, str: "163-164,227"},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			s, err := Parse(tc.specs)
			if err != nil {
				t.Fatalf("Parse(%q): %v", tc.specs, err)
			}
			for _, c := range tc.in {
				if !s.Contains(c) {
					t.Errorf("Contains(%d) = false, want true", c)
				}
			}
			for _, c := range tc.out {
				if s.Contains(c) {
					t.Errorf("Contains(%d) = true, want false", c)
				}
			}
			if got := s.String(); got != tc.str {
				t.Errorf("String() = %q, want %q", got, tc.str)
			}
			back, err := Parse(s.Specs())
			if err != nil || back != s {
				t.Errorf("Parse(Specs()) = %v, %v; want the same set", back, err)
			}
		})
	}
}

func TestParseBad(t *testing.T) {
	t.Parallel()
	tests := []struct {
		desc  string
		specs []string
		index int
		why   string // a substring of the reason
	}{
		{desc: "above 599", specs: []string{"600"}, why: "600 is not a status code in 100..599"},
		{desc: "below 100", specs: []string{"99"}, why: `"99" is not a status code in 100..599`},
		{desc: "leading zero", specs: []string{"0503"}, why: "not a status code"},
		{desc: "letters", specs: []string{"abc"}, why: `"abc" is not a number`},
		{desc: "wildcard refused", specs: []string{"5xx"}, why: `"5xx" is not a number; want a code such as "503" or a range such as "500-599"`},
		{desc: "reversed range", specs: []string{"599-500"}, why: "range start 599 is greater than range end 500"},
		{desc: "open range end", specs: []string{"500-"}, why: "range end is empty"},
		{desc: "negative", specs: []string{"-5"}, why: "range start is empty"},
		{desc: "leading space", specs: []string{" 500"}, why: "not a number"},
		{desc: "trailing space", specs: []string{"500 "}, why: "not a number"},
		{desc: "empty entry", specs: []string{""}, why: "empty"},
		{desc: "plus sign", specs: []string{"+500"}, why: "not a number"},
		{desc: "two dashes", specs: []string{"500-510-520"}, why: `range end "510-520" is not a number`},
		{desc: "range end out of bounds", specs: []string{"500-600"}, why: "range end 600 is not a status code"},
		{desc: "comma list in one entry", specs: []string{"500,503"}, why: "not a number"},
		{desc: "index names the bad entry", specs: []string{"500", "502-504", "7000"}, index: 2, why: `"7000" is not a status code`},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			s, err := Parse(tc.specs)
			var pe *Error
			if !errors.As(err, &pe) {
				t.Fatalf("Parse(%q) = %v, %v; want an *Error", tc.specs, s, err)
			}
			if pe.Index != tc.index || pe.Entry != tc.specs[tc.index] {
				t.Errorf("error names entry %d %q, want %d %q", pe.Index, pe.Entry, tc.index, tc.specs[tc.index])
			}
			if !strings.Contains(err.Error(), tc.why) {
				t.Errorf("error %q does not say %q", err, tc.why)
			}
			if s != (Set{}) {
				t.Errorf("a failed Parse returned a non-empty set %v", s)
			}
		})
	}
}

func TestLen(t *testing.T) {
	t.Parallel()
	s, err := Parse([]string{"500-599", "429", "100"})
	if err != nil {
		t.Fatal(err)
	}
	if got := s.Len(); got != 102 {
		t.Errorf("Len() = %d, want 102", got)
	}
}

// FuzzParse feeds comma-separated entry lists: Parse must never panic, and every accepted set must
// hold exactly the codes its entries name and survive a round trip through Specs.
func FuzzParse(f *testing.F) {
	for _, seed := range []string{
		"503", "500-599", "502,503,504", "100,599", "600", "99", "abc", "599-500", "500-",
		"-5", " 500", "5xx", "", ",", "500-510-520", "0503", "100-599", "163-164,227",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, in string) {
		specs := strings.Split(in, ",")
		s, err := Parse(specs)
		if err != nil {
			var pe *Error
			if !errors.As(err, &pe) || pe.Index < 0 || pe.Index >= len(specs) || pe.Entry != specs[pe.Index] {
				t.Fatalf("Parse(%q) error %v does not name a given entry", specs, err)
			}
			return
		}
		// Every accepted entry is digits with at most one dash: check membership independently.
		want := map[int]bool{}
		for _, sp := range specs {
			lo, hi, _ := strings.Cut(sp, "-")
			if hi == "" {
				hi = lo
			}
			a, b := atoi(t, lo), atoi(t, hi)
			for c := a; c <= b; c++ {
				want[c] = true
			}
		}
		for c := 0; c < 700; c++ {
			if s.Contains(c) != want[c] {
				t.Fatalf("Parse(%q).Contains(%d) = %v, want %v", specs, c, s.Contains(c), want[c])
			}
		}
		if s.Len() != len(want) {
			t.Fatalf("Len() = %d, want %d", s.Len(), len(want))
		}
		back, err := Parse(s.Specs())
		if err != nil || back != s {
			t.Fatalf("round trip of %q through %q gave %v, %v", specs, s.Specs(), back, err)
		}
		if len(want) > 0 && s.String() != strings.Join(s.Specs(), ",") {
			t.Fatalf("String() %q disagrees with Specs() %q", s.String(), s.Specs())
		}
	})
}

func atoi(t *testing.T, s string) int {
	t.Helper()
	n := 0
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			t.Fatalf("accepted entry part %q is not all digits", s)
		}
		n = n*10 + int(s[i]-'0')
	}
	return n
}

func BenchmarkContains(b *testing.B) {
	s, err := Parse([]string{"500-599"})
	if err != nil {
		b.Fatal(err)
	}
	b.Run("ours", func(b *testing.B) {
		b.ReportAllocs()
		n := 0
		for i := 0; b.Loop(); i++ {
			if s.Contains(100 + i%500) {
				n++
			}
		}
		sink = n
	})
}

func BenchmarkContainsParallel(b *testing.B) {
	s, err := Parse([]string{"500-599"})
	if err != nil {
		b.Fatal(err)
	}
	b.Run("ours", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			n, i := 0, 0
			for pb.Next() {
				if s.Contains(100 + i%500) {
					n++
				}
				i++
			}
			if n < 0 {
				b.Fatal("unreachable")
			}
		})
	})
}

var sink int
