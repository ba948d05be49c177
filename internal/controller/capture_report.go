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

	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/metrics"

	"resilience.dev/operator/internal/capture"
)

// Event reasons on front Services (contract, section 5).
const (
	ReasonCaptureProgrammed = "CaptureProgrammed"
	ReasonCaptureShared     = "CaptureShared"
	ReasonCaptureFailedOpen = "CaptureFailedOpen"
	ReasonCaptureRefused    = "CaptureRefused"
)

// sync makes the front's slices the desired ones: creates the missing, updates the changed, deletes
// the rest. A slice whose address type changed is replaced (the field is immutable).
func (r *CaptureReconciler) sync(ctx context.Context, desired []discoveryv1.EndpointSlice, own []*discoveryv1.EndpointSlice) error {
	have := map[string]*discoveryv1.EndpointSlice{}
	for _, s := range own {
		have[s.Name] = s
	}
	for i := range desired {
		d := &desired[i]
		cur := have[d.Name]
		delete(have, d.Name)
		switch {
		case cur == nil:
		case cur.AddressType != d.AddressType:
			if err := r.deleteAll(ctx, "its address type changes", []*discoveryv1.EndpointSlice{cur}); err != nil {
				return err
			}
		case sameSlice(cur, d):
			continue
		default:
			d.ResourceVersion = cur.ResourceVersion
			if err := r.Client.Update(ctx, d); err != nil {
				return fmt.Errorf("update EndpointSlice %s/%s: %w", d.Namespace, d.Name, err)
			}
			continue
		}
		if err := r.Client.Create(ctx, d); err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("create EndpointSlice %s/%s: %w", d.Namespace, d.Name, err)
		} else if err != nil { // the cache had not seen it yet: settle on the next pass
			return err
		}
	}
	rest := make([]*discoveryv1.EndpointSlice, 0, len(have))
	for _, s := range have {
		rest = append(rest, s)
	}
	return r.deleteAll(ctx, "no longer needed", rest)
}

func sameSlice(cur, d *discoveryv1.EndpointSlice) bool {
	return equality.Semantic.DeepEqual(cur.Labels, d.Labels) && equality.Semantic.DeepEqual(cur.Annotations, d.Annotations) &&
		equality.Semantic.DeepEqual(cur.OwnerReferences, d.OwnerReferences) && equality.Semantic.DeepEqual(cur.Ports, d.Ports) &&
		equality.Semantic.DeepEqual(cur.Endpoints, d.Endpoints)
}

// frontReport is what a user is told about one front.
type frontReport struct {
	mode    capture.Mode
	ports   string // "http (80) -> 20000, ..."
	shared  bool
	refused string
}

func (f frontReport) state() string {
	switch {
	case f.refused != "":
		return "refused"
	case f.mode == capture.ModeFailedOpen:
		return "failed_open"
	}
	return "captured"
}

// report records the Events of what changed for a front since the last pass.
func (r *CaptureReconciler) report(p *capture.Plan, now frontReport) {
	prev, seen := r.last[p.Front]
	r.last[p.Front] = now
	if r.Recorder == nil || seen && prev == now {
		return
	}
	svc := p.Service
	switch {
	case now.refused != "":
		if prev.refused != now.refused {
			r.Recorder.Eventf(svc, nil, corev1.EventTypeWarning, ReasonCaptureRefused, "Capture",
				"not captured: %s; the manager removed its EndpointSlices", now.refused)
		}
		return
	case now.mode == capture.ModeFailedOpen && (prev.mode != now.mode || prev.refused != ""):
		r.Recorder.Eventf(svc, nil, corev1.EventTypeWarning, ReasonCaptureFailedOpen, "Capture",
			"no gateway replica is ready: the front's traffic goes straight to the pods of %s, unprotected, until one is (capture-failure Open)", p.Backend.Name)
	case now.mode == capture.ModeGateway && (!seen || prev.mode != now.mode || prev.ports != now.ports || prev.refused != ""):
		r.Recorder.Eventf(svc, nil, corev1.EventTypeNormal, ReasonCaptureProgrammed, "Capture",
			"captured: traffic to %s passes the gateway (ports %s), which forwards it to the pods of %s", p.Front.Name, now.ports, p.Backend.Name)
	}
	if now.shared && (!seen || !prev.shared) {
		r.Recorder.Eventf(svc, nil, corev1.EventTypeWarning, ReasonCaptureShared, "Capture",
			"the front still has a selector: the EndpointSlice controller's slices send part of its traffic straight to the pods, unprotected; remove spec.selector to finish the migration")
	}
}

// describePorts renders "http (80) -> 20000, 8443 -> 20001".
func describePorts(p *capture.Plan) string {
	parts := make([]string, len(p.Ports))
	for i, pm := range p.Ports {
		name := fmt.Sprint(pm.Port)
		if pm.Name != "" {
			name = fmt.Sprintf("%s (%d)", pm.Name, pm.Port)
		}
		parts[i] = fmt.Sprintf("%s -> capture port %d", name, pm.Capture)
	}
	return strings.Join(parts, ", ")
}

var capturedPorts = prometheus.NewGaugeVec(prometheus.GaugeOpts{
	Name: "resilience_manager_captured_ports",
	Help: "Ports of front Services by capture state: captured (toward the gateways), failed_open (toward the pods, no gateway ready) or refused.",
}, []string{"state"})

func registerCaptureMetrics() {
	if err := metrics.Registry.Register(capturedPorts); err != nil {
		if _, dup := err.(prometheus.AlreadyRegisteredError); !dup {
			panic(err)
		}
	}
}

func setCapturedPorts(counts map[string]int) {
	for _, s := range []string{"captured", "failed_open", "refused"} {
		capturedPorts.WithLabelValues(s).Set(float64(counts[s]))
	}
}
