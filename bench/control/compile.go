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
	"encoding/json"
	"fmt"
	"net/http"
	"runtime"
	"slices"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"

	"resilience.dev/operator/api/v1alpha1"
	"resilience.dev/operator/internal/compile"
	"resilience.dev/operator/internal/gateway"
	"resilience.dev/operator/internal/snapshot"
)

// synthetic makes n Services in ten namespaces, each with one port, an EndpointSlice of three IPv4
// endpoints and one policy, the kinds in turn (RateLimit, CircuitBreaker, RetryPolicy).
func synthetic(n int) compile.Input {
	var in compile.Input
	created := metav1.NewTime(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	for i := range n {
		ns, name := fmt.Sprintf("ns%d", i%namespaces), fmt.Sprintf("svc%d", i)
		in.Services = append(in.Services, corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
			Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{{Name: "http", Port: 80}}}})
		var eps []discoveryv1.Endpoint
		for e := 1; e <= 3; e++ {
			eps = append(eps, discoveryv1.Endpoint{Addresses: []string{fmt.Sprintf("10.%d.%d.%d", i/250%250, i%250, e)}})
		}
		in.EndpointSlices = append(in.EndpointSlices, discoveryv1.EndpointSlice{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name + "-x", Labels: map[string]string{
				discoveryv1.LabelServiceName: name, discoveryv1.LabelManagedBy: "endpointslice-controller.k8s.io"}},
			AddressType: discoveryv1.AddressTypeIPv4,
			Ports:       []discoveryv1.EndpointPort{{Name: ptr.To("http"), Port: ptr.To[int32](8080)}},
			Endpoints:   eps,
		})
		meta := metav1.ObjectMeta{Namespace: ns, Name: name, UID: types.UID(fmt.Sprintf("uid-%d", i)), Generation: 1, CreationTimestamp: created}
		spec := policySpecs(i, name)
		switch s := spec.(type) {
		case v1alpha1.RateLimitSpec:
			in.RateLimits = append(in.RateLimits, v1alpha1.RateLimit{ObjectMeta: meta, Spec: s})
		case v1alpha1.CircuitBreakerSpec:
			in.CircuitBreakers = append(in.CircuitBreakers, v1alpha1.CircuitBreaker{ObjectMeta: meta, Spec: s})
		case v1alpha1.RetryPolicySpec:
			in.RetryPolicies = append(in.RetryPolicies, v1alpha1.RetryPolicy{ObjectMeta: meta, Spec: s})
		}
	}
	in.GatewayReplicas = 1
	return in
}

// initialRequests is the rate of every synthetic RateLimit: high enough that polling never hits it.
const initialRequests = 1_000_000

// policySpecs is the spec of the policy of Service i.
func policySpecs(i int, name string) any {
	refs := []v1alpha1.PolicyTargetReference{{Kind: "Service", Name: name}}
	switch i % 3 {
	case 0:
		return v1alpha1.RateLimitSpec{TargetRefs: refs, Limits: []v1alpha1.Limit{{Name: "all", Requests: initialRequests, Period: "1s", MaxKeys: 10000}}}
	case 1:
		return v1alpha1.CircuitBreakerSpec{TargetRefs: refs, Trip: &v1alpha1.Trip{ConsecutiveFailures: ptr.To[int32](5)}, OpenDuration: "30s"}
	default:
		return v1alpha1.RetryPolicySpec{TargetRefs: refs, MaxAttempts: 3}
	}
}

func measureCompile(n, runs int) (CompileFig, error) {
	in := synthetic(n)
	var times []time.Duration
	var snap *snapshot.Snapshot
	for range max(runs, 1) {
		runtime.GC()
		start := time.Now()
		e, err := new(compile.Compiler).Compile(in)
		if err != nil {
			return CompileFig{}, err
		}
		times = append(times, time.Since(start))
		snap = e.Snapshot
	}
	if len(snap.Policies) != n {
		return CompileFig{}, fmt.Errorf("%d policies in force, want %d", len(snap.Policies), n)
	}
	data, err := json.Marshal(snap)
	if err != nil {
		return CompileFig{}, err
	}
	g, err := gateway.New(gateway.Options{Transport: okRT{}})
	if err != nil {
		return CompileFig{}, err
	}
	snap.Version = 1
	e, err := snapshot.Encode(snap)
	if err != nil {
		return CompileFig{}, err
	}
	start := time.Now()
	if err := g.Apply(e); err != nil {
		return CompileFig{}, err
	}
	apply := time.Since(start)
	slices.Sort(times)
	return CompileFig{Policies: n, Runs: len(times), MinMs: ms(times[0]), MedianMs: ms(times[len(times)/2]),
		SnapshotBytes: len(data), ApplyMs: ms(apply)}, nil
}

// okRT is an in-memory upstream: 200 with an empty body.
type okRT struct{}

func (okRT) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Body != nil {
		_ = r.Body.Close()
	}
	return &http.Response{StatusCode: 200, Header: http.Header{}, Body: http.NoBody, Request: r}, nil
}
