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

// Package capture is the pure part of capture (contract, section 5): which Services are front
// Services, how each front port pairs with a backend port and which capture port on the gateway it
// is given, and the EndpointSlices that send a front's traffic to the gateway (or, failed open, to
// the backend's pods). The manager's capture reconciler writes those slices; the compiler reads the
// same plan to put the capture ports in the snapshot, so every manager replica agrees on them.
package capture

import (
	"encoding/json"
	"fmt"

	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/types"

	"resilience.dev/operator/internal/snapshot"
)

// The names users and tools see (contract, section 5).
const (
	// LabelCapture on a Service makes it a front; its only value is ValueGateway.
	LabelCapture = "resilience.dev/capture"
	ValueGateway = "gateway"
	// AnnotationBackend names the Service, in the front's namespace, that selects the pods.
	AnnotationBackend = "resilience.dev/backend"
	// AnnotationFailure is Open (the default) or Closed: where a front's traffic goes when no gateway
	// replica is ready.
	AnnotationFailure = "resilience.dev/capture-failure"
	FailureOpen       = "Open"
	FailureClosed     = "Closed"
	// LabelFront names the front on each EndpointSlice the manager writes for it.
	LabelFront = "resilience.dev/front"
	// ManagedBy is the endpointslice.kubernetes.io/managed-by value of those slices.
	ManagedBy = "manager.resilience.dev"
	// AnnotationPorts on those slices records the capture port of each front port (by port name), so
	// that allocations survive manager restarts and leader changes whatever the slices point at.
	AnnotationPorts = "resilience.dev/capture-ports"
	// MaxPorts is the most ports an EndpointSlice holds, so the most a front may have.
	MaxPorts = 100
	// EndpointSliceController is the managed-by value of the EndpointSlice controller's slices, which
	// capture lives beside (and the compiler tells from hand-made ones).
	EndpointSliceController = "endpointslice-controller.k8s.io"
)

// Range is an inclusive range of TCP ports the gateway may listen on for captured traffic (the
// gateway, which links no Kubernetes code, reads it from the snapshot package too).
type Range = snapshot.PortRange

// DefaultRange is the capture range of the manager and gateway flags.
var DefaultRange = snapshot.DefaultCaptureRange

// ParseRange reads "first-last" (or a single port).
func ParseRange(s string) (Range, error) { return snapshot.ParsePortRange(s) }

// Claims are the capture ports recorded on the manager's slices: front -> front port name -> port.
type Claims map[types.NamespacedName]map[string]int32

// ClaimsOf reads the claims of the manager's slices among slices (others are ignored, as are
// annotations that do not parse: their front is then allocated afresh).
func ClaimsOf(slices []*discoveryv1.EndpointSlice) Claims {
	out := Claims{}
	for _, s := range slices {
		front := s.Labels[LabelFront]
		if s.Labels[discoveryv1.LabelManagedBy] != ManagedBy || front == "" {
			continue
		}
		ports, err := DecodePorts(s.Annotations[AnnotationPorts])
		if err != nil {
			continue
		}
		key := types.NamespacedName{Namespace: s.Namespace, Name: front}
		if out[key] == nil {
			out[key] = map[string]int32{}
		}
		for name, p := range ports {
			out[key][name] = p
		}
	}
	return out
}

// EncodePorts writes port name -> capture port as the annotation holds it (JSON, keys sorted).
func EncodePorts(ports map[string]int32) string {
	b, _ := json.Marshal(ports) // a map of strings to numbers always encodes; keys come out sorted
	return string(b)
}

// DecodePorts reads the annotation written by EncodePorts.
func DecodePorts(s string) (map[string]int32, error) {
	var m map[string]int32
	if err := json.Unmarshal([]byte(s), &m); err != nil {
		return nil, fmt.Errorf("annotation %s: %w", AnnotationPorts, err)
	}
	return m, nil
}

// IsManaged reports whether the manager wrote slice s for a front.
func IsManaged(s *discoveryv1.EndpointSlice) bool {
	return s.Labels[discoveryv1.LabelManagedBy] == ManagedBy
}
