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
	"os"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap/zapcore"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	"sigs.k8s.io/yaml"

	"resilience.dev/operator/api/v1alpha1"
	"resilience.dev/operator/internal/controlplane"
)

// The suite runs the real reconcilers in a real manager against a real kube-apiserver and etcd.
var (
	k8s    client.Client
	scheme = runtime.NewScheme()
	nsSeq  atomic.Int64
)

func TestMain(m *testing.M) {
	os.Exit(runSuite(m))
}

func runSuite(m *testing.M) int {
	utilruntime.Must(clientgoscheme.AddToScheme(scheme))
	utilruntime.Must(v1alpha1.AddToScheme(scheme))
	ctrl.SetLogger(zap.New(zap.WriteTo(os.Stderr), zap.Level(zapLevel())))

	cp, err := controlplane.Start()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer func() { _ = cp.Stop() }()

	mgr, err := ctrl.NewManager(cp.Config, ctrl.Options{Scheme: scheme, Metrics: metricsserver.Options{BindAddress: "0"}})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if _, err := SetupAll(mgr, Options{}); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		if err := mgr.Start(ctx); err != nil {
			fmt.Fprintln(os.Stderr, "manager:", err)
		}
	}()
	// A direct client: the tests read what the API server holds, not a cache.
	k8s, err = client.New(cp.Config, client.Options{Scheme: scheme})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return m.Run()
}

func zapLevel() zapcore.Level {
	if os.Getenv("TEST_VERBOSE_LOG") != "" {
		return -1
	}
	return 2 // errors only
}

// newNamespace creates a namespace of the test's own, so tests can run in parallel.
func newNamespace(t *testing.T) string {
	t.Helper()
	name := fmt.Sprintf("t%d", nsSeq.Add(1))
	if err := k8s.Create(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}); err != nil {
		t.Fatalf("create namespace: %v", err)
	}
	return name
}

func service(ns, name string, ports ...string) *corev1.Service {
	svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}
	for i, p := range ports {
		svc.Spec.Ports = append(svc.Spec.Ports, corev1.ServicePort{
			Name: p, Port: int32(8080 + i), TargetPort: intstr.FromInt32(int32(8080 + i)),
		})
	}
	return svc
}

func create(t *testing.T, obj client.Object) {
	t.Helper()
	if err := k8s.Create(context.Background(), obj); err != nil {
		t.Fatalf("create %T %s: %v", obj, obj.GetName(), err)
	}
}

func remove(t *testing.T, obj client.Object) {
	t.Helper()
	if err := k8s.Delete(context.Background(), obj); err != nil {
		t.Fatalf("delete %T %s: %v", obj, obj.GetName(), err)
	}
}

func ref(name string, section ...string) v1alpha1.PolicyTargetReference {
	r := v1alpha1.PolicyTargetReference{Kind: "Service", Name: name}
	if len(section) > 0 {
		r.SectionName = &section[0]
	}
	return r
}

func rateLimit(ns, name string, refs ...v1alpha1.PolicyTargetReference) *v1alpha1.RateLimit {
	return &v1alpha1.RateLimit{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: v1alpha1.RateLimitSpec{
			TargetRefs: refs,
			Limits:     []v1alpha1.Limit{{Name: "all", Requests: 100, Period: "1s"}},
		},
	}
}

// waitFor polls obj until cond holds, failing the test after timeout with the last observation.
func waitFor(t *testing.T, obj client.Object, timeout time.Duration, cond func() (bool, string)) time.Duration {
	t.Helper()
	start := time.Now()
	var last string
	for time.Since(start) < timeout {
		if err := k8s.Get(context.Background(), client.ObjectKeyFromObject(obj), obj); err == nil {
			var ok bool
			if ok, last = cond(); ok {
				return time.Since(start)
			}
		} else {
			last = err.Error()
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("%s %s: condition not met within %s; last seen: %s", obj.GetObjectKind().GroupVersionKind().Kind, obj.GetName(), timeout, last)
	return 0
}

// accepted waits until the policy's Accepted condition has the status and reason, at its generation.
func accepted(t *testing.T, p v1alpha1.Policy, status metav1.ConditionStatus, reason string) *metav1.Condition {
	t.Helper()
	var got *metav1.Condition
	waitFor(t, p, settle, func() (bool, string) {
		st := p.GetPolicyStatus()
		got = meta.FindStatusCondition(st.Conditions, v1alpha1.ConditionAccepted)
		if got == nil {
			return false, "no Accepted condition"
		}
		return got.Status == status && got.Reason == reason && got.ObservedGeneration == p.GetGeneration() &&
				st.ObservedGeneration == p.GetGeneration(),
			fmt.Sprintf("%s/%s gen %d (object gen %d): %s", got.Status, got.Reason, got.ObservedGeneration, p.GetGeneration(), got.Message)
	})
	return got
}

// settle bounds how long a test waits for the reconcilers; the contract asks for a second, and the
// tests that measure reaction time assert that figure separately.
const settle = 10 * time.Second

func decodeRateLimit(t *testing.T, manifest string) *v1alpha1.RateLimit {
	t.Helper()
	obj := &v1alpha1.RateLimit{}
	if err := yaml.UnmarshalStrict([]byte(manifest), obj); err != nil {
		t.Fatalf("decode manifest: %v", err)
	}
	return obj
}
