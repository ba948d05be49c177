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

// OnExceeded says what happens to a request over the limit.
// +kubebuilder:validation:Enum=Reject;Delay
type OnExceeded string

const (
	// OnExceededReject answers 429 at once.
	OnExceededReject OnExceeded = "Reject"
	// OnExceededDelay queues the request while the wait it needs is at most maxDelay.
	OnExceededDelay OnExceeded = "Delay"
)

// Distribution says how a limit applies across gateway replicas.
// +kubebuilder:validation:Enum=Split;PerReplica;Global
type Distribution string

const (
	// DistributionSplit gives each ready replica limit/N (at least 1 token and burst 1).
	DistributionSplit Distribution = "Split"
	// DistributionPerReplica makes every replica enforce the whole limit.
	DistributionPerReplica Distribution = "PerReplica"
	// DistributionGlobal makes the limit one bucket for the whole cluster, in the shared store that
	// the gateways' --store-url names (contract, section 7).
	DistributionGlobal Distribution = "Global"
)

// OnStoreError says what a Global limit does while the store cannot be reached in time.
// +kubebuilder:validation:Enum=Local;Allow;Deny
type OnStoreError string

const (
	// OnStoreErrorLocal makes each replica enforce the limit split across the replicas, as Split does.
	OnStoreErrorLocal OnStoreError = "Local"
	// OnStoreErrorAllow lets the requests the limit matches pass.
	OnStoreErrorAllow OnStoreError = "Allow"
	// OnStoreErrorDeny refuses them with 429.
	OnStoreErrorDeny OnStoreError = "Deny"
)

// RateLimitSpec declares token-bucket limits on the requests to its targets.
// +kubebuilder:validation:XValidation:rule="!has(self.maxDelay) || (has(self.onExceeded) && self.onExceeded == 'Delay')",message="maxDelay may only be set with onExceeded: Delay"
// +kubebuilder:validation:XValidation:rule="!(has(self.onExceeded) && self.onExceeded == 'Delay') || !((has(self.distribution) && self.distribution == 'Global') || self.limits.exists(l, has(l.distribution) && l.distribution == 'Global'))",message="onExceeded: Delay cannot be combined with distribution: Global (a shared bucket cannot hold a queue's reservations)"
// +kubebuilder:validation:XValidation:rule="!has(self.onStoreError) || (has(self.distribution) && self.distribution == 'Global') || self.limits.exists(l, has(l.distribution) && l.distribution == 'Global')",message="onStoreError may only be set when a limit has distribution: Global"
// +kubebuilder:validation:XValidation:rule="self.limits.all(l, !has(l.onStoreError) || (has(l.distribution) ? l.distribution == 'Global' : (has(self.distribution) && self.distribution == 'Global')))",message="a limit's onStoreError needs that limit to be Global (its own distribution, or the spec's)"
type RateLimitSpec struct {
	// targetRefs are the Services (or Service ports) this policy applies to.
	// +required
	// +listType=atomic
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=16
	// +kubebuilder:validation:XValidation:rule="self.all(a, self.exists_one(b, a.name == b.name && (has(a.sectionName) ? (has(b.sectionName) && a.sectionName == b.sectionName) : !has(b.sectionName))))",message="each target (name and sectionName) may be listed only once"
	TargetRefs []PolicyTargetReference `json:"targetRefs"`

	// limits a request must all pass (those that match it). Refusal by one limit spends nothing from the others.
	// +required
	// +listType=map
	// +listMapKey=name
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=8
	Limits []Limit `json:"limits"`

	// clientIP says how the client address used by clientIP keys is found.
	// +optional
	// +kubebuilder:default={}
	ClientIP *ClientIPConfig `json:"clientIP,omitempty"`

	// onExceeded: Reject answers 429 at once; Delay queues the request while the wait it needs is at most maxDelay.
	// +optional
	// +kubebuilder:default=Reject
	OnExceeded OnExceeded `json:"onExceeded,omitempty"`

	// maxDelay is the longest a request may wait with onExceeded Delay (unset: 500ms).
	// +optional
	MaxDelay *Duration `json:"maxDelay,omitempty"`

	// mode: Enforce, or DryRun to only count and log what would have been rejected.
	// +optional
	// +kubebuilder:default=Enforce
	Mode Mode `json:"mode,omitempty"`

	// distribution of each limit across gateway replicas. Unset: Split for limits without a key,
	// PerReplica for keyed limits. Global: one bucket for the whole cluster, in the shared store.
	// A limit may set its own.
	// +optional
	Distribution *Distribution `json:"distribution,omitempty"`

	// onStoreError is what Global limits do while the store is down or slower than its per-call
	// budget (unset: Local). A limit may set its own.
	// +optional
	OnStoreError *OnStoreError `json:"onStoreError,omitempty"`
}

// Limit is one token bucket (or one per key).
type Limit struct {
	// name identifies the limit in metrics and response headers.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	Name string `json:"name"`

	// requests is the number of tokens added per period.
	// +required
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=1000000000
	Requests int32 `json:"requests"`

	// period over which requests tokens are added, continuously: 1ms..24h.
	// +required
	// +kubebuilder:validation:XValidation:rule="!self.matches('^([0-9]{1,5}(h|m|s|ms)){1,4}$') || duration(self) >= duration('1ms') && duration(self) <= duration('24h')",message="period must be between 1ms and 24h"
	Period Duration `json:"period"`

	// burst is the bucket size (unset: requests).
	// +optional
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=1000000000
	Burst *int32 `json:"burst,omitempty"`

	// key splits the limit into one bucket per distinct key value; absent: one bucket for the whole target.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=4
	Key []KeyPart `json:"key,omitempty"`

	// match restricts the limit to some requests; absent: all requests.
	// +optional
	Match *RequestMatch `json:"match,omitempty"`

	// maxKeys is the number of buckets kept for a keyed limit; beyond it new keys share one overflow bucket.
	// +optional
	// +kubebuilder:default=10000
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=1000000
	MaxKeys int32 `json:"maxKeys,omitempty"`

	// distribution of this limit across gateway replicas, overriding the spec's.
	// +optional
	Distribution *Distribution `json:"distribution,omitempty"`

	// onStoreError of this limit (Global only), overriding the spec's.
	// +optional
	OnStoreError *OnStoreError `json:"onStoreError,omitempty"`
}

// KeyPart is one part of a limit's key: exactly one of clientIP or header.
// +kubebuilder:validation:XValidation:rule="has(self.clientIP) != has(self.header)",message="each key part must set exactly one of clientIP or header"
type KeyPart struct {
	// clientIP keys by the client address (see spec.clientIP).
	// +optional
	ClientIP *ClientIPKey `json:"clientIP,omitempty"`

	// header keys by the value of this request header; a request without it uses the empty value.
	// +optional
	Header *HeaderName `json:"header,omitempty"`
}

// ClientIPKey selects the client address as a key part. It has no fields.
type ClientIPKey struct{}

// RequestMatch selects the requests a limit applies to; all its fields must match.
type RequestMatch struct {
	// methods the request may have; absent: any.
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=9
	Methods []HTTPMethod `json:"methods,omitempty"`

	// pathPrefix the request path must start with.
	// +optional
	// +kubebuilder:validation:MaxLength=1024
	// +kubebuilder:validation:Pattern=`^/`
	PathPrefix *string `json:"pathPrefix,omitempty"`
}

// ClientIPConfig says how the client address is found.
type ClientIPConfig struct {
	// trustedProxies are CIDRs whose X-Forwarded-For is believed: the client is the rightmost untrusted hop.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=32
	// +kubebuilder:validation:items:MaxLength=43
	// +kubebuilder:validation:XValidation:rule="self.all(c, isCIDR(c))",message="each trusted proxy must be a CIDR such as 10.0.0.0/8 or fd00::/8"
	TrustedProxies []string `json:"trustedProxies,omitempty"`

	// ipv6PrefixLength: IPv6 clients are keyed by this prefix of their address.
	// +optional
	// +kubebuilder:default=64
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=128
	IPv6PrefixLength int32 `json:"ipv6PrefixLength,omitempty"`
}

// RateLimitStatus is the observed state of a RateLimit.
type RateLimitStatus struct {
	PolicyStatus `json:",inline"`
}

// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=rl,categories=resilience
// +kubebuilder:printcolumn:name="Targets",type=string,JSONPath=`.spec.targetRefs[*].name`
// +kubebuilder:printcolumn:name="Accepted",type=string,JSONPath=`.status.conditions[?(@.type=="Accepted")].status`
// +kubebuilder:printcolumn:name="Programmed",type=string,JSONPath=`.status.conditions[?(@.type=="Programmed")].status`
// +kubebuilder:printcolumn:name="Ready",type=string,priority=1,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Reason",type=string,priority=1,JSONPath=`.status.conditions[?(@.type=="Accepted")].reason`
// +kubebuilder:printcolumn:name="Mode",type=string,priority=1,JSONPath=`.spec.mode`
// +kubebuilder:printcolumn:name="Store",type=string,priority=1,JSONPath=`.status.conditions[?(@.type=="StoreAvailable")].status`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`

// RateLimit limits the rate of requests to Services with token buckets.
type RateLimit struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   RateLimitSpec   `json:"spec"`
	Status RateLimitStatus `json:"status,omitempty"`
}

// +kubebuilder:object:root=true

// RateLimitList is a list of RateLimit.
type RateLimitList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []RateLimit `json:"items"`
}

func init() {
	SchemeBuilder.Register(&RateLimit{}, &RateLimitList{})
}
