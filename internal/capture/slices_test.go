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
	"testing"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

func ptrs(in []discoveryv1.EndpointSlice) []*discoveryv1.EndpointSlice {
	out := make([]*discoveryv1.EndpointSlice, len(in))
	for i := range in {
		out[i] = &in[i]
	}
	return out
}

func slice(name string, t discoveryv1.AddressType, ports []discoveryv1.EndpointPort, eps ...discoveryv1.Endpoint) *discoveryv1.EndpointSlice {
	return &discoveryv1.EndpointSlice{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "shop",
		Labels: map[string]string{discoveryv1.LabelManagedBy: "endpointslice-controller.k8s.io"}}, AddressType: t, Ports: ports, Endpoints: eps}
}

func ep(addr string, ready bool) discoveryv1.Endpoint {
	return discoveryv1.Endpoint{Addresses: []string{addr}, Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(ready)}}
}

func TestDesiredSlices(t *testing.T) {
	pods := svc("pods", 0, port("http", 8080))
	f := front(svc("checkout", 1, port("http", 80)), "pods")
	plan := func(mut func(*corev1.Service)) *Plan {
		g := f.DeepCopy()
		if mut != nil {
			mut(g)
		}
		return PlanAll([]*corev1.Service{g}, lookupOf(pods), nil, DefaultRange)[0]
	}
	gwPorts := []discoveryv1.EndpointPort{{Name: ptr.To("http"), Port: ptr.To[int32](8080)}}
	gwReady := []*discoveryv1.EndpointSlice{slice("gw-x", discoveryv1.AddressTypeIPv4, gwPorts, ep("10.0.0.7", true), ep("10.0.0.8", false)),
		slice("gw-y", discoveryv1.AddressTypeIPv6, gwPorts, ep("fd00::7", true))}
	gwDown := []*discoveryv1.EndpointSlice{slice("gw-x", discoveryv1.AddressTypeIPv4, gwPorts, ep("10.0.0.7", false))}
	backend := []*discoveryv1.EndpointSlice{slice("pods-abcde", discoveryv1.AddressTypeIPv4,
		[]discoveryv1.EndpointPort{{Name: ptr.To("http"), Port: ptr.To[int32](8443)}}, ep("10.1.0.1", true))}

	out, mode := Desired(plan(nil), gwReady, backend)
	if mode != ModeGateway || len(out) != 2 || out[0].AddressType != "IPv4" || out[1].AddressType != "IPv6" {
		t.Fatalf("mode %s, slices %+v", mode, out)
	}
	if len(out[0].Endpoints) != 2 || *out[0].Endpoints[1].Conditions.Ready || *out[0].Ports[0].Port != 20000 || *out[0].Ports[0].Name != "http" {
		t.Fatalf("gateway slice %+v", out[0])
	}
	m := out[0].ObjectMeta
	if m.Name != "checkout-resilience-0" || m.Labels[discoveryv1.LabelServiceName] != "checkout" || m.Labels[LabelFront] != "checkout" ||
		m.Labels[discoveryv1.LabelManagedBy] != ManagedBy || m.OwnerReferences[0].UID != f.UID || m.Annotations[AnnotationPorts] != `{"http":20000}` {
		t.Fatalf("meta %+v", m)
	}

	out, mode = Desired(plan(nil), gwDown, backend)
	if mode != ModeFailedOpen || len(out) != 1 || out[0].Endpoints[0].Addresses[0] != "10.1.0.1" || *out[0].Ports[0].Port != 8443 ||
		*out[0].Ports[0].Name != "http" || out[0].Annotations[AnnotationPorts] != `{"http":20000}` {
		t.Fatalf("failed open: mode %s, %+v", mode, out)
	}

	closed := plan(func(s *corev1.Service) { s.Annotations[AnnotationFailure] = FailureClosed })
	out, mode = Desired(closed, gwDown, backend)
	if mode != ModeGateway || out[0].Endpoints[0].Addresses[0] != "10.0.0.7" || *out[0].Endpoints[0].Conditions.Ready {
		t.Fatalf("failed closed: mode %s, %+v", mode, out)
	}

	out, mode = Desired(plan(nil), nil, nil) // nothing anywhere: one empty slice keeps the ports recorded
	if mode != ModeFailedOpen || len(out) != 1 || len(out[0].Endpoints) != 0 || *out[0].Ports[0].Port != 20000 {
		t.Fatalf("empty: mode %s, %+v", mode, out)
	}

	// The manager's own slices are never mirrored, even if listed among the backend's.
	own := slice("pods-resilience-0", discoveryv1.AddressTypeIPv4, backend[0].Ports, ep("10.9.9.9", true))
	own.Labels[discoveryv1.LabelManagedBy] = ManagedBy
	out, _ = Desired(plan(nil), gwDown, append(backend, own))
	if len(out) != 1 {
		t.Fatalf("mirrored the manager's own slice: %+v", out)
	}
}
