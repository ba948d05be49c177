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

// BreakerScope says whether one breaker guards the whole target or one guards each endpoint.
// +kubebuilder:validation:Enum=Service;Endpoint
type BreakerScope string

const (
	// ScopeService keeps one breaker for the target.
	ScopeService BreakerScope = "Service"
	// ScopeEndpoint keeps one breaker per backend endpoint.
	ScopeEndpoint BreakerScope = "Endpoint"
)

// CircuitState is the state of a circuit breaker.
// +kubebuilder:validation:Enum=Closed;Open;HalfOpen
type CircuitState string

const (
	// CircuitClosed lets requests through.
	CircuitClosed CircuitState = "Closed"
	// CircuitOpen rejects requests.
	CircuitOpen CircuitState = "Open"
	// CircuitHalfOpen lets a few probes through.
	CircuitHalfOpen CircuitState = "HalfOpen"
)

// CircuitBreakerSpec declares concurrency limits and when to stop sending requests to a failing
// Service or endpoint.
// +kubebuilder:validation:XValidation:rule="!has(self.maxOpenDuration) || duration(self.maxOpenDuration) == duration('0s') || duration(self.maxOpenDuration) >= duration(has(self.openDuration) ? self.openDuration : '30s')",message="maxOpenDuration must be 0s or at least openDuration"
type CircuitBreakerSpec struct {
	// targetRefs are the Services (or Service ports) this policy applies to.
	// +required
	// +listType=atomic
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=16
	// +kubebuilder:validation:XValidation:rule="self.all(a, self.exists_one(b, a.name == b.name && (has(a.sectionName) ? (has(b.sectionName) && a.sectionName == b.sectionName) : !has(b.sectionName))))",message="each target (name and sectionName) may be listed only once"
	TargetRefs []PolicyTargetReference `json:"targetRefs"`

	// concurrency is an optional bulkhead: requests in flight at once, and a bounded queue behind them.
	// +optional
	Concurrency *Concurrency `json:"concurrency,omitempty"`

	// failureCriteria says what counts as a failure.
	// +optional
	// +kubebuilder:default={}
	FailureCriteria *FailureCriteria `json:"failureCriteria,omitempty"`

	// trip says when the breaker opens: exactly one of consecutiveFailures or failureRatio.
	// +optional
	// +kubebuilder:default={consecutiveFailures: 5}
	Trip *Trip `json:"trip,omitempty"`

	// openDuration is how long the breaker stays open before it lets probes through.
	// +optional
	// +kubebuilder:default="30s"
	OpenDuration Duration `json:"openDuration,omitempty"`

	// maxOpenDuration, when above 0s, doubles openDuration at each trip in a row, up to this.
	// +optional
	// +kubebuilder:default="0s"
	MaxOpenDuration Duration `json:"maxOpenDuration,omitempty"`

	// halfOpen says how the breaker probes the target before it closes.
	// +optional
	// +kubebuilder:default={}
	HalfOpen *HalfOpen `json:"halfOpen,omitempty"`

	// scope: Service keeps one breaker for the target; Endpoint one per backend endpoint.
	// +optional
	// +kubebuilder:default=Service
	Scope BreakerScope `json:"scope,omitempty"`

	// maxOpenPercent, with scope Endpoint, is the largest share of endpoints open at once.
	// +optional
	// +kubebuilder:default=50
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=100
	MaxOpenPercent int32 `json:"maxOpenPercent,omitempty"`

	// fallback says what a rejected request gets.
	// +optional
	// +kubebuilder:default={}
	Fallback *Fallback `json:"fallback,omitempty"`

	// mode: Enforce, or DryRun to only count and log what would have been rejected.
	// +optional
	// +kubebuilder:default=Enforce
	Mode Mode `json:"mode,omitempty"`
}

// Concurrency is a bulkhead: at most maxRequests in flight per gateway replica, and a FIFO queue behind.
type Concurrency struct {
	// maxRequests in flight to the target at once, per gateway replica.
	// +required
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=1000000
	MaxRequests int32 `json:"maxRequests"`

	// maxQueued requests wait in FIFO order for a free slot; beyond this they are rejected.
	// +optional
	// +kubebuilder:default=0
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=1000000
	MaxQueued int32 `json:"maxQueued"`

	// queueTimeout: a queued request waiting longer is rejected.
	// +optional
	// +kubebuilder:default="1s"
	QueueTimeout Duration `json:"queueTimeout,omitempty"`
}

// FailureCriteria says what counts as a failed call.
type FailureCriteria struct {
	// statusCodes that count as failures: codes or inclusive ranges, as strings.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=16
	// +kubebuilder:default={"500-599"}
	StatusCodes []StatusCodes `json:"statusCodes,omitempty"`

	// connectErrors count as failures.
	// +optional
	// +kubebuilder:default=true
	ConnectErrors *bool `json:"connectErrors,omitempty"`

	// timeouts (a try cut by the per-try timeout) count as failures.
	// +optional
	// +kubebuilder:default=true
	Timeouts *bool `json:"timeouts,omitempty"`

	// slowCallDuration, when above 0s: a response slower than this counts as a failure.
	// +optional
	// +kubebuilder:default="0s"
	SlowCallDuration Duration `json:"slowCallDuration,omitempty"`

	// grpcCodes: a gRPC call whose final grpc-status (read in the trailers, at the end of the stream)
	// is one of these counts as a failure.
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=17
	// +kubebuilder:default={"Unavailable","Internal","DeadlineExceeded","Unknown"}
	GRPCCodes []GRPCCode `json:"grpcCodes,omitempty"`
}

// Trip says when a breaker opens: exactly one of its fields.
// +kubebuilder:validation:XValidation:rule="has(self.consecutiveFailures) != has(self.failureRatio)",message="trip must set exactly one of consecutiveFailures or failureRatio"
type Trip struct {
	// consecutiveFailures opens the breaker on this failure in a row.
	// +optional
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=10000
	ConsecutiveFailures *int32 `json:"consecutiveFailures,omitempty"`

	// failureRatio opens the breaker when, in the last window, at least minimumRequests were seen and at
	// least percent of them failed.
	// +optional
	FailureRatio *FailureRatio `json:"failureRatio,omitempty"`
}

// FailureRatio trips on a share of failures over a sliding time window.
type FailureRatio struct {
	// percent of failed calls in the window that opens the breaker.
	// +optional
	// +kubebuilder:default=50
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=100
	Percent int32 `json:"percent,omitempty"`

	// minimumRequests in the window before the ratio is judged.
	// +optional
	// +kubebuilder:default=20
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=1000000
	MinimumRequests int32 `json:"minimumRequests,omitempty"`

	// window is the sliding time window the ratio is computed over: 1s..1h.
	// +optional
	// +kubebuilder:default="30s"
	// +kubebuilder:validation:XValidation:rule="!self.matches('^([0-9]{1,5}(h|m|s|ms)){1,4}$') || duration(self) >= duration('1s') && duration(self) <= duration('1h')",message="window must be between 1s and 1h"
	Window Duration `json:"window,omitempty"`
}

// HalfOpen says how a breaker probes before it closes.
type HalfOpen struct {
	// maxRequests probes let through at once while half-open; more are rejected.
	// +optional
	// +kubebuilder:default=1
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=1000
	MaxRequests int32 `json:"maxRequests,omitempty"`

	// successThreshold probe successes in a row close the breaker; any probe failure reopens it.
	// +optional
	// +kubebuilder:default=1
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=1000
	SuccessThreshold int32 `json:"successThreshold,omitempty"`
}

// Fallback says what a rejected request gets.
type Fallback struct {
	// statusCode of the answer to a rejected request: 429 or 500..599.
	// +optional
	// +kubebuilder:default=503
	// +kubebuilder:validation:XValidation:rule="self == 429 || (self >= 500 && self <= 599)",message="fallback.statusCode must be 429 or within 500..599"
	StatusCode int32 `json:"statusCode,omitempty"`

	// serveStale, when above 0s: a GET rejected while open gets the last 200 response for its URL if
	// younger than this, marked X-Resilience-Stale: true.
	// +optional
	// +kubebuilder:default="0s"
	ServeStale Duration `json:"serveStale,omitempty"`
}

// CircuitBreakerStatus is the observed state of a CircuitBreaker.
type CircuitBreakerStatus struct {
	PolicyStatus `json:",inline"`

	// state is the worst state across gateway replicas: Closed, Open or HalfOpen.
	// +optional
	State CircuitState `json:"state,omitempty"`

	// openReplicas is the number of gateway replicas where the breaker is open (scope Service).
	// +optional
	// +kubebuilder:default=0
	OpenReplicas int32 `json:"openReplicas"`

	// openEndpoints is the number of endpoints whose breaker is open (scope Endpoint).
	// +optional
	// +kubebuilder:default=0
	OpenEndpoints int32 `json:"openEndpoints"`
}

// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=cb,categories=resilience
// +kubebuilder:printcolumn:name="Targets",type=string,JSONPath=`.spec.targetRefs[*].name`
// +kubebuilder:printcolumn:name="State",type=string,JSONPath=`.status.state`
// +kubebuilder:printcolumn:name="Accepted",type=string,JSONPath=`.status.conditions[?(@.type=="Accepted")].status`
// +kubebuilder:printcolumn:name="Programmed",type=string,JSONPath=`.status.conditions[?(@.type=="Programmed")].status`
// +kubebuilder:printcolumn:name="Ready",type=string,priority=1,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Reason",type=string,priority=1,JSONPath=`.status.conditions[?(@.type=="Accepted")].reason`
// +kubebuilder:printcolumn:name="Open-Replicas",type=integer,priority=1,JSONPath=`.status.openReplicas`
// +kubebuilder:printcolumn:name="Open-Endpoints",type=integer,priority=1,JSONPath=`.status.openEndpoints`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`

// CircuitBreaker stops sending requests to a failing Service or endpoint, and bounds concurrency.
type CircuitBreaker struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   CircuitBreakerSpec   `json:"spec"`
	Status CircuitBreakerStatus `json:"status,omitempty"`
}

// +kubebuilder:object:root=true

// CircuitBreakerList is a list of CircuitBreaker.
type CircuitBreakerList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []CircuitBreaker `json:"items"`
}

func init() {
	SchemeBuilder.Register(&CircuitBreaker{}, &CircuitBreakerList{})
}
