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

package v1alpha1

import "sigs.k8s.io/controller-runtime/pkg/client"

// The kinds of policy, as they appear in manifests, snapshots and messages.
const (
	KindRateLimit      = "RateLimit"
	KindCircuitBreaker = "CircuitBreaker"
	KindRetryPolicy    = "RetryPolicy"
)

// Policy is what the three kinds share: targets and the common status. The reconcilers and the
// compiler handle every kind through it.
// +kubebuilder:object:generate=false
type Policy interface {
	client.Object
	// GetTargetRefs returns spec.targetRefs.
	GetTargetRefs() []PolicyTargetReference
	// GetPolicyStatus returns the common part of status, for reading and writing.
	GetPolicyStatus() *PolicyStatus
}

// GetTargetRefs returns spec.targetRefs.
func (p *RateLimit) GetTargetRefs() []PolicyTargetReference { return p.Spec.TargetRefs }

// GetPolicyStatus returns the common part of status.
func (p *RateLimit) GetPolicyStatus() *PolicyStatus { return &p.Status.PolicyStatus }

// GetTargetRefs returns spec.targetRefs.
func (p *CircuitBreaker) GetTargetRefs() []PolicyTargetReference { return p.Spec.TargetRefs }

// GetPolicyStatus returns the common part of status.
func (p *CircuitBreaker) GetPolicyStatus() *PolicyStatus { return &p.Status.PolicyStatus }

// GetTargetRefs returns spec.targetRefs.
func (p *RetryPolicy) GetTargetRefs() []PolicyTargetReference { return p.Spec.TargetRefs }

// GetPolicyStatus returns the common part of status.
func (p *RetryPolicy) GetPolicyStatus() *PolicyStatus { return &p.Status.PolicyStatus }

// String renders a reference as name or name:sectionName, as messages show it.
func (r PolicyTargetReference) String() string {
	if r.SectionName != nil {
		return r.Name + ":" + *r.SectionName
	}
	return r.Name
}
