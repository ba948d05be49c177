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

package controlplane

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
)

const (
	kcmTestNamespace = "kcm-test"
	kcmTestPodIP     = "10.1.2.3"
)

// TestControllerManagerRunsEndpointSliceAndGC proves the real kube-controller-manager runs against
// the local control plane: the EndpointSlice controller publishes a Pod's address and follows its
// readiness, and the garbage collector removes what a deleted Service owned.
func TestControllerManagerRunsEndpointSliceAndGC(t *testing.T) {
	if !isExecutable(ControllerManagerBinary()) && os.Getenv("RESILIENCE_REQUIRE_KCM") == "" {
		t.Skipf("no %s: run `make setup-envtest` (set RESILIENCE_REQUIRE_KCM=1 to fail instead)", ControllerManagerBinary())
	}
	cp, err := Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cp.Stop() })
	kcm, err := cp.StartControllerManager()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("kube-controller-manager log (%s):\n%s", kcm.LogPath, kcm.Log())
		}
		if err := kcm.Stop(); err != nil {
			t.Errorf("stop kube-controller-manager: %v", err)
		}
	})
	cs := kubernetes.NewForConfigOrDie(cp.Config)
	ctx := t.Context()

	began := time.Now()
	svc, pod := createBackend(ctx, t, cs)
	setPodReady(ctx, t, cs, pod, true)
	waitEndpointReady(ctx, t, cs, svc.Name, true)
	t.Logf("EndpointSlice with the ready Pod address appeared %s after the Service was created", time.Since(began).Round(time.Millisecond))

	setPodReady(ctx, t, cs, pod, false)
	waitEndpointReady(ctx, t, cs, svc.Name, false)

	// A dependent of the Service: once the Service is deleted, only the garbage collector removes it.
	owned := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{
		Name: "owned-by-service", Namespace: kcmTestNamespace,
		OwnerReferences: []metav1.OwnerReference{{APIVersion: "v1", Kind: "Service", Name: svc.Name, UID: svc.UID}},
	}}
	if _, err := cs.CoreV1().ConfigMaps(kcmTestNamespace).Create(ctx, owned, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := cs.CoreV1().Services(kcmTestNamespace).Delete(ctx, svc.Name, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	poll(ctx, t, 30*time.Second, "the garbage collector to delete the ConfigMap owned by the deleted Service", func() (bool, error) {
		_, err := cs.CoreV1().ConfigMaps(kcmTestNamespace).Get(ctx, owned.Name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return true, nil
		}
		return false, err
	})
}

// createBackend creates a namespace, a Node (the EndpointSlice controller skips Pods whose Node it
// cannot find), a Service and a Pod it selects, bound to that Node since no scheduler runs.
func createBackend(ctx context.Context, t *testing.T, cs kubernetes.Interface) (*corev1.Service, *corev1.Pod) {
	t.Helper()
	labels := map[string]string{"app": "backend"}
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: kcmTestNamespace}}
	if _, err := cs.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "kcm-test-node"}}
	if _, err := cs.CoreV1().Nodes().Create(ctx, node, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	svc, err := cs.CoreV1().Services(kcmTestNamespace).Create(ctx, &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "backend"},
		Spec: corev1.ServiceSpec{Selector: labels, Ports: []corev1.ServicePort{{
			Name: "http", Port: 80, TargetPort: intstr.FromInt32(8080), Protocol: corev1.ProtocolTCP,
		}}},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	pod, err := cs.CoreV1().Pods(kcmTestNamespace).Create(ctx, &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "backend-0", Labels: labels},
		Spec: corev1.PodSpec{NodeName: node.Name, Containers: []corev1.Container{{
			Name: "app", Image: "example.invalid/backend:1", Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 8080}},
		}}},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return svc, pod
}

// setPodReady writes the status a kubelet would: Running, with an IP, Ready as given.
func setPodReady(ctx context.Context, t *testing.T, cs kubernetes.Interface, pod *corev1.Pod, ready bool) {
	t.Helper()
	cur, err := cs.CoreV1().Pods(pod.Namespace).Get(ctx, pod.Name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	status := corev1.ConditionFalse
	if ready {
		status = corev1.ConditionTrue
	}
	now := metav1.Now()
	cur.Status = corev1.PodStatus{
		Phase:     corev1.PodRunning,
		HostIP:    "10.0.0.10",
		PodIP:     kcmTestPodIP,
		PodIPs:    []corev1.PodIP{{IP: kcmTestPodIP}},
		StartTime: &now,
		Conditions: []corev1.PodCondition{
			{Type: corev1.PodReady, Status: status, LastTransitionTime: now},
			{Type: corev1.ContainersReady, Status: status, LastTransitionTime: now},
		},
	}
	if _, err := cs.CoreV1().Pods(pod.Namespace).UpdateStatus(ctx, cur, metav1.UpdateOptions{}); err != nil {
		t.Fatalf("set Pod ready=%v: %v", ready, err)
	}
}

// waitEndpointReady waits for the EndpointSlice controller's slice of the Service to hold the Pod's
// address with the given ready condition.
func waitEndpointReady(ctx context.Context, t *testing.T, cs kubernetes.Interface, service string, ready bool) {
	t.Helper()
	selector := discoveryv1.LabelServiceName + "=" + service + "," +
		discoveryv1.LabelManagedBy + "=endpointslice-controller.k8s.io"
	what := fmt.Sprintf("the EndpointSlice of %s to hold %s with ready=%t", service, kcmTestPodIP, ready)
	poll(ctx, t, 20*time.Second, what, func() (bool, error) {
		slices, err := cs.DiscoveryV1().EndpointSlices(kcmTestNamespace).List(ctx, metav1.ListOptions{LabelSelector: selector})
		if err != nil {
			return false, err
		}
		for _, s := range slices.Items {
			for _, ep := range s.Endpoints {
				if len(ep.Addresses) > 0 && ep.Addresses[0] == kcmTestPodIP &&
					ep.Conditions.Ready != nil && *ep.Conditions.Ready == ready {
					return true, nil
				}
			}
		}
		return false, nil
	})
}

func poll(ctx context.Context, t *testing.T, timeout time.Duration, what string, done func() (bool, error)) {
	t.Helper()
	err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, timeout, true, func(context.Context) (bool, error) {
		return done()
	})
	if err != nil {
		t.Fatalf("waiting %s for %s: %v", timeout, what, err)
	}
}
