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

package main

import (
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"

	"resilience.dev/operator/api/v1alpha1"
	"resilience.dev/operator/internal/compile"
	"resilience.dev/operator/internal/snapshot"
)

// benchSnapshot compiles the Service "full" (the three policies, as the compiler defaults them) from
// synthetic cluster objects, and adds the Service "plain": the same port with no policy. With a gRPC
// backend (grpcPort > 0), the Service "grpc" has the three policies too, on a port of appProtocol grpc.
func benchSnapshot(backendPort, grpcPort int32) (*snapshot.Snapshot, error) {
	created := metav1.NewTime(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	meta := func(kind string) metav1.ObjectMeta {
		return metav1.ObjectMeta{Namespace: ns, Name: "full", UID: types.UID("uid-" + kind), Generation: 1, CreationTimestamp: created}
	}
	refs := []v1alpha1.PolicyTargetReference{{Kind: "Service", Name: "full"}}
	in := compile.Input{
		Services: []corev1.Service{{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "full"},
			Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{{Name: "http", Port: 80}}}}},
		EndpointSlices: []discoveryv1.EndpointSlice{{
			ObjectMeta:  metav1.ObjectMeta{Namespace: ns, Name: "full-local", Labels: map[string]string{discoveryv1.LabelServiceName: "full"}},
			AddressType: discoveryv1.AddressTypeFQDN,
			Ports:       []discoveryv1.EndpointPort{{Name: ptr.To("http"), Port: ptr.To(backendPort)}},
			Endpoints:   []discoveryv1.Endpoint{{Addresses: []string{"bench.localhost"}}},
		}},
		RateLimits: []v1alpha1.RateLimit{{ObjectMeta: meta("rl"), Spec: v1alpha1.RateLimitSpec{TargetRefs: refs, Limits: []v1alpha1.Limit{
			{Name: "total", Requests: 1_000_000_000, Period: "1s"},
			{Name: "per-user", Requests: 1_000_000_000, Period: "1s", Key: []v1alpha1.KeyPart{{Header: ptr.To(v1alpha1.HeaderName("X-User-ID"))}}},
		}}}},
		CircuitBreakers: []v1alpha1.CircuitBreaker{{ObjectMeta: meta("cb"), Spec: v1alpha1.CircuitBreakerSpec{TargetRefs: refs}}},
		RetryPolicies:   []v1alpha1.RetryPolicy{{ObjectMeta: meta("rp"), Spec: v1alpha1.RetryPolicySpec{TargetRefs: refs}}},
		GatewayReplicas: 1,
	}
	for _, d := range []v1alpha1.Distribution{v1alpha1.DistributionGlobal, v1alpha1.DistributionPerReplica} {
		addLimited(&in, strings.ToLower(string(d)), d, backendPort, created)
	}
	wantServices, wantPolicies := 3, 5
	if grpcPort > 0 {
		addGRPC(&in, grpcPort, created)
		wantServices, wantPolicies = 4, 8
	}
	enc, err := new(compile.Compiler).Compile(in)
	if err != nil {
		return nil, err
	}
	snap := enc.Snapshot
	if len(snap.Services) != wantServices || len(snap.Policies) != wantPolicies {
		return nil, fmt.Errorf("compiled %d Services and %d policies, want %d and %d", len(snap.Services), len(snap.Policies), wantServices, wantPolicies)
	}
	for _, svc := range snap.Services {
		if p := svc.Ports[0]; svc.Name == "grpc" && (p.AppProtocol != "grpc" || p.RateLimit == nil || p.CircuitBreaker == nil || p.Retry == nil) {
			return nil, fmt.Errorf("Service grpc: want appProtocol grpc and the three policies, got %+v", p)
		}
	}
	for _, svc := range snap.Services[1:] { // sorted by name: full first
		if rl := svc.Ports[0].RateLimit; rl == nil || (svc.Name == "global") != (rl.Limits[0].Global != nil) {
			return nil, fmt.Errorf("Service %s: its limit is not compiled as asked", svc.Name)
		}
	}
	p := snap.Services[0].Ports[0]
	if p.RateLimit == nil || p.CircuitBreaker == nil || p.Retry == nil {
		return nil, fmt.Errorf("the three policies are not all on the port: %+v", p)
	}
	plain := snapshot.Service{Namespace: ns, Name: "plain", Ports: []snapshot.Port{{Name: p.Name, Port: p.Port, Endpoints: p.Endpoints}}}
	snap.Services = append(snap.Services, plain)
	snap.Version = 1
	return snap, nil
}

// addLimited adds Service name, on the bench backend, with a RateLimit of one limit that never refuses,
// of distribution d.
func addLimited(in *compile.Input, name string, d v1alpha1.Distribution, backendPort int32, created metav1.Time) {
	in.Services = append(in.Services, corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{{Name: "http", Port: 80}}}})
	in.EndpointSlices = append(in.EndpointSlices, discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Namespace: ns, Name: name + "-local", Labels: map[string]string{discoveryv1.LabelServiceName: name}},
		AddressType: discoveryv1.AddressTypeFQDN,
		Ports:       []discoveryv1.EndpointPort{{Name: ptr.To("http"), Port: ptr.To(backendPort)}},
		Endpoints:   []discoveryv1.Endpoint{{Addresses: []string{"bench.localhost"}}},
	})
	in.RateLimits = append(in.RateLimits, v1alpha1.RateLimit{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, UID: types.UID("uid-rl-" + name), Generation: 1, CreationTimestamp: created},
		Spec: v1alpha1.RateLimitSpec{TargetRefs: []v1alpha1.PolicyTargetReference{{Kind: "Service", Name: name}}, Distribution: ptr.To(d),
			// Ten million per second: far from empty at any rate the bench reaches (a Global limit's
			// burst*requests must stay under 2^52).
			Limits: []v1alpha1.Limit{{Name: "total", Requests: 10_000_000, Period: "1s"}}},
	})
}

// addGRPC adds Service grpc, appProtocol grpc, on the bench's gRPC backend, with a RateLimit that
// never refuses, a CircuitBreaker that never opens and a RetryPolicy that never retries (each as the
// compiler defaults it).
func addGRPC(in *compile.Input, port int32, created metav1.Time) {
	const name = "grpc"
	meta := func(kind string) metav1.ObjectMeta {
		return metav1.ObjectMeta{Namespace: ns, Name: name, UID: types.UID("uid-grpc-" + kind), Generation: 1, CreationTimestamp: created}
	}
	refs := []v1alpha1.PolicyTargetReference{{Kind: "Service", Name: name}}
	in.Services = append(in.Services, corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{{Name: "grpc", Port: 80, AppProtocol: ptr.To("grpc")}}}})
	in.EndpointSlices = append(in.EndpointSlices, discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Namespace: ns, Name: name + "-local", Labels: map[string]string{discoveryv1.LabelServiceName: name}},
		AddressType: discoveryv1.AddressTypeFQDN,
		Ports:       []discoveryv1.EndpointPort{{Name: ptr.To("grpc"), Port: ptr.To(port)}},
		Endpoints:   []discoveryv1.Endpoint{{Addresses: []string{"bench.localhost"}}},
	})
	in.RateLimits = append(in.RateLimits, v1alpha1.RateLimit{ObjectMeta: meta("rl"), Spec: v1alpha1.RateLimitSpec{TargetRefs: refs,
		Limits: []v1alpha1.Limit{{Name: "total", Requests: 1_000_000_000, Period: "1s"}}}})
	in.CircuitBreakers = append(in.CircuitBreakers, v1alpha1.CircuitBreaker{ObjectMeta: meta("cb"), Spec: v1alpha1.CircuitBreakerSpec{TargetRefs: refs}})
	in.RetryPolicies = append(in.RetryPolicies, v1alpha1.RetryPolicy{ObjectMeta: meta("rp"), Spec: v1alpha1.RetryPolicySpec{TargetRefs: refs}})
}
