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
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"

	"resilience.dev/operator/api/v1alpha1"
	"resilience.dev/operator/internal/capture"
)

// index is the input arranged for the later stages' lookups.
type index struct {
	services map[string]map[string]*corev1.Service // namespace -> name -> Service
	slices   map[serviceKey][]*discoveryv1.EndpointSlice
	// policies holds, per kind (in the order of kinds), the valid, live policies by namespace.
	policies []map[string][]v1alpha1.Policy
	replicas int
	// captures holds the plan of each captured front Service (refused fronts are not in it).
	captures map[serviceKey]*capture.Plan
}

func (c *Compiler) index(in *Input) *index {
	idx := &index{
		services: map[string]map[string]*corev1.Service{},
		slices:   map[serviceKey][]*discoveryv1.EndpointSlice{},
		policies: make([]map[string][]v1alpha1.Policy, len(kinds)),
		replicas: max(in.GatewayReplicas, 1),
	}
	for i := range in.Services {
		s := &in.Services[i]
		if idx.services[s.Namespace] == nil {
			idx.services[s.Namespace] = map[string]*corev1.Service{}
		}
		idx.services[s.Namespace][s.Name] = s
	}
	var own []*discoveryv1.EndpointSlice
	for i := range in.EndpointSlices {
		s := &in.EndpointSlices[i]
		if capture.IsManaged(s) { // a front's slices point at the gateways: never an endpoint
			own = append(own, s)
			continue
		}
		if svc := s.Labels[discoveryv1.LabelServiceName]; svc != "" {
			k := serviceKey{s.Namespace, svc}
			idx.slices[k] = append(idx.slices[k], s)
		}
	}
	idx.captures = planCaptures(idx, in.CaptureRange, own)
	valid := make(map[policyGen]bool, len(c.valid))
	for i, k := range kinds {
		idx.policies[i] = c.validByNamespace(k, k.policies(in), valid)
	}
	c.valid = valid
	return idx
}

// validByNamespace groups the valid, live policies of one kind by namespace. A policy at a UID and
// generation validated by the last compile is not validated again (its spec is the same); seen
// receives the validity of every policy of this compile.
func (c *Compiler) validByNamespace(k kind, items []v1alpha1.Policy, seen map[policyGen]bool) map[string][]v1alpha1.Policy {
	out := map[string][]v1alpha1.Policy{}
	for _, p := range items {
		if p.GetDeletionTimestamp() != nil {
			continue
		}
		gen := policyGen{p.GetUID(), p.GetGeneration()}
		cacheable := gen.uid != "" && gen.generation != 0
		ok, known := c.valid[gen]
		if !cacheable || !known {
			ok = len(k.Validate(p)) == 0
		}
		if cacheable {
			seen[gen] = ok
		}
		if ok {
			out[p.GetNamespace()] = append(out[p.GetNamespace()], p)
		}
	}
	return out
}

// planCaptures plans the front Services exactly as the capture reconciler does (same fronts, same
// claims from the manager's slices, same range), so the snapshot's capture ports are the slices'.
func planCaptures(idx *index, r capture.Range, own []*discoveryv1.EndpointSlice) map[serviceKey]*capture.Plan {
	if r == (capture.Range{}) {
		r = capture.DefaultRange
	}
	var fronts []*corev1.Service
	for _, byName := range idx.services {
		for _, s := range byName {
			if capture.IsFront(s) {
				fronts = append(fronts, s)
			}
		}
	}
	if len(fronts) == 0 {
		return nil
	}
	lookup := func(ns, name string) *corev1.Service { return idx.services[ns][name] }
	out := map[serviceKey]*capture.Plan{}
	for _, p := range capture.PlanAll(fronts, lookup, capture.ClaimsOf(own), r) {
		if p.Captured() {
			out[serviceKey{p.Front.Namespace, p.Front.Name}] = p
		}
	}
	return out
}
