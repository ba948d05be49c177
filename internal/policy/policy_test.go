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

package policy

import (
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"resilience.dev/operator/api/v1alpha1"
)

func svc(name string, ports ...string) *corev1.Service {
	s := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: name}}
	for i, p := range ports {
		s.Spec.Ports = append(s.Spec.Ports, corev1.ServicePort{Name: p, Port: int32(80 + i)})
	}
	return s
}

func whole(name string) v1alpha1.PolicyTargetReference {
	return v1alpha1.PolicyTargetReference{Kind: "Service", Name: name}
}

func port(name, section string) v1alpha1.PolicyTargetReference {
	return v1alpha1.PolicyTargetReference{Kind: "Service", Name: name, SectionName: ptr.To(section)}
}

func TestResolve(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	services := map[string]*corev1.Service{
		"one":    svc("one", "http"),
		"two":    svc("two", "http", "grpc"),
		"plain":  svc("plain", ""),
		"noport": svc("noport"),
		"tls": {ObjectMeta: metav1.ObjectMeta{Name: "tls"}, Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{
			{Name: "h2c", Port: 80, AppProtocol: ptr.To("kubernetes.io/h2c")},
			{Name: "secure", Port: 443, AppProtocol: ptr.To("https")},
			{Name: "wss", Port: 8443, AppProtocol: ptr.To("kubernetes.io/wss")}}}},
		"ext": {ObjectMeta: metav1.ObjectMeta{Name: "ext"}, Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeExternalName}},
	}
	type want struct {
		inForce bool
		reason  string
		msg     string // substring
		ports   int
	}
	cases := []struct {
		desc       string
		candidates []Candidate
		policy     string
		want       []want
	}{
		{desc: "alone on a whole Service",
			candidates: []Candidate{{Name: "a", Created: t0, Refs: []v1alpha1.PolicyTargetReference{whole("two")}}},
			policy:     "a", want: []want{{true, v1alpha1.ReasonAccepted, `in force on Service "two"`, 2}}},
		{desc: "missing Service",
			candidates: []Candidate{{Name: "a", Created: t0, Refs: []v1alpha1.PolicyTargetReference{whole("gone")}}},
			policy:     "a", want: []want{{false, v1alpha1.ReasonTargetNotFound, `Service "gone" not found`, 0}}},
		{desc: "missing port",
			candidates: []Candidate{{Name: "a", Created: t0, Refs: []v1alpha1.PolicyTargetReference{port("one", "grpc")}}},
			policy:     "a", want: []want{{false, v1alpha1.ReasonTargetNotFound, `has no port named "grpc"`, 0}}},
		{desc: "Service without ports",
			candidates: []Candidate{{Name: "a", Created: t0, Refs: []v1alpha1.PolicyTargetReference{whole("noport")}}},
			policy:     "a", want: []want{{false, v1alpha1.ReasonTargetNotFound, "has no ports", 0}}},
		{desc: "ExternalName Service",
			candidates: []Candidate{{Name: "a", Created: t0, Refs: []v1alpha1.PolicyTargetReference{whole("ext")}}},
			policy:     "a", want: []want{{false, v1alpha1.ReasonInvalid, "ExternalName", 0}}},
		{desc: "unnamed port by whole Service",
			candidates: []Candidate{{Name: "a", Created: t0, Refs: []v1alpha1.PolicyTargetReference{whole("plain")}}},
			policy:     "a", want: []want{{true, v1alpha1.ReasonAccepted, "", 1}}},
		{desc: "older wins among equals",
			candidates: []Candidate{
				{Name: "young", Created: t0.Add(time.Second), Refs: []v1alpha1.PolicyTargetReference{whole("one")}},
				{Name: "old", Created: t0, Refs: []v1alpha1.PolicyTargetReference{whole("one")}},
			},
			policy: "young", want: []want{{false, v1alpha1.ReasonConflicted, `Kind old governs Service "one" port http`, 0}}},
		{desc: "same age: name breaks the tie",
			candidates: []Candidate{
				{Name: "b", Created: t0, Refs: []v1alpha1.PolicyTargetReference{whole("one")}},
				{Name: "a", Created: t0, Refs: []v1alpha1.PolicyTargetReference{whole("one")}},
			},
			policy: "b", want: []want{{false, v1alpha1.ReasonConflicted, "Kind a governs", 0}}},
		{desc: "younger port-specific beats older whole-Service",
			candidates: []Candidate{
				{Name: "old-whole", Created: t0, Refs: []v1alpha1.PolicyTargetReference{whole("one")}},
				{Name: "young-port", Created: t0.Add(time.Hour), Refs: []v1alpha1.PolicyTargetReference{port("one", "http")}},
			},
			policy: "young-port", want: []want{{true, v1alpha1.ReasonAccepted, "port http", 1}}},
		{desc: "whole-Service keeps the ports nobody names",
			candidates: []Candidate{
				{Name: "whole", Created: t0, Refs: []v1alpha1.PolicyTargetReference{whole("two")}},
				{Name: "port", Created: t0.Add(time.Hour), Refs: []v1alpha1.PolicyTargetReference{port("two", "http")}},
			},
			policy: "whole", want: []want{{true, v1alpha1.ReasonAccepted, `partly overridden: Kind port governs Service "two" port http`, 1}}},
		{desc: "a port with appProtocol https is invalid: no TLS to backends",
			candidates: []Candidate{{Name: "a", Created: t0, Refs: []v1alpha1.PolicyTargetReference{port("tls", "secure")}}},
			policy:     "a", want: []want{{false, v1alpha1.ReasonInvalid, `port secure has appProtocol "https": TLS to backends is not supported in v1alpha1`, 0}}},
		{desc: "a whole Service with a wss port is invalid, and claims none of its ports",
			candidates: []Candidate{
				{Name: "a", Created: t0, Refs: []v1alpha1.PolicyTargetReference{whole("tls")}},
				{Name: "b", Created: t0.Add(time.Hour), Refs: []v1alpha1.PolicyTargetReference{port("tls", "h2c")}},
			},
			policy: "a", want: []want{{false, v1alpha1.ReasonInvalid, `port wss has appProtocol "kubernetes.io/wss"`, 0}}},
		{desc: "an h2c port of that Service is fine",
			candidates: []Candidate{{Name: "a", Created: t0, Refs: []v1alpha1.PolicyTargetReference{port("tls", "h2c")}}},
			policy:     "a", want: []want{{true, v1alpha1.ReasonAccepted, "port h2c", 1}}},
		{desc: "two targets, one missing",
			candidates: []Candidate{{Name: "a", Created: t0, Refs: []v1alpha1.PolicyTargetReference{whole("one"), whole("gone")}}},
			policy:     "a", want: []want{{true, v1alpha1.ReasonAccepted, "", 1}, {false, v1alpha1.ReasonTargetNotFound, "gone", 0}}},
	}
	for _, tc := range cases {
		t.Run(tc.desc, func(t *testing.T) {
			res := Resolve("Kind", tc.candidates, services)
			got := res.Refs[tc.policy]
			if len(got) != len(tc.want) {
				t.Fatalf("got %d ref results, want %d", len(got), len(tc.want))
			}
			for i, w := range tc.want {
				g := got[i]
				if g.InForce != w.inForce || g.Reason != w.reason || !strings.Contains(g.Message, w.msg) || len(g.Ports) != w.ports {
					t.Errorf("ref %d = %+v, want %+v", i, g, w)
				}
			}
			// Every port has exactly one winner, and the winner's result says it governs it.
			for k, name := range res.Winners {
				found := false
				for _, r := range res.Refs[name] {
					for _, p := range r.Ports {
						found = found || p == k
					}
				}
				if !found {
					t.Errorf("winner %s of %v does not list the port", name, k)
				}
			}
		})
	}
}

func TestValidate(t *testing.T) {
	cases := []struct {
		desc string
		errs func() []string
		want []string
	}{
		{desc: "rate above one per nanosecond", errs: func() []string {
			return msgs(ValidateRateLimit(&v1alpha1.RateLimitSpec{Limits: []v1alpha1.Limit{{Name: "a", Requests: 2000000, Period: "1ms"}}}))
		}, want: []string{"spec.limits[0].requests", "cannot be enforced"}},
		{desc: "rate of one per nanosecond is fine", errs: func() []string {
			return msgs(ValidateRateLimit(&v1alpha1.RateLimitSpec{Limits: []v1alpha1.Limit{{Name: "a", Requests: 1000000, Period: "1ms"}}}))
		}},
		{desc: "bad duration", errs: func() []string {
			return msgs(ValidateRateLimit(&v1alpha1.RateLimitSpec{Limits: []v1alpha1.Limit{{Name: "a", Requests: 1, Period: "1.5s"}}}))
		}, want: []string{"spec.limits[0].period", "is not a duration"}},
		{desc: "Global limit too large for the store's exact arithmetic", errs: func() []string {
			g := v1alpha1.DistributionGlobal
			return msgs(ValidateRateLimit(&v1alpha1.RateLimitSpec{Distribution: &g, Limits: []v1alpha1.Limit{{Name: "a", Requests: 1000000000, Period: "1s"}}}))
		}, want: []string{"spec.limits[0]", "distribution Global", "too large for a Global limit"}},
		{desc: "the same limit Split is fine", errs: func() []string {
			return msgs(ValidateRateLimit(&v1alpha1.RateLimitSpec{Limits: []v1alpha1.Limit{{Name: "a", Requests: 1000000000, Period: "1s"}}}))
		}},
		{desc: "a Global limit of ten million per second is fine", errs: func() []string {
			g := v1alpha1.DistributionGlobal
			return msgs(ValidateRateLimit(&v1alpha1.RateLimitSpec{Limits: []v1alpha1.Limit{{Name: "a", Requests: 10000000, Period: "1s", Distribution: &g}}}))
		}},
		{desc: "bad trusted proxy", errs: func() []string {
			return msgs(ValidateRateLimit(&v1alpha1.RateLimitSpec{ClientIP: &v1alpha1.ClientIPConfig{TrustedProxies: []string{"10.0.0.1"}}}))
		}, want: []string{"trustedProxies[0]", "must be a CIDR"}},
		{desc: "breaker status range reversed", errs: func() []string {
			return msgs(ValidateCircuitBreaker(&v1alpha1.CircuitBreakerSpec{FailureCriteria: &v1alpha1.FailureCriteria{StatusCodes: []v1alpha1.StatusCodes{"599-500"}}}))
		}, want: []string{"spec.failureCriteria.statusCodes"}},
		{desc: "breaker maxOpen below open", errs: func() []string {
			return msgs(ValidateCircuitBreaker(&v1alpha1.CircuitBreakerSpec{OpenDuration: "30s", MaxOpenDuration: "10s"}))
		}, want: []string{"maxOpenDuration must be 0s or at least openDuration"}},
		{desc: "retry perTry above timeout", errs: func() []string {
			return msgs(ValidateRetryPolicy(&v1alpha1.RetryPolicySpec{PerTryTimeout: "2s", Timeout: "1s"}))
		}, want: []string{"perTryTimeout must not exceed timeout"}},
		{desc: "retry valid", errs: func() []string {
			return msgs(ValidateRetryPolicy(&v1alpha1.RetryPolicySpec{MaxAttempts: 3, PerTryTimeout: "1s", Timeout: "2s",
				Hedge: &v1alpha1.Hedge{Delay: "50ms", MaxHedges: 2}, RetryOn: &v1alpha1.RetryOn{StatusCodes: []v1alpha1.StatusCodes{"502-504"}}}))
		}},
	}
	for _, tc := range cases {
		t.Run(tc.desc, func(t *testing.T) {
			got := strings.Join(tc.errs(), "\n")
			if len(tc.want) == 0 && got != "" {
				t.Fatalf("unexpected errors: %s", got)
			}
			if len(tc.want) > 0 && got == "" {
				t.Fatalf("no error, want %q", tc.want)
			}
			for _, w := range tc.want {
				if !strings.Contains(got, w) {
					t.Errorf("errors %q do not contain %q", got, w)
				}
			}
		})
	}
}

func msgs[E interface{ Error() string }](errs []E) []string {
	out := make([]string, len(errs))
	for i, e := range errs {
		out[i] = e.Error()
	}
	return out
}
