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

package controller

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"resilience.dev/operator/api/v1alpha1"
)

func TestEveryKindAcceptedWithNoGateways(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	create(t, service(ns, "checkout", "http"))
	five := int32(5)
	cases := []struct {
		desc   string
		policy v1alpha1.Policy
	}{
		{desc: "RateLimit", policy: rateLimit(ns, "rl", ref("checkout"))},
		{desc: "CircuitBreaker", policy: &v1alpha1.CircuitBreaker{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "cb"},
			Spec: v1alpha1.CircuitBreakerSpec{TargetRefs: []v1alpha1.PolicyTargetReference{ref("checkout")},
				Trip: &v1alpha1.Trip{ConsecutiveFailures: &five}},
		}},
		{desc: "RetryPolicy", policy: &v1alpha1.RetryPolicy{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "retry"},
			Spec:       v1alpha1.RetryPolicySpec{TargetRefs: []v1alpha1.PolicyTargetReference{ref("checkout")}},
		}},
	}
	for _, tc := range cases {
		t.Run(tc.desc, func(t *testing.T) {
			create(t, tc.policy)
			cond := accepted(t, tc.policy, metav1.ConditionTrue, v1alpha1.ReasonAccepted)
			if cond.Message != "in force on its target" {
				t.Errorf("Accepted message = %q", cond.Message)
			}
			st := tc.policy.GetPolicyStatus()
			prog := meta.FindStatusCondition(st.Conditions, v1alpha1.ConditionProgrammed)
			if prog == nil || prog.Status != metav1.ConditionFalse || prog.Reason != v1alpha1.ReasonNoGateways ||
				prog.ObservedGeneration != tc.policy.GetGeneration() {
				t.Errorf("Programmed = %+v, want False/NoGateways at generation %d", prog, tc.policy.GetGeneration())
			}
			// Ready follows the one that is not True: here Programmed.
			ready := meta.FindStatusCondition(st.Conditions, v1alpha1.ConditionReady)
			if ready == nil || ready.Status != metav1.ConditionFalse || ready.Reason != v1alpha1.ReasonNoGateways ||
				ready.ObservedGeneration != tc.policy.GetGeneration() {
				t.Errorf("Ready = %+v, want False/NoGateways at generation %d", ready, tc.policy.GetGeneration())
			}
			if len(st.Targets) != 1 || !st.Targets[0].Accepted || st.Targets[0].Reason != v1alpha1.ReasonAccepted {
				t.Errorf("targets = %+v", st.Targets)
			}
		})
	}
	cb := cases[1].policy.(*v1alpha1.CircuitBreaker)
	if cb.Status.State != v1alpha1.CircuitClosed {
		t.Errorf("CircuitBreaker state = %q, want Closed", cb.Status.State)
	}
}

func TestMissingServiceThenCreated(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	rl := rateLimit(ns, "rl", ref("checkout"))
	create(t, rl)
	cond := accepted(t, rl, metav1.ConditionFalse, v1alpha1.ReasonTargetNotFound)
	if !strings.Contains(cond.Message, `Service "checkout" not found`) {
		t.Errorf("message %q does not name the missing Service", cond.Message)
	}
	// A refused policy is not Ready, for Accepted's reason (not Programmed's NoGateways).
	if ready := meta.FindStatusCondition(rl.Status.Conditions, v1alpha1.ConditionReady); ready == nil ||
		ready.Status != metav1.ConditionFalse || ready.Reason != v1alpha1.ReasonTargetNotFound || !strings.Contains(ready.Message, cond.Message) {
		t.Errorf("Ready = %+v, want False/TargetNotFound with Accepted's message", ready)
	}

	created := time.Now()
	create(t, service(ns, "checkout", "http"))
	accepted(t, rl, metav1.ConditionTrue, v1alpha1.ReasonAccepted)
	took := time.Since(created)
	t.Logf("Service created -> Accepted True in %s", took)
	if took > time.Second {
		t.Errorf("status followed the new Service after %s, want within 1s", took)
	}

	deleted := time.Now()
	remove(t, service(ns, "checkout"))
	accepted(t, rl, metav1.ConditionFalse, v1alpha1.ReasonTargetNotFound)
	if took := time.Since(deleted); took > time.Second {
		t.Errorf("status followed the deleted Service after %s, want within 1s", took)
	}
}

func TestMissingPortNamed(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	create(t, service(ns, "checkout", "http"))
	rl := rateLimit(ns, "rl", ref("checkout", "grpc"))
	create(t, rl)
	cond := accepted(t, rl, metav1.ConditionFalse, v1alpha1.ReasonTargetNotFound)
	if !strings.Contains(cond.Message, `Service "checkout" has no port named "grpc"`) {
		t.Errorf("message %q does not name the missing port", cond.Message)
	}
}

func TestOneOfTwoTargetsMissing(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	create(t, service(ns, "checkout", "http"))
	rl := rateLimit(ns, "rl", ref("checkout"), ref("payments"))
	create(t, rl)
	cond := accepted(t, rl, metav1.ConditionTrue, v1alpha1.ReasonAccepted)
	if !strings.Contains(cond.Message, "in force on 1 of 2 targets") {
		t.Errorf("message %q", cond.Message)
	}
	got := rl.Status.Targets
	if len(got) != 2 || !got[0].Accepted || got[1].Accepted || got[1].Reason != v1alpha1.ReasonTargetNotFound ||
		got[0].TargetRef.Name != "checkout" || got[1].TargetRef.Name != "payments" {
		t.Errorf("targets = %+v, want checkout accepted and payments TargetNotFound", got)
	}
}

func TestConflictYoungerLosesThenTakesOver(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	create(t, service(ns, "checkout", "http"))
	older := rateLimit(ns, "older", ref("checkout"))
	create(t, older)
	accepted(t, older, metav1.ConditionTrue, v1alpha1.ReasonAccepted)
	createdLater(t, older) // make sure the younger one is younger
	younger := rateLimit(ns, "younger", ref("checkout"))
	create(t, younger)
	cond := accepted(t, younger, metav1.ConditionFalse, v1alpha1.ReasonConflicted)
	if !strings.Contains(cond.Message, "RateLimit older governs") {
		t.Errorf("message %q does not name the winner", cond.Message)
	}
	if younger.Status.Targets[0].Reason != v1alpha1.ReasonConflicted {
		t.Errorf("target reason = %q", younger.Status.Targets[0].Reason)
	}
	accepted(t, older, metav1.ConditionTrue, v1alpha1.ReasonAccepted)

	deleted := time.Now()
	remove(t, older)
	accepted(t, younger, metav1.ConditionTrue, v1alpha1.ReasonAccepted)
	t.Logf("winner deleted -> loser Accepted in %s", time.Since(deleted))
	if took := time.Since(deleted); took > time.Second {
		t.Errorf("loser took over after %s, want within 1s", took)
	}
}

func TestSameAgeConflictBrokenByName(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	create(t, service(ns, "checkout", "http"))
	b := rateLimit(ns, "b", ref("checkout"))
	a := rateLimit(ns, "a", ref("checkout"))
	create(t, b)
	create(t, a)
	if !a.CreationTimestamp.Equal(&b.CreationTimestamp) {
		t.Skipf("created in different seconds (%s, %s); the tie cannot be observed", a.CreationTimestamp, b.CreationTimestamp)
	}
	accepted(t, a, metav1.ConditionTrue, v1alpha1.ReasonAccepted)
	accepted(t, b, metav1.ConditionFalse, v1alpha1.ReasonConflicted)
}

func TestSectionNameBeatsWholeService(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	create(t, service(ns, "checkout", "http", "grpc"))
	whole := rateLimit(ns, "whole", ref("checkout"))
	create(t, whole)
	accepted(t, whole, metav1.ConditionTrue, v1alpha1.ReasonAccepted)
	createdLater(t, whole) // the port-specific policy is the younger one, and still wins its port
	port := rateLimit(ns, "port", ref("checkout", "http"))
	create(t, port)
	accepted(t, port, metav1.ConditionTrue, v1alpha1.ReasonAccepted)

	// The whole-Service policy keeps the grpc port and says it lost http.
	waitFor(t, whole, settle, func() error {
		if len(whole.Status.Targets) != 1 {
			return fmt.Errorf("%d targets in status, want 1", len(whole.Status.Targets))
		}
		if msg := whole.Status.Targets[0].Message; !strings.Contains(msg, `RateLimit port governs Service "checkout" port http`) {
			return fmt.Errorf("target message %q does not say port governs http", msg)
		}
		return nil
	})
	accepted(t, whole, metav1.ConditionTrue, v1alpha1.ReasonAccepted)

	// On a single-port Service the whole-Service policy loses everything.
	create(t, service(ns, "payments", "http"))
	wholeP := rateLimit(ns, "whole-p", ref("payments"))
	create(t, wholeP)
	accepted(t, wholeP, metav1.ConditionTrue, v1alpha1.ReasonAccepted)
	portP := rateLimit(ns, "port-p", ref("payments", "http"))
	create(t, portP)
	accepted(t, portP, metav1.ConditionTrue, v1alpha1.ReasonAccepted)
	cond := accepted(t, wholeP, metav1.ConditionFalse, v1alpha1.ReasonConflicted)
	if !strings.Contains(cond.Message, "RateLimit port-p governs") {
		t.Errorf("message %q does not name the winner", cond.Message)
	}
}

func TestKindsDoNotConflictWithEachOther(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	create(t, service(ns, "checkout", "http"))
	rl := rateLimit(ns, "same-name", ref("checkout"))
	retry := &v1alpha1.RetryPolicy{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "other"},
		Spec: v1alpha1.RetryPolicySpec{TargetRefs: []v1alpha1.PolicyTargetReference{ref("checkout")}}}
	create(t, rl)
	create(t, retry)
	accepted(t, rl, metav1.ConditionTrue, v1alpha1.ReasonAccepted)
	accepted(t, retry, metav1.ConditionTrue, v1alpha1.ReasonAccepted)
}

func TestObservedGenerationFollowsSpec(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	create(t, service(ns, "checkout", "http"))
	rl := rateLimit(ns, "rl", ref("checkout"))
	create(t, rl)
	accepted(t, rl, metav1.ConditionTrue, v1alpha1.ReasonAccepted)
	gen := rl.Generation
	firstTransition := meta.FindStatusCondition(rl.Status.Conditions, v1alpha1.ConditionAccepted).LastTransitionTime

	rl.Spec.Limits[0].Requests = 200
	if err := k8s.Update(context.Background(), rl); err != nil {
		t.Fatal(err)
	}
	if rl.Generation != gen+1 {
		t.Fatalf("generation %d after a spec change, want %d", rl.Generation, gen+1)
	}
	cond := accepted(t, rl, metav1.ConditionTrue, v1alpha1.ReasonAccepted)
	if !cond.LastTransitionTime.Equal(&firstTransition) {
		t.Errorf("LastTransitionTime moved from %s to %s without a status flip", firstTransition, cond.LastTransitionTime)
	}
	prog := meta.FindStatusCondition(rl.Status.Conditions, v1alpha1.ConditionProgrammed)
	if prog.ObservedGeneration != rl.Generation {
		t.Errorf("Programmed observedGeneration %d, want %d", prog.ObservedGeneration, rl.Generation)
	}
}

func TestInvalidOnlyTheControllerCanJudge(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	create(t, service(ns, "checkout", "http"))
	// 1e9 requests per millisecond passes the schema but is faster than a token per nanosecond.
	rl := rateLimit(ns, "too-fast", ref("checkout"))
	rl.Spec.Limits[0].Requests = 1000000000
	rl.Spec.Limits[0].Period = "1ms"
	create(t, rl)
	cond := accepted(t, rl, metav1.ConditionFalse, v1alpha1.ReasonInvalid)
	if !strings.Contains(cond.Message, "spec.limits[0].requests") || !strings.Contains(cond.Message, "cannot be enforced") {
		t.Errorf("message %q does not name the field and the reason", cond.Message)
	}
	// An invalid policy holds no port: a valid one on the same Service is in force, although younger.
	createdLater(t, rl)
	ok := rateLimit(ns, "valid", ref("checkout"))
	create(t, ok)
	accepted(t, ok, metav1.ConditionTrue, v1alpha1.ReasonAccepted)
}

func TestExternalNameServiceIsInvalidTarget(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	create(t, &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "legacy"},
		Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeExternalName, ExternalName: "legacy.example.com"}})
	rl := rateLimit(ns, "rl", ref("legacy"))
	create(t, rl)
	cond := accepted(t, rl, metav1.ConditionFalse, v1alpha1.ReasonInvalid)
	if !strings.Contains(cond.Message, "ExternalName") {
		t.Errorf("message %q", cond.Message)
	}
}

func TestStatusWrittenOnlyWhenChanged(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	svc := service(ns, "checkout", "http")
	create(t, svc)
	rl := rateLimit(ns, "rl", ref("checkout"))
	create(t, rl)
	accepted(t, rl, metav1.ConditionTrue, v1alpha1.ReasonAccepted)
	before := rl.ResourceVersion

	// A Service change triggers a reconcile whose status is unchanged: nothing may be written.
	svc.Labels = map[string]string{"touched": "yes"}
	if err := k8s.Update(context.Background(), svc); err != nil {
		t.Fatal(err)
	}
	// A second policy on another Service makes sure the reconciler had time to run after the touch.
	marker := rateLimit(ns, "marker", ref("checkout", "http"))
	create(t, marker)
	accepted(t, marker, metav1.ConditionTrue, v1alpha1.ReasonAccepted)
	// The marker takes the http port, so rl's status legitimately changed once; after that it must settle.
	accepted(t, rl, metav1.ConditionFalse, v1alpha1.ReasonConflicted)
	settled := rl.ResourceVersion
	svc.Labels["touched"] = "twice"
	if err := k8s.Update(context.Background(), svc); err != nil {
		t.Fatal(err)
	}
	// A write that must not happen cannot be polled for: give the reconciler the time it would take.
	time.Sleep(500 * time.Millisecond)
	if err := k8s.Get(context.Background(), client.ObjectKeyFromObject(rl), rl); err != nil {
		t.Fatal(err)
	}
	if rl.ResourceVersion != settled {
		t.Errorf("resourceVersion moved from %s to %s on a reconcile that changed nothing (first was %s)", settled, rl.ResourceVersion, before)
	}
}

// TestGitOpsReapplyChangesNothing applies a manifest the way Argo CD and Flux do (server-side apply with
// their field manager) twice, and checks that nothing drifts: no generation bump, the user's fields
// untouched, only OpenAPI defaults added.
func TestGitOpsReapplyChangesNothing(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	create(t, service(ns, "checkout", "http"))
	manifest := fmt.Sprintf(`
apiVersion: resilience.dev/v1alpha1
kind: RateLimit
metadata: {name: gitops, namespace: %s}
spec:
  targetRefs: [{group: "", kind: Service, name: checkout}]
  limits:
  - name: per-user
    requests: 100
    period: 1s
    key: [{header: X-User-ID}]
`, ns)
	apply := func() *v1alpha1.RateLimit {
		t.Helper()
		obj := decodeRateLimit(t, manifest)
		if err := k8s.Patch(context.Background(), obj, client.Apply, client.FieldOwner("argocd-controller"), client.ForceOwnership); err != nil {
			t.Fatalf("server-side apply: %v", err)
		}
		return obj
	}
	first := apply()
	accepted(t, first, metav1.ConditionTrue, v1alpha1.ReasonAccepted)
	second := apply()
	if second.Generation != first.Generation {
		t.Errorf("re-apply moved generation from %d to %d", first.Generation, second.Generation)
	}
	if second.Spec.Limits[0].Burst != nil {
		t.Errorf("burst was written (%d): a default that depends on another field must stay unset", *second.Spec.Limits[0].Burst)
	}
	if second.Spec.Distribution != nil {
		t.Errorf("distribution was written (%s): its default depends on the key", *second.Spec.Distribution)
	}
	if second.Spec.OnExceeded != v1alpha1.OnExceededReject || second.Spec.Limits[0].MaxKeys != 10000 {
		t.Errorf("OpenAPI defaults missing: onExceeded %q maxKeys %d", second.Spec.OnExceeded, second.Spec.Limits[0].MaxKeys)
	}
}
