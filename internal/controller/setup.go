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
	"sync"
	"time"

	"k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"

	"resilience.dev/operator/api/v1alpha1"
	"resilience.dev/operator/internal/policy"
	"resilience.dev/operator/internal/snapshot"
)

// BreakerSource reports a CircuitBreaker's live state across gateway replicas.
type BreakerSource interface {
	BreakerStatus(namespace, name string) (state v1alpha1.CircuitState, openReplicas, openEndpoints int)
}

// StoreSource reports whether the gateway replicas reach the store of Global rate limits.
type StoreSource interface {
	StoreStatus() (available bool, message string)
}

// Options wires the reconcilers to the gateways' live state. The zero value means no gateway exists.
type Options struct {
	Programmed ProgrammedSource
	Breakers   BreakerSource
	Store      StoreSource
	// Recorder, when set, records Events (StoreAvailable flips).
	Recorder events.EventRecorder
}

// Notifier requeues policies when state outside the API server changed (gateway acks, breaker
// transitions): only the named ones, or all of them when a gateway came or went. Pokes are coalesced:
// at most one sweep per interval.
type Notifier struct {
	client   client.Reader
	interval time.Duration
	poke     chan struct{}
	channels map[string]chan event.GenericEvent // by kind

	mu   sync.Mutex
	all  bool
	keys map[snapshot.PolicyKey]bool
}

// Poke asks for the policies with these keys to be requeued, or all of them when keys is nil; it
// never blocks.
func (n *Notifier) Poke(keys []snapshot.PolicyKey) {
	n.mu.Lock()
	if keys == nil {
		n.all = true
	}
	for _, k := range keys {
		n.keys[k] = true
	}
	n.mu.Unlock()
	select {
	case n.poke <- struct{}{}:
	default:
	}
}

// Start runs the sweeps until ctx ends (a manager Runnable, on every replica: cheap, and only the
// leader's reconcilers act on it).
func (n *Notifier) Start(ctx context.Context) error {
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-n.poke:
		}
		n.mu.Lock()
		all, keys := n.all, n.keys
		n.all, n.keys = false, map[snapshot.PolicyKey]bool{}
		n.mu.Unlock()
		if all {
			n.sweep(ctx)
		} else {
			n.requeue(ctx, keys)
		}
		select { // coalesce a burst of pokes (many acks at once) into the next sweep
		case <-ctx.Done():
			return nil
		case <-time.After(n.interval):
		}
	}
}

// requeue enqueues the named policies without listing anything.
func (n *Notifier) requeue(ctx context.Context, keys map[snapshot.PolicyKey]bool) {
	for key := range keys {
		kind, ok := policy.KindNamed(key.Kind)
		if !ok {
			continue
		}
		obj := kind.NewObject()
		obj.SetNamespace(key.Namespace)
		obj.SetName(key.Name)
		select {
		case n.channels[kind.Name] <- event.GenericEvent{Object: obj}:
		case <-ctx.Done():
			return
		}
	}
}

func (n *Notifier) sweep(ctx context.Context) {
	for _, kind := range policy.Kinds {
		list := kind.NewList()
		if err := n.client.List(ctx, list); err != nil {
			ctrl.LoggerFrom(ctx).Error(err, "list policies to requeue", "kind", kind.Name)
			continue
		}
		for _, obj := range kind.Items(list) {
			select {
			case n.channels[kind.Name] <- event.GenericEvent{Object: obj}:
			case <-ctx.Done():
				return
			}
		}
	}
}

// SetupAll registers the reconcilers of all three kinds with the manager, and returns the notifier the
// distribution server pokes when gateways change what they run.
func SetupAll(mgr ctrl.Manager, opts Options) (*Notifier, error) {
	n := &Notifier{client: mgr.GetClient(), interval: 100 * time.Millisecond, poke: make(chan struct{}, 1),
		keys: map[snapshot.PolicyKey]bool{}, channels: map[string]chan event.GenericEvent{}}
	for _, kind := range policy.Kinds {
		n.channels[kind.Name] = make(chan event.GenericEvent, 1024)
	}
	c := mgr.GetClient()
	if err := (&RateLimitReconciler{Client: c, Programmed: opts.Programmed, Store: opts.Store, Recorder: opts.Recorder,
		requeue: n.channels[v1alpha1.KindRateLimit]}).SetupWithManager(mgr); err != nil {
		return nil, fmt.Errorf("set up RateLimit reconciler: %w", err)
	}
	if err := (&CircuitBreakerReconciler{Client: c, Programmed: opts.Programmed, Breakers: opts.Breakers,
		requeue: n.channels[v1alpha1.KindCircuitBreaker]}).SetupWithManager(mgr); err != nil {
		return nil, fmt.Errorf("set up CircuitBreaker reconciler: %w", err)
	}
	if err := (&RetryPolicyReconciler{Client: c, Programmed: opts.Programmed,
		requeue: n.channels[v1alpha1.KindRetryPolicy]}).SetupWithManager(mgr); err != nil {
		return nil, fmt.Errorf("set up RetryPolicy reconciler: %w", err)
	}
	if err := mgr.Add(n); err != nil {
		return nil, fmt.Errorf("add notifier: %w", err)
	}
	return n, nil
}
