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

// Condition types written on every policy.
const (
	// ConditionAccepted is True when the policy is valid and in force on at least one of its targets.
	ConditionAccepted = "Accepted"
	// ConditionProgrammed is True when every connected gateway replica runs a snapshot that holds this
	// policy at its current generation.
	ConditionProgrammed = "Programmed"
	// ConditionReady sums the other two up for tools that read one condition (kubectl wait, kstatus
	// and Flux, Argo CD): True when Accepted and Programmed are both True; otherwise False with the
	// reason and message of the first of them that is not True (Accepted before Programmed).
	ConditionReady = "Ready"
	// ConditionStoreAvailable is written on a RateLimit with a Global limit: True while every connected
	// gateway replica reaches the store, False naming those that do not (their Global limits then
	// follow onStoreError). It does not change Ready: the policy is enforced either way.
	ConditionStoreAvailable = "StoreAvailable"
)

// Reasons of the StoreAvailable condition, also the reasons of the Events written when it flips.
const (
	// ReasonStoreAvailable: every connected gateway replica reaches the store.
	ReasonStoreAvailable = "StoreAvailable"
	// ReasonStoreUnavailable: some replicas do not (or none is connected to report).
	ReasonStoreUnavailable = "StoreUnavailable"
)

// Reasons of the Ready condition. When it is False its reason is that of Accepted or Programmed
// (Invalid, Conflicted, TargetNotFound, Pending, NoGateways).
const (
	// ReasonReady: the policy is accepted and every connected gateway replica enforces it.
	ReasonReady = "Ready"
)

// Reasons of the Accepted condition and of status.targets entries (as Gateway API's policy conditions).
const (
	// ReasonAccepted: the policy is in force on at least one target.
	ReasonAccepted = "Accepted"
	// ReasonInvalid: the spec passed the API server's checks but the controller cannot use it.
	ReasonInvalid = "Invalid"
	// ReasonConflicted: another policy of the same kind wins every port this policy targets.
	ReasonConflicted = "Conflicted"
	// ReasonTargetNotFound: the targeted Service, or the port named by sectionName, does not exist.
	ReasonTargetNotFound = "TargetNotFound"
)

// Reasons of the Programmed condition.
const (
	// ReasonProgrammed: every connected gateway replica enforces the current generation.
	ReasonProgrammed = "Programmed"
	// ReasonPending: some connected gateway replicas have not applied the current generation yet.
	ReasonPending = "Pending"
	// ReasonNoGateways: no gateway replica is connected to the manager.
	ReasonNoGateways = "NoGateways"
)

// Reasons of the Events recorded on a CircuitBreaker when one of its breakers changes state on a
// gateway replica.
const (
	// EventCircuitOpened: a breaker opened (type Warning).
	EventCircuitOpened = "CircuitOpened"
	// EventCircuitHalfOpen: an open breaker's open duration passed; it lets probes through.
	EventCircuitHalfOpen = "CircuitHalfOpen"
	// EventCircuitClosed: probes succeeded and the breaker closed.
	EventCircuitClosed = "CircuitClosed"
)
