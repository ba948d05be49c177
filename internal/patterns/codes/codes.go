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

// Package codes parses the HTTP status code sets of the contract ("503", "500-599") into a
// bitset with O(1), allocation-free membership tests.
package codes

import (
	"fmt"
	"math/bits"
	"strconv"
	"strings"
)

// Lowest and highest status codes a Set can hold.
const (
	MinCode = 100
	MaxCode = 599
)

// Set is a set of HTTP status codes in MinCode..MaxCode. The zero value is the empty set. Sets are
// values: comparable with ==, safe to copy and to read concurrently.
type Set struct {
	bits [(MaxCode - MinCode + 64) / 64]uint64
}

// Error reports a bad entry of a status code list; Index lets a caller name the offending list
// element (for example spec.failureCriteria.statusCodes[2]).
type Error struct {
	Index  int    // position of the entry in the list given to Parse
	Entry  string // the entry as given
	Reason string // why it was refused
}

func (e *Error) Error() string {
	return fmt.Sprintf("status code entry %d %q: %s", e.Index, e.Entry, e.Reason)
}

// Parse reads entries that are each a status code ("503") or an inclusive range of codes
// ("500-599"), every code in MinCode..MaxCode written as plain decimal digits, with range start <= end.
// Nothing else is accepted: no spaces, signs, leading zeros or wildcards such as "5xx" (write
// "500-599"). Overlapping and repeated entries are allowed. The error, an *Error, names the first
// bad entry and why it is bad.
func Parse(specs []string) (Set, error) {
	var s Set
	for i, spec := range specs {
		lo, hi, reason := parseEntry(spec)
		if reason != "" {
			return Set{}, &Error{Index: i, Entry: spec, Reason: reason}
		}
		s.addRange(lo, hi)
	}
	return s, nil
}

func parseEntry(spec string) (lo, hi int, reason string) {
	if spec == "" {
		return 0, 0, "empty; want a code such as \"503\" or a range such as \"500-599\""
	}
	start, end, isRange := strings.Cut(spec, "-")
	lo, reason = parseCode(start, "range start")
	if !isRange {
		if reason != "" {
			reason = strings.TrimPrefix(reason, "range start ")
		}
		return lo, lo, reason
	}
	if reason != "" {
		return 0, 0, reason
	}
	hi, reason = parseCode(end, "range end")
	if reason != "" {
		return 0, 0, reason
	}
	if lo > hi {
		return 0, 0, fmt.Sprintf("range start %d is greater than range end %d", lo, hi)
	}
	return lo, hi, ""
}

// parseCode accepts exactly three ASCII digits forming a code in MinCode..MaxCode.
func parseCode(s, what string) (int, string) {
	if s == "" {
		return 0, what + " is empty"
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, fmt.Sprintf("%s %q is not a number; want a code such as \"503\" or a range such as \"500-599\"", what, s)
		}
	}
	if len(s) != 3 || s[0] == '0' {
		return 0, fmt.Sprintf("%s %q is not a status code in %d..%d", what, s, MinCode, MaxCode)
	}
	n, _ := strconv.Atoi(s) // three digits: cannot fail
	if n < MinCode || n > MaxCode {
		return 0, fmt.Sprintf("%s %d is not a status code in %d..%d", what, n, MinCode, MaxCode)
	}
	return n, ""
}

func (s *Set) addRange(lo, hi int) {
	for c := lo; c <= hi; c++ {
		i := c - MinCode
		s.bits[i>>6] |= 1 << (i & 63)
	}
}

// Contains reports whether code is in the set. Codes outside MinCode..MaxCode never are.
func (s Set) Contains(code int) bool {
	i := uint(code - MinCode)
	if i > MaxCode-MinCode {
		return false
	}
	return s.bits[i>>6]&(1<<(i&63)) != 0
}

// Len returns how many codes the set holds.
func (s Set) Len() int {
	n := 0
	for _, w := range s.bits {
		n += bits.OnesCount64(w)
	}
	return n
}

// Specs returns the canonical entries of the set: ascending, maximal runs of consecutive codes as
// ranges ("500-599"), single codes alone ("503"). Parse(s.Specs()) == s. The empty set gives nil.
func (s Set) Specs() []string {
	var out []string
	for c := MinCode; c <= MaxCode; c++ {
		if !s.Contains(c) {
			continue
		}
		lo := c
		for c+1 <= MaxCode && s.Contains(c+1) {
			c++
		}
		if lo == c {
			out = append(out, strconv.Itoa(lo))
		} else {
			out = append(out, strconv.Itoa(lo)+"-"+strconv.Itoa(c))
		}
	}
	return out
}

// String returns the canonical entries joined by commas, such as "500-502,504"; "" for the empty set.
func (s Set) String() string { return strings.Join(s.Specs(), ",") }
