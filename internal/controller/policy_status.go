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
	"fmt"
	"strings"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"resilience.dev/operator/api/v1alpha1"
)

// setAccepted sets the Accepted condition. meta.SetStatusCondition keeps LastTransitionTime unless the
// status flips.
func setAccepted(st *v1alpha1.PolicyStatus, gen int64, ok bool, reason, msg string) {
	setCondition(st, v1alpha1.ConditionAccepted, gen, ok, reason, msg)
}

// setAcceptedFromTargets derives Accepted from status.targets: True when at least one target is in force;
// otherwise False with the reason that explains most (Conflicted, then TargetNotFound, then Invalid).
func setAcceptedFromTargets(st *v1alpha1.PolicyStatus, gen int64) {
	inForce := 0
	reasons := map[string]bool{}
	var msgs []string
	for _, t := range st.Targets {
		if t.Accepted {
			inForce++
			continue
		}
		reasons[t.Reason] = true
		msgs = append(msgs, t.Message)
	}
	total := len(st.Targets)
	switch {
	case inForce == 1 && total == 1:
		setAccepted(st, gen, true, v1alpha1.ReasonAccepted, "in force on its target")
	case inForce == total:
		setAccepted(st, gen, true, v1alpha1.ReasonAccepted, fmt.Sprintf("in force on all %d targets", total))
	case inForce > 0:
		setAccepted(st, gen, true, v1alpha1.ReasonAccepted,
			fmt.Sprintf("in force on %d of %d targets; not in force: %s", inForce, total, strings.Join(msgs, "; ")))
	default:
		reason := v1alpha1.ReasonInvalid
		for _, r := range []string{v1alpha1.ReasonConflicted, v1alpha1.ReasonTargetNotFound} {
			if reasons[r] {
				reason = r
				break
			}
		}
		setAccepted(st, gen, false, reason, "no target in force: "+strings.Join(msgs, "; "))
	}
}

// setProgrammed sets the Programmed condition.
func setProgrammed(st *v1alpha1.PolicyStatus, gen int64, ok bool, reason, msg string) {
	setCondition(st, v1alpha1.ConditionProgrammed, gen, ok, reason, msg)
}

// setReady derives Ready from Accepted and Programmed (contract section 8): True when both are True,
// otherwise False with the reason and message of the first that is not, Accepted before Programmed,
// since a refused policy is never programmed and its Accepted reason is the one to act on. Call it
// after setting both.
func setReady(st *v1alpha1.PolicyStatus, gen int64) {
	var msgs []string
	for _, typ := range []string{v1alpha1.ConditionAccepted, v1alpha1.ConditionProgrammed} {
		c := meta.FindStatusCondition(st.Conditions, typ)
		if c == nil {
			setCondition(st, v1alpha1.ConditionReady, gen, false, v1alpha1.ReasonPending, typ+" is not reported yet")
			return
		}
		if c.Status != metav1.ConditionTrue {
			setCondition(st, v1alpha1.ConditionReady, gen, false, c.Reason, "not "+strings.ToLower(typ)+": "+c.Message)
			return
		}
		msgs = append(msgs, strings.ToLower(typ)+": "+c.Message)
	}
	setCondition(st, v1alpha1.ConditionReady, gen, true, v1alpha1.ReasonReady, strings.Join(msgs, "; "))
}

func setCondition(st *v1alpha1.PolicyStatus, typ string, gen int64, ok bool, reason, msg string) {
	meta.SetStatusCondition(&st.Conditions, metav1.Condition{
		Type: typ, Status: boolStatus(ok), Reason: reason, Message: truncate(msg), ObservedGeneration: gen,
	})
}

func boolStatus(b bool) metav1.ConditionStatus {
	if b {
		return metav1.ConditionTrue
	}
	return metav1.ConditionFalse
}

// maxTargetMessage is the schema's maxLength of status.targets[].message.
const maxTargetMessage = 1024

// truncate keeps a condition message within the 32768 bytes the API allows.
func truncate(s string) string { return truncateTo(s, 32768) }

func truncateTo(s string, limit int) string {
	if len(s) <= limit {
		return s
	}
	return s[:limit-3] + "..."
}
