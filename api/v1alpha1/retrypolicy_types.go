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

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// BackoffStrategy shapes the delay between tries.
// +kubebuilder:validation:Enum=Exponential;Linear;Fixed
type BackoffStrategy string

const (
	// BackoffExponential waits base * 2^(n-1) before retry n.
	BackoffExponential BackoffStrategy = "Exponential"
	// BackoffLinear waits base * n before retry n.
	BackoffLinear BackoffStrategy = "Linear"
	// BackoffFixed waits base before every retry.
	BackoffFixed BackoffStrategy = "Fixed"
)

// Jitter randomises backoff delays so that clients do not retry in lockstep.
// +kubebuilder:validation:Enum=Full;Equal;Decorrelated;None
type Jitter string

const (
	// JitterFull waits uniformly in [0, d].
	JitterFull Jitter = "Full"
	// JitterEqual waits d/2 plus uniformly [0, d/2].
	JitterEqual Jitter = "Equal"
	// JitterDecorrelated waits uniformly in [base, 3 * previous delay], capped at max.
	JitterDecorrelated Jitter = "Decorrelated"
	// JitterNone waits exactly d.
	JitterNone Jitter = "None"
)

// RetryPolicySpec declares retries with backoff, per-try and overall timeouts, a retry budget and hedging.
// +kubebuilder:validation:XValidation:rule="!has(self.perTryTimeout) || !has(self.timeout) || duration(self.perTryTimeout) == duration('0s') || duration(self.timeout) == duration('0s') || duration(self.perTryTimeout) <= duration(self.timeout)",message="perTryTimeout must not exceed timeout"
// +kubebuilder:validation:XValidation:rule="!has(self.hedge) || !has(self.maxAttempts) || self.hedge.maxHedges < self.maxAttempts",message="hedge.maxHedges must be below maxAttempts: each hedge counts as a try"
type RetryPolicySpec struct {
	// targetRefs are the Services (or Service ports) this policy applies to.
	// +required
	// +listType=atomic
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=16
	// +kubebuilder:validation:XValidation:rule="self.all(a, self.exists_one(b, a.name == b.name && (has(a.sectionName) ? (has(b.sectionName) && a.sectionName == b.sectionName) : !has(b.sectionName))))",message="each target (name and sectionName) may be listed only once"
	TargetRefs []PolicyTargetReference `json:"targetRefs"`

	// maxAttempts is the number of tries in all, the first included.
	// +optional
	// +kubebuilder:default=3
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=10
	MaxAttempts int32 `json:"maxAttempts,omitempty"`

	// retryOn says which failed tries may be retried.
	// +optional
	// +kubebuilder:default={}
	RetryOn *RetryOn `json:"retryOn,omitempty"`

	// methods that may be retried; default: the idempotent methods (RFC 9110 9.2.2). A POST or PATCH with an
	// Idempotency-Key header counts as idempotent, and a connect error is retried for any method.
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=9
	// +kubebuilder:default={GET,HEAD,OPTIONS,PUT,DELETE}
	Methods []HTTPMethod `json:"methods,omitempty"`

	// backoff between tries.
	// +optional
	// +kubebuilder:default={}
	Backoff *Backoff `json:"backoff,omitempty"`

	// perTryTimeout cuts each try; 0s means none.
	// +optional
	// +kubebuilder:default="0s"
	PerTryTimeout Duration `json:"perTryTimeout,omitempty"`

	// timeout is the deadline of the whole request until its response headers; 0s means none.
	// +optional
	// +kubebuilder:default="0s"
	Timeout Duration `json:"timeout,omitempty"`

	// budget bounds retries to a share of the target's recent requests (in force also when absent).
	// +optional
	// +kubebuilder:default={}
	Budget *RetryBudget `json:"budget,omitempty"`

	// respectRetryAfter waits as long as a retryable response's Retry-After asks, when that fits.
	// +optional
	// +kubebuilder:default=true
	RespectRetryAfter *bool `json:"respectRetryAfter,omitempty"`

	// hedge sends extra copies of a slow GET, HEAD or OPTIONS request to other endpoints.
	// +optional
	Hedge *Hedge `json:"hedge,omitempty"`
}

// RetryOn says which failed tries may be retried.
type RetryOn struct {
	// statusCodes that may be retried: codes or inclusive ranges, as strings.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=16
	// +kubebuilder:default={"502","503","504"}
	StatusCodes []StatusCodes `json:"statusCodes,omitempty"`

	// connectErrors may be retried (for any method: the request was never sent).
	// +optional
	// +kubebuilder:default=true
	ConnectErrors *bool `json:"connectErrors,omitempty"`

	// resets: a connection reset or closed before a response may be retried.
	// +optional
	// +kubebuilder:default=true
	Resets *bool `json:"resets,omitempty"`

	// timeouts: a try cut by perTryTimeout may be retried.
	// +optional
	// +kubebuilder:default=true
	Timeouts *bool `json:"timeouts,omitempty"`

	// grpcCodes: a gRPC call whose try ends with one of these grpc-status codes (a trailers-only or
	// failed response, before anything reached the client) may be retried, whatever its method.
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=17
	// +kubebuilder:default={"Unavailable"}
	GRPCCodes []GRPCCode `json:"grpcCodes,omitempty"`
}

// Backoff shapes the delay between tries.
// +kubebuilder:validation:XValidation:rule="!has(self.base) || !has(self.max) || duration(self.base) <= duration(self.max)",message="backoff.base must not exceed backoff.max"
type Backoff struct {
	// strategy: Exponential, Linear or Fixed.
	// +optional
	// +kubebuilder:default=Exponential
	Strategy BackoffStrategy `json:"strategy,omitempty"`

	// base delay.
	// +optional
	// +kubebuilder:default="25ms"
	Base Duration `json:"base,omitempty"`

	// max delay between two tries.
	// +optional
	// +kubebuilder:default="1s"
	Max Duration `json:"max,omitempty"`

	// jitter: Full, Equal, Decorrelated or None.
	// +optional
	// +kubebuilder:default=Full
	Jitter Jitter `json:"jitter,omitempty"`
}

// RetryBudget bounds retries to a share of recent requests, with a floor.
type RetryBudget struct {
	// percent of the target's requests in the last window that retries may add.
	// +optional
	// +kubebuilder:default=20
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=100
	Percent *int32 `json:"percent,omitempty"`

	// minRetriesPerSecond are always allowed, whatever the percent allows.
	// +optional
	// +kubebuilder:default=10
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=100000
	MinRetriesPerSecond *int32 `json:"minRetriesPerSecond,omitempty"`

	// window over which requests are counted: 1s..1h.
	// +optional
	// +kubebuilder:default="10s"
	// +kubebuilder:validation:XValidation:rule="!self.matches('^([0-9]{1,5}(h|m|s|ms)){1,4}$') || duration(self) >= duration('1s') && duration(self) <= duration('1h')",message="budget.window must be between 1s and 1h"
	Window Duration `json:"window,omitempty"`
}

// Hedge sends extra copies of a slow request to other endpoints; the first good response wins.
type Hedge struct {
	// delay without a response after which another copy is sent.
	// +required
	// +kubebuilder:validation:XValidation:rule="!self.matches('^([0-9]{1,5}(h|m|s|ms)){1,4}$') || duration(self) >= duration('1ms')",message="hedge.delay must be at least 1ms"
	Delay Duration `json:"delay"`

	// maxHedges is the number of extra copies at most; each counts as a try against maxAttempts.
	// +optional
	// +kubebuilder:default=1
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=9
	MaxHedges int32 `json:"maxHedges,omitempty"`
}

// RetryPolicyStatus is the observed state of a RetryPolicy.
type RetryPolicyStatus struct {
	PolicyStatus `json:",inline"`
}

// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=retry,categories=resilience
// +kubebuilder:printcolumn:name="Targets",type=string,JSONPath=`.spec.targetRefs[*].name`
// +kubebuilder:printcolumn:name="Attempts",type=integer,JSONPath=`.spec.maxAttempts`
// +kubebuilder:printcolumn:name="Accepted",type=string,JSONPath=`.status.conditions[?(@.type=="Accepted")].status`
// +kubebuilder:printcolumn:name="Programmed",type=string,JSONPath=`.status.conditions[?(@.type=="Programmed")].status`
// +kubebuilder:printcolumn:name="Ready",type=string,priority=1,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Reason",type=string,priority=1,JSONPath=`.status.conditions[?(@.type=="Accepted")].reason`
// +kubebuilder:printcolumn:name="Timeout",type=string,priority=1,JSONPath=`.spec.timeout`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`

// RetryPolicy retries failed requests to Services, with timeouts, a retry budget and hedging.
type RetryPolicy struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   RetryPolicySpec   `json:"spec"`
	Status RetryPolicyStatus `json:"status,omitempty"`
}

// +kubebuilder:object:root=true

// RetryPolicyList is a list of RetryPolicy.
type RetryPolicyList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []RetryPolicy `json:"items"`
}

func init() {
	SchemeBuilder.Register(&RetryPolicy{}, &RetryPolicyList{})
}
