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

package capture

import (
	"context"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"resilience.dev/operator/internal/capture"
	"resilience.dev/operator/internal/localstack"
)

const podIP = "10.1.2.3" // never dialed: only slice contents are checked

// TestCaptureShared: during a migration the front still has its selector, so the real EndpointSlice
// controller writes its slice beside the manager's (CaptureShared says so); once the selector is
// removed the controller's slice goes and the manager's stays; deleting the front removes the rest.
func TestCaptureShared(t *testing.T) {
	if !kcmRunning {
		t.Skip("needs kube-controller-manager (make setup-envtest builds it; RESILIENCE_REQUIRE_KCM=1 makes this a failure)")
	}
	ctx := context.Background()
	ns := namespace(t, "shared")
	readyPod(t, ns, "web-0", map[string]string{"app": "web"})
	sel := map[string]string{"app": "web"}
	ports := []corev1.ServicePort{{Name: "http", Port: 80, TargetPort: intstr.FromInt32(8080), Protocol: corev1.ProtocolTCP}}
	for _, svc := range []*corev1.Service{
		{ObjectMeta: metav1.ObjectMeta{Name: "web-pods", Namespace: ns}, Spec: corev1.ServiceSpec{Selector: sel, Ports: ports}},
		{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: ns, Labels: map[string]string{capture.LabelCapture: capture.ValueGateway},
			Annotations: map[string]string{capture.AnnotationBackend: "web-pods"}}, Spec: corev1.ServiceSpec{Selector: sel, Ports: ports}},
	} {
		if err := k8s.Create(ctx, svc); err != nil {
			t.Fatal(err)
		}
	}
	managers := func() (controller, ours int) {
		var list discoveryv1.EndpointSliceList
		if err := k8s.List(ctx, &list, client.InNamespace(ns), client.MatchingLabels{discoveryv1.LabelServiceName: "web"}); err != nil {
			t.Fatal(err)
		}
		for _, s := range list.Items {
			switch {
			case s.Labels[discoveryv1.LabelManagedBy] == "endpointslice-controller.k8s.io" && len(s.Endpoints) == 1 && s.Endpoints[0].Addresses[0] == podIP:
				controller++
			case capture.IsManaged(&s) && len(s.Endpoints) == 1 && s.Endpoints[0].Addresses[0] == localstack.GatewayEndpointFQDN:
				ours++
			}
		}
		return controller, ours
	}
	until(t, "both managers' slices on the front", 30*time.Second, func() bool { c, o := managers(); return c == 1 && o == 1 })
	until(t, "a CaptureShared Event", 10*time.Second, func() bool { return hasEvent(t, ns, "web", "CaptureShared", "selector") })

	kubectl(t, "", "-n", ns, "patch", "service", "web", "--type=json", `-p=[{"op":"remove","path":"/spec/selector"}]`)
	until(t, "only the manager's slice once the selector is gone", 30*time.Second, func() bool { c, o := managers(); return c == 0 && o == 1 })

	kubectl(t, "", "-n", ns, "delete", "service", "web")
	until(t, "no slice once the front is deleted", 30*time.Second, func() bool { c, o := managers(); return c == 0 && o == 0 })
}

// readyPod creates a Pod on a Node (the EndpointSlice controller skips Pods of unknown Nodes) and
// writes the status a kubelet would: Running, Ready, with an IP.
func readyPod(t *testing.T, ns, name string, labels map[string]string) {
	t.Helper()
	ctx := context.Background()
	node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "capture-node"}}
	if err := k8s.Create(ctx, node); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Labels: labels},
		Spec: corev1.PodSpec{NodeName: node.Name, Containers: []corev1.Container{{Name: "app", Image: "example.invalid/web:1",
			Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 8080}}}}}}
	if err := k8s.Create(ctx, pod); err != nil {
		t.Fatal(err)
	}
	now := metav1.Now()
	pod.Status = corev1.PodStatus{Phase: corev1.PodRunning, HostIP: "10.0.0.10", PodIP: podIP, PodIPs: []corev1.PodIP{{IP: podIP}},
		StartTime: &now, Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue, LastTransitionTime: now},
			{Type: corev1.ContainersReady, Status: corev1.ConditionTrue, LastTransitionTime: now}}}
	if err := k8s.Status().Update(ctx, pod); err != nil {
		t.Fatal(err)
	}
}
