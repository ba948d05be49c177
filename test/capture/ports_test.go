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

package capture

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	discoveryv1 "k8s.io/api/discovery/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"resilience.dev/operator/internal/capture"
	"resilience.dev/operator/internal/localstack"
)

// captured waits until a front has a capture port that the gateway serves, and returns the port.
func captured(t *testing.T, ns, front string) int32 {
	t.Helper()
	var p int32
	until(t, front+" captured", 30*time.Second, func() bool { p = capturePort(t, ns, front); return p != 0 && served(p) })
	return p
}

// TestCaptureContestedPort: two fronts whose slices claim the same capture port (as two leaders
// in a split brain could have written) are settled the same way every time: the older front keeps
// it, the younger is moved, and both are served.
func TestCaptureContestedPort(t *testing.T) {
	ns := namespace(t, "contest")
	backend(t, ns, "pods")
	kubectl(t, frontYAML(ns, "old", "pods"), "apply", "-f", "-")
	time.Sleep(1100 * time.Millisecond) // creationTimestamp has whole seconds: make "old" older
	kubectl(t, frontYAML(ns, "young", "pods"), "apply", "-f", "-")
	old, young := captured(t, ns, "old"), captured(t, ns, "young")
	for round := range 2 {
		claim := func(s *discoveryv1.EndpointSlice) {
			s.Annotations[capture.AnnotationPorts] = capture.EncodePorts(map[string]int32{"http": old})
		}
		if err := updateSlice(ns, capture.SliceName("young", 0), claim); err != nil {
			t.Fatal(err)
		}
		var moved int32
		until(t, fmt.Sprintf("round %d: the contest settled", round), 5*time.Second, func() bool {
			moved = capturePort(t, ns, "young")
			return moved != old && capturePort(t, ns, "old") == old && served(moved) && served(old)
		})
		if moved != young {
			t.Fatalf("round %d: young moved to %d, want %d (the lowest free port, as before)", round, moved, young)
		}
	}
}

func updateSlice(ns, name string, mutate func(*discoveryv1.EndpointSlice)) error {
	var s discoveryv1.EndpointSlice
	if err := k8s.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, &s); err != nil {
		return err
	}
	mutate(&s)
	return k8s.Update(context.Background(), &s)
}

// TestCaptureManagerRestart: a restarted manager keeps every capture port, rewrites no slice, and
// allocates a front created while it was down after the others.
func TestCaptureManagerRestart(t *testing.T) {
	ns := namespace(t, "restart")
	backend(t, ns, "pods")
	kubectl(t, frontYAML(ns, "a", "pods")+"---\n"+frontYAML(ns, "b", "pods"), "apply", "-f", "-")
	pa, pb := captured(t, ns, "a"), captured(t, ns, "b")
	versions := func() string {
		return frontSlices(t, ns, "a")[0].ResourceVersion + "/" + frontSlices(t, ns, "b")[0].ResourceVersion
	}
	before := versions()
	stack.Stop("manager")
	kubectl(t, frontYAML(ns, "c", "pods"), "apply", "-f", "-")
	if err := startManager(); err != nil {
		t.Fatal(err)
	}
	pc := captured(t, ns, "c")
	if capturePort(t, ns, "a") != pa || capturePort(t, ns, "b") != pb || pc == pa || pc == pb {
		t.Fatalf("after a restart: a %d (was %d), b %d (was %d), c %d", capturePort(t, ns, "a"), pa, capturePort(t, ns, "b"), pb, pc)
	}
	if after := versions(); after != before {
		t.Fatalf("the restarted manager rewrote the slices: resourceVersions %s -> %s", before, after)
	}
}

// TestCaptureSecondReplica: each gateway replica serves the capture ports on its own loopback
// address (GATEWAYS=2 in make run-local).
func TestCaptureSecondReplica(t *testing.T) {
	ns := namespace(t, "replicas")
	backend(t, ns, "pods")
	kubectl(t, frontYAML(ns, "checkout", "pods"), "apply", "-f", "-")
	p := captured(t, ns, "checkout")
	addrs := localstack.GatewayAddrs{Listen: onHost2(localstack.FreeAddr()), Health: onHost2(localstack.FreeAddr()),
		Metrics: onHost2(localstack.FreeAddr())}
	if err := stack.StartGatewayAs("gateway-2", addrs, "--replica=local-gateway-2", "--capture-range="+captureRange); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { stack.Stop("gateway-2") })
	until(t, "the second replica serves the capture port", 30*time.Second, func() bool {
		code, body, err := rawGet("127.0.0.2", p, "1.1", "Host: checkout")
		return err == nil && code == http.StatusOK && strings.HasPrefix(body, "pods ")
	})
}

// onHost2 moves a 127.0.0.1 address to 127.0.0.2, keeping its port.
func onHost2(addr string) string { return strings.Replace(addr, "127.0.0.1:", "127.0.0.2:", 1) }
