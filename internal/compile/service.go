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
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strconv"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"

	"resilience.dev/operator/api/v1alpha1"
	"resilience.dev/operator/internal/capture"
	"resilience.dev/operator/internal/snapshot"
)

// compiledService is one Service compiled and encoded, with the inputs it was compiled from ("" when
// they cannot be named, and then it is not cached).
type compiledService struct {
	inputs string
	svc    snapshot.Service
	enc    string
}

// managedService is one Service of this compile; cached says it was taken from the last compile,
// so it was validated then.
type managedService struct {
	key serviceKey
	*compiledService
	cached bool
}

// compileServices compiles every Service that has a governed port or is a captured front, and
// returns them with the cache for the next compile.
func (c *Compiler) compileServices(idx *index, ports governed) ([]managedService, map[serviceKey]*compiledService, error) {
	managed := map[serviceKey]bool{}
	for ns, byPort := range ports {
		for k := range byPort {
			managed[serviceKey{ns, k.Service}] = true
		}
	}
	for key := range idx.captures { // captured traffic is served with no policy in force too
		managed[key] = true
	}
	var out []managedService
	next := make(map[serviceKey]*compiledService, len(c.cache))
	for key := range managed {
		svc, eps, plan := idx.services[key.namespace][key.name], idx.slices[key], idx.captures[key]
		if plan != nil { // the front's endpoints are its backend's
			eps = idx.slices[serviceKey{key.namespace, plan.Backend.Name}]
		}
		byPort := ports[key.namespace]
		inputs := inputsOf(svc, eps, byPort, idx.replicas, plan)
		if prev := c.cache[key]; prev != nil && inputs != "" && prev.inputs == inputs {
			next[key] = prev
			out = append(out, managedService{key: key, compiledService: prev, cached: true})
			continue
		}
		cs, err := compileService(svc, eps, byPort, idx.replicas, plan)
		if err != nil {
			return nil, nil, err
		}
		cs.inputs = inputs
		if inputs != "" {
			next[key] = cs
		}
		out = append(out, managedService{key: key, compiledService: cs})
	}
	return out, next, nil
}

// compileService compiles one Service: each port with its endpoints and the policies governing it.
// A captured front (plan not nil) has its capture ports, and the endpoints of its backend's ports.
func compileService(svc *corev1.Service, eps []*discoveryv1.EndpointSlice, byPort map[portKey][]v1alpha1.Policy, replicas int, plan *capture.Plan) (*compiledService, error) {
	out := snapshot.Service{Namespace: svc.Namespace, Name: svc.Name}
	for _, sp := range svc.Spec.Ports {
		p := snapshot.Port{Name: sp.Name, Port: sp.Port}
		if sp.AppProtocol != nil {
			p.AppProtocol = *sp.AppProtocol
		}
		k := portKey{Service: svc.Name, Port: sp.Port}
		for ki, pol := range byPort[k] {
			if pol == nil {
				continue
			}
			if err := kinds[ki].compile(pol, k, replicas, &p); err != nil {
				return nil, fmt.Errorf("compile %s %s/%s: %w", kinds[ki].Name, svc.Namespace, pol.GetName(), err)
			}
		}
		endpointsOf := sp
		if plan != nil {
			for _, pm := range plan.Ports {
				if pm.Port == sp.Port {
					p.CapturePort, endpointsOf = pm.Capture, corev1.ServicePort{Name: pm.BackendName, Port: pm.BackendPort}
					if p.AppProtocol == "" { // the gateway speaks to the backend's pods: its port may say how
						p.AppProtocol = backendAppProtocol(plan.Backend, pm)
					}
				}
			}
		}
		p.Endpoints = endpointsFor(endpointsOf, eps)
		out.Ports = append(out.Ports, p)
	}
	sort.Slice(out.Ports, func(i, j int) bool { return out.Ports[i].Port < out.Ports[j].Port })
	b, err := json.Marshal(&out)
	if err != nil {
		return nil, fmt.Errorf("encode service %s/%s: %w", svc.Namespace, svc.Name, err)
	}
	return &compiledService{svc: out, enc: string(b)}, nil
}

// backendAppProtocol is the appProtocol of the backend port paired with a captured front port.
func backendAppProtocol(backend *corev1.Service, pm capture.PortMap) string {
	if backend == nil {
		return ""
	}
	for _, bp := range backend.Spec.Ports {
		if bp.Port == pm.BackendPort && bp.Name == pm.BackendName && bp.AppProtocol != nil {
			return *bp.AppProtocol
		}
	}
	return ""
}

// inputsOf names everything the compiled form of one Service depends on, or returns "" when some
// input cannot be named (an object without a resourceVersion, a policy without UID or generation).
func inputsOf(svc *corev1.Service, eps []*discoveryv1.EndpointSlice, byPort map[portKey][]v1alpha1.Policy, replicas int, plan *capture.Plan) string {
	if svc.ResourceVersion == "" || svc.UID == "" || plan != nil && (plan.Backend.UID == "" || plan.Backend.ResourceVersion == "") {
		return ""
	}
	b := make([]byte, 0, 160)
	b = append(b, svc.UID...)
	b = append(b, '@')
	b = append(b, svc.ResourceVersion...)
	b = append(b, "|r"...)
	b = strconv.AppendInt(b, int64(replicas), 10)
	if plan != nil { // the backend's ports and the capture ports shape the front's compiled form
		b = append(b, "|b"...)
		b = append(b, plan.Backend.UID...)
		b = append(b, '@')
		b = append(b, plan.Backend.ResourceVersion...)
		for _, pm := range plan.Ports {
			b = append(b, ',')
			b = strconv.AppendInt(b, int64(pm.Capture), 10)
		}
	}
	ids := make([]string, 0, len(eps))
	for _, s := range eps {
		if s.ResourceVersion == "" || s.UID == "" {
			return ""
		}
		ids = append(ids, string(s.UID)+"@"+s.ResourceVersion)
	}
	if len(ids) > 1 {
		slices.Sort(ids)
	}
	for _, id := range ids {
		b = append(b, "|s"...)
		b = append(b, id...)
	}
	for _, sp := range svc.Spec.Ports {
		governing := byPort[portKey{Service: svc.Name, Port: sp.Port}]
		if governing == nil {
			continue
		}
		b = append(b, "|p"...)
		b = strconv.AppendInt(b, int64(sp.Port), 10)
		for _, p := range governing {
			var ok bool
			if b, ok = appendPolicyID(b, p); !ok {
				return ""
			}
		}
	}
	return string(b)
}

// appendPolicyID appends ",uid@generation" of a policy, or ",-" for none; false when it has no UID or
// generation.
func appendPolicyID(b []byte, p v1alpha1.Policy) ([]byte, bool) {
	if p == nil {
		return append(b, ",-"...), true
	}
	if p.GetUID() == "" || p.GetGeneration() == 0 {
		return b, false
	}
	b = append(b, ',')
	b = append(b, p.GetUID()...)
	b = append(b, '@')
	return strconv.AppendInt(b, p.GetGeneration(), 10), true
}
