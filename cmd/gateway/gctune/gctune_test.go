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

import "testing"

// The default percent is a ceiling while the live heap is small, then keeps the headroom at
// DefaultHeadroom, never below 100.
func TestPercentFor(t *testing.T) {
	const mib = 1 << 20
	for _, c := range []struct {
		ceiling int
		live    uint64
		want    int
	}{
		{400, 0, 400}, {400, 4 * mib, 400}, {400, 16 * mib, 400}, {400, 24 * mib, 260}, {400, 32 * mib, 200},
		{400, 48 * mib, 130}, {400, 64 * mib, 100}, {400, 1024 * mib, 100}, {200, 16 * mib, 200}, {100, 1024 * mib, 100},
		{50, 1024 * mib, 50},
	} {
		if got := PercentFor(c.ceiling, c.live); got != c.want {
			t.Errorf("PercentFor(%d, %d MiB) = %d, want %d", c.ceiling, c.live/mib, got, c.want)
		}
	}
}

func TestParseMemoryLimit(t *testing.T) {
	for in, want := range map[string]int64{"off": 0, "0": 0, "512MiB": 512 << 20, "2GiB": 2 << 30, "1024": 1024,
		"64Mi": 64 << 20, "10KB": 10 << 10, "7B": 7} {
		got, err := ParseMemoryLimit(in)
		if err != nil || got != want {
			t.Errorf("ParseMemoryLimit(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"-1", "lots", "5XB", "1e9"} {
		if _, err := ParseMemoryLimit(in); err == nil {
			t.Errorf("ParseMemoryLimit(%q): no error", in)
		}
	}
	if _, err := ParseMemoryLimit("auto"); err != nil {
		t.Errorf("auto: %v", err)
	}
}
