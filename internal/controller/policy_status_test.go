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
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"resilience.dev/operator/api/v1alpha1"
)

// The condition setters are pure functions of the status: tested here without an API server, as
// cluster-api tests its setters.

func target(accepted bool, reason, msg string) v1alpha1.TargetStatus {
	return v1alpha1.TargetStatus{TargetRef: v1alpha1.PolicyTargetReference{Kind: "Service", Name: "svc"},
		Accepted: accepted, Reason: reason, Message: msg}
}

func TestSetAcceptedFromTargets(t *testing.T) {
	inForce := target(true, v1alpha1.ReasonAccepted, "")
	cases := []struct {
		desc       string
		targets    []v1alpha1.TargetStatus
		wantStatus metav1.ConditionStatus
		wantReason string
		wantMsg    string
	}{
		{desc: "its one target in force", targets: []v1alpha1.TargetStatus{inForce},
			wantStatus: metav1.ConditionTrue, wantReason: v1alpha1.ReasonAccepted, wantMsg: "in force on its target"},
		{desc: "all targets in force", targets: []v1alpha1.TargetStatus{inForce, inForce, inForce},
			wantStatus: metav1.ConditionTrue, wantReason: v1alpha1.ReasonAccepted, wantMsg: "in force on all 3 targets"},
		{desc: "some targets in force", targets: []v1alpha1.TargetStatus{inForce, target(false, v1alpha1.ReasonTargetNotFound, "Service b not found"),
			target(false, v1alpha1.ReasonInvalid, "Service c is ExternalName")},
			wantStatus: metav1.ConditionTrue, wantReason: v1alpha1.ReasonAccepted,
			wantMsg: "in force on 1 of 3 targets; not in force: Service b not found; Service c is ExternalName"},
		{desc: "none: Conflicted explains most", targets: []v1alpha1.TargetStatus{target(false, v1alpha1.ReasonInvalid, "bad"),
			target(false, v1alpha1.ReasonTargetNotFound, "missing"), target(false, v1alpha1.ReasonConflicted, "RateLimit a governs")},
			wantStatus: metav1.ConditionFalse, wantReason: v1alpha1.ReasonConflicted, wantMsg: "no target in force: bad; missing; RateLimit a governs"},
		{desc: "none: TargetNotFound before Invalid", targets: []v1alpha1.TargetStatus{target(false, v1alpha1.ReasonInvalid, "bad"),
			target(false, v1alpha1.ReasonTargetNotFound, "missing")},
			wantStatus: metav1.ConditionFalse, wantReason: v1alpha1.ReasonTargetNotFound, wantMsg: "no target in force: bad; missing"},
		{desc: "none: Invalid", targets: []v1alpha1.TargetStatus{target(false, v1alpha1.ReasonInvalid, "bad")},
			wantStatus: metav1.ConditionFalse, wantReason: v1alpha1.ReasonInvalid, wantMsg: "no target in force: bad"},
		{desc: "no targets at all", wantStatus: metav1.ConditionTrue, wantReason: v1alpha1.ReasonAccepted, wantMsg: "in force on all 0 targets"},
	}
	for _, tc := range cases {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			st := &v1alpha1.PolicyStatus{Targets: tc.targets}
			setAcceptedFromTargets(st, 7)
			c := meta.FindStatusCondition(st.Conditions, v1alpha1.ConditionAccepted)
			if c == nil {
				t.Fatal("no Accepted condition")
			}
			if c.Status != tc.wantStatus || c.Reason != tc.wantReason || c.Message != tc.wantMsg || c.ObservedGeneration != 7 {
				t.Errorf("got %s/%s %q at generation %d; want %s/%s %q at 7", c.Status, c.Reason, c.Message, c.ObservedGeneration,
					tc.wantStatus, tc.wantReason, tc.wantMsg)
			}
		})
	}
}

// TestSetProgrammed: the condition carries the generation, and LastTransitionTime moves only when
// the status flips.
func TestSetProgrammed(t *testing.T) {
	past := metav1.NewTime(time.Now().Add(-time.Hour).Truncate(time.Second))
	cases := []struct {
		desc        string
		before      *metav1.Condition
		ok          bool
		reason, msg string
		wantMoved   bool
	}{
		{desc: "first set", ok: false, reason: v1alpha1.ReasonNoGateways, msg: "no gateway", wantMoved: true},
		{desc: "same status, new reason and message keep the time",
			before: &metav1.Condition{Type: v1alpha1.ConditionProgrammed, Status: metav1.ConditionFalse, Reason: v1alpha1.ReasonNoGateways, LastTransitionTime: past},
			ok:     false, reason: v1alpha1.ReasonPending, msg: "0/1 gateway replicas"},
		{desc: "a flip moves the time",
			before: &metav1.Condition{Type: v1alpha1.ConditionProgrammed, Status: metav1.ConditionFalse, Reason: v1alpha1.ReasonPending, LastTransitionTime: past},
			ok:     true, reason: v1alpha1.ReasonProgrammed, msg: "1/1 gateway replicas", wantMoved: true},
	}
	for _, tc := range cases {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			st := &v1alpha1.PolicyStatus{}
			if tc.before != nil {
				st.Conditions = []metav1.Condition{*tc.before}
			}
			setProgrammed(st, 3, tc.ok, tc.reason, tc.msg)
			c := meta.FindStatusCondition(st.Conditions, v1alpha1.ConditionProgrammed)
			if c == nil || len(st.Conditions) != 1 {
				t.Fatalf("conditions %+v, want one Programmed", st.Conditions)
			}
			if c.Status != boolStatus(tc.ok) || c.Reason != tc.reason || c.Message != tc.msg || c.ObservedGeneration != 3 {
				t.Errorf("got %s/%s %q at %d", c.Status, c.Reason, c.Message, c.ObservedGeneration)
			}
			if moved := !c.LastTransitionTime.Equal(&past); moved != tc.wantMoved {
				t.Errorf("LastTransitionTime %s (was %s): moved %v, want %v", c.LastTransitionTime, past, moved, tc.wantMoved)
			}
		})
	}
}

// TestSetReady: Ready is True only when Accepted and Programmed are; otherwise it carries the reason
// of the first that is not (Accepted first: a refused policy is never programmed either).
func TestSetReady(t *testing.T) {
	cond := func(typ string, status metav1.ConditionStatus, reason, msg string) metav1.Condition {
		return metav1.Condition{Type: typ, Status: status, Reason: reason, Message: msg}
	}
	acc := cond(v1alpha1.ConditionAccepted, metav1.ConditionTrue, v1alpha1.ReasonAccepted, "in force on its target")
	prog := cond(v1alpha1.ConditionProgrammed, metav1.ConditionTrue, v1alpha1.ReasonProgrammed, "2/2 gateway replicas")
	notFound := cond(v1alpha1.ConditionAccepted, metav1.ConditionFalse, v1alpha1.ReasonTargetNotFound, "no target in force: Service a not found")
	noGw := cond(v1alpha1.ConditionProgrammed, metav1.ConditionFalse, v1alpha1.ReasonNoGateways, "no gateway replica is connected")
	cases := []struct {
		desc       string
		conds      []metav1.Condition
		wantStatus metav1.ConditionStatus
		wantReason string
		wantMsg    string
	}{
		{desc: "both True", conds: []metav1.Condition{acc, prog}, wantStatus: metav1.ConditionTrue, wantReason: v1alpha1.ReasonReady,
			wantMsg: "accepted: in force on its target; programmed: 2/2 gateway replicas"},
		{desc: "refused: Accepted's reason", conds: []metav1.Condition{notFound, noGw}, wantStatus: metav1.ConditionFalse,
			wantReason: v1alpha1.ReasonTargetNotFound, wantMsg: "not accepted: no target in force: Service a not found"},
		{desc: "refused though programmed", conds: []metav1.Condition{prog, notFound}, wantStatus: metav1.ConditionFalse,
			wantReason: v1alpha1.ReasonTargetNotFound, wantMsg: "not accepted: no target in force: Service a not found"},
		{desc: "accepted, no gateways", conds: []metav1.Condition{acc, noGw}, wantStatus: metav1.ConditionFalse,
			wantReason: v1alpha1.ReasonNoGateways, wantMsg: "not programmed: no gateway replica is connected"},
		{desc: "accepted, pending", conds: []metav1.Condition{acc, cond(v1alpha1.ConditionProgrammed, metav1.ConditionFalse, v1alpha1.ReasonPending, "1/2 gateway replicas")},
			wantStatus: metav1.ConditionFalse, wantReason: v1alpha1.ReasonPending, wantMsg: "not programmed: 1/2 gateway replicas"},
		{desc: "Programmed Unknown is not ready", conds: []metav1.Condition{acc, cond(v1alpha1.ConditionProgrammed, metav1.ConditionUnknown, v1alpha1.ReasonPending, "?")},
			wantStatus: metav1.ConditionFalse, wantReason: v1alpha1.ReasonPending, wantMsg: "not programmed: ?"},
		{desc: "Programmed missing", conds: []metav1.Condition{acc}, wantStatus: metav1.ConditionFalse, wantReason: v1alpha1.ReasonPending,
			wantMsg: "Programmed is not reported yet"},
		{desc: "nothing yet", wantStatus: metav1.ConditionFalse, wantReason: v1alpha1.ReasonPending, wantMsg: "Accepted is not reported yet"},
		{desc: "a stale Ready is replaced", conds: []metav1.Condition{acc, noGw, cond(v1alpha1.ConditionReady, metav1.ConditionTrue, v1alpha1.ReasonReady, "old")},
			wantStatus: metav1.ConditionFalse, wantReason: v1alpha1.ReasonNoGateways, wantMsg: "not programmed: no gateway replica is connected"},
	}
	for _, tc := range cases {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			st := &v1alpha1.PolicyStatus{Conditions: append([]metav1.Condition(nil), tc.conds...)}
			setReady(st, 5)
			c := meta.FindStatusCondition(st.Conditions, v1alpha1.ConditionReady)
			if c == nil {
				t.Fatal("no Ready condition")
			}
			if c.Status != tc.wantStatus || c.Reason != tc.wantReason || c.Message != tc.wantMsg || c.ObservedGeneration != 5 {
				t.Errorf("got %s/%s %q at generation %d; want %s/%s %q at 5", c.Status, c.Reason, c.Message, c.ObservedGeneration,
					tc.wantStatus, tc.wantReason, tc.wantMsg)
			}
			if n := len(st.Conditions); n != len(tc.conds) && n != len(tc.conds)+1 {
				t.Errorf("%d conditions after setReady, had %d", n, len(tc.conds))
			}
		})
	}
}

func TestTruncate(t *testing.T) {
	cases := []struct {
		desc  string
		in    string
		limit int
		want  string
	}{
		{desc: "short", in: "abc", limit: 5, want: "abc"},
		{desc: "exactly the limit", in: "abcde", limit: 5, want: "abcde"},
		{desc: "over: an ellipsis within the limit", in: "abcdef", limit: 5, want: "ab..."},
		{desc: "empty", in: "", limit: 5, want: ""},
	}
	for _, tc := range cases {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			if got := truncateTo(tc.in, tc.limit); got != tc.want {
				t.Errorf("truncateTo(%q, %d) = %q, want %q", tc.in, tc.limit, got, tc.want)
			}
		})
	}
	long := strings.Repeat("x", 40000)
	if got := truncate(long); len(got) != 32768 || !strings.HasSuffix(got, "...") {
		t.Errorf("truncate kept %d bytes, want 32768 ending in ...", len(got))
	}
	if got := truncateTo(long, maxTargetMessage); len(got) != maxTargetMessage {
		t.Errorf("a target message kept %d bytes, want %d", len(got), maxTargetMessage)
	}
}
