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
// Package cel checks every OpenAPI and CEL rule of the CRDs against a real kube-apiserver: for each rule,
// a manifest it accepts and one it refuses with the field and the message a user will read.
package cel

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync/atomic"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"resilience.dev/operator/api/v1alpha1"
	"resilience.dev/operator/internal/controlplane"
)

var (
	k8s   client.Client
	seq   atomic.Int64
	ns    = "cel"
	dfltR = v1alpha1.PolicyTargetReference{Kind: "Service", Name: "checkout"}
)

func TestMain(m *testing.M) { os.Exit(run(m)) }

func run(m *testing.M) int {
	cp, err := controlplane.Start()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer func() { _ = cp.Stop() }()
	scheme := runtime.NewScheme()
	utilruntime.Must(clientgoscheme.AddToScheme(scheme))
	utilruntime.Must(v1alpha1.AddToScheme(scheme))
	if k8s, err = client.New(cp.Config, client.Options{Scheme: scheme}); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if err := k8s.Create(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return m.Run()
}

func meta() metav1.ObjectMeta {
	return metav1.ObjectMeta{Namespace: ns, Name: fmt.Sprintf("p%d", seq.Add(1))}
}

// check creates obj and compares the outcome with wantErrors: nil means accepted; otherwise every
// string must appear in the API server's answer.
func check(t *testing.T, obj client.Object, wantErrors []string) {
	t.Helper()
	err := k8s.Create(context.Background(), obj)
	switch {
	case len(wantErrors) == 0 && err != nil:
		t.Fatalf("refused, want accepted: %v", err)
	case len(wantErrors) > 0 && err == nil:
		t.Fatalf("accepted, want refused with %q", wantErrors)
	case len(wantErrors) > 0:
		for _, want := range wantErrors {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("error %q\ndoes not contain %q", err.Error(), want)
			}
		}
	}
}

func TestRateLimitRules(t *testing.T) {
	t.Parallel()
	base := func() *v1alpha1.RateLimit {
		return &v1alpha1.RateLimit{ObjectMeta: meta(), Spec: v1alpha1.RateLimitSpec{
			TargetRefs: []v1alpha1.PolicyTargetReference{dfltR},
			Limits:     []v1alpha1.Limit{{Name: "all", Requests: 100, Period: "1s"}},
		}}
	}
	hdr := v1alpha1.HeaderName("X-User-ID")
	cases := []struct {
		desc       string
		mutate     func(*v1alpha1.RateLimit)
		wantErrors []string
	}{
		{desc: "minimal valid", mutate: func(*v1alpha1.RateLimit) {}},
		{desc: "no targetRefs", mutate: func(p *v1alpha1.RateLimit) { p.Spec.TargetRefs = nil },
			wantErrors: []string{"spec.targetRefs", "Required value"}},
		{desc: "17 targetRefs", mutate: func(p *v1alpha1.RateLimit) {
			p.Spec.TargetRefs = nil
			for i := range 17 {
				p.Spec.TargetRefs = append(p.Spec.TargetRefs, v1alpha1.PolicyTargetReference{Kind: "Service", Name: fmt.Sprintf("s%d", i)})
			}
		}, wantErrors: []string{"spec.targetRefs", "must have at most 16 items"}},
		{desc: "target kind Deployment", mutate: func(p *v1alpha1.RateLimit) { p.Spec.TargetRefs[0].Kind = "Deployment" },
			wantErrors: []string{"spec.targetRefs[0].kind", `supported values: "Service"`}},
		{desc: "target group apps", mutate: func(p *v1alpha1.RateLimit) { p.Spec.TargetRefs[0].Group = "apps" },
			wantErrors: []string{"spec.targetRefs[0].group", "Unsupported value"}},
		{desc: "same target twice", mutate: func(p *v1alpha1.RateLimit) {
			p.Spec.TargetRefs = append(p.Spec.TargetRefs, dfltR)
		}, wantErrors: []string{"spec.targetRefs", "each target (name and sectionName) may be listed only once"}},
		{desc: "same Service, two ports", mutate: func(p *v1alpha1.RateLimit) {
			p.Spec.TargetRefs = []v1alpha1.PolicyTargetReference{
				{Kind: "Service", Name: "checkout", SectionName: ptr.To("http")},
				{Kind: "Service", Name: "checkout", SectionName: ptr.To("grpc")},
			}
		}},
		{desc: "sectionName of 16 characters", mutate: func(p *v1alpha1.RateLimit) {
			p.Spec.TargetRefs[0].SectionName = ptr.To("abcdefghijklmnop")
		}, wantErrors: []string{"spec.targetRefs[0].sectionName", "may not be more than 15"}},
		{desc: "no limits", mutate: func(p *v1alpha1.RateLimit) { p.Spec.Limits = nil },
			wantErrors: []string{"spec.limits", "Required value"}},
		{desc: "duplicate limit names", mutate: func(p *v1alpha1.RateLimit) {
			p.Spec.Limits = append(p.Spec.Limits, v1alpha1.Limit{Name: "all", Requests: 5, Period: "1m"})
		}, wantErrors: []string{`spec.limits[1]`, "Duplicate value"}},
		{desc: "requests 0", mutate: func(p *v1alpha1.RateLimit) { p.Spec.Limits[0].Requests = 0 },
			wantErrors: []string{"spec.limits[0].requests", "should be greater than or equal to 1"}},
		{desc: "burst 0", mutate: func(p *v1alpha1.RateLimit) { p.Spec.Limits[0].Burst = ptr.To[int32](0) },
			wantErrors: []string{"spec.limits[0].burst", "should be greater than or equal to 1"}},
		{desc: "period not GEP-2257", mutate: func(p *v1alpha1.RateLimit) { p.Spec.Limits[0].Period = "1.5s" },
			wantErrors: []string{"spec.limits[0].period", "should match"}},
		{desc: "period in days", mutate: func(p *v1alpha1.RateLimit) { p.Spec.Limits[0].Period = "1d" },
			wantErrors: []string{"spec.limits[0].period", "should match"}},
		{desc: "period above 24h", mutate: func(p *v1alpha1.RateLimit) { p.Spec.Limits[0].Period = "25h" },
			wantErrors: []string{"spec.limits[0].period", "period must be between 1ms and 24h"}},
		{desc: "period 1m30s", mutate: func(p *v1alpha1.RateLimit) { p.Spec.Limits[0].Period = "1m30s" }},
		{desc: "key part with both clientIP and header", mutate: func(p *v1alpha1.RateLimit) {
			p.Spec.Limits[0].Key = []v1alpha1.KeyPart{{ClientIP: &v1alpha1.ClientIPKey{}, Header: &hdr}}
		}, wantErrors: []string{"spec.limits[0].key[0]", "each key part must set exactly one of clientIP or header"}},
		{desc: "key part with neither", mutate: func(p *v1alpha1.RateLimit) {
			p.Spec.Limits[0].Key = []v1alpha1.KeyPart{{}}
		}, wantErrors: []string{"spec.limits[0].key[0]", "each key part must set exactly one of clientIP or header"}},
		{desc: "composite key", mutate: func(p *v1alpha1.RateLimit) {
			p.Spec.Limits[0].Key = []v1alpha1.KeyPart{{ClientIP: &v1alpha1.ClientIPKey{}}, {Header: &hdr}}
		}},
		{desc: "header name with a space", mutate: func(p *v1alpha1.RateLimit) {
			bad := v1alpha1.HeaderName("X User")
			p.Spec.Limits[0].Key = []v1alpha1.KeyPart{{Header: &bad}}
		}, wantErrors: []string{"spec.limits[0].key[0].header", "should match"}},
		{desc: "five key parts", mutate: func(p *v1alpha1.RateLimit) {
			for range 5 {
				p.Spec.Limits[0].Key = append(p.Spec.Limits[0].Key, v1alpha1.KeyPart{Header: &hdr})
			}
		}, wantErrors: []string{"spec.limits[0].key", "must have at most 4 items"}},
		{desc: "maxDelay with Reject", mutate: func(p *v1alpha1.RateLimit) { p.Spec.MaxDelay = ptr.To[v1alpha1.Duration]("500ms") },
			wantErrors: []string{"maxDelay may only be set with onExceeded: Delay"}},
		{desc: "maxDelay with Delay", mutate: func(p *v1alpha1.RateLimit) {
			p.Spec.OnExceeded = v1alpha1.OnExceededDelay
			p.Spec.MaxDelay = ptr.To[v1alpha1.Duration]("500ms")
		}},
		{desc: "onExceeded unknown", mutate: func(p *v1alpha1.RateLimit) { p.Spec.OnExceeded = "Queue" },
			wantErrors: []string{"spec.onExceeded", `supported values: "Reject", "Delay"`}},
		{desc: "trusted proxy not a CIDR", mutate: func(p *v1alpha1.RateLimit) {
			p.Spec.ClientIP = &v1alpha1.ClientIPConfig{TrustedProxies: []string{"10.0.0.1"}}
		}, wantErrors: []string{"spec.clientIP.trustedProxies", "each trusted proxy must be a CIDR"}},
		{desc: "ipv6PrefixLength 129", mutate: func(p *v1alpha1.RateLimit) {
			p.Spec.ClientIP = &v1alpha1.ClientIPConfig{IPv6PrefixLength: 129}
		}, wantErrors: []string{"spec.clientIP.ipv6PrefixLength", "should be less than or equal to 128"}},
		{desc: "pathPrefix without slash", mutate: func(p *v1alpha1.RateLimit) {
			p.Spec.Limits[0].Match = &v1alpha1.RequestMatch{PathPrefix: ptr.To("orders")}
		}, wantErrors: []string{"spec.limits[0].match.pathPrefix", "should match '^/'"}},
		{desc: "method unknown", mutate: func(p *v1alpha1.RateLimit) {
			p.Spec.Limits[0].Match = &v1alpha1.RequestMatch{Methods: []v1alpha1.HTTPMethod{"FETCH"}}
		}, wantErrors: []string{"spec.limits[0].match.methods[0]", "Unsupported value"}},
		{desc: "distribution unknown", mutate: func(p *v1alpha1.RateLimit) { p.Spec.Distribution = ptr.To[v1alpha1.Distribution]("Shared") },
			wantErrors: []string{"spec.distribution", "Unsupported value"}},
		{desc: "distribution Global", mutate: func(p *v1alpha1.RateLimit) { p.Spec.Distribution = ptr.To(v1alpha1.DistributionGlobal) }},
		{desc: "Global on one limit with its onStoreError", mutate: func(p *v1alpha1.RateLimit) {
			p.Spec.Limits[0].Distribution = ptr.To(v1alpha1.DistributionGlobal)
			p.Spec.Limits[0].OnStoreError = ptr.To(v1alpha1.OnStoreErrorDeny)
		}},
		{desc: "Global spec with onStoreError on a limit", mutate: func(p *v1alpha1.RateLimit) {
			p.Spec.Distribution = ptr.To(v1alpha1.DistributionGlobal)
			p.Spec.OnStoreError = ptr.To(v1alpha1.OnStoreErrorAllow)
			p.Spec.Limits[0].OnStoreError = ptr.To(v1alpha1.OnStoreErrorLocal)
		}},
		{desc: "onStoreError unknown", mutate: func(p *v1alpha1.RateLimit) {
			p.Spec.Distribution = ptr.To(v1alpha1.DistributionGlobal)
			p.Spec.OnStoreError = ptr.To[v1alpha1.OnStoreError]("Fail")
		}, wantErrors: []string{"spec.onStoreError", `supported values: "Local", "Allow", "Deny"`}},
		{desc: "onStoreError without a Global limit", mutate: func(p *v1alpha1.RateLimit) {
			p.Spec.OnStoreError = ptr.To(v1alpha1.OnStoreErrorDeny)
		}, wantErrors: []string{"onStoreError may only be set when a limit has distribution: Global"}},
		{desc: "limit onStoreError on a limit that is not Global", mutate: func(p *v1alpha1.RateLimit) {
			p.Spec.Distribution = ptr.To(v1alpha1.DistributionGlobal)
			p.Spec.Limits[0].Distribution = ptr.To(v1alpha1.DistributionSplit)
			p.Spec.Limits[0].OnStoreError = ptr.To(v1alpha1.OnStoreErrorDeny)
		}, wantErrors: []string{"a limit's onStoreError needs that limit to be Global"}},
		{desc: "Delay with a Global limit", mutate: func(p *v1alpha1.RateLimit) {
			p.Spec.OnExceeded = v1alpha1.OnExceededDelay
			p.Spec.Limits[0].Distribution = ptr.To(v1alpha1.DistributionGlobal)
		}, wantErrors: []string{"onExceeded: Delay cannot be combined with distribution: Global"}},
		{desc: "limit distribution unknown", mutate: func(p *v1alpha1.RateLimit) {
			p.Spec.Limits[0].Distribution = ptr.To[v1alpha1.Distribution]("Cluster")
		}, wantErrors: []string{"spec.limits[0].distribution", "Unsupported value"}},
		{desc: "mode DryRun", mutate: func(p *v1alpha1.RateLimit) { p.Spec.Mode = v1alpha1.ModeDryRun }},
		{desc: "limit name uppercase", mutate: func(p *v1alpha1.RateLimit) { p.Spec.Limits[0].Name = "PerUser" },
			wantErrors: []string{"spec.limits[0].name", "should match"}},
	}
	for _, tc := range cases {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			p := base()
			tc.mutate(p)
			check(t, p, tc.wantErrors)
		})
	}
}

func TestCircuitBreakerRules(t *testing.T) {
	t.Parallel()
	base := func() *v1alpha1.CircuitBreaker {
		return &v1alpha1.CircuitBreaker{ObjectMeta: meta(), Spec: v1alpha1.CircuitBreakerSpec{
			TargetRefs: []v1alpha1.PolicyTargetReference{dfltR},
		}}
	}
	cases := []struct {
		desc       string
		mutate     func(*v1alpha1.CircuitBreaker)
		wantErrors []string
	}{
		{desc: "defaults only", mutate: func(*v1alpha1.CircuitBreaker) {}},
		{desc: "trip with both", mutate: func(p *v1alpha1.CircuitBreaker) {
			p.Spec.Trip = &v1alpha1.Trip{ConsecutiveFailures: ptr.To[int32](5), FailureRatio: &v1alpha1.FailureRatio{Percent: 50}}
		}, wantErrors: []string{"spec.trip", "trip must set exactly one of consecutiveFailures or failureRatio"}},
		{desc: "trip with neither", mutate: func(p *v1alpha1.CircuitBreaker) { p.Spec.Trip = &v1alpha1.Trip{} },
			wantErrors: []string{"spec.trip", "trip must set exactly one of consecutiveFailures or failureRatio"}},
		{desc: "failure ratio", mutate: func(p *v1alpha1.CircuitBreaker) {
			p.Spec.Trip = &v1alpha1.Trip{FailureRatio: &v1alpha1.FailureRatio{Percent: 50, MinimumRequests: 20, Window: "30s"}}
		}},
		{desc: "failure ratio percent 101", mutate: func(p *v1alpha1.CircuitBreaker) {
			p.Spec.Trip = &v1alpha1.Trip{FailureRatio: &v1alpha1.FailureRatio{Percent: 101}}
		}, wantErrors: []string{"spec.trip.failureRatio.percent", "should be less than or equal to 100"}},
		{desc: "fallback 429", mutate: func(p *v1alpha1.CircuitBreaker) { p.Spec.Fallback = &v1alpha1.Fallback{StatusCode: 429} }},
		{desc: "fallback 404", mutate: func(p *v1alpha1.CircuitBreaker) { p.Spec.Fallback = &v1alpha1.Fallback{StatusCode: 404} },
			wantErrors: []string{"spec.fallback.statusCode", "fallback.statusCode must be 429 or within 500..599"}},
		{desc: "fallback 600", mutate: func(p *v1alpha1.CircuitBreaker) { p.Spec.Fallback = &v1alpha1.Fallback{StatusCode: 600} },
			wantErrors: []string{"fallback.statusCode must be 429 or within 500..599"}},
		{desc: "status code range", mutate: func(p *v1alpha1.CircuitBreaker) {
			p.Spec.FailureCriteria = &v1alpha1.FailureCriteria{StatusCodes: []v1alpha1.StatusCodes{"429", "500-599"}}
		}},
		{desc: "status code 600", mutate: func(p *v1alpha1.CircuitBreaker) {
			p.Spec.FailureCriteria = &v1alpha1.FailureCriteria{StatusCodes: []v1alpha1.StatusCodes{"600"}}
		}, wantErrors: []string{"spec.failureCriteria.statusCodes[0]", "must be a status code from 100 to 599"}},
		{desc: "status code 5xx", mutate: func(p *v1alpha1.CircuitBreaker) {
			p.Spec.FailureCriteria = &v1alpha1.FailureCriteria{StatusCodes: []v1alpha1.StatusCodes{"5xx"}}
		}, wantErrors: []string{"spec.failureCriteria.statusCodes[0]", "must be a status code from 100 to 599"}},
		{desc: "status code range reversed", mutate: func(p *v1alpha1.CircuitBreaker) {
			p.Spec.FailureCriteria = &v1alpha1.FailureCriteria{StatusCodes: []v1alpha1.StatusCodes{"599-500"}}
		}, wantErrors: []string{"spec.failureCriteria.statusCodes[0]", "a status code range must not start after it ends"}},
		{desc: "grpc codes", mutate: func(p *v1alpha1.CircuitBreaker) {
			p.Spec.FailureCriteria = &v1alpha1.FailureCriteria{GRPCCodes: []v1alpha1.GRPCCode{"Unavailable", "DataLoss"}}
		}},
		{desc: "grpc code not a name", mutate: func(p *v1alpha1.CircuitBreaker) {
			p.Spec.FailureCriteria = &v1alpha1.FailureCriteria{GRPCCodes: []v1alpha1.GRPCCode{"UNAVAILABLE"}}
		}, wantErrors: []string{"spec.failureCriteria.grpcCodes[0]", "Unsupported value"}},
		{desc: "status code 099", mutate: func(p *v1alpha1.CircuitBreaker) {
			p.Spec.FailureCriteria = &v1alpha1.FailureCriteria{StatusCodes: []v1alpha1.StatusCodes{"099"}}
		}, wantErrors: []string{"must be a status code from 100 to 599"}},
		{desc: "maxOpenDuration below openDuration", mutate: func(p *v1alpha1.CircuitBreaker) {
			p.Spec.OpenDuration = "30s"
			p.Spec.MaxOpenDuration = "10s"
		}, wantErrors: []string{"maxOpenDuration must be 0s or at least openDuration"}},
		{desc: "maxOpenDuration 5m", mutate: func(p *v1alpha1.CircuitBreaker) {
			p.Spec.OpenDuration = "30s"
			p.Spec.MaxOpenDuration = "5m"
		}},
		{desc: "scope unknown", mutate: func(p *v1alpha1.CircuitBreaker) { p.Spec.Scope = "Pod" },
			wantErrors: []string{"spec.scope", `supported values: "Service", "Endpoint"`}},
		{desc: "maxOpenPercent -1", mutate: func(p *v1alpha1.CircuitBreaker) { p.Spec.MaxOpenPercent = -1 },
			wantErrors: []string{"spec.maxOpenPercent", "should be greater than or equal to 1"}},
		{desc: "half-open maxRequests -1", mutate: func(p *v1alpha1.CircuitBreaker) {
			p.Spec.HalfOpen = &v1alpha1.HalfOpen{MaxRequests: -1}
		}, wantErrors: []string{"spec.halfOpen.maxRequests", "should be greater than or equal to 1"}},
		{desc: "bulkhead without maxRequests", mutate: func(p *v1alpha1.CircuitBreaker) {
			p.Spec.Concurrency = &v1alpha1.Concurrency{MaxQueued: 10}
		}, wantErrors: []string{"spec.concurrency.maxRequests", "should be greater than or equal to 1"}},
		{desc: "window 0s", mutate: func(p *v1alpha1.CircuitBreaker) {
			p.Spec.Trip = &v1alpha1.Trip{FailureRatio: &v1alpha1.FailureRatio{Window: "0s"}}
		}, wantErrors: []string{"spec.trip.failureRatio.window", "window must be between 1s and 1h"}},
	}
	for _, tc := range cases {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			p := base()
			tc.mutate(p)
			check(t, p, tc.wantErrors)
		})
	}
}

func TestRetryPolicyRules(t *testing.T) {
	t.Parallel()
	base := func() *v1alpha1.RetryPolicy {
		return &v1alpha1.RetryPolicy{ObjectMeta: meta(), Spec: v1alpha1.RetryPolicySpec{
			TargetRefs: []v1alpha1.PolicyTargetReference{dfltR},
		}}
	}
	cases := []struct {
		desc       string
		mutate     func(*v1alpha1.RetryPolicy)
		wantErrors []string
	}{
		{desc: "defaults only", mutate: func(*v1alpha1.RetryPolicy) {}},
		{desc: "maxAttempts 11", mutate: func(p *v1alpha1.RetryPolicy) { p.Spec.MaxAttempts = 11 },
			wantErrors: []string{"spec.maxAttempts", "should be less than or equal to 10"}},
		{desc: "backoff base above max", mutate: func(p *v1alpha1.RetryPolicy) {
			p.Spec.Backoff = &v1alpha1.Backoff{Base: "2s", Max: "1s"}
		}, wantErrors: []string{"spec.backoff", "backoff.base must not exceed backoff.max"}},
		{desc: "backoff base above the default max", mutate: func(p *v1alpha1.RetryPolicy) {
			p.Spec.Backoff = &v1alpha1.Backoff{Base: "2s"}
		}, wantErrors: []string{"backoff.base must not exceed backoff.max"}},
		{desc: "backoff base equal to max", mutate: func(p *v1alpha1.RetryPolicy) {
			p.Spec.Backoff = &v1alpha1.Backoff{Base: "1s", Max: "1s", Strategy: v1alpha1.BackoffFixed, Jitter: v1alpha1.JitterNone}
		}},
		{desc: "jitter unknown", mutate: func(p *v1alpha1.RetryPolicy) { p.Spec.Backoff = &v1alpha1.Backoff{Jitter: "Half"} },
			wantErrors: []string{"spec.backoff.jitter", "Unsupported value"}},
		{desc: "perTryTimeout above timeout", mutate: func(p *v1alpha1.RetryPolicy) {
			p.Spec.PerTryTimeout = "2s"
			p.Spec.Timeout = "1s"
		}, wantErrors: []string{"perTryTimeout must not exceed timeout"}},
		{desc: "perTryTimeout without timeout", mutate: func(p *v1alpha1.RetryPolicy) { p.Spec.PerTryTimeout = "2s" }},
		{desc: "timeouts in order", mutate: func(p *v1alpha1.RetryPolicy) {
			p.Spec.PerTryTimeout = "500ms"
			p.Spec.Timeout = "2s"
		}},
		{desc: "timeout not a duration", mutate: func(p *v1alpha1.RetryPolicy) { p.Spec.Timeout = "2 seconds" },
			wantErrors: []string{"spec.timeout", "should match"}},
		{desc: "retryOn status code range reversed", mutate: func(p *v1alpha1.RetryPolicy) {
			p.Spec.RetryOn = &v1alpha1.RetryOn{StatusCodes: []v1alpha1.StatusCodes{"504-502"}}
		}, wantErrors: []string{"spec.retryOn.statusCodes[0]", "a status code range must not start after it ends"}},
		{desc: "retryOn status code 1000", mutate: func(p *v1alpha1.RetryPolicy) {
			p.Spec.RetryOn = &v1alpha1.RetryOn{StatusCodes: []v1alpha1.StatusCodes{"1000"}}
		}, wantErrors: []string{"spec.retryOn.statusCodes[0]"}},
		{desc: "retryOn grpc codes", mutate: func(p *v1alpha1.RetryPolicy) {
			p.Spec.RetryOn = &v1alpha1.RetryOn{GRPCCodes: []v1alpha1.GRPCCode{"Unavailable", "ResourceExhausted"}}
		}},
		{desc: "retryOn grpc code by number", mutate: func(p *v1alpha1.RetryPolicy) {
			p.Spec.RetryOn = &v1alpha1.RetryOn{GRPCCodes: []v1alpha1.GRPCCode{"14"}}
		}, wantErrors: []string{"spec.retryOn.grpcCodes[0]", "Unsupported value"}},
		{desc: "retryOn grpc code twice", mutate: func(p *v1alpha1.RetryPolicy) {
			p.Spec.RetryOn = &v1alpha1.RetryOn{GRPCCodes: []v1alpha1.GRPCCode{"Unavailable", "Unavailable"}}
		}, wantErrors: []string{"spec.retryOn.grpcCodes[1]", "Duplicate value"}},
		{desc: "hedge", mutate: func(p *v1alpha1.RetryPolicy) { p.Spec.Hedge = &v1alpha1.Hedge{Delay: "50ms", MaxHedges: 2} }},
		{desc: "hedge without delay", mutate: func(p *v1alpha1.RetryPolicy) { p.Spec.Hedge = &v1alpha1.Hedge{MaxHedges: 1} },
			wantErrors: []string{"spec.hedge.delay", "should match"}},
		{desc: "hedges not below maxAttempts", mutate: func(p *v1alpha1.RetryPolicy) {
			p.Spec.MaxAttempts = 2
			p.Spec.Hedge = &v1alpha1.Hedge{Delay: "50ms", MaxHedges: 2}
		}, wantErrors: []string{"hedge.maxHedges must be below maxAttempts"}},
		{desc: "budget percent 101", mutate: func(p *v1alpha1.RetryPolicy) {
			p.Spec.Budget = &v1alpha1.RetryBudget{Percent: ptr.To[int32](101)}
		}, wantErrors: []string{"spec.budget.percent", "should be less than or equal to 100"}},
		{desc: "budget window 2h", mutate: func(p *v1alpha1.RetryPolicy) { p.Spec.Budget = &v1alpha1.RetryBudget{Window: "2h"} },
			wantErrors: []string{"spec.budget.window", "budget.window must be between 1s and 1h"}},
		{desc: "method unknown", mutate: func(p *v1alpha1.RetryPolicy) { p.Spec.Methods = []v1alpha1.HTTPMethod{"get"} },
			wantErrors: []string{"spec.methods[0]", "Unsupported value"}},
		{desc: "method listed twice", mutate: func(p *v1alpha1.RetryPolicy) { p.Spec.Methods = []v1alpha1.HTTPMethod{"GET", "GET"} },
			wantErrors: []string{"spec.methods[1]", "Duplicate value"}},
	}
	for _, tc := range cases {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			p := base()
			tc.mutate(p)
			check(t, p, tc.wantErrors)
		})
	}
}

// TestDefaultsApplied checks the OpenAPI defaults a user reads back, and that a default depending on
// another field stays unset.
func TestDefaultsApplied(t *testing.T) {
	t.Parallel()
	cb := &v1alpha1.CircuitBreaker{ObjectMeta: meta(), Spec: v1alpha1.CircuitBreakerSpec{TargetRefs: []v1alpha1.PolicyTargetReference{dfltR}}}
	check(t, cb, nil)
	s := cb.Spec
	if s.Trip == nil || s.Trip.ConsecutiveFailures == nil || *s.Trip.ConsecutiveFailures != 5 || s.OpenDuration != "30s" ||
		s.HalfOpen.MaxRequests != 1 || s.HalfOpen.SuccessThreshold != 1 || s.Scope != v1alpha1.ScopeService ||
		s.MaxOpenPercent != 50 || s.Fallback.StatusCode != 503 || s.Fallback.ServeStale != "0s" ||
		len(s.FailureCriteria.StatusCodes) != 1 || s.FailureCriteria.StatusCodes[0] != "500-599" || !*s.FailureCriteria.ConnectErrors {
		t.Errorf("CircuitBreaker defaults: %+v", s)
	}
	rp := &v1alpha1.RetryPolicy{ObjectMeta: meta(), Spec: v1alpha1.RetryPolicySpec{TargetRefs: []v1alpha1.PolicyTargetReference{dfltR}}}
	check(t, rp, nil)
	r := rp.Spec
	if r.MaxAttempts != 3 || r.Backoff.Strategy != v1alpha1.BackoffExponential || r.Backoff.Base != "25ms" || r.Backoff.Max != "1s" ||
		r.Backoff.Jitter != v1alpha1.JitterFull || *r.Budget.Percent != 20 || *r.Budget.MinRetriesPerSecond != 10 ||
		r.Budget.Window != "10s" || !*r.RespectRetryAfter || len(r.Methods) != 5 || len(r.RetryOn.StatusCodes) != 3 {
		t.Errorf("RetryPolicy defaults: %+v", r)
	}
	rl := &v1alpha1.RateLimit{ObjectMeta: meta(), Spec: v1alpha1.RateLimitSpec{
		TargetRefs: []v1alpha1.PolicyTargetReference{dfltR}, Limits: []v1alpha1.Limit{{Name: "a", Requests: 1, Period: "1s"}}}}
	check(t, rl, nil)
	if rl.Spec.Limits[0].Burst != nil || rl.Spec.Distribution != nil || rl.Spec.MaxDelay != nil ||
		rl.Spec.OnExceeded != v1alpha1.OnExceededReject || rl.Spec.Mode != v1alpha1.ModeEnforce || rl.Spec.ClientIP.IPv6PrefixLength != 64 {
		t.Errorf("RateLimit defaults: %+v", rl.Spec)
	}
}
