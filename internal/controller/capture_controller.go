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
	"errors"
	"fmt"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"resilience.dev/operator/internal/capture"
)

// +kubebuilder:rbac:groups=discovery.k8s.io,resources=endpointslices,verbs=get;list;watch;create;update;delete

// CaptureReconciler writes the EndpointSlices of front Services (contract, section 5): toward the
// ready gateway pods on each front port's capture port, or, failed open, toward the backend's pods.
// Capture ports must be unique across the cluster and the oldest front wins a contested one, so it
// reconciles all fronts at once (one work item): each pass plans every front from the cache, exactly
// as the compiler does, and writes what differs. It runs on the leader only.
type CaptureReconciler struct {
	Client   client.Client
	Recorder events.EventRecorder
	// Gateway is the gateway's Service, whose EndpointSlices list the gateway pods.
	Gateway types.NamespacedName
	Range   capture.Range

	mu      sync.Mutex
	watched map[types.NamespacedName]bool // fronts, their backends and the gateway: whose changes matter
	last    map[types.NamespacedName]frontReport
}

// captureItem is the one work item.
var captureItem = reconcile.Request{NamespacedName: types.NamespacedName{Name: "capture"}}

// SetupWithManager registers the reconciler, woken by changes of the Services and EndpointSlices it
// reads and of the slices it wrote.
func (r *CaptureReconciler) SetupWithManager(mgr ctrl.Manager) error {
	if r.Range == (capture.Range{}) {
		r.Range = capture.DefaultRange
	}
	r.watched = map[types.NamespacedName]bool{r.Gateway: true}
	r.last = map[types.NamespacedName]frontReport{}
	registerCaptureMetrics()
	services := handler.EnqueueRequestsFromMapFunc(func(_ context.Context, o client.Object) []reconcile.Request {
		s, ok := o.(*corev1.Service)
		if ok && (capture.IsFront(s) || r.isWatched(s.Namespace, s.Name)) {
			return []reconcile.Request{captureItem}
		}
		return nil
	})
	slices := handler.EnqueueRequestsFromMapFunc(func(_ context.Context, o client.Object) []reconcile.Request {
		s, ok := o.(*discoveryv1.EndpointSlice)
		if ok && (capture.IsManaged(s) || r.isWatched(s.Namespace, s.Labels[discoveryv1.LabelServiceName])) {
			return []reconcile.Request{captureItem}
		}
		return nil
	})
	return ctrl.NewControllerManagedBy(mgr).Named("capture").
		Watches(&corev1.Service{}, services).
		Watches(&discoveryv1.EndpointSlice{}, slices).
		Complete(r)
}

func (r *CaptureReconciler) isWatched(ns, name string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.watched[types.NamespacedName{Namespace: ns, Name: name}]
}

// Reconcile plans every front and brings the slices of each in line with its plan.
func (r *CaptureReconciler) Reconcile(ctx context.Context, _ reconcile.Request) (reconcile.Result, error) {
	var fronts corev1.ServiceList
	if err := r.Client.List(ctx, &fronts, client.HasLabels{capture.LabelCapture}); err != nil {
		return reconcile.Result{}, fmt.Errorf("list front Services: %w", err)
	}
	var own discoveryv1.EndpointSliceList
	if err := r.Client.List(ctx, &own, client.MatchingLabels{discoveryv1.LabelManagedBy: capture.ManagedBy}); err != nil {
		return reconcile.Result{}, fmt.Errorf("list the manager's EndpointSlices: %w", err)
	}
	gateway, err := r.slicesOf(ctx, r.Gateway)
	if err != nil {
		return reconcile.Result{}, err
	}
	ownByFront := map[types.NamespacedName][]*discoveryv1.EndpointSlice{}
	ownAll := make([]*discoveryv1.EndpointSlice, len(own.Items))
	for i := range own.Items {
		s := &own.Items[i]
		ownAll[i] = s
		key := types.NamespacedName{Namespace: s.Namespace, Name: s.Labels[capture.LabelFront]}
		ownByFront[key] = append(ownByFront[key], s)
	}
	plans := capture.PlanAll(ptrsOf(fronts.Items), r.lookup(ctx), capture.ClaimsOf(ownAll), r.Range)
	watched := map[types.NamespacedName]bool{r.Gateway: true}
	counts := map[string]int{}
	var errs []error
	for _, p := range plans {
		watched[p.Front] = true
		if p.Backend != nil {
			watched[types.NamespacedName{Namespace: p.Front.Namespace, Name: p.Backend.Name}] = true
		}
		own := ownByFront[p.Front]
		delete(ownByFront, p.Front) // what is left there at the end belongs to no front
		rep, err := r.apply(ctx, p, gateway, own)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		counts[rep.state()] += len(p.Service.Spec.Ports)
		r.report(p, rep)
	}
	for front, left := range ownByFront { // fronts deleted or no longer labelled
		if err := r.deleteAll(ctx, "the front is gone or no longer labelled", left); err != nil {
			errs = append(errs, err)
		}
		delete(r.last, front)
	}
	r.mu.Lock()
	r.watched = watched
	r.mu.Unlock()
	setCapturedPorts(counts)
	return settleCapture(errs)
}

// settleCapture turns the errors of a pass into its result: a write that lost to a newer version, or that
// the cache had not seen yet, is tried again shortly without an error (the next pass reads the
// newer state); anything else is an error, retried with backoff.
func settleCapture(errs []error) (reconcile.Result, error) {
	stale := 0
	for _, err := range errs {
		if apierrors.IsConflict(err) || apierrors.IsAlreadyExists(err) {
			stale++
		}
	}
	switch {
	case len(errs) == 0:
		return reconcile.Result{}, nil
	case stale == len(errs):
		return reconcile.Result{RequeueAfter: 50 * time.Millisecond}, nil
	}
	return reconcile.Result{}, fmt.Errorf("capture: %w", errors.Join(errs...))
}

// lookup reads Services from the cache.
func (r *CaptureReconciler) lookup(ctx context.Context) capture.Lookup {
	return func(ns, name string) *corev1.Service {
		var s corev1.Service
		if err := r.Client.Get(ctx, types.NamespacedName{Namespace: ns, Name: name}, &s); err != nil {
			return nil
		}
		return &s
	}
}

// slicesOf lists a Service's EndpointSlices other than the manager's.
func (r *CaptureReconciler) slicesOf(ctx context.Context, svc types.NamespacedName) ([]*discoveryv1.EndpointSlice, error) {
	var list discoveryv1.EndpointSliceList
	if err := r.Client.List(ctx, &list, client.InNamespace(svc.Namespace),
		client.MatchingLabels{discoveryv1.LabelServiceName: svc.Name}); err != nil {
		return nil, fmt.Errorf("list EndpointSlices of %s: %w", svc, err)
	}
	var out []*discoveryv1.EndpointSlice
	for i := range list.Items {
		if !capture.IsManaged(&list.Items[i]) {
			out = append(out, &list.Items[i])
		}
	}
	return out, nil
}

// apply writes one front's slices: none for a refused front, else its plan's.
func (r *CaptureReconciler) apply(ctx context.Context, p *capture.Plan, gateway, own []*discoveryv1.EndpointSlice) (frontReport, error) {
	if !p.Captured() {
		return frontReport{refused: p.Refused}, r.deleteAll(ctx, "refused: "+p.Refused, own)
	}
	backend, err := r.slicesOf(ctx, types.NamespacedName{Namespace: p.Front.Namespace, Name: p.Backend.Name})
	if err != nil {
		return frontReport{}, err
	}
	desired, mode := capture.Desired(p, gateway, backend)
	if err := r.sync(ctx, desired, own); err != nil {
		return frontReport{}, err
	}
	if !p.Shared {
		if err := r.dropOrphans(ctx, p); err != nil {
			return frontReport{}, err
		}
	}
	return frontReport{mode: mode, ports: describePorts(p), shared: p.Shared}, nil
}

// dropOrphans deletes the EndpointSlice controller's slices of a front without a selector: the
// controller stops updating a Service's slices when its selector is removed but leaves them in place,
// so after a migration they would keep sending part of the traffic past the gateway, to pod addresses
// that go stale as pods are replaced.
func (r *CaptureReconciler) dropOrphans(ctx context.Context, p *capture.Plan) error {
	slices, err := r.slicesOf(ctx, p.Front)
	if err != nil {
		return err
	}
	var orphans []*discoveryv1.EndpointSlice
	for _, s := range slices {
		if s.Labels[discoveryv1.LabelManagedBy] == capture.EndpointSliceController {
			orphans = append(orphans, s)
		}
	}
	if len(orphans) > 0 && r.Recorder != nil {
		r.Recorder.Eventf(p.Service, nil, corev1.EventTypeNormal, ReasonCaptureProgrammed, "Capture",
			"the selector is gone: removed %d EndpointSlice(s) the EndpointSlice controller left behind, so all traffic passes the gateway", len(orphans))
	}
	return r.deleteAll(ctx, "left behind by the EndpointSlice controller when the front's selector was removed", orphans)
}

func (r *CaptureReconciler) deleteAll(ctx context.Context, why string, slices []*discoveryv1.EndpointSlice) error {
	for _, s := range slices {
		ctrl.LoggerFrom(ctx).Info("deleting a front's EndpointSlice", "namespace", s.Namespace, "name", s.Name, "why", why)
		if err := r.Client.Delete(ctx, s); err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("delete EndpointSlice %s/%s: %w", s.Namespace, s.Name, err)
		}
	}
	return nil
}

func ptrsOf(items []corev1.Service) []*corev1.Service {
	out := make([]*corev1.Service, len(items))
	for i := range items {
		out[i] = &items[i]
	}
	return out
}
