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

package compile

import (
	"sort"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"

	"resilience.dev/operator/internal/capture"
	"resilience.dev/operator/internal/snapshot"
)

// endpointsFor lists the ready endpoints of one Service port across its EndpointSlices, sorted.
func endpointsFor(sp corev1.ServicePort, slices []*discoveryv1.EndpointSlice) []snapshot.Endpoint {
	out := []snapshot.Endpoint{}
	for _, s := range slices {
		port, ok := slicePort(s, sp)
		if !ok {
			continue
		}
		// The EndpointSlice controller manages the slices of Services with a selector; slices that
		// others manage are hand-made, and the snapshot says so.
		handMade := s.Labels[discoveryv1.LabelManagedBy] != capture.EndpointSliceController
		for _, e := range s.Endpoints {
			if !ready(e) || foreignTarget(e, s.Namespace) {
				continue
			}
			for _, addr := range e.Addresses {
				out = append(out, snapshot.Endpoint{Address: addr, Port: port, Type: string(s.AddressType), HandMade: handMade})
			}
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Address != out[j].Address {
			return out[i].Address < out[j].Address
		}
		return out[i].Port < out[j].Port
	})
	return dedupe(out)
}

// slicePort finds the slice's port for a Service port: the one of the same name (EndpointSlices name
// their ports after the Service's).
func slicePort(s *discoveryv1.EndpointSlice, sp corev1.ServicePort) (int32, bool) {
	for _, p := range s.Ports {
		name := ""
		if p.Name != nil {
			name = *p.Name
		}
		if name == sp.Name && p.Port != nil {
			return *p.Port, true
		}
	}
	return 0, false
}

// foreignTarget reports an endpoint that names, as its target, an object in another namespace: a
// Service's endpoints are its own namespace's pods, so such an endpoint is a hand-made attempt to send
// one namespace's traffic into another's pods, and is not followed.
func foreignTarget(e discoveryv1.Endpoint, ns string) bool {
	return e.TargetRef != nil && e.TargetRef.Namespace != "" && e.TargetRef.Namespace != ns
}

// ready follows the EndpointSlice API: a nil ready condition means ready; terminating endpoints are not.
func ready(e discoveryv1.Endpoint) bool {
	if e.Conditions.Terminating != nil && *e.Conditions.Terminating {
		return false
	}
	return e.Conditions.Ready == nil || *e.Conditions.Ready
}

func dedupe(eps []snapshot.Endpoint) []snapshot.Endpoint {
	out := eps[:0]
	for i, e := range eps {
		if i > 0 && e == eps[i-1] {
			continue
		}
		out = append(out, e)
	}
	return out
}
