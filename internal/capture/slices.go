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
	"fmt"
	"sort"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

// Mode is where a captured front's slices point.
type Mode string

const (
	// ModeGateway: at the gateway pods, on the capture ports.
	ModeGateway Mode = "Gateway"
	// ModeFailedOpen: no gateway replica is ready and the front fails open, so at the backend's pods.
	ModeFailedOpen Mode = "FailedOpen"
)

// SliceName is the name of the i-th slice the manager writes for a front. The EndpointSlice
// controller names its slices <service>-<5 random characters>, never with a second dash, so the two
// cannot collide.
func SliceName(front string, i int) string { return fmt.Sprintf("%s-resilience-%d", front, i) }

// Ready reports whether any endpoint of slices is ready (a nil condition counts as ready).
func Ready(slices []*discoveryv1.EndpointSlice) bool {
	for _, s := range slices {
		for _, e := range s.Endpoints {
			if e.Conditions.Ready == nil || *e.Conditions.Ready {
				return true
			}
		}
	}
	return false
}

// Desired returns the EndpointSlices of a captured front: one per address type of the gateway's
// slices, with the gateway endpoints (conditions mirrored) on the capture ports; or, when no gateway
// endpoint is ready and the front fails open, one per backend slice, with its endpoints and ports
// renamed to the front's. There is always at least one slice, so that the capture ports stay
// recorded. gateway and backend must not include the manager's own slices.
func Desired(p *Plan, gateway, backend []*discoveryv1.EndpointSlice) ([]discoveryv1.EndpointSlice, Mode) {
	var out []discoveryv1.EndpointSlice
	mode := ModeGateway
	if !p.FailClosed && !Ready(gateway) {
		mode = ModeFailedOpen
		out = mirrorBackend(p, backend)
	} else {
		out = towardGateway(p, gateway)
	}
	if len(out) == 0 {
		out = append(out, discoveryv1.EndpointSlice{AddressType: discoveryv1.AddressTypeIPv4, Ports: capturePorts(p), Endpoints: []discoveryv1.Endpoint{}})
	}
	for i := range out {
		out[i].ObjectMeta = meta(p, i)
	}
	return out, mode
}

func meta(p *Plan, i int) metav1.ObjectMeta {
	return metav1.ObjectMeta{
		Name: SliceName(p.Front.Name, i), Namespace: p.Front.Namespace,
		Labels: map[string]string{discoveryv1.LabelServiceName: p.Front.Name, discoveryv1.LabelManagedBy: ManagedBy,
			LabelFront: p.Front.Name},
		Annotations: map[string]string{AnnotationPorts: EncodePorts(p.CapturePorts())},
		OwnerReferences: []metav1.OwnerReference{{APIVersion: "v1", Kind: "Service", Name: p.Service.Name,
			UID: p.Service.UID, Controller: ptr.To(true), BlockOwnerDeletion: ptr.To(true)}},
	}
}

func capturePorts(p *Plan) []discoveryv1.EndpointPort {
	out := make([]discoveryv1.EndpointPort, len(p.Ports))
	for i, pm := range p.Ports {
		out[i] = discoveryv1.EndpointPort{Name: ptr.To(pm.Name), Port: ptr.To(pm.Capture), Protocol: ptr.To(corev1.ProtocolTCP),
			AppProtocol: pm.AppProtocol}
	}
	return out
}

// towardGateway groups the gateway's endpoints by address type.
func towardGateway(p *Plan, gateway []*discoveryv1.EndpointSlice) []discoveryv1.EndpointSlice {
	byType := map[discoveryv1.AddressType][]discoveryv1.Endpoint{}
	for _, s := range sortedSlices(gateway) {
		for _, e := range s.Endpoints {
			byType[s.AddressType] = append(byType[s.AddressType], discoveryv1.Endpoint{Addresses: e.Addresses,
				Conditions: e.Conditions, NodeName: e.NodeName, Zone: e.Zone})
		}
	}
	types := make([]string, 0, len(byType))
	for t := range byType {
		types = append(types, string(t))
	}
	sort.Strings(types)
	out := make([]discoveryv1.EndpointSlice, 0, len(types))
	for _, t := range types {
		out = append(out, discoveryv1.EndpointSlice{AddressType: discoveryv1.AddressType(t), Ports: capturePorts(p),
			Endpoints: byType[discoveryv1.AddressType(t)]})
	}
	return out
}

// mirrorBackend copies each backend slice, its ports named after the front's.
func mirrorBackend(p *Plan, backend []*discoveryv1.EndpointSlice) []discoveryv1.EndpointSlice {
	var out []discoveryv1.EndpointSlice
	for _, s := range sortedSlices(backend) {
		var ports []discoveryv1.EndpointPort
		for _, pm := range p.Ports {
			for _, sp := range s.Ports {
				if ptr.Deref(sp.Name, "") == pm.BackendName && sp.Port != nil {
					ports = append(ports, discoveryv1.EndpointPort{Name: ptr.To(pm.Name), Port: ptr.To(*sp.Port),
						Protocol: sp.Protocol, AppProtocol: sp.AppProtocol})
					break
				}
			}
		}
		if len(ports) == 0 {
			continue
		}
		eps := make([]discoveryv1.Endpoint, len(s.Endpoints))
		for i, e := range s.Endpoints {
			eps[i] = discoveryv1.Endpoint{Addresses: e.Addresses, Conditions: e.Conditions, NodeName: e.NodeName,
				Zone: e.Zone, TargetRef: e.TargetRef, Hostname: e.Hostname}
		}
		out = append(out, discoveryv1.EndpointSlice{AddressType: s.AddressType, Ports: ports, Endpoints: eps})
	}
	return out
}

func sortedSlices(in []*discoveryv1.EndpointSlice) []*discoveryv1.EndpointSlice {
	out := make([]*discoveryv1.EndpointSlice, 0, len(in))
	for _, s := range in {
		if !IsManaged(s) {
			out = append(out, s)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}
