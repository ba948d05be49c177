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
	"slices"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"

	"resilience.dev/operator/api/v1alpha1"
	"resilience.dev/operator/internal/policy"
	"resilience.dev/operator/internal/snapshot"
)

// governed maps each governed port, by namespace, to the policies governing it: one slot per kind (in
// the order of kinds), nil where no policy of that kind governs the port.
type governed map[string]map[portKey][]v1alpha1.Policy

// at returns the policies of one port, making room for them.
func (g governed) at(ns string, k portKey) []v1alpha1.Policy {
	if g[ns] == nil {
		g[ns] = map[portKey][]v1alpha1.Policy{}
	}
	if g[ns][k] == nil {
		g[ns][k] = make([]v1alpha1.Policy, len(kinds))
	}
	return g[ns][k]
}

// resolveKey names one resolution: a kind (its index in kinds) in a namespace.
type resolveKey struct {
	kind      int
	namespace string
}

type resolution struct {
	inputs  string
	winners map[portKey]string // port -> name of the governing policy
}

// resolve settles which policy of each kind governs each port, and lists every valid policy (the
// candidates for the snapshot's policies in force).
func (c *Compiler) resolve(idx *index) (governed, []snapshot.PolicyRef) {
	ports := governed{}
	var refs []snapshot.PolicyRef
	for ki, k := range kinds {
		for ns, list := range idx.policies[ki] {
			for pk, p := range c.winners(resolveKey{ki, ns}, list, idx.services[ns]) {
				ports.at(ns, pk)[ki] = p
			}
			for _, p := range list {
				refs = append(refs, refOf(k.Name, p))
			}
		}
	}
	// Forget the resolutions of namespaces and kinds that have no valid policy now.
	for key := range c.resolved {
		if _, ok := idx.policies[key.kind][key.namespace]; !ok {
			delete(c.resolved, key)
		}
	}
	return ports, refs
}

// winners resolves one namespace's policies of one kind and returns the policy governing each port,
// reusing the last resolution of the namespace and kind when its inputs are the same.
func (c *Compiler) winners(key resolveKey, list []v1alpha1.Policy, services map[string]*corev1.Service) map[portKey]v1alpha1.Policy {
	inputs := resolveInputs(list, services)
	var names map[portKey]string
	if prev := c.resolved[key]; prev != nil && inputs != "" && prev.inputs == inputs {
		names = prev.winners
	} else {
		names = policy.Winners(kinds[key.kind].Name, list, services)
		if inputs != "" {
			c.resolved[key] = &resolution{inputs: inputs, winners: names}
		} else {
			delete(c.resolved, key)
		}
	}
	byName := make(map[string]v1alpha1.Policy, len(list))
	for _, p := range list {
		byName[p.GetName()] = p
	}
	out := make(map[portKey]v1alpha1.Policy, len(names))
	for k, name := range names {
		out[k] = byName[name]
	}
	return out
}

// resolveInputs names what policy.Resolve reads of one namespace's policies of one kind: each policy
// (its name, creation and targets: UID and generation, in list order) and each Service it targets
// (UID and resourceVersion, or absent); "" when some input cannot be named.
func resolveInputs(list []v1alpha1.Policy, services map[string]*corev1.Service) string {
	parts := make([]string, 0, len(list)) // one per policy, sorted: the cache lists in no set order
	var b []byte
	for _, p := range list {
		if p.GetUID() == "" || p.GetGeneration() == 0 {
			return ""
		}
		b = append(b[:0], p.GetName()...)
		b = append(b, '=')
		b = append(b, p.GetUID()...)
		b = append(b, '@')
		b = strconv.AppendInt(b, p.GetGeneration(), 10)
		for _, ref := range p.GetTargetRefs() {
			b = append(b, '>')
			b = append(b, ref.Name...)
			svc := services[string(ref.Name)]
			if svc == nil {
				b = append(b, '-')
				continue
			}
			if svc.UID == "" || svc.ResourceVersion == "" {
				return ""
			}
			b = append(b, '=')
			b = append(b, svc.UID...)
			b = append(b, '@')
			b = append(b, svc.ResourceVersion...)
		}
		parts = append(parts, string(b))
	}
	slices.Sort(parts)
	return strings.Join(parts, ";")
}
