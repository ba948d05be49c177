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

package gctune

import (
	"fmt"
	"math"
	"os"
	"strconv"
	"strings"
)

// DefaultMemoryLimitPercent is the share of the cgroup's memory limit that -memory-limit=auto makes
// the runtime's soft limit, so the collector runs harder as the process nears the cgroup limit
// instead of being killed. The manifests of config/gateway set GOMEMLIMIT, which wins over auto;
// auto covers a container run without them (docker run --memory, the bench).
const DefaultMemoryLimitPercent = 90

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
