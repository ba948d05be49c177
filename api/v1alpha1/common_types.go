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

// Duration is a duration in the Gateway API format (GEP-2257): one to four number-unit pairs with the
// units h, m, s and ms, such as "1s", "500ms" or "1m30s".
// +kubebuilder:validation:Pattern=`^([0-9]{1,5}(h|m|s|ms)){1,4}$`
// +kubebuilder:validation:MaxLength=32
type Duration string

// StatusCodes is an HTTP status code ("503") or an inclusive range of them ("500-599"), within 100..599.
// +kubebuilder:validation:MaxLength=7
// +kubebuilder:validation:XValidation:rule="self.matches('^[1-5][0-9][0-9](-[1-5][0-9][0-9])?$')",message="must be a status code from 100 to 599, or an inclusive range of them such as 500-599"
// +kubebuilder:validation:XValidation:rule="!self.matches('^[0-9]+-[0-9]+$') || int(self.split('-')[0]) <= int(self.split('-')[1])",message="a status code range must not start after it ends"
type StatusCodes string

// GRPCCode is a gRPC status code, named as Go's codes.Code prints it (google.golang.org/grpc/codes).
// +kubebuilder:validation:Enum=OK;Canceled;Unknown;InvalidArgument;DeadlineExceeded;NotFound;AlreadyExists;PermissionDenied;ResourceExhausted;FailedPrecondition;Aborted;OutOfRange;Unimplemented;Internal;Unavailable;DataLoss;Unauthenticated
type GRPCCode string

// HTTPMethod is an HTTP request method.
// +kubebuilder:validation:Enum=GET;HEAD;POST;PUT;DELETE;CONNECT;OPTIONS;TRACE;PATCH
type HTTPMethod string

// HeaderName is the name of an HTTP header (RFC 9110 token), matched case-insensitively.
// +kubebuilder:validation:MinLength=1
// +kubebuilder:validation:MaxLength=256
// +kubebuilder:validation:Pattern=`^[A-Za-z0-9!#$%&'*+\-.^_\x60|~]+$`
type HeaderName string

// Mode says whether a policy acts on traffic or only reports what it would have done.
// +kubebuilder:validation:Enum=Enforce;DryRun
type Mode string

const (
	// ModeEnforce acts on traffic.
	ModeEnforce Mode = "Enforce"
	// ModeDryRun never rejects or delays; what it would have done is counted in metrics and logged.
	ModeDryRun Mode = "DryRun"
)

// PolicyTargetReference names the Service (or one port of it) that a policy applies to, in the
// policy's own namespace, as in Gateway API policy attachment (GEP-713).
type PolicyTargetReference struct {
	// group of the target: "" (core) is the only group in v1alpha1.
	// +optional
	// +kubebuilder:default=""
	// +kubebuilder:validation:Enum=""
	Group string `json:"group"`

	// kind of the target: Service is the only kind in v1alpha1.
	// +optional
	// +kubebuilder:default=Service
	// +kubebuilder:validation:Enum=Service
	Kind string `json:"kind"`

	// name of the Service, in the policy's namespace.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[a-z]([-a-z0-9]*[a-z0-9])?$`
	Name string `json:"name"`

	// sectionName, when set, restricts the policy to the Service port with this name.
	// +optional
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=15
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	SectionName *string `json:"sectionName,omitempty"`
}

// TargetStatus says whether one targetRef of a policy is in force, and why not.
type TargetStatus struct {
	// targetRef is the reference as written in spec.
	TargetRef PolicyTargetReference `json:"targetRef"`
	// accepted is true when the policy is in force on this target (on at least one of its ports).
	Accepted bool `json:"accepted"`
	// reason is Accepted, Conflicted, TargetNotFound or Invalid.
	// +kubebuilder:validation:MaxLength=64
	Reason string `json:"reason"`
	// message explains the reason for a person.
	// +optional
	// +kubebuilder:validation:MaxLength=1024
	Message string `json:"message,omitempty"`
}

// PolicyStatus is the status shared by all policy kinds.
type PolicyStatus struct {
	// observedGeneration is the generation of the spec that this status describes.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// conditions: Accepted, Programmed and Ready (True when both others are True).
	// +optional
	// +listType=map
	// +listMapKey=type
	// +kubebuilder:validation:MaxItems=8
	Conditions []metav1.Condition `json:"conditions,omitempty"`

	// targets has one entry per spec.targetRefs entry, in the same order.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=16
	Targets []TargetStatus `json:"targets,omitempty"`
}
