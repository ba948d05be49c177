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
	"k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"

	"resilience.dev/operator/api/v1alpha1"
	"resilience.dev/operator/internal/policy"
)

// RateLimitReconciler validates RateLimit policies, resolves their targets and writes their status.
type RateLimitReconciler struct {
	client.Client
	// Programmed reports whether gateways run a policy; nil means no gateway is connected.
	Programmed ProgrammedSource
	// Store reports whether gateways reach the store of Global limits; nil means no gateway is connected.
	Store StoreSource
	// Recorder, when set, records an Event when StoreAvailable flips.
	Recorder events.EventRecorder

	requeue chan event.GenericEvent
	shared  *policyReconciler[*v1alpha1.RateLimit]
}

// +kubebuilder:rbac:groups=resilience.dev,resources=ratelimits,verbs=get;list;watch
// +kubebuilder:rbac:groups=resilience.dev,resources=ratelimits/status,verbs=get;update;patch
// +kubebuilder:rbac:groups="",resources=services,verbs=get;list;watch

// Reconcile brings the status of one RateLimit up to date.
func (r *RateLimitReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	return r.shared.reconcile(ctx, req)
}

// SetupWithManager registers the reconciler with the manager.
func (r *RateLimitReconciler) SetupWithManager(mgr ctrl.Manager) error {
	r.shared = newShared(r.Client, r.Programmed, kindOps[*v1alpha1.RateLimit]{
		kind:        v1alpha1.KindRateLimit,
		newObj:      func() *v1alpha1.RateLimit { return &v1alpha1.RateLimit{} },
		newList:     func() client.ObjectList { return &v1alpha1.RateLimitList{} },
		validate:    func(p *v1alpha1.RateLimit) field.ErrorList { return policy.ValidateRateLimit(&p.Spec) },
		extraStatus: r.setStoreAvailable,
	})
	return r.shared.setupWithManager(mgr, r, r.requeue)
}
