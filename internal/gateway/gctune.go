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

package gateway

import (
	"fmt"
	"math"
	"os"
	"runtime"
	"runtime/debug"
	rtmetrics "runtime/metrics"
	"strconv"
	"strings"
	"sync/atomic"
)

// Garbage-collector defaults of the gateway process (cmd/gateway's -gc-percent and -memory-limit).
//
// A proxy allocates a few KiB per request (net/http's server and transport, header maps) against a
// small live heap (the routing table and pattern state), so with Go's default GOGC=100 it collects
// several times a second under load: CPU taken from requests, and assists that land in the latency
// tail. DefaultGCPercent lets the heap grow to 5x the live heap between collections.
//
// That is cheap only while the live heap is small: with 10,000 policies and 100,000 rate-limit keys
// (a live heap of tens of MiB) 5x the live heap is hundreds of MiB. So the default percent is a
// ceiling, scaled down as the live heap grows so that the garbage allowed between collections (the
// headroom, live heap x percent) stays DefaultGCHeadroom, never below Go's own default of 100:
// 400 up to a 16 MiB live heap, 200 at 32 MiB, 100 from 64 MiB on (GCPercentFor). The collector then
// runs no more often than at GOGC=400 with a 16 MiB live heap (the frequency follows allocation over
// headroom), and the heap stays within the live heap plus 64 MiB, or twice the live heap. A tuner
// re-reads the live heap after every collection (a finalizer that re-arms itself) and sets the
// percent when its step changes; Apply changing the table and keys filling a keyed limit are both
// seen by the next collection. A percent given with -gc-percent or GOGC is used as it is, unscaled.
//
// The memory limit keeps that safe in a container: when the cgroup has a memory limit, the runtime's
// soft limit is DefaultMemoryLimitPercent of it, so the collector runs harder as the process nears
// the cgroup limit instead of being killed.
const (
	DefaultGCPercent          = 400
	DefaultGCHeadroom         = 64 << 20
	DefaultMemoryLimitPercent = 90

	// minScaledGCPercent is the floor of the scaled percent: Go's default.
	minScaledGCPercent = 100
)

// GCPercentFor is the percent the tuner sets for a ceiling of ceiling percent at a live heap of live
// bytes: ceiling x (headroom / (live x ceiling/100)), that is 100 x DefaultGCHeadroom / live, rounded
// down to a multiple of 10, within [min(100, ceiling), ceiling].
func GCPercentFor(ceiling int, live uint64) int {
	if ceiling <= minScaledGCPercent || live == 0 {
		return ceiling
	}
	p := uint64(100) * DefaultGCHeadroom / live
	if p >= uint64(ceiling) {
		return ceiling
	}
	return max(int(p/10*10), minScaledGCPercent)
}

// gcTuner scales the GC percent after each collection (GCPercentFor).
type gcTuner struct {
	ceiling int
	last    atomic.Int64
	sample  []rtmetrics.Sample
}

var tunerStarted atomic.Bool

// startGCTuner starts the tuner (once per process) and returns whether it started.
func startGCTuner(ceiling int) bool {
	if !tunerStarted.CompareAndSwap(false, true) {
		return false
	}
	t := &gcTuner{ceiling: ceiling, sample: []rtmetrics.Sample{{Name: "/gc/heap/live:bytes"}}}
	t.last.Store(int64(ceiling))
	t.adjust()
	t.arm()
	return true
}

// gcSentinel is garbage from birth; its finalizer runs after each collection and arms a new one.
// It holds a pointer, so it is never a tiny allocation (whose finalizer may never run).
type gcSentinel struct{ t *gcTuner }

func (t *gcTuner) arm() {
	runtime.SetFinalizer(&gcSentinel{t: t}, func(s *gcSentinel) {
		s.t.adjust()
		s.t.arm()
	})
}

func (t *gcTuner) adjust() {
	rtmetrics.Read(t.sample) // only the finalizer goroutine (and startGCTuner, before it) reads it
	if t.sample[0].Value.Kind() != rtmetrics.KindUint64 {
		return
	}
	p := GCPercentFor(t.ceiling, t.sample[0].Value.Uint64())
	if int64(p) != t.last.Load() {
		t.last.Store(int64(p))
		debug.SetGCPercent(p)
	}
}

// GCSettings are the collector settings to apply.
type GCSettings struct {
	// Percent is debug.SetGCPercent's value (GOGC); negative turns the collector off (only
	// sensible with a memory limit); 0 leaves the runtime's setting (GOGC) alone.
	Percent int
	// MemoryLimit is debug.SetMemoryLimit's value in bytes; 0 leaves the runtime's (GOMEMLIMIT)
	// alone.
	MemoryLimit int64
}

// ParseMemoryLimit reads a -memory-limit flag: "auto" (DefaultMemoryLimitPercent of the cgroup's
// memory limit, none without one), "off" or "0" (none), or bytes with an optional binary suffix
// (512MiB, 2GiB, also Ki/Mi/Gi and KB/MB/GB as powers of 1024).
func ParseMemoryLimit(s string) (int64, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "auto", "":
		if lim, ok := cgroupMemoryLimit(); ok {
			return lim / 100 * DefaultMemoryLimitPercent, nil
		}
		return 0, nil
	case "off", "0", "none":
		return 0, nil
	}
	num, mult := s, int64(1)
	for _, u := range []struct {
		suffix string
		mult   int64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"Ki", 1 << 10}, {"Mi", 1 << 20}, {"Gi", 1 << 30},
		{"KB", 1 << 10}, {"MB", 1 << 20}, {"GB", 1 << 30}, {"B", 1}} {
		if n, ok := strings.CutSuffix(s, u.suffix); ok {
			num, mult = n, u.mult
			break
		}
	}
	v, err := strconv.ParseInt(strings.TrimSpace(num), 10, 64)
	if err != nil || v < 0 || v > math.MaxInt64/mult {
		return 0, fmt.Errorf("memory limit %q: want auto, off, or bytes such as 512MiB", s)
	}
	return v * mult, nil
}

// cgroupMemoryLimit returns the memory limit of this process's cgroup (v2, then v1), if it has one.
func cgroupMemoryLimit() (int64, bool) {
	for _, p := range []string{"/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"} {
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		v := strings.TrimSpace(string(b))
		if v == "max" {
			return 0, false
		}
		n, err := strconv.ParseInt(v, 10, 64)
		// cgroup v1 reports "no limit" as a huge number (a page-rounded MaxInt64).
		if err != nil || n <= 0 || n >= 1<<62 {
			return 0, false
		}
		return n, true
	}
	return 0, false
}

// ApplyGC applies s to the runtime and returns a description for the log. An explicit GOGC or
// GOMEMLIMIT in the environment wins over a default: fromFlagGC and fromFlagMem say whether each
// value was given on the command line (then it wins over the environment). A default percent (not
// from the flag nor GOGC) above 100 is a ceiling that a tuner scales down as the live heap grows (see
// DefaultGCHeadroom); a percent given explicitly is used as it is.
func ApplyGC(s GCSettings, fromFlagGC, fromFlagMem bool) string {
	var parts []string
	switch {
	case s.Percent != 0 && !fromFlagGC && os.Getenv("GOGC") == "" && s.Percent > minScaledGCPercent:
		// The default: a ceiling, scaled down as the live heap grows.
		debug.SetGCPercent(s.Percent)
		startGCTuner(s.Percent)
		parts = append(parts, fmt.Sprintf("gc-percent=%d (scaled down to %d as the live heap grows past %d MiB, for at most %d MiB of garbage)",
			s.Percent, minScaledGCPercent, DefaultGCHeadroom*100/s.Percent>>20, DefaultGCHeadroom>>20))
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
