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
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/util/validation/field"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/source"

	"resilience.dev/operator/api/v1alpha1"
	"resilience.dev/operator/internal/policy"
	"resilience.dev/operator/internal/snapshot"
)

// targetNameIndex indexes policies by the names of the Services they target, so that a Service event
// or a peer policy event finds the policies it affects without listing the namespace.
const targetNameIndex = "spec.targetRefs.name"

// kindOps is what the shared reconciler needs to know about one policy kind.
type kindOps[T v1alpha1.Policy] struct {
	kind     string
	newObj   func() T
	newList  func() client.ObjectList
	validate func(T) field.ErrorList
	// extraStatus, when set, fills kind-specific status fields (e.g. a breaker's state).
	extraStatus func(T)
}

// items returns the policies of a list as T, pointing into the list.
func (o kindOps[T]) items(list client.ObjectList) []T {
	objs, err := meta.ExtractList(list)
	if err != nil { // every list of ours has Items
		return nil
	}
	out := make([]T, 0, len(objs))
	for _, obj := range objs {
		if p, ok := obj.(T); ok {
			out = append(out, p)
		}
	}
	return out
}

// newShared builds the shared reconciler of one kind; a nil source means no gateway is connected.
func newShared[T v1alpha1.Policy](c client.Client, programmed ProgrammedSource, ops kindOps[T]) *policyReconciler[T] {
	if programmed == nil {
		programmed = NoGateways{}
	}
	return &policyReconciler[T]{Client: c, programmed: programmed, ops: ops}
}

// policyReconciler is the reconciler shared by the three kinds: validate, resolve targets, settle
// conflicts and write status. It never writes spec.
type policyReconciler[T v1alpha1.Policy] struct {
	client.Client
	ops        kindOps[T]
	programmed ProgrammedSource
}

// ProgrammedSource tells the reconcilers whether gateways run a policy at a generation. Until gateways
// exist, NoGateways answers for all of them.
type ProgrammedSource interface {
	Programmed(key snapshot.PolicyKey, generation int64) (status bool, reason, message string)
}

// NoGateways reports every policy as not programmed because no gateway replica is connected.
type NoGateways struct{}

// Programmed implements ProgrammedSource.
func (NoGateways) Programmed(snapshot.PolicyKey, int64) (bool, string, string) {
	return false, v1alpha1.ReasonNoGateways, "no gateway replica is connected to the manager"
}

func (r *policyReconciler[T]) reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	log := logf.FromContext(ctx)
	obj := r.ops.newObj()
	if err := r.Get(ctx, req.NamespacedName, obj); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if !obj.GetDeletionTimestamp().IsZero() {
		return ctrl.Result{}, nil
	}

	desired := obj.DeepCopyObject().(T)
	if err := r.computeStatus(ctx, desired); err != nil {
		return ctrl.Result{}, err
	}
	if r.ops.extraStatus != nil {
		r.ops.extraStatus(desired)
	}
	if equality.Semantic.DeepEqual(obj, desired) {
		return ctrl.Result{}, nil
	}
	// A merge patch of status only: spec is never written, and no conflict with other writers of spec.
	if err := r.Status().Patch(ctx, desired, client.MergeFrom(obj)); err != nil {
		if apierrors.IsNotFound(err) {
			return ctrl.Result{}, nil
		}
		return ctrl.Result{}, fmt.Errorf("write status of %s %s: %w", r.ops.kind, req.NamespacedName, err)
	}
	log.V(1).Info("status written", "accepted", acceptedSummary(desired.GetPolicyStatus()))
	return ctrl.Result{}, nil
}

// computeStatus fills the desired status of obj from the cluster as the cache shows it.
func (r *policyReconciler[T]) computeStatus(ctx context.Context, obj T) error {
	st := obj.GetPolicyStatus()
	gen := obj.GetGeneration()

	if errs := r.ops.validate(obj); len(errs) > 0 {
		st.Targets = nil
		setAccepted(st, gen, false, v1alpha1.ReasonInvalid, errs.ToAggregate().Error())
	} else {
		res, err := r.resolve(ctx, obj.GetNamespace())
		if err != nil {
			return err
		}
		refs := obj.GetTargetRefs()
		results := res.Refs[obj.GetName()]
		st.Targets = make([]v1alpha1.TargetStatus, len(refs))
		for i, ref := range refs {
			st.Targets[i] = v1alpha1.TargetStatus{
				TargetRef: ref, Accepted: results[i].InForce, Reason: results[i].Reason,
				Message: truncateTo(results[i].Message+r.captureNote(ctx, obj.GetNamespace(), results[i]), maxTargetMessage),
			}
		}
		setAcceptedFromTargets(st, gen)
	}

	key := snapshot.PolicyKey{Kind: r.ops.kind, Namespace: obj.GetNamespace(), Name: obj.GetName()}
	ok, reason, msg := r.programmed.Programmed(key, gen)
	setProgrammed(st, gen, ok, reason, msg)
	setReady(st, gen)
	st.ObservedGeneration = gen
	return nil
}

// resolve settles all policies of this kind in the namespace at once, so that every policy sees the
// same winners.
func (r *policyReconciler[T]) resolve(ctx context.Context, namespace string) (policy.Resolution, error) {
	list := r.ops.newList()
	if err := r.List(ctx, list, client.InNamespace(namespace)); err != nil {
		return policy.Resolution{}, fmt.Errorf("list %s in %s: %w", r.ops.kind, namespace, err)
	}
	var candidates []policy.Candidate
	names := map[string]bool{}
	for _, p := range r.ops.items(list) {
		// Invalid or deleted policies hold no ports: they must not block valid ones.
		if !p.GetDeletionTimestamp().IsZero() || len(r.ops.validate(p)) > 0 {
			continue
		}
		candidates = append(candidates, policy.Candidate{
			Name: p.GetName(), Created: p.GetCreationTimestamp().Time, Refs: p.GetTargetRefs(),
		})
		for _, ref := range p.GetTargetRefs() {
			names[ref.Name] = true
		}
	}
	services := make(map[string]*corev1.Service, len(names))
	for name := range names {
		svc := &corev1.Service{}
		err := r.Get(ctx, client.ObjectKey{Namespace: namespace, Name: name}, svc)
		switch {
		case err == nil:
			services[name] = svc
		case !apierrors.IsNotFound(err):
			return policy.Resolution{}, fmt.Errorf("get Service %s/%s: %w", namespace, name, err)
		}
	}
	res := policy.Resolve(r.ops.kind, candidates, services)
	return res, nil
}

// setupWithManager registers the reconciler: it owns its kind and watches Services and peer policies,
// because both change which policy governs a port.
func (r *policyReconciler[T]) setupWithManager(mgr ctrl.Manager, rec reconcile.Reconciler, requeue <-chan event.GenericEvent) error {
	idx := func(o client.Object) []string {
		p, ok := o.(T)
		if !ok {
			return nil
		}
		return targetNames(p)
	}
	if err := mgr.GetFieldIndexer().IndexField(context.Background(), r.ops.newObj(), targetNameIndex, idx); err != nil {
		return fmt.Errorf("index %s by target: %w", r.ops.kind, err)
	}
	b := ctrl.NewControllerManagedBy(mgr).
		For(r.ops.newObj(), builder.WithPredicates(predicate.GenerationChangedPredicate{})).
		Watches(&corev1.Service{}, handler.EnqueueRequestsFromMapFunc(r.policiesTargeting)).
		Watches(r.ops.newObj(), handler.EnqueueRequestsFromMapFunc(r.peersOf),
			builder.WithPredicates(peerChange{})).
		Named(strings.ToLower(r.ops.kind))
	if requeue != nil { // gateway acks and breaker state: state outside the API server
		b = b.WatchesRawSource(source.Channel(requeue, &handler.EnqueueRequestForObject{}))
	}
	return b.Complete(rec)
}

// policiesTargeting maps a Service to the policies of this kind that name it.
func (r *policyReconciler[T]) policiesTargeting(ctx context.Context, svc client.Object) []reconcile.Request {
	return r.byTarget(ctx, svc.GetNamespace(), []string{svc.GetName()})
}

// peersOf maps a policy to the other policies of its kind that target one of the same Services: its
// creation, change or deletion can change which of them wins.
func (r *policyReconciler[T]) peersOf(ctx context.Context, o client.Object) []reconcile.Request {
	p, ok := o.(T)
	if !ok {
		return nil
	}
	return r.byTarget(ctx, p.GetNamespace(), targetNames(p))
}

func (r *policyReconciler[T]) byTarget(ctx context.Context, namespace string, names []string) []reconcile.Request {
	seen := map[string]bool{}
	var reqs []reconcile.Request
	for _, name := range names {
		list := r.ops.newList()
		if err := r.List(ctx, list, client.InNamespace(namespace), client.MatchingFields{targetNameIndex: name}); err != nil {
			logf.FromContext(ctx).Error(err, "list policies by target", "kind", r.ops.kind, "service", name)
			continue
		}
		for _, p := range r.ops.items(list) {
			if !seen[p.GetName()] {
				seen[p.GetName()] = true
				reqs = append(reqs, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(p)})
			}
		}
	}
	return reqs
}

// peerChange passes the events of a peer policy that can change who wins: creation, deletion, and a
// spec change (generation). Status-only updates, including our own writes, are ignored.
type peerChange struct{ predicate.Funcs }

func (peerChange) Create(event.CreateEvent) bool   { return true }
func (peerChange) Delete(event.DeleteEvent) bool   { return true }
func (peerChange) Generic(event.GenericEvent) bool { return false }
func (peerChange) Update(e event.UpdateEvent) bool {
	return e.ObjectOld.GetGeneration() != e.ObjectNew.GetGeneration() ||
		!e.ObjectNew.GetDeletionTimestamp().IsZero()
}

// targetNames lists the names of the Services a policy targets.
func targetNames(p v1alpha1.Policy) []string {
	names := make([]string, 0, len(p.GetTargetRefs()))
	for _, ref := range p.GetTargetRefs() {
		names = append(names, ref.Name)
	}
	return names
}

func acceptedSummary(st *v1alpha1.PolicyStatus) string {
	for _, c := range st.Conditions {
		if c.Type == v1alpha1.ConditionAccepted {
			return string(c.Status) + "/" + c.Reason
		}
	}
	return ""
}
