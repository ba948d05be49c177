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
	"cmp"
	"fmt"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/validation"
)

// Plan is what capture makes of one front Service.
type Plan struct {
	Front   types.NamespacedName
	Service *corev1.Service
	// Backend is the Service that selects the pods (nil when refused before it was found).
	Backend *corev1.Service
	// Ports pairs each front port, in the front's order, with its backend port and capture port.
	Ports []PortMap
	// FailClosed keeps the slices on the gateways when none is ready (capture-failure Closed).
	FailClosed bool
	// Shared is the migration state: the front still has a selector, so the EndpointSlice controller
	// writes slices of its own beside the manager's and traffic is shared.
	Shared bool
	// Refused says why the front is not captured ("" when it is).
	Refused string
}

// PortMap is one front port.
type PortMap struct {
	Name        string
	Port        int32
	AppProtocol *string
	// BackendName is the paired backend port's name (the EndpointSlices' port name); BackendPort its
	// number on the backend Service.
	BackendName string
	BackendPort int32
	Capture     int32
}

// Captured reports whether the front is captured.
func (p *Plan) Captured() bool { return p.Refused == "" }

// CapturePorts maps each front port name to its capture port.
func (p *Plan) CapturePorts() map[string]int32 {
	m := make(map[string]int32, len(p.Ports))
	for _, pm := range p.Ports {
		m[pm.Name] = pm.Capture
	}
	return m
}

// Lookup finds a Service, nil when there is none.
type Lookup func(namespace, name string) *corev1.Service

// IsFront reports whether a Service asks to be captured (it carries the capture label, whatever its
// value: an unknown value is refused with a reason rather than ignored).
func IsFront(s *corev1.Service) bool {
	_, ok := s.Labels[LabelCapture]
	return ok
}

// PlanAll plans every front: checks each, then gives each front port a capture port in r. Claims
// recorded on the manager's slices are kept, oldest front first (creation, then namespace and name),
// so a port claimed twice goes to the older front; ports without a claim get the lowest free port,
// in the same order. A front that cannot have every port is refused whole, holding none: a slice
// missing a port would silently drop that port's traffic. The result is in that order.
func PlanAll(fronts []*corev1.Service, lookup Lookup, claims Claims, r Range) []*Plan {
	fronts = slices.Clone(fronts)
	slices.SortFunc(fronts, func(a, b *corev1.Service) int {
		return cmp.Or(a.CreationTimestamp.Time.Compare(b.CreationTimestamp.Time),
			strings.Compare(a.Namespace, b.Namespace), strings.Compare(a.Name, b.Name))
	})
	plans := make([]*Plan, len(fronts))
	for i, f := range fronts {
		plans[i] = check(f, lookup)
	}
	used := map[int32]bool{}
	for _, p := range plans { // keep the claims, oldest first
		if !p.Captured() {
			continue
		}
		own := claims[p.Front]
		for i := range p.Ports {
			if c, ok := own[p.Ports[i].Name]; ok && r.Contains(c) && !used[c] {
				p.Ports[i].Capture, used[c] = c, true
			}
		}
	}
	next := r.First
	for _, p := range plans { // then allocate, oldest first
		if p.Captured() {
			next = allocate(p, r, used, next)
		}
	}
	return plans
}

// allocate gives p's unallocated ports the lowest free ports from next on, or refuses p and frees
// what it held. It returns where the next search starts.
func allocate(p *Plan, r Range, used map[int32]bool, next int32) int32 {
	for i := range p.Ports {
		if p.Ports[i].Capture != 0 {
			continue
		}
		for next <= r.Last && used[next] {
			next++
		}
		if next > r.Last {
			p.Refused = fmt.Sprintf("the capture range %s is exhausted: no free capture port for port %s", r, portName(p.Ports[i].Name, p.Ports[i].Port))
			lowest := next
			for j := range p.Ports {
				if c := p.Ports[j].Capture; c != 0 {
					delete(used, c)
					lowest = min(lowest, c)
				}
				p.Ports[j].Capture = 0
			}
			return lowest
		}
		p.Ports[i].Capture, used[next] = next, true
	}
	return next
}

// check validates one front and pairs its ports; the plan is refused with the first reason found.
func check(f *corev1.Service, lookup Lookup) *Plan {
	p := &Plan{Front: types.NamespacedName{Namespace: f.Namespace, Name: f.Name}, Service: f, Shared: len(f.Spec.Selector) > 0}
	refuse := func(format string, args ...any) *Plan {
		p.Refused, p.Ports = fmt.Sprintf(format, args...), nil
		return p
	}
	if v := f.Labels[LabelCapture]; v != ValueGateway {
		return refuse("label %s has the unknown value %q (the only value is %q)", LabelCapture, v, ValueGateway)
	}
	switch v, set := f.Annotations[AnnotationFailure]; {
	case !set || v == FailureOpen:
	case v == FailureClosed:
		p.FailClosed = true
	default:
		return refuse("annotation %s has the unknown value %q (Open or Closed)", AnnotationFailure, v)
	}
	if why := unfit(f, "the front"); why != "" {
		return refuse("%s", why)
	}
	name, set := f.Annotations[AnnotationBackend]
	switch {
	case !set || name == "":
		return refuse("annotation %s is missing: it names the Service, in namespace %s, that selects the pods", AnnotationBackend, f.Namespace)
	case strings.ContainsAny(name, "/."):
		return refuse("annotation %s is %q: the backend must be a Service of the front's own namespace, named without a namespace", AnnotationBackend, name)
	case len(validation.IsDNS1035Label(name)) > 0:
		return refuse("annotation %s is %q, which is not a Service name", AnnotationBackend, name)
	case name == f.Name:
		return refuse("annotation %s names the front itself: the backend is another Service, the one that selects the pods", AnnotationBackend)
	}
	b := lookup(f.Namespace, name)
	switch {
	case b == nil:
		return refuse("backend Service %s/%s not found", f.Namespace, name)
	case IsFront(b):
		return refuse("backend Service %s/%s is itself a front (label %s): fronts do not chain", f.Namespace, name, LabelCapture)
	case b.Spec.Type == corev1.ServiceTypeExternalName:
		return refuse("backend Service %s/%s is of type ExternalName: it has no endpoints for the gateway to balance over", f.Namespace, name)
	}
	p.Backend = b
	ports, why := pair(f, b)
	if why != "" {
		return refuse("%s", why)
	}
	p.Ports = ports
	return p
}

// unfit says why a front Service cannot be captured, or "".
func unfit(f *corev1.Service, what string) string {
	switch {
	case f.Spec.Type == corev1.ServiceTypeExternalName:
		return what + " is of type ExternalName: there is no traffic of its own to capture"
	case f.Spec.ClusterIP == corev1.ClusterIPNone:
		return what + " is headless: callers resolve the pods' addresses and connect to them directly, so it cannot be captured"
	case len(f.Spec.Ports) == 0:
		return what + " has no ports"
	case len(f.Spec.Ports) > MaxPorts:
		return fmt.Sprintf("%s has %d ports; an EndpointSlice holds at most %d", what, len(f.Spec.Ports), MaxPorts)
	}
	for _, sp := range f.Spec.Ports {
		if sp.Protocol != "" && sp.Protocol != corev1.ProtocolTCP {
			return fmt.Sprintf("port %s is %s: only TCP is captured", portName(sp.Name, sp.Port), sp.Protocol)
		}
	}
	return ""
}

// pair pairs each front port with the backend port of the same name, or, when each has one port,
// those two.
func pair(f, b *corev1.Service) ([]PortMap, string) {
	out := make([]PortMap, 0, len(f.Spec.Ports))
	for _, sp := range f.Spec.Ports {
		var bp *corev1.ServicePort
		if len(f.Spec.Ports) == 1 && len(b.Spec.Ports) == 1 {
			bp = &b.Spec.Ports[0]
		} else {
			for i := range b.Spec.Ports {
				if b.Spec.Ports[i].Name == sp.Name {
					bp = &b.Spec.Ports[i]
					break
				}
			}
		}
		if bp == nil {
			return nil, fmt.Sprintf("front port %s has no backend port to pair with: backend Service %s/%s has no port named %q",
				portName(sp.Name, sp.Port), b.Namespace, b.Name, sp.Name)
		}
		out = append(out, PortMap{Name: sp.Name, Port: sp.Port, AppProtocol: sp.AppProtocol, BackendName: bp.Name, BackendPort: bp.Port})
	}
	return out, ""
}

func portName(name string, port int32) string {
	if name != "" {
		return fmt.Sprintf("%q (%d)", name, port)
	}
	return fmt.Sprint(port)
}
