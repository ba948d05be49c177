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
	"os"
	"sync"
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
	code := m.Run()
	if suiteStop != nil {
		suiteStop()
	}
	os.Exit(code)
}

var (
	suiteOnce sync.Once
	suiteErr  error
	suiteStop func()
)

// suite starts the API server and the manager the first time a test needs them, so the package's
// pure unit tests (condition setters, the breaker Event recorder) run without envtest.
func suite(t *testing.T) {
	t.Helper()
	suiteOnce.Do(func() { suiteStop, suiteErr = startSuite() })
	if suiteErr != nil {
		t.Fatal(suiteErr)
	}
}

func startSuite() (stop func(), err error) {
	utilruntime.Must(clientgoscheme.AddToScheme(scheme))
	utilruntime.Must(v1alpha1.AddToScheme(scheme))
	ctrl.SetLogger(zap.New(zap.WriteTo(os.Stderr), zap.Level(zapLevel())))

	cp, err := controlplane.Start()
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	stop = func() { cancel(); _ = cp.Stop() }
	mgr, err := ctrl.NewManager(cp.Config, ctrl.Options{Scheme: scheme, Metrics: metricsserver.Options{BindAddress: "0"}})
	if err == nil {
		_, err = SetupAll(mgr, Options{})
	}
	if err != nil {
		stop()
		return nil, err
	}
	go func() {
		if err := mgr.Start(ctx); err != nil {
			fmt.Fprintln(os.Stderr, "manager:", err)
		}
	}()
	// A direct client: the tests read what the API server holds, not a cache.
	if k8s, err = client.New(cp.Config, client.Options{Scheme: scheme}); err != nil {
		stop()
		return nil, err
	}
	return stop, nil
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
	suite(t)
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

// eventually polls check until it returns nil, and fails the test after timeout with check's last
// error, which should say what was expected and what was seen. It returns how long it waited.
func eventually(t *testing.T, timeout time.Duration, check func() error) time.Duration {
	t.Helper()
	start := time.Now()
	for {
		err := check()
		if err == nil {
			return time.Since(start)
		}
		if time.Since(start) > timeout {
			t.Fatalf("not within %s: %v", timeout, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitFor reads obj from the API server until check, looking at it, returns nil.
func waitFor(t *testing.T, obj client.Object, timeout time.Duration, check func() error) time.Duration {
	t.Helper()
	return eventually(t, timeout, func() error {
		if err := k8s.Get(context.Background(), client.ObjectKeyFromObject(obj), obj); err != nil {
			return err
		}
		if err := check(); err != nil {
			return fmt.Errorf("%T %s: %w", obj, obj.GetName(), err)
		}
		return nil
	})
}

// createdLater waits until an object created now is younger than obj: creationTimestamp has a
// resolution of one second.
func createdLater(t *testing.T, obj client.Object) {
	t.Helper()
	eventually(t, 2*time.Second, func() error {
		if age := time.Since(obj.GetCreationTimestamp().Time); age < time.Second {
			return fmt.Errorf("%s was created %s ago, in this second", obj.GetName(), age)
		}
		return nil
	})
}

// accepted waits until the policy's Accepted condition has the status and reason, at its generation.
func accepted(t *testing.T, p v1alpha1.Policy, status metav1.ConditionStatus, reason string) *metav1.Condition {
	t.Helper()
	var got *metav1.Condition
	waitFor(t, p, settle, func() error {
		st := p.GetPolicyStatus()
		got = meta.FindStatusCondition(st.Conditions, v1alpha1.ConditionAccepted)
		switch {
		case got == nil:
			return errors.New("no Accepted condition")
		case got.Status != status || got.Reason != reason || got.ObservedGeneration != p.GetGeneration() ||
			st.ObservedGeneration != p.GetGeneration():
			return fmt.Errorf("Accepted %s/%s at generation %d (status at %d, object at %d), want %s/%s at %d: %s", got.Status, got.Reason,
				got.ObservedGeneration, st.ObservedGeneration, p.GetGeneration(), status, reason, p.GetGeneration(), got.Message)
		}
		return nil
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
