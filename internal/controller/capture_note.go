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
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"resilience.dev/operator/internal/capture"
	"resilience.dev/operator/internal/policy"
)

// captureNote says, for a target in force that is a front Service, whether its callers' traffic
// passes the gateway (contract, section 5: the capture state of each target in status.targets).
func (r *policyReconciler[T]) captureNote(ctx context.Context, ns string, res policy.RefResult) string {
	if !res.InForce || len(res.Ports) == 0 {
		return ""
	}
	name := res.Ports[0].Service
	var svc corev1.Service
	if err := r.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, &svc); err != nil || !capture.IsFront(&svc) {
		return ""
	}
	var list discoveryv1.EndpointSliceList
	if err := r.List(ctx, &list, client.InNamespace(ns), client.MatchingLabels{capture.LabelFront: name,
		discoveryv1.LabelManagedBy: capture.ManagedBy}); err != nil || len(list.Items) == 0 {
		return "; Service " + name + " is labelled for capture but not captured (see its CaptureRefused Events): only requests sent to the gateway are protected"
	}
	ports, err := capture.DecodePorts(list.Items[0].Annotations[capture.AnnotationPorts])
	if err != nil {
		return ""
	}
	var parts []string
	failedOpen := false
	for _, s := range list.Items {
		for _, p := range s.Ports {
			if p.Name != nil && p.Port != nil && ports[*p.Name] != *p.Port {
				failedOpen = true
			}
		}
	}
	if failedOpen {
		return "; capture failed open: no gateway replica is ready, so callers' traffic goes to the pods unprotected"
	}
	for port, c := range ports {
		if port == "" {
			port = "(unnamed)"
		}
		parts = append(parts, fmt.Sprintf("%s -> %d", port, c))
	}
	sort.Strings(parts)
	return "; captured: callers' traffic to Service " + name + " passes the gateway (capture ports " + strings.Join(parts, ", ") + ")"
}
