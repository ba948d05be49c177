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

	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/tools/events"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"resilience.dev/operator/api/v1alpha1"
	"resilience.dev/operator/internal/distribution"
)

// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch

// BreakerEventRecorder records an Event on a CircuitBreaker for each transition of one of its
// breakers that a gateway replica reports, so "kubectl describe" shows when and where it tripped.
type BreakerEventRecorder struct {
	Client   client.Reader
	Recorder events.EventRecorder
}

// breakerEventReasons maps the state a breaker entered to the reason of its Event.
var breakerEventReasons = map[v1alpha1.CircuitState]string{
	v1alpha1.CircuitOpen:     v1alpha1.EventCircuitOpened,
	v1alpha1.CircuitHalfOpen: v1alpha1.EventCircuitHalfOpen,
	v1alpha1.CircuitClosed:   v1alpha1.EventCircuitClosed,
}

// Record records the Event of one transition on replica. A transition to an unknown state, or of a
// CircuitBreaker that is gone, records nothing.
func (r *BreakerEventRecorder) Record(ctx context.Context, replica string, ch distribution.BreakerChange) {
	to := v1alpha1.CircuitState(ch.To)
	reason, ok := breakerEventReasons[to]
	if !ok {
		return
	}
	cb := &v1alpha1.CircuitBreaker{}
	if err := r.Client.Get(ctx, client.ObjectKey{Namespace: ch.Namespace, Name: ch.Name}, cb); err != nil {
		return
	}
	where := fmt.Sprintf("replica %s, Service %s port %d", replica, ch.Service, ch.Port)
	if ch.Endpoint != "" {
		where += ", endpoint " + ch.Endpoint
	}
	kind := corev1.EventTypeNormal
	if to == v1alpha1.CircuitOpen {
		kind = corev1.EventTypeWarning
	}
	r.Recorder.Eventf(cb, nil, kind, reason, "Transition", "%s -> %s on %s: %s", ch.From, ch.To, where, ch.Cause)
}
