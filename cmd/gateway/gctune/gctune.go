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

// Package gctune sets the garbage collector of the gateway process (cmd/gateway's -gc-percent and
// -memory-limit): a GC percent that shrinks as the live heap grows, and a soft memory limit. It is
// process-wide, so it belongs to the binary, not to the data-plane library; bench/gateway imports it
// to run its in-process gateway with the same settings.
package gctune

import (
	"fmt"
	"os"
	"runtime"
	"runtime/debug"
	rtmetrics "runtime/metrics"
	"strings"
	"sync/atomic"
)

// Garbage-collector defaults of the gateway process.
//
// A proxy allocates a few KiB per request (net/http's server and transport, header maps) against a
// small live heap (the routing table and pattern state), so with Go's default GOGC=100 it collects
// several times a second under load: CPU taken from requests, and assists that land in the latency
// tail. DefaultPercent lets the heap grow to 5x the live heap between collections.
//
// That is cheap only while the live heap is small: with 10,000 policies and 100,000 rate-limit keys
// (a live heap of tens of MiB) 5x the live heap is hundreds of MiB. So the default percent is a
// ceiling, scaled down as the live heap grows so that the garbage allowed between collections (the
// headroom, live heap x percent) stays DefaultHeadroom, never below Go's own default of 100:
// 400 up to a 16 MiB live heap, 200 at 32 MiB, 100 from 64 MiB on (PercentFor). The collector then
// runs no more often than at GOGC=400 with a 16 MiB live heap (the frequency follows allocation over
// headroom), and the heap stays within the live heap plus 64 MiB, or twice the live heap. A tuner
// re-reads the live heap after every collection (a finalizer that re-arms itself) and sets the
// percent when its step changes; Apply changing the table and keys filling a keyed limit are both
// seen by the next collection. A percent given with -gc-percent or GOGC is used as it is, unscaled.
//
// The memory limit keeps that safe in a container (memlimit.go).
const (
	DefaultPercent  = 400
	DefaultHeadroom = 64 << 20

	// minScaledPercent is the floor of the scaled percent: Go's default.
	minScaledPercent = 100
)

// PercentFor is the percent the tuner sets for a ceiling of ceiling percent at a live heap of live
// bytes: ceiling x (headroom / (live x ceiling/100)), that is 100 x DefaultHeadroom / live, rounded
// down to a multiple of 10, within [min(100, ceiling), ceiling].
func PercentFor(ceiling int, live uint64) int {
	if ceiling <= minScaledPercent || live == 0 {
		return ceiling
	}
	p := uint64(100) * DefaultHeadroom / live
	if p >= uint64(ceiling) {
		return ceiling
	}
	return max(int(p/10*10), minScaledPercent)
}

// tuner scales the GC percent after each collection (PercentFor).
type tuner struct {
	ceiling int
	last    atomic.Int64
	sample  []rtmetrics.Sample
}

var tunerStarted atomic.Bool

// startTuner starts the tuner (once per process) and returns whether it started.
func startTuner(ceiling int) bool {
	if !tunerStarted.CompareAndSwap(false, true) {
		return false
	}
	t := &tuner{ceiling: ceiling, sample: []rtmetrics.Sample{{Name: "/gc/heap/live:bytes"}}}
	t.last.Store(int64(ceiling))
	t.adjust()
	t.arm()
	return true
}

// sentinel is garbage from birth; its finalizer runs after each collection and arms a new one.
// It holds a pointer, so it is never a tiny allocation (whose finalizer may never run).
type sentinel struct{ t *tuner }

func (t *tuner) arm() {
	runtime.SetFinalizer(&sentinel{t: t}, func(s *sentinel) {
		s.t.adjust()
		s.t.arm()
	})
}

func (t *tuner) adjust() {
	rtmetrics.Read(t.sample) // only the finalizer goroutine (and startTuner, before it) reads it
	if t.sample[0].Value.Kind() != rtmetrics.KindUint64 {
		return
	}
	p := PercentFor(t.ceiling, t.sample[0].Value.Uint64())
	if int64(p) != t.last.Load() {
		t.last.Store(int64(p))
		debug.SetGCPercent(p)
	}
}

// Settings are the collector settings to apply.
type Settings struct {
	// Percent is debug.SetGCPercent's value (GOGC); negative turns the collector off (only
	// sensible with a memory limit); 0 leaves the runtime's setting (GOGC) alone.
	Percent int
	// MemoryLimit is debug.SetMemoryLimit's value in bytes; 0 leaves the runtime's (GOMEMLIMIT)
	// alone.
	MemoryLimit int64
}

// Apply applies s to the runtime and returns a description for the log. An explicit GOGC or
// GOMEMLIMIT in the environment wins over a default: fromFlagGC and fromFlagMem say whether each
// value was given on the command line (then it wins over the environment). A default percent (not
// from the flag nor GOGC) above 100 is a ceiling that a tuner scales down as the live heap grows (see
// DefaultHeadroom); a percent given explicitly is used as it is.
func Apply(s Settings, fromFlagGC, fromFlagMem bool) string {
	var parts []string
	switch {
	case s.Percent != 0 && !fromFlagGC && os.Getenv("GOGC") == "" && s.Percent > minScaledPercent:
		// The default: a ceiling, scaled down as the live heap grows.
		debug.SetGCPercent(s.Percent)
		startTuner(s.Percent)
		parts = append(parts, fmt.Sprintf("gc-percent=%d (scaled down to %d as the live heap grows past %d MiB, for at most %d MiB of garbage)",
			s.Percent, minScaledPercent, DefaultHeadroom*100/s.Percent>>20, DefaultHeadroom>>20))
	case s.Percent != 0 && (fromFlagGC || os.Getenv("GOGC") == ""):
		debug.SetGCPercent(s.Percent)
		parts = append(parts, fmt.Sprintf("gc-percent=%d", s.Percent))
	default:
		parts = append(parts, "gc-percent=runtime default (GOGC)")
	}
	if s.MemoryLimit > 0 && (fromFlagMem || os.Getenv("GOMEMLIMIT") == "") {
		debug.SetMemoryLimit(s.MemoryLimit)
		parts = append(parts, fmt.Sprintf("memory-limit=%d", s.MemoryLimit))
	} else {
		parts = append(parts, "memory-limit=runtime default (GOMEMLIMIT)")
	}
	return strings.Join(parts, " ")
}
