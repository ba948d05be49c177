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
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	eventsv1 "k8s.io/api/events/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"resilience.dev/operator/internal/capture"
	"resilience.dev/operator/internal/localstack"
)

const rateLimitYAML = `apiVersion: resilience.dev/v1alpha1
kind: RateLimit
metadata: {name: %[2]s, namespace: %[1]s}
spec:
  targetRefs: [{group: "", kind: Service, name: %[2]s}]
  limits: [{name: all, requests: 1000, period: 1s}]
`

// TestCaptureFront: a front's slice points at the gateway on its capture port, and a request to that
// port reaches the backend, with no Host, a short name or the ClusterIP, with the policy enforced;
// a direct request naming the front on the gateway's :8080 works too. It measures the time from
// kubectl apply of a front (its policy already there) to enforced traffic on its capture port.
func TestCaptureFront(t *testing.T) {
	ns := namespace(t, "front")
	backend(t, ns, "pods")
	const fronts = 20
	var took []time.Duration
	for i := range fronts {
		name := fmt.Sprintf("checkout-%d", i)
		kubectl(t, fmt.Sprintf(rateLimitYAML, ns, name), "apply", "-f", "-")
		start := time.Now()
		kubectl(t, frontYAML(ns, name, "pods"), "apply", "-f", "-")
		var port int32
		until(t, name+" enforced on its capture port", 10*time.Second, func() bool {
			if port == 0 {
				port = capturePort(t, ns, name)
			}
			code, body, err := rawGet("127.0.0.1", port, "1.1", "Host: "+name)
			return port != 0 && err == nil && code == http.StatusOK && strings.HasSuffix(body, "[rate-limited]")
		})
		took = append(took, time.Since(start))
	}
	sort.Slice(took, func(i, j int) bool { return took[i] < took[j] })
	t.Logf("kubectl apply of a front -> enforced traffic on its capture port, over %d fronts: p50 %s, p99 %s (max)",
		fronts, took[fronts/2].Round(time.Millisecond), took[fronts-1].Round(time.Millisecond))

	port := capturePort(t, ns, "checkout-0")
	slice := frontSlices(t, ns, "checkout-0")[0]
	if slice.AddressType != discoveryv1.AddressTypeFQDN || slice.Endpoints[0].Addresses[0] != localstack.GatewayEndpointFQDN ||
		*slice.Ports[0].Port != port || *slice.Ports[0].Name != "http" || slice.Labels[discoveryv1.LabelServiceName] != "checkout-0" ||
		slice.OwnerReferences[0].Name != "checkout-0" {
		t.Fatalf("front slice %+v", slice)
	}
	var svc corev1.Service
	if err := k8s.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: "checkout-0"}, &svc); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ version, host, want string }{
		{"1.1", "Host: checkout-0", `pods host="checkout-0" [rate-limited]`},
		{"1.1", "Host: " + svc.Spec.ClusterIP, `pods host="` + svc.Spec.ClusterIP + `" [rate-limited]`},
		{"1.1", "Host: checkout-0." + ns + ".svc.cluster.local:80", `pods host="checkout-0.` + ns + `.svc.cluster.local:80" [rate-limited]`},
		{"1.0", "", `pods host="pods.localhost:`}, // no Host: the endpoint's, as net/http's client writes
	} {
		var hdr []string
		if c.host != "" {
			hdr = append(hdr, c.host)
		}
		code, body, err := rawGet("127.0.0.1", port, c.version, hdr...)
		if err != nil || code != http.StatusOK || !strings.HasPrefix(body, c.want) || !strings.HasSuffix(body, "[rate-limited]") {
			t.Errorf("HTTP/%s %q on the capture port: %d %q %v, want 200 %q", c.version, c.host, code, body, err, c.want)
		}
	}
	code, body, err := rawGet("127.0.0.1", portOf(harness.Opts.GatewayListen), "1.1", "Host: checkout-0."+ns)
	if err != nil || code != http.StatusOK || !strings.HasPrefix(body, "pods ") {
		t.Errorf("direct request naming the front: %d %q %v", code, body, err)
	}
	until(t, "the policy's target message tells the capture state", 10*time.Second, func() bool {
		msg := kubectl(t, "", "-n", ns, "get", "ratelimit", "checkout-0", "-o", "jsonpath={.status.targets[0].message}")
		return strings.Contains(msg, fmt.Sprintf("captured: callers' traffic to Service checkout-0 passes the gateway (capture ports http -> %d)", port))
	})
	if !hasEvent(t, ns, "checkout-0", "CaptureProgrammed", fmt.Sprintf("capture port %d", port)) {
		t.Error("no CaptureProgrammed Event naming the capture port")
	}
}

func portOf(addr string) int32 {
	var p int32
	_, _ = fmt.Sscanf(addr[strings.LastIndexByte(addr, ':')+1:], "%d", &p)
	return p
}

// hasEvent reports whether the front has an Event with the reason whose note contains text.
func hasEvent(t *testing.T, ns, front, reason, text string) bool {
	t.Helper()
	var list eventsv1.EventList
	if err := k8s.List(context.Background(), &list, client.InNamespace(ns)); err != nil {
		t.Fatal(err)
	}
	return slices.ContainsFunc(list.Items, func(e eventsv1.Event) bool {
		return e.Regarding.Name == front && e.Reason == reason && strings.Contains(e.Note, text)
	})
}

// TestCaptureFailOpen: with no gateway ready, an Open front's slice points at the backend's endpoints
// within 2 s, and back at the gateway within 2 s of one being ready; a Closed front stays.
func TestCaptureFailOpen(t *testing.T) {
	ns := namespace(t, "failopen")
	backend(t, ns, "pods")
	kubectl(t, frontYAML(ns, "open", "pods")+"---\n"+frontYAML(ns, "closed", "pods", "resilience.dev/capture-failure: Closed"), "apply", "-f", "-")
	pointsAt := func(front, addr string) func() bool {
		return func() bool {
			s := frontSlices(t, ns, front)
			return len(s) == 1 && len(s[0].Endpoints) == 1 && s[0].Endpoints[0].Addresses[0] == addr
		}
	}
	until(t, "open front toward the gateway", 10*time.Second, pointsAt("open", localstack.GatewayEndpointFQDN))
	until(t, "closed front toward the gateway", 10*time.Second, pointsAt("closed", localstack.GatewayEndpointFQDN))
	t.Cleanup(func() { _ = stack.SetGatewayReady(context.Background(), true) })
	var open, back []time.Duration
	for range 5 {
		if err := stack.SetGatewayReady(context.Background(), false); err != nil {
			t.Fatal(err)
		}
		open = append(open, until(t, "failed open", 2*time.Second, pointsAt("open", "pods.localhost")))
		if l := frontSlices(t, ns, "open"); len(l) != 1 {
			t.Fatalf("the Open front has %d slices once failed open, want 1", len(l))
		}
		if s := frontSlices(t, ns, "open")[0]; *s.Ports[0].Port == capturePort(t, ns, "open") {
			t.Fatalf("failed open on the capture port %d, not the pods' port", *s.Ports[0].Port)
		}
		if !pointsAt("closed", localstack.GatewayEndpointFQDN)() {
			t.Fatal("the Closed front left the gateway")
		}
		if err := stack.SetGatewayReady(context.Background(), true); err != nil {
			t.Fatal(err)
		}
		back = append(back, until(t, "back to the gateway", 2*time.Second, pointsAt("open", localstack.GatewayEndpointFQDN)))
	}
	t.Logf("fail-open switch over 5 flips: to the pods %v, back to the gateway %v", open, back)
	if !hasEvent(t, ns, "open", "CaptureFailedOpen", "unprotected") || hasEvent(t, ns, "closed", "CaptureFailedOpen", "") {
		t.Error("want a CaptureFailedOpen Event on the Open front only")
	}
}

// TestCaptureRemoval: removing the label, or the front, removes its slices and closes its listener.
func TestCaptureRemoval(t *testing.T) {
	ns := namespace(t, "removal")
	backend(t, ns, "pods")
	kubectl(t, frontYAML(ns, "a", "pods")+"---\n"+frontYAML(ns, "b", "pods"), "apply", "-f", "-")
	var pa, pb int32
	until(t, "both captured", 10*time.Second, func() bool {
		pa, pb = capturePort(t, ns, "a"), capturePort(t, ns, "b")
		return pa != 0 && pb != 0 && served(pa) && served(pb)
	})
	kubectl(t, "", "-n", ns, "label", "service", "a", capture.LabelCapture+"-")
	kubectl(t, "", "-n", ns, "delete", "service", "b")
	until(t, "slices and listeners gone", 10*time.Second, func() bool {
		return len(frontSlices(t, ns, "a")) == 0 && len(frontSlices(t, ns, "b")) == 0 && !served(pa) && !served(pb)
	})
}

// served reports whether the gateway answers on a capture port with the backend's answer.
func served(port int32) bool {
	code, body, err := rawGet("127.0.0.1", port, "1.0")
	return err == nil && code == http.StatusOK && strings.HasPrefix(body, "pods ")
}
