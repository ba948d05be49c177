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
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	logf "sigs.k8s.io/controller-runtime/pkg/log"

	"resilience.dev/operator/api/v1alpha1"
	"resilience.dev/operator/internal/capture"
	"resilience.dev/operator/internal/compile"
	"resilience.dev/operator/internal/snapshot"
	"resilience.dev/operator/internal/trace"
)

// +kubebuilder:rbac:groups=discovery.k8s.io,resources=endpointslices,verbs=get;list;watch

// Publisher receives each new snapshot (the distribution server).
type Publisher interface {
	// Publish sends a snapshot unless its content equals the current one (changed false). It keeps
	// the snapshot, which the builder never modifies.
	Publish(*snapshot.Encoded) (version uint64, changed bool, err error)
	Replicas() int
}

// SnapshotBuilder compiles a new snapshot whenever policies, Services or EndpointSlices change, and
// publishes it when its content differs from the last. It runs on every manager replica, leader or
// not, so any replica can serve gateways.
type SnapshotBuilder struct {
	Cache     cache.Cache
	Publisher Publisher
	// Debounce is the least time between the end of one build and the start of the next, so a burst
	// of changes (a kubectl apply of many objects) coalesces into few compiles. A change after a quiet
	// spell is built at once.
	Debounce time.Duration
	// CaptureRange is the range capture ports are allocated from (the capture reconciler's).
	CaptureRange capture.Range

	trigger  chan struct{}
	pending  atomic.Int64 // unix ns of the first trigger not yet built, 0 when none
	compiler compile.Compiler
}

// NeedLeaderElection reports false: every replica builds snapshots.
func (b *SnapshotBuilder) NeedLeaderElection() bool { return false }

// Trigger asks for a rebuild (e.g. when the number of gateway replicas changes, for Split limits).
func (b *SnapshotBuilder) Trigger() {
	b.pending.CompareAndSwap(0, time.Now().UnixNano())
	select {
	case b.trigger <- struct{}{}:
	default:
	}
}

// Init prepares the builder; call before Trigger can be used.
func (b *SnapshotBuilder) Init() *SnapshotBuilder {
	b.trigger = make(chan struct{}, 1)
	if b.Debounce == 0 {
		b.Debounce = 20 * time.Millisecond
	}
	return b
}

// Start watches the inputs and builds until ctx ends.
func (b *SnapshotBuilder) Start(ctx context.Context) error {
	log := logf.FromContext(ctx).WithName("snapshot")
	handler := toolscache.ResourceEventHandlerFuncs{
		AddFunc:    func(any) { b.Trigger() },
		UpdateFunc: func(any, any) { b.Trigger() },
		DeleteFunc: func(any) { b.Trigger() },
	}
	// A policy's status writes (every ack moves Programmed) change nothing the compiler reads: only a
	// new generation or a deletion does. Without this filter each status write would recompile.
	policyHandler := handler
	policyHandler.UpdateFunc = func(oldObj, newObj any) {
		o, ok1 := oldObj.(client.Object)
		n, ok2 := newObj.(client.Object)
		if ok1 && ok2 && o.GetGeneration() == n.GetGeneration() && o.GetDeletionTimestamp().Equal(n.GetDeletionTimestamp()) {
			return
		}
		b.Trigger()
		if ok2 && log.V(1).Enabled() { // one line per new generation: the trace of the control path
			log.V(1).Info("policy changed", "kind", fmt.Sprintf("%T", newObj), "namespace", n.GetNamespace(), "name", n.GetName(),
				"generation", n.GetGeneration())
		}
	}
	for _, obj := range []client.Object{&v1alpha1.RateLimit{}, &v1alpha1.CircuitBreaker{}, &v1alpha1.RetryPolicy{},
		&corev1.Service{}, &discoveryv1.EndpointSlice{}} {
		h := handler
		if _, isPolicy := obj.(v1alpha1.Policy); isPolicy {
			h = policyHandler
		}
		inf, err := b.Cache.GetInformer(ctx, obj)
		if err != nil {
			return fmt.Errorf("informer for %T: %w", obj, err)
		}
		if _, err := inf.AddEventHandler(h); err != nil {
			return fmt.Errorf("watch %T: %w", obj, err)
		}
	}
	if !b.Cache.WaitForCacheSync(ctx) {
		return nil
	}
	b.Trigger()
	var lastBuild time.Time
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-b.trigger:
		}
		if wait := b.Debounce - time.Since(lastBuild); wait > 0 { // a burst: let it settle
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(wait):
			}
		}
		select { // drain the trigger that arrived while we waited
		case <-b.trigger:
		default:
		}
		if err := b.build(ctx); err != nil {
			log.Error(err, "compile snapshot; gateways keep the last one")
		}
		lastBuild = time.Now()
	}
}

// build compiles a snapshot from the cache and publishes it. With V(1) logging it logs each
// published version with the time of each stage (bench/control's trace reads these keys).
func (b *SnapshotBuilder) build(ctx context.Context) error {
	log := logf.FromContext(ctx).V(1)
	span := trace.Begin(log.Enabled())
	defer span.End()
	triggered := span.Start()
	if p := b.pending.Swap(0); p != 0 {
		triggered = time.Unix(0, p)
	}
	in, err := b.input(ctx)
	if err != nil {
		return err
	}
	span.Stage("list")
	snap, err := b.compiler.Compile(in)
	if err != nil {
		return err
	}
	span.Stage("compile")
	span.CPU("compileCPU")
	version, changed, err := b.Publisher.Publish(snap)
	if err != nil || !changed {
		return err
	}
	span.Stage("publish")
	span.CPU("buildCPU")
	log.Info("published snapshot", append([]any{"version", version, "services", len(snap.Services), "policies", len(snap.Policies),
		"took", span.Took().String(), "triggered", triggered.UTC().Format(time.RFC3339Nano),
		"waited", span.Start().Sub(triggered).String()}, span.Fields()...)...)
	return nil
}

// input lists what the compiler reads from the cache.
func (b *SnapshotBuilder) input(ctx context.Context) (compile.Input, error) {
	var rls v1alpha1.RateLimitList
	var cbs v1alpha1.CircuitBreakerList
	var rps v1alpha1.RetryPolicyList
	var svcs corev1.ServiceList
	var slices discoveryv1.EndpointSliceList
	for _, l := range []client.ObjectList{&rls, &cbs, &rps, &svcs, &slices} {
		// The compiler only reads its input: no deep copy of every object of the cache.
		if err := b.Cache.List(ctx, l, client.UnsafeDisableDeepCopy); err != nil {
			return compile.Input{}, fmt.Errorf("list %T: %w", l, err)
		}
	}
	return compile.Input{RateLimits: rls.Items, CircuitBreakers: cbs.Items, RetryPolicies: rps.Items,
		Services: svcs.Items, EndpointSlices: slices.Items, GatewayReplicas: b.Publisher.Replicas(), CaptureRange: b.CaptureRange}, nil
}
