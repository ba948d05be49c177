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
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"resilience.dev/operator/api/v1alpha1"
)

// Kind is what code that handles the three policy kinds alike needs to know of one kind: the
// reconcilers' setup, the notifier that requeues policies, and the compiler.
type Kind struct {
	// Name is the kind as manifests and snapshots spell it (v1alpha1.KindRateLimit, ...).
	Name string
	// NewObject returns an empty object of the kind.
	NewObject func() v1alpha1.Policy
	// NewList returns an empty list of the kind.
	NewList func() client.ObjectList
	// Validate makes the checks of a spec that only Go code can make (see ValidateRateLimit).
	Validate func(v1alpha1.Policy) field.ErrorList
}

// Kinds are the policy kinds, in the order of the contract (and of each port's policies in a snapshot).
var Kinds = []Kind{
	{
		Name:      v1alpha1.KindRateLimit,
		NewObject: func() v1alpha1.Policy { return &v1alpha1.RateLimit{} },
		NewList:   func() client.ObjectList { return &v1alpha1.RateLimitList{} },
		Validate: func(p v1alpha1.Policy) field.ErrorList {
			return ValidateRateLimit(&p.(*v1alpha1.RateLimit).Spec)
		},
	},
	{
		Name:      v1alpha1.KindCircuitBreaker,
		NewObject: func() v1alpha1.Policy { return &v1alpha1.CircuitBreaker{} },
		NewList:   func() client.ObjectList { return &v1alpha1.CircuitBreakerList{} },
		Validate: func(p v1alpha1.Policy) field.ErrorList {
			return ValidateCircuitBreaker(&p.(*v1alpha1.CircuitBreaker).Spec)
		},
	},
	{
		Name:      v1alpha1.KindRetryPolicy,
		NewObject: func() v1alpha1.Policy { return &v1alpha1.RetryPolicy{} },
		NewList:   func() client.ObjectList { return &v1alpha1.RetryPolicyList{} },
		Validate: func(p v1alpha1.Policy) field.ErrorList {
			return ValidateRetryPolicy(&p.(*v1alpha1.RetryPolicy).Spec)
		},
	},
}

// KindNamed returns the kind of that name.
func KindNamed(name string) (Kind, bool) {
	for _, k := range Kinds {
		if k.Name == name {
			return k, true
		}
	}
	return Kind{}, false
}

// Items returns the policies of a list of this kind, pointing into the list.
func (k Kind) Items(list client.ObjectList) []v1alpha1.Policy {
	objs, err := meta.ExtractList(list)
	if err != nil { // every list of ours has Items
		return nil
	}
	out := make([]v1alpha1.Policy, 0, len(objs))
	for _, obj := range objs {
		if p, ok := obj.(v1alpha1.Policy); ok {
			out = append(out, p)
		}
	}
	return out
}
