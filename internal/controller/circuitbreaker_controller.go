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
	"context"

	"k8s.io/apimachinery/pkg/util/validation/field"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"

	"resilience.dev/operator/api/v1alpha1"
	"resilience.dev/operator/internal/policy"
)

// CircuitBreakerReconciler validates CircuitBreaker policies, resolves their targets and writes their status.
type CircuitBreakerReconciler struct {
	client.Client
	// Programmed reports whether gateways run a policy; nil means no gateway is connected.
	Programmed ProgrammedSource
	// Breakers reports live breaker state; nil means no gateway reports any.
	Breakers BreakerSource

	requeue chan event.GenericEvent
	shared  *policyReconciler[*v1alpha1.CircuitBreaker]
}

// +kubebuilder:rbac:groups=resilience.dev,resources=circuitbreakers,verbs=get;list;watch
// +kubebuilder:rbac:groups=resilience.dev,resources=circuitbreakers/status,verbs=get;update;patch
// +kubebuilder:rbac:groups="",resources=services,verbs=get;list;watch

// Reconcile brings the status of one CircuitBreaker up to date.
func (r *CircuitBreakerReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	return r.shared.reconcile(ctx, req)
}

// SetupWithManager registers the reconciler with the manager.
func (r *CircuitBreakerReconciler) SetupWithManager(mgr ctrl.Manager) error {
	r.shared = newShared(r.Client, r.Programmed, kindOps[*v1alpha1.CircuitBreaker]{
		kind:        v1alpha1.KindCircuitBreaker,
		newObj:      func() *v1alpha1.CircuitBreaker { return &v1alpha1.CircuitBreaker{} },
		newList:     func() client.ObjectList { return &v1alpha1.CircuitBreakerList{} },
		validate:    func(p *v1alpha1.CircuitBreaker) field.ErrorList { return policy.ValidateCircuitBreaker(&p.Spec) },
		extraStatus: r.setBreakerState,
	})
	return r.shared.setupWithManager(mgr, r, r.requeue)
}

// setBreakerState fills the live-state fields from what the gateways report. With no report, no
// replica has the breaker open, so it reads Closed.
func (r *CircuitBreakerReconciler) setBreakerState(cb *v1alpha1.CircuitBreaker) {
	cb.Status.State, cb.Status.OpenReplicas, cb.Status.OpenEndpoints = v1alpha1.CircuitClosed, 0, 0
	if r.Breakers == nil {
		return
	}
	state, replicas, endpoints := r.Breakers.BreakerStatus(cb.Namespace, cb.Name)
	if state != "" {
		cb.Status.State = state
	}
	cb.Status.OpenReplicas, cb.Status.OpenEndpoints = int32(replicas), int32(endpoints)
}
