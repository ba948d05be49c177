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

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/events"
	"k8s.io/utils/ptr"

	"resilience.dev/operator/api/v1alpha1"
)

type fixedStore struct {
	ok  bool
	msg string
}

func (f fixedStore) StoreStatus() (bool, string) { return f.ok, f.msg }

// TestSetStoreAvailable: the condition is on RateLimits with a Global limit only, follows the
// gateways' reports, and an Event marks each flip (and a first False), not every pass.
func TestSetStoreAvailable(t *testing.T) {
	global := ptr.To(v1alpha1.DistributionGlobal)
	cases := []struct {
		desc       string
		spec       v1alpha1.RateLimitSpec
		before     *metav1.ConditionStatus
		store      StoreSource
		want       *metav1.ConditionStatus // nil: no condition
		wantReason string
		wantEvent  string
	}{
		{desc: "no Global limit: no condition", spec: v1alpha1.RateLimitSpec{Limits: []v1alpha1.Limit{{Name: "a"}}},
			before: ptr.To(metav1.ConditionTrue), store: fixedStore{ok: true}},
		{desc: "Global spec, store reached: True without an Event", spec: v1alpha1.RateLimitSpec{Distribution: global, Limits: []v1alpha1.Limit{{Name: "a"}}},
			store: fixedStore{ok: true, msg: "2/2 gateway replicas reach the store"}, want: ptr.To(metav1.ConditionTrue), wantReason: v1alpha1.ReasonStoreAvailable},
		{desc: "Global limit, store lost: False with a Warning", spec: v1alpha1.RateLimitSpec{Limits: []v1alpha1.Limit{{Name: "a"}, {Name: "b", Distribution: global}}},
			before: ptr.To(metav1.ConditionTrue), store: fixedStore{msg: "1/2 gateway replicas cannot reach the store"},
			want: ptr.To(metav1.ConditionFalse), wantReason: v1alpha1.ReasonStoreUnavailable, wantEvent: "Warning StoreUnavailable"},
		{desc: "store back: True with a Normal Event", spec: v1alpha1.RateLimitSpec{Distribution: global, Limits: []v1alpha1.Limit{{Name: "a"}}},
			before: ptr.To(metav1.ConditionFalse), store: fixedStore{ok: true},
			want: ptr.To(metav1.ConditionTrue), wantReason: v1alpha1.ReasonStoreAvailable, wantEvent: "Normal StoreAvailable"},
		{desc: "still down: no new Event", spec: v1alpha1.RateLimitSpec{Distribution: global, Limits: []v1alpha1.Limit{{Name: "a"}}},
			before: ptr.To(metav1.ConditionFalse), store: fixedStore{msg: "down"},
			want: ptr.To(metav1.ConditionFalse), wantReason: v1alpha1.ReasonStoreUnavailable},
		{desc: "limit overrides a Global spec: no condition",
			spec:   v1alpha1.RateLimitSpec{Distribution: global, Limits: []v1alpha1.Limit{{Name: "a", Distribution: ptr.To(v1alpha1.DistributionSplit)}}},
			before: ptr.To(metav1.ConditionFalse), store: fixedStore{}},
		{desc: "no gateway connected: False", spec: v1alpha1.RateLimitSpec{Distribution: global, Limits: []v1alpha1.Limit{{Name: "a"}}},
			want: ptr.To(metav1.ConditionFalse), wantReason: v1alpha1.ReasonStoreUnavailable, wantEvent: "Warning StoreUnavailable"},
	}
	for _, tc := range cases {
		t.Run(tc.desc, func(t *testing.T) {
			rec := events.NewFakeRecorder(4)
			r := &RateLimitReconciler{Store: tc.store, Recorder: rec}
			rl := &v1alpha1.RateLimit{Spec: tc.spec}
			rl.Generation = 2
			if tc.before != nil {
				rl.Status.Conditions = []metav1.Condition{{Type: v1alpha1.ConditionStoreAvailable, Status: *tc.before, Reason: "x"}}
			}
			r.setStoreAvailable(rl)
			c := meta.FindStatusCondition(rl.Status.Conditions, v1alpha1.ConditionStoreAvailable)
			switch {
			case tc.want == nil && c != nil:
				t.Fatalf("condition %+v, want none", *c)
			case tc.want != nil && (c == nil || c.Status != *tc.want || c.Reason != tc.wantReason || c.ObservedGeneration != 2):
				t.Fatalf("condition %+v, want %s/%s at generation 2", c, *tc.want, tc.wantReason)
			}
			var got string
			select {
			case e := <-rec.Events:
				got = e
			default:
			}
			if (tc.wantEvent == "") != (got == "") || tc.wantEvent != "" && !strings.HasPrefix(got, tc.wantEvent) {
				t.Fatalf("event %q, want %q", got, tc.wantEvent)
			}
		})
	}
}
