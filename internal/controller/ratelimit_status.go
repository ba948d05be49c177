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
	"slices"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"

	"resilience.dev/operator/api/v1alpha1"
	"resilience.dev/operator/internal/policy"
)

// hasGlobalLimit reports whether some limit of the spec is Global.
func hasGlobalLimit(s *v1alpha1.RateLimitSpec) bool {
	return slices.ContainsFunc(s.Limits, func(l v1alpha1.Limit) bool { return policy.IsGlobal(s, l) })
}

// setStoreAvailable writes StoreAvailable on a RateLimit with a Global limit (contract, section 7),
// removes it from one without, and records an Event when it flips.
func (r *RateLimitReconciler) setStoreAvailable(rl *v1alpha1.RateLimit) {
	st := &rl.Status.PolicyStatus
	if !hasGlobalLimit(&rl.Spec) {
		meta.RemoveStatusCondition(&st.Conditions, v1alpha1.ConditionStoreAvailable)
		return
	}
	ok, msg := false, "no gateway replica is connected to report on the store"
	if r.Store != nil {
		ok, msg = r.Store.StoreStatus()
	}
	if !setStoreCondition(st, rl.Generation, ok, msg) || r.Recorder == nil {
		return
	}
	kind, reason := corev1.EventTypeNormal, v1alpha1.ReasonStoreAvailable
	if !ok {
		kind, reason = corev1.EventTypeWarning, v1alpha1.ReasonStoreUnavailable
	}
	r.Recorder.Eventf(rl, nil, kind, reason, "StoreCheck", "%s", msg)
}

// setStoreCondition sets StoreAvailable and reports whether its status flipped (or appeared False).
func setStoreCondition(st *v1alpha1.PolicyStatus, gen int64, ok bool, msg string) (flipped bool) {
	reason := v1alpha1.ReasonStoreAvailable
	if !ok {
		reason = v1alpha1.ReasonStoreUnavailable
	}
	prev := meta.FindStatusCondition(st.Conditions, v1alpha1.ConditionStoreAvailable)
	flipped = prev != nil && prev.Status != boolStatus(ok) || prev == nil && !ok
	setCondition(st, v1alpha1.ConditionStoreAvailable, gen, ok, reason, msg)
	return flipped
}
