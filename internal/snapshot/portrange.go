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

package snapshot

import (
	"fmt"
	"strconv"
	"strings"
)

// PortRange is an inclusive range of TCP ports: the capture range, which the manager allocates
// capture ports from and the gateway opens listeners in (contract, section 5).
type PortRange struct{ First, Last int32 }

// DefaultCaptureRange is the capture range of the manager's and the gateway's --capture-range.
var DefaultCaptureRange = PortRange{First: 20000, Last: 29999}

// ParsePortRange reads "first-last", or a single port.
func ParsePortRange(s string) (PortRange, error) {
	lo, hi, found := strings.Cut(strings.TrimSpace(s), "-")
	if !found {
		hi = lo
	}
	first, err1 := strconv.ParseUint(strings.TrimSpace(lo), 10, 16)
	last, err2 := strconv.ParseUint(strings.TrimSpace(hi), 10, 16)
	if err1 != nil || err2 != nil || first < 1 || last < first {
		return PortRange{}, fmt.Errorf("port range %q is not first-last with 1 <= first <= last <= 65535", s)
	}
	return PortRange{First: int32(first), Last: int32(last)}, nil
}

// Contains reports whether port p is in the range.
func (r PortRange) Contains(p int32) bool { return r.First <= p && p <= r.Last }

func (r PortRange) String() string { return fmt.Sprintf("%d-%d", r.First, r.Last) }
