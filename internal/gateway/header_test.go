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
	"net/http"
	"reflect"
	"strings"
	"testing"
)

// isHopByHop matches the names of hopByHop in any case, and nothing else of the same lengths.
func TestIsHopByHop(t *testing.T) {
	for _, h := range hopByHop {
		for _, k := range []string{h, strings.ToLower(h), strings.ToUpper(h)} {
			if !isHopByHop(k) {
				t.Errorf("isHopByHop(%q) = false", k)
			}
		}
	}
	for _, k := range []string{"", "Tx", "Trailers", "Upgradex", "Connectio", "Keep-Alivf", "Content-Length", "X-Forwarded-For",
		"Proxy-Authorizatio", "Transfer-Encodinh", "Proxy-Connectiom", "Accept"} {
		if isHopByHop(k) {
			t.Errorf("isHopByHop(%q) = true", k)
		}
	}
}

// outboundHeader drops hop-by-hop fields, those Connection names and X-Resilience-*, keeps
// "TE: trailers", and never lets a change to the result reach the client's header.
func TestOutboundHeader(t *testing.T) {
	in := http.Header{
		"Accept":               {"a", "b"},
		"Connection":           {"keep-alive, X-Private", "te"},
		"X-Private":            {"secret"},
		"Keep-Alive":           {"300"},
		"Te":                   {"trailers"},
		"Upgrade":              {"h2c"},
		"X-Resilience-Attempt": {"9"},
		"Proxy-Authorization":  {"Basic x"},
		"X-Empty":              nil,
	}
	h := outboundHeader(in)
	want := http.Header{"Accept": {"a", "b"}, "X-Empty": nil}
	if !reflect.DeepEqual(h, want) {
		t.Fatalf("got %v, want %v", h, want)
	}
	h["Accept"] = append(h["Accept"], "c")
	h["Accept"][0] = "changed"
	if got := in["Accept"]; len(got) != 2 || got[1] != "b" {
		t.Fatalf("the client's header changed: %v", got)
	}

	in = http.Header{"Te": {"gzip", " Trailers "}, "Accept": {"x"}}
	h = outboundHeader(in)
	if got := h["Te"]; len(got) != 1 || got[0] != "trailers" {
		t.Fatalf("Te = %v, want [trailers]", got)
	}
	if got := outboundHeader(http.Header{"Te": {"gzip"}}); len(got) != 0 {
		t.Fatalf("Te without trailers kept: %v", got)
	}
	if got := outboundHeader(nil); got == nil || len(got) != 0 {
		t.Fatalf("nil header: %v", got)
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
