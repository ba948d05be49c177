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

// Package policy holds the rules every policy kind shares and that both the reconcilers and the
// compiler must apply identically: which policy governs which Service port, and the checks of a spec
// that only Go code can make.
package policy

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"

	"resilience.dev/operator/api/v1alpha1"
)

// Candidate is one policy of a kind in a namespace, as the resolver needs it.
type Candidate struct {
	Name    string
	Created time.Time
	Refs    []v1alpha1.PolicyTargetReference
}

// PortKey identifies one port of a Service.
type PortKey struct {
	Service string
	Port    int32
}

// RefResult says whether one targetRef is in force and, if not, why.
type RefResult struct {
	InForce bool
	Reason  string
	Message string
	// Ports this ref governs (won), in the Service's port order.
	Ports []PortKey
}

// Resolution is the outcome of Resolve for a namespace.
type Resolution struct {
	// Winners maps each governed Service port to the name of the policy that applies to it.
	Winners map[PortKey]string
	// Refs maps each policy name to one result per targetRef, in spec order.
	Refs map[string][]RefResult
}

// Resolve settles which policy of one kind applies to each Service port in one namespace, as the
// contract says: at most one policy per port; a ref naming the port (sectionName) beats a ref naming the
// whole Service; among equals the oldest (creationTimestamp, then name) wins. services maps Service
// names to the Services that exist. kind names the policies in messages.
func Resolve(kind string, candidates []Candidate, services map[string]*corev1.Service) Resolution {
	sorted := append([]Candidate(nil), candidates...)
	sort.SliceStable(sorted, func(i, j int) bool { return older(sorted[i], sorted[j]) })

	type claim struct {
		policy   string
		specific bool
	}
	claims := map[PortKey][]claim{} // in age order, oldest first
	for _, c := range sorted {
		for _, ref := range c.Refs {
			svc, ok := services[ref.Name]
			if !ok || svc.Spec.Type == corev1.ServiceTypeExternalName || len(tlsPorts(ref, svc)) > 0 {
				continue
			}
			for _, p := range svc.Spec.Ports {
				if ref.SectionName != nil && p.Name != *ref.SectionName {
					continue
				}
				k := PortKey{Service: ref.Name, Port: p.Port}
				claims[k] = append(claims[k], claim{policy: c.Name, specific: ref.SectionName != nil})
			}
		}
	}

	winners := make(map[PortKey]string, len(claims))
	for k, cs := range claims {
		win := cs[0]
		for _, c := range cs {
			if c.specific { // the oldest specific claim beats any whole-Service claim
				win = c
				break
			}
		}
		winners[k] = win.policy
	}

	res := Resolution{Winners: winners, Refs: make(map[string][]RefResult, len(candidates))}
	for _, c := range candidates {
		results := make([]RefResult, len(c.Refs))
		for i, ref := range c.Refs {
			results[i] = resolveRef(kind, c.Name, ref, services[ref.Name], winners)
		}
		res.Refs[c.Name] = results
	}
	return res
}

// Winners resolves policies of one kind in one namespace (valid and not being deleted: only such
// policies hold ports) and returns the name of the policy governing each port, as Resolve does.
func Winners(kind string, policies []v1alpha1.Policy, services map[string]*corev1.Service) map[PortKey]string {
	candidates := make([]Candidate, len(policies))
	for i, p := range policies {
		candidates[i] = Candidate{Name: p.GetName(), Created: p.GetCreationTimestamp().Time, Refs: p.GetTargetRefs()}
	}
	return Resolve(kind, candidates, services).Winners
}

func older(a, b Candidate) bool {
	if !a.Created.Equal(b.Created) {
		return a.Created.Before(b.Created)
	}
	return a.Name < b.Name
}

func resolveRef(kind, self string, ref v1alpha1.PolicyTargetReference, svc *corev1.Service, winners map[PortKey]string) RefResult {
	switch {
	case svc == nil:
		return RefResult{Reason: v1alpha1.ReasonTargetNotFound, Message: fmt.Sprintf("Service %q not found", ref.Name)}
	case svc.Spec.Type == corev1.ServiceTypeExternalName:
		return RefResult{Reason: v1alpha1.ReasonInvalid,
			Message: fmt.Sprintf("Service %q is of type ExternalName: it has no endpoints for the gateway to balance over", ref.Name)}
	case len(svc.Spec.Ports) == 0:
		return RefResult{Reason: v1alpha1.ReasonTargetNotFound, Message: fmt.Sprintf("Service %q has no ports", ref.Name)}
	}
	if tls := tlsPorts(ref, svc); len(tls) > 0 {
		return RefResult{Reason: v1alpha1.ReasonInvalid, Message: fmt.Sprintf(
			"Service %q %s: TLS to backends is not supported in v1alpha1 (target the Service's other ports by sectionName)",
			ref.Name, strings.Join(tls, ", "))}
	}

	var won []PortKey
	lostTo := map[string][]string{} // winning policy -> port labels it took from us
	covered := 0
	for _, p := range svc.Spec.Ports {
		if ref.SectionName != nil && p.Name != *ref.SectionName {
			continue
		}
		covered++
		k := PortKey{Service: ref.Name, Port: p.Port}
		if w := winners[k]; w == self {
			won = append(won, k)
		} else {
			lostTo[w] = append(lostTo[w], portLabel(p))
		}
	}
	if covered == 0 {
		return RefResult{Reason: v1alpha1.ReasonTargetNotFound,
			Message: fmt.Sprintf("Service %q has no port named %q", ref.Name, *ref.SectionName)}
	}

	var lost []string
	for _, w := range sortedKeys(lostTo) {
		lost = append(lost, fmt.Sprintf("%s %s governs Service %q port %s", kind, w, ref.Name, strings.Join(lostTo[w], ", ")))
	}
	if len(won) == 0 {
		return RefResult{Reason: v1alpha1.ReasonConflicted, Message: strings.Join(lost, "; ")}
	}
	msg := fmt.Sprintf("in force on Service %q", ref.Name)
	if ref.SectionName != nil {
		msg = fmt.Sprintf("in force on Service %q port %s", ref.Name, *ref.SectionName)
	}
	if len(lost) > 0 {
		msg += "; partly overridden: " + strings.Join(lost, "; ")
	}
	return RefResult{InForce: true, Reason: v1alpha1.ReasonAccepted, Message: msg, Ports: won}
}

// tlsAppProtocols are the appProtocols (GEP-1911) that ask for TLS to the endpoints, which the
// gateway does not speak in v1alpha1.
var tlsAppProtocols = map[string]bool{"https": true, "kubernetes.io/wss": true}

// tlsPorts describes the ports ref targets on svc whose appProtocol asks for TLS; a ref targeting
// any is invalid as a whole, and governs no port.
func tlsPorts(ref v1alpha1.PolicyTargetReference, svc *corev1.Service) []string {
	var out []string
	for _, p := range svc.Spec.Ports {
		if ref.SectionName != nil && p.Name != *ref.SectionName {
			continue
		}
		if p.AppProtocol != nil && tlsAppProtocols[*p.AppProtocol] {
			out = append(out, fmt.Sprintf("port %s has appProtocol %q", portLabel(p), *p.AppProtocol))
		}
	}
	return out
}

func portLabel(p corev1.ServicePort) string {
	if p.Name != "" {
		return p.Name
	}
	return strconv.Itoa(int(p.Port))
}

func sortedKeys(m map[string][]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
