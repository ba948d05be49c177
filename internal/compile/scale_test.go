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
	"fmt"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"

	"resilience.dev/operator/api/v1alpha1"
	"resilience.dev/operator/internal/capture"
	"resilience.dev/operator/internal/snapshot"
)

// scaleInput makes n Services, each with three endpoints and one policy, the kinds in turn.
func scaleInput(n int) Input {
	var in Input
	created := metav1.NewTime(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	for i := range n {
		ns, name := fmt.Sprintf("ns%d", i%100), fmt.Sprintf("svc%d", i)
		in.Services = append(in.Services, corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
			Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{{Name: "http", Port: 80}}}})
		in.EndpointSlices = append(in.EndpointSlices, discoveryv1.EndpointSlice{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name + "-x", Labels: map[string]string{
				discoveryv1.LabelServiceName: name, discoveryv1.LabelManagedBy: capture.EndpointSliceController}},
			AddressType: discoveryv1.AddressTypeIPv4,
			Ports:       []discoveryv1.EndpointPort{{Name: ptr.To("http"), Port: ptr.To[int32](8080)}},
			Endpoints: []discoveryv1.Endpoint{{Addresses: []string{fmt.Sprintf("10.%d.%d.1", i/250%250, i%250)}},
				{Addresses: []string{fmt.Sprintf("10.%d.%d.2", i/250%250, i%250)}}, {Addresses: []string{fmt.Sprintf("10.%d.%d.3", i/250%250, i%250)}}},
		})
		meta := metav1.ObjectMeta{Namespace: ns, Name: name, UID: types.UID(fmt.Sprintf("uid-%d", i)), Generation: 1, CreationTimestamp: created}
		refs := []v1alpha1.PolicyTargetReference{{Kind: "Service", Name: name}}
		switch i % 3 {
		case 0:
			in.RateLimits = append(in.RateLimits, v1alpha1.RateLimit{ObjectMeta: meta, Spec: v1alpha1.RateLimitSpec{
				TargetRefs: refs, Limits: []v1alpha1.Limit{{Name: "all", Requests: 100, Period: "1s", MaxKeys: 10000}}}})
		case 1:
			in.CircuitBreakers = append(in.CircuitBreakers, v1alpha1.CircuitBreaker{ObjectMeta: meta, Spec: v1alpha1.CircuitBreakerSpec{
				TargetRefs: refs, Trip: &v1alpha1.Trip{ConsecutiveFailures: ptr.To[int32](5)}, OpenDuration: "30s"}})
		default:
			in.RetryPolicies = append(in.RetryPolicies, v1alpha1.RetryPolicy{ObjectMeta: meta, Spec: v1alpha1.RetryPolicySpec{
				TargetRefs: refs, MaxAttempts: 3}})
		}
	}
	in.GatewayReplicas = 2
	return in
}

// BenchmarkCompile measures a one-shot compile (a new Compiler: nothing reused; each Service encoded)
// of 1,000 and 10,000 policies (issue goal: 10,000 under 1 s) and reports the encoded snapshot size.
func BenchmarkCompile(b *testing.B) {
	for _, n := range []int{1000, 10000} {
		b.Run(fmt.Sprintf("policies=%d", n), func(b *testing.B) {
			in := scaleInput(n)
			var snap *snapshot.Encoded
			for b.Loop() {
				var err error
				if snap, err = new(Compiler).Compile(in); err != nil {
					b.Fatal(err)
				}
			}
			data, _ := snap.Body()
			b.ReportMetric(float64(len(data)), "snapshot-bytes")
			if len(snap.Policies) != n {
				b.Fatalf("%d policies in force, want %d", len(snap.Policies), n)
			}
		})
	}
}
