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
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/types"

	"resilience.dev/operator/api/v1alpha1"
	"resilience.dev/operator/internal/policy"
	"resilience.dev/operator/internal/snapshot"
)

// Input is the slice of cluster state a snapshot is compiled from.
type Input struct {
	RateLimits      []v1alpha1.RateLimit
	CircuitBreakers []v1alpha1.CircuitBreaker
	RetryPolicies   []v1alpha1.RetryPolicy
	Services        []corev1.Service
	EndpointSlices  []discoveryv1.EndpointSlice
	// GatewayReplicas is the number of ready gateway replicas that Split limits are divided across;
	// values below 1 count as 1.
	GatewayReplicas int
}

// Contract defaults, for fields that an object stored before the CRD defaulted them may lack.
const (
	defaultMaxDelay         = 500 * time.Millisecond
	defaultMaxKeys          = 10000
	defaultIPv6Prefix       = 64
	defaultConsecutive      = 5
	defaultOpenDuration     = 30 * time.Second
	defaultRatioPercent     = 50
	defaultRatioMinimum     = 20
	defaultRatioWindow      = 30 * time.Second
	defaultMaxOpenPercent   = 50
	defaultFallbackStatus   = 503
	defaultQueueTimeout     = time.Second
	defaultMaxAttempts      = 3
	defaultBackoffBase      = 25 * time.Millisecond
	defaultBackoffMax       = time.Second
	defaultBudgetPercent    = 20
	defaultBudgetMinPerSec  = 10
	defaultBudgetWindow     = 10 * time.Second
	endpointSliceController = "endpointslice-controller.k8s.io"
)

var (
	defaultFailureCodes = []string{"500-599"}
	defaultRetryCodes   = []string{"502", "503", "504"}
	defaultRetryMethods = []string{"GET", "HEAD", "OPTIONS", "PUT", "DELETE"}
)

type portKey = policy.PortKey

// Compile builds the snapshot. It applies exactly the reconcilers' rules (internal/policy) to decide
// which policy governs each port, so status and enforcement never disagree. Policies that fail
// validation are left out, as their Accepted=False status says.
func Compile(in Input) (*snapshot.Snapshot, error) {
	e, err := compile(in, nil)
	if err != nil {
		return nil, err
	}
	return e.Snapshot, nil
}

// Compiler compiles one snapshot after another (the manager's snapshot builder). It gives the same
// snapshot as Compile, and keeps each Service's compiled and encoded form: a Service whose inputs are
// unchanged since the last compile (the Service and its EndpointSlices at the same resourceVersion,
// the same policies at the same generation governing its ports, the same number of gateway replicas)
// is taken as it was, neither compiled, validated nor encoded again. Objects without a
// resourceVersion (or policies without a UID and generation) are compiled every time. Not safe for
// concurrent use.
type Compiler struct {
	cache map[serviceKey]*compiledService
	// valid remembers whether each policy (by UID and generation: its spec) passed validation.
	valid map[policyGen]bool
	// resolved remembers the winners of each namespace's policies of one kind, by the inputs of the
	// resolution (the policies' UIDs and generations, the targeted Services' UIDs and resourceVersions).
	resolved map[resolveKey]*resolution
}

type policyGen struct {
	uid        types.UID
	generation int64
}

type resolveKey struct{ kind, namespace string }

type resolution struct {
	inputs  string
	winners map[portKey]string // port -> name of the governing policy
}

type compiledService struct {
	inputs string
	svc    snapshot.Service
	enc    string
}

// Compile compiles in and encodes each Service (reusing what it can, see Compiler).
func (c *Compiler) Compile(in Input) (*snapshot.Encoded, error) {
	if c.cache == nil {
		c.cache = map[serviceKey]*compiledService{}
		c.valid = map[policyGen]bool{}
		c.resolved = map[resolveKey]*resolution{}
	}
	return compile(in, c)
}

// portWinners are the policies governing one port, one per kind at most.
type portWinners struct {
	rl *v1alpha1.RateLimit
	cb *v1alpha1.CircuitBreaker
	rp *v1alpha1.RetryPolicy
}

func compile(in Input, c *Compiler) (*snapshot.Encoded, error) {
	replicas := max(in.GatewayReplicas, 1)
	services := map[string]map[string]*corev1.Service{} // namespace -> name -> snapshot.Service
	for i := range in.Services {
		s := &in.Services[i]
		if services[s.Namespace] == nil {
			services[s.Namespace] = map[string]*corev1.Service{}
		}
		services[s.Namespace][s.Name] = s
	}

	ports := map[string]map[portKey]*portWinners{} // namespace -> port -> governing policies
	var refs []snapshot.PolicyRef
	portFor := func(ns string, k portKey) *portWinners {
		if ports[ns] == nil {
			ports[ns] = map[portKey]*portWinners{}
		}
		if ports[ns][k] == nil {
			ports[ns][k] = &portWinners{}
		}
		return ports[ns][k]
	}

	var valid map[policyGen]bool
	if c != nil {
		valid = make(map[policyGen]bool, len(c.valid))
	}
	rls := byNamespace(c, valid, in.RateLimits, func(p *v1alpha1.RateLimit) bool { return len(policy.ValidateRateLimit(&p.Spec)) == 0 })
	for ns, list := range rls {
		for k, p := range winners(c, "RateLimit", ns, list, services[ns]) {
			portFor(ns, k).rl = p
		}
		refs = appendRefs(refs, "RateLimit", list)
	}
	cbs := byNamespace(c, valid, in.CircuitBreakers, func(p *v1alpha1.CircuitBreaker) bool { return len(policy.ValidateCircuitBreaker(&p.Spec)) == 0 })
	for ns, list := range cbs {
		for k, p := range winners(c, "CircuitBreaker", ns, list, services[ns]) {
			portFor(ns, k).cb = p
		}
		refs = appendRefs(refs, "CircuitBreaker", list)
	}
	rps := byNamespace(c, valid, in.RetryPolicies, func(p *v1alpha1.RetryPolicy) bool { return len(policy.ValidateRetryPolicy(&p.Spec)) == 0 })
	for ns, list := range rps {
		for k, p := range winners(c, "RetryPolicy", ns, list, services[ns]) {
			portFor(ns, k).rp = p
		}
		refs = appendRefs(refs, "RetryPolicy", list)
	}
	if c != nil {
		c.valid = valid
		c.dropStaleResolutions(rls, cbs, rps)
	}

	epSlices := map[string][]*discoveryv1.EndpointSlice{} // namespace/service -> slices
	for i := range in.EndpointSlices {
		s := &in.EndpointSlices[i]
		if svc := s.Labels[discoveryv1.LabelServiceName]; svc != "" {
			epSlices[s.Namespace+"/"+svc] = append(epSlices[s.Namespace+"/"+svc], s)
		}
	}

	snap := &snapshot.Snapshot{Services: []snapshot.Service{}, Policies: []snapshot.PolicyRef{}}
	var encodings []string
	var fresh []bool // per Service: compiled now, not taken from the cache
	var cache map[serviceKey]*compiledService
	if c != nil {
		cache = make(map[serviceKey]*compiledService, len(c.cache))
	}
	type managedService struct {
		key serviceKey
		svc snapshot.Service
		enc string
		hit bool
	}
	var out []managedService
	for ns, byPort := range ports {
		managed := map[string]bool{}
		for k := range byPort {
			managed[k.Service] = true
		}
		for name := range managed {
			svc := services[ns][name]
			key := serviceKey{ns, name}
			var inputs string
			if c != nil {
				inputs = inputsOf(svc, epSlices[ns+"/"+name], byPort, replicas)
				if prev := c.cache[key]; prev != nil && inputs != "" && prev.inputs == inputs {
					cache[key] = prev
					out = append(out, managedService{key: key, svc: prev.svc, enc: prev.enc, hit: true})
					continue
				}
			}
			svcOut := snapshot.Service{Namespace: ns, Name: name}
			for _, sp := range svc.Spec.Ports {
				p := snapshot.Port{Name: sp.Name, Port: sp.Port}
				if w := byPort[portKey{Service: name, Port: sp.Port}]; w != nil {
					k := portKey{Service: name, Port: sp.Port}
					if w.rl != nil {
						rl, err := compileRateLimit(w.rl, k, replicas)
						if err != nil {
							return nil, fmt.Errorf("compile snapshot.RateLimit %s/%s: %w", ns, w.rl.Name, err)
						}
						p.RateLimit = rl
					}
					if w.cb != nil {
						p.CircuitBreaker = compileCircuitBreaker(w.cb, k)
					}
					if w.rp != nil {
						p.Retry = compileRetry(w.rp, k)
					}
				}
				p.Endpoints = endpointsFor(sp, epSlices[ns+"/"+name])
				svcOut.Ports = append(svcOut.Ports, p)
			}
			sort.Slice(svcOut.Ports, func(i, j int) bool { return svcOut.Ports[i].Port < svcOut.Ports[j].Port })
			ms := managedService{key: key, svc: svcOut}
			if c != nil {
				b, err := json.Marshal(&svcOut)
				if err != nil {
					return nil, fmt.Errorf("encode service %s/%s: %w", ns, name, err)
				}
				ms.enc = string(b)
				if inputs != "" {
					cache[key] = &compiledService{inputs: inputs, svc: svcOut, enc: ms.enc}
				}
			}
			out = append(out, ms)
		}
	}
	slices.SortFunc(out, func(a, b managedService) int {
		return cmp.Or(strings.Compare(a.key.namespace, b.key.namespace), strings.Compare(a.key.name, b.key.name))
	})
	for _, ms := range out {
		snap.Services = append(snap.Services, ms.svc)
		encodings = append(encodings, ms.enc)
		fresh = append(fresh, !ms.hit)
	}
	snap.Policies = inForce(snap, refs)
	// Services taken from the cache were validated when they were compiled.
	if err := snap.ValidateServices(func(i int) bool { return fresh[i] }); err != nil {
		return nil, fmt.Errorf("compiled snapshot is invalid: %w", err)
	}
	if c != nil {
		c.cache = cache
	}
	if encodings == nil {
		encodings = []string{}
	}
	return &snapshot.Encoded{Snapshot: snap, Encodings: encodings}, nil
}

// inputsOf names everything the compiled form of one Service depends on, or returns "" when some
// input cannot be named (an object without a resourceVersion, a policy without UID or generation).
func inputsOf(svc *corev1.Service, eps []*discoveryv1.EndpointSlice, byPort map[portKey]*portWinners, replicas int) string {
	if svc.ResourceVersion == "" || svc.UID == "" {
		return ""
	}
	b := make([]byte, 0, 160)
	b = append(b, svc.UID...)
	b = append(b, '@')
	b = append(b, svc.ResourceVersion...)
	b = append(b, "|r"...)
	b = strconv.AppendInt(b, int64(replicas), 10)
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
		w := byPort[portKey{Service: svc.Name, Port: sp.Port}]
		if w == nil {
			continue
		}
		b = append(b, "|p"...)
		b = strconv.AppendInt(b, int64(sp.Port), 10)
		var ok bool
		if b, ok = appendPolicyID(b, w.rl); !ok {
			return ""
		}
		if b, ok = appendPolicyID(b, w.cb); !ok {
			return ""
		}
		if b, ok = appendPolicyID(b, w.rp); !ok {
			return ""
		}
	}
	return string(b)
}

// appendPolicyID appends ",uid@generation" of a policy, or ",-" for none; false when it has no UID or
// generation.
func appendPolicyID[P interface {
	*T
	v1alpha1.Policy
}, T any](b []byte, p P) ([]byte, bool) {
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

// byNamespace groups the valid, live policies of one kind by namespace.
// With a Compiler, a policy at a UID and generation validated before is not validated again (its spec
// is the same); seen receives the validity of every policy of this compile.
func byNamespace[T any, P interface {
	*T
	v1alpha1.Policy
}](c *Compiler, seen map[policyGen]bool, items []T, valid func(P) bool) map[string][]P {
	out := map[string][]P{}
	for i := range items {
		p := P(&items[i])
		if p.GetDeletionTimestamp() != nil {
			continue
		}
		var ok, known bool
		k := policyGen{p.GetUID(), p.GetGeneration()}
		cacheable := c != nil && k.uid != "" && k.generation != 0
		if cacheable {
			ok, known = c.valid[k]
		}
		if !known {
			ok = valid(p)
		}
		if cacheable {
			seen[k] = ok
		}
		if !ok {
			continue
		}
		out[p.GetNamespace()] = append(out[p.GetNamespace()], p)
	}
	return out
}

// winners resolves one namespace's policies of one kind and returns the policy governing each port.
// A Compiler (c non-nil) reuses the last resolution of the namespace and kind when its inputs are the
// same.
func winners[P v1alpha1.Policy](c *Compiler, kind, ns string, list []P, services map[string]*corev1.Service) map[portKey]P {
	byName := make(map[string]P, len(list))
	for _, p := range list {
		byName[p.GetName()] = p
	}
	var names map[portKey]string
	var inputs string
	key := resolveKey{kind, ns}
	if c != nil {
		inputs = resolveInputs(list, services)
		if prev := c.resolved[key]; prev != nil && inputs != "" && prev.inputs == inputs {
			names = prev.winners
		}
	}
	if names == nil {
		candidates := make([]policy.Candidate, len(list))
		for i, p := range list {
			candidates[i] = policy.Candidate{Name: p.GetName(), Created: p.GetCreationTimestamp().Time, Refs: p.GetTargetRefs()}
		}
		names = policy.Resolve(kind, candidates, services).Winners
		if c != nil {
			if inputs != "" {
				c.resolved[key] = &resolution{inputs: inputs, winners: names}
			} else {
				delete(c.resolved, key)
			}
		}
	}
	out := make(map[portKey]P, len(names))
	for k, name := range names {
		out[k] = byName[name]
	}
	return out
}

// resolveInputs names what policy.Resolve reads of one namespace's policies of one kind: each policy
// (its name, creation and targets: UID and generation, in list order) and each Service it targets
// (UID and resourceVersion, or absent); "" when some input cannot be named.
func resolveInputs[P v1alpha1.Policy](list []P, services map[string]*corev1.Service) string {
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

// dropStaleResolutions forgets the resolutions of namespaces and kinds that have no valid policy now.
func (c *Compiler) dropStaleResolutions(rls map[string][]*v1alpha1.RateLimit, cbs map[string][]*v1alpha1.CircuitBreaker,
	rps map[string][]*v1alpha1.RetryPolicy) {
	for k := range c.resolved {
		var ok bool
		switch k.kind {
		case "RateLimit":
			_, ok = rls[k.namespace]
		case "CircuitBreaker":
			_, ok = cbs[k.namespace]
		case "RetryPolicy":
			_, ok = rps[k.namespace]
		}
		if !ok {
			delete(c.resolved, k)
		}
	}
}

func appendRefs[P v1alpha1.Policy](refs []snapshot.PolicyRef, kind string, list []P) []snapshot.PolicyRef {
	for _, p := range list {
		refs = append(refs, refOf(kind, p))
	}
	return refs
}

func refOf(kind string, p v1alpha1.Policy) snapshot.PolicyRef {
	return snapshot.PolicyRef{Kind: kind, Namespace: p.GetNamespace(), Name: p.GetName(), UID: string(p.GetUID()), Generation: p.GetGeneration()}
}

// inForce keeps the policies that govern at least one port, sorted.
func inForce(snap *snapshot.Snapshot, refs []snapshot.PolicyRef) []snapshot.PolicyRef {
	used := map[snapshot.PolicyKey]bool{}
	for _, s := range snap.Services {
		for _, p := range s.Ports {
			if p.RateLimit != nil {
				used[p.RateLimit.Policy.Key()] = true
			}
			if p.CircuitBreaker != nil {
				used[p.CircuitBreaker.Policy.Key()] = true
			}
			if p.Retry != nil {
				used[p.Retry.Policy.Key()] = true
			}
		}
	}
	out := make([]snapshot.PolicyRef, 0, len(used))
	for _, r := range refs {
		if used[r.Key()] {
			out = append(out, r)
		}
	}
	slices.SortFunc(out, func(a, b snapshot.PolicyRef) int { return a.Key().Compare(b.Key()) })
	return out
}

// endpointsFor lists the ready endpoints of one Service port across its EndpointSlices, sorted.
func endpointsFor(sp corev1.ServicePort, slices []*discoveryv1.EndpointSlice) []snapshot.Endpoint {
	out := []snapshot.Endpoint{}
	for _, s := range slices {
		port, ok := slicePort(s, sp)
		if !ok {
			continue
		}
		handMade := s.Labels[discoveryv1.LabelManagedBy] != endpointSliceController
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

// ready follows the EndpointSlice API: a nil ready condition means ready; terminating endpoints are not.
// foreignTarget reports an endpoint that names, as its target, an object in another namespace: a
// Service's endpoints are its own namespace's pods, so such an endpoint is a hand-made attempt to send
// one namespace's traffic into another's pods, and is not followed.
func foreignTarget(e discoveryv1.Endpoint, ns string) bool {
	return e.TargetRef != nil && e.TargetRef.Namespace != "" && e.TargetRef.Namespace != ns
}

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

// stateKey names pattern state across snapshots: policy UID, what it is, and a hash of the parameters
// that shape it, so an unchanged limit or breaker keeps its state and a changed one starts afresh.
func stateKey(uid, what string, params any) string {
	b, err := json.Marshal(params)
	if err != nil { // params are plain structs of this package; this cannot fail
		panic(fmt.Sprintf("stateKey: %v", err))
	}
	sum := sha256.Sum256(b)
	return uid + "/" + what + "/" + hex.EncodeToString(sum[:8])
}

func portLabel(k portKey) string { return fmt.Sprintf("%s:%d", k.Service, k.Port) }

func mustDuration(d v1alpha1.Duration, dflt time.Duration) snapshot.Duration {
	if d == "" {
		return snapshot.Duration(dflt)
	}
	v, err := policy.ParseDuration(d)
	if err != nil { // validated before compiling
		return snapshot.Duration(dflt)
	}
	return snapshot.Duration(v)
}

func orDefault[T comparable](v, dflt T) T {
	var zero T
	if v == zero {
		return dflt
	}
	return v
}

func boolOr(b *bool, dflt bool) bool {
	if b == nil {
		return dflt
	}
	return *b
}

func specs(codes []v1alpha1.StatusCodes, dflt []string) []string {
	if len(codes) == 0 {
		return append([]string(nil), dflt...)
	}
	out := make([]string, len(codes))
	for i, c := range codes {
		out[i] = string(c)
	}
	return out
}

func methods(ms []v1alpha1.HTTPMethod) []string {
	out := make([]string, len(ms))
	for i, m := range ms {
		out[i] = string(m)
	}
	return out
}

type serviceKey struct{ namespace, name string }
