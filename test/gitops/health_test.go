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

// Package gitops checks what GitOps tools see of a policy: the Argo CD health check in
// config/gitops (run by a Lua interpreter as Argo CD runs it), kstatus (what Flux's health checks
// compute) and kubectl wait, on policies whose status the real manager wrote to a real API server.
package gitops

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/cli-utils/pkg/kstatus/status"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"resilience.dev/operator/internal/controlplane"
	"resilience.dev/operator/internal/localstack"
)

var (
	harnessOnce sync.Once
	harness     *localstack.Harness
	harnessErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if harness != nil {
		if code != 0 {
			fmt.Fprintf(os.Stderr, "--- last 100 lines of the manager and gateway logs ---\n%s\n", harness.TailLog(100))
		}
		harness.Close()
	}
	os.Exit(code)
}

// stack builds the binaries and starts the control plane the first time a test needs them, so that
// the Lua tests run without.
func stack(t *testing.T) *localstack.Harness {
	t.Helper()
	harnessOnce.Do(func() { harness, harnessErr = localstack.NewHarness("resilience-gitops-") })
	if harnessErr != nil {
		t.Fatal(harnessErr)
	}
	return harness
}

func kubectl(t *testing.T, h *localstack.Harness, stdin string, args ...string) string {
	t.Helper()
	out, err := h.Stack.Kubectl(stdin, args...)
	if err != nil {
		t.Fatalf("kubectl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

const policies = `apiVersion: resilience.dev/v1alpha1
kind: RateLimit
metadata: {name: healthy, namespace: %[1]s}
spec:
  targetRefs: [{kind: Service, name: checkout}]
  limits: [{name: all, requests: 100, period: 1s}]
---
apiVersion: resilience.dev/v1alpha1
kind: RateLimit
metadata: {name: refused, namespace: %[1]s}
spec:
  targetRefs: [{kind: Service, name: missing}]
  limits: [{name: all, requests: 100, period: 1s}]
---
apiVersion: resilience.dev/v1alpha1
kind: CircuitBreaker
metadata: {name: healthy, namespace: %[1]s}
spec:
  targetRefs: [{kind: Service, name: checkout}]
  trip: {consecutiveFailures: 5}
---
apiVersion: resilience.dev/v1alpha1
kind: RetryPolicy
metadata: {name: healthy, namespace: %[1]s}
spec:
  targetRefs: [{kind: Service, name: checkout}]
`

// verdict is what each tool says of one object read back from the API server.
type verdict struct {
	argo, argoMsg string
	kstatus       status.Status
	kstatusMsg    string
	flux          string // the healthCheckExprs of config/gitops/flux.yaml
}

func judge(t *testing.T, h *localstack.Harness, argoCM map[string]string, kind, ns, name string) verdict {
	t.Helper()
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(schema.GroupVersionKind{Group: "resilience.dev", Version: "v1alpha1", Kind: kind})
	if err := h.Client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, u); err != nil {
		t.Fatal(err)
	}
	// Argo CD picks the script by the object's group and kind.
	script, ok := argoCM[healthKey(u.GroupVersionKind().Kind)]
	if !ok {
		t.Fatalf("argocd-cm has no health check for %s", u.GroupVersionKind().Kind)
	}
	var v verdict
	var err error
	if v.argo, v.argoMsg, err = argoHealth(script, u.Object); err != nil {
		t.Fatalf("health check of %s %s: %v", kind, name, err)
	}
	res, err := status.Compute(u)
	if err != nil {
		t.Fatalf("kstatus of %s %s: %v", kind, name, err)
	}
	v.kstatus, v.kstatusMsg = res.Status, res.Message
	v.flux = fluxHealth(t, u.Object)
	return v
}

// readyWithin runs kubectl wait --for=condition=Ready and says whether it succeeded.
func readyWithin(h *localstack.Harness, ns string, timeout time.Duration, objs ...string) (bool, string) {
	args := append([]string{"wait", "-n", ns, "--for=condition=Ready", "--timeout=" + timeout.String()}, objs...)
	out, err := h.Stack.Kubectl("", args...)
	return err == nil, out
}

// argoCM applies the documented patch of argocd-cm to a real ConfigMap that already holds a key of
// its own, and returns the data as Argo CD would read it.
func argoCM(t *testing.T, h *localstack.Harness) map[string]string {
	t.Helper()
	kubectl(t, h, "", "create", "namespace", "argocd")
	kubectl(t, h, "", "create", "configmap", "argocd-cm", "-n", "argocd", "--from-literal=url=https://argocd.example.com")
	root, err := controlplane.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	kubectl(t, h, "", "patch", "configmap", "argocd-cm", "-n", "argocd", "--type", "merge",
		"--patch-file", filepath.Join(root, "config", "gitops", "argocd-cm-health.yaml"))
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(schema.GroupVersionKind{Version: "v1", Kind: "ConfigMap"})
	if err := h.Client.Get(context.Background(), client.ObjectKey{Namespace: "argocd", Name: "argocd-cm"}, u); err != nil {
		t.Fatal(err)
	}
	data, _, _ := unstructured.NestedStringMap(u.Object, "data")
	if data["url"] != "https://argocd.example.com" {
		t.Errorf("the patch lost argocd-cm's own keys: %v", data)
	}
	return data
}

// TestHealthOfRealPolicies: the three objects Argo CD and Flux must tell apart, with their status
// written by the real manager (and gateway): accepted but not programmed (no gateway yet) is
// Progressing / InProgress; accepted and programmed is Healthy / Current and Ready for kubectl wait;
// refused is Degraded / not Current and never Ready.
func TestHealthOfRealPolicies(t *testing.T) {
	h := stack(t)
	cm := argoCM(t, h)
	if !h.Stack.Running("manager") {
		if err := h.Stack.StartManager(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	ns := "gitops"
	kubectl(t, h, "", "create", "namespace", ns)
	kubectl(t, h, localstack.LocalService(ns, "checkout", 9), "apply", "-f", "-")
	kubectl(t, h, fmt.Sprintf(policies, ns), "apply", "--server-side", "-f", "-")
	all := []string{"ratelimit/healthy", "circuitbreaker/healthy", "retrypolicy/healthy"}

	// 1. No gateway yet: accepted, not programmed.
	kubectl(t, h, "", "wait", "-n", ns, "--for=condition=Accepted", "--timeout=30s", all[0], all[1], all[2])
	kubectl(t, h, "", "wait", "-n", ns, "--for=condition=Accepted=False", "--timeout=30s", "ratelimit/refused")
	for _, kind := range policyKinds {
		v := judge(t, h, cm, kind, ns, "healthy")
		t.Logf("%s without gateways: Argo CD %s (%s), kstatus %s (%s), Flux %s", kind, v.argo, v.argoMsg, v.kstatus, v.kstatusMsg, v.flux)
		if v.argo != "Progressing" || !strings.Contains(v.argoMsg, "NoGateways") || v.kstatus != status.InProgressStatus || v.flux != "InProgress" {
			t.Errorf("%s accepted, no gateway: Argo CD %s %q, kstatus %s; want Progressing (NoGateways), InProgress", kind, v.argo, v.argoMsg, v.kstatus)
		}
	}
	if ok, out := readyWithin(h, ns, time.Second, all...); ok {
		t.Errorf("kubectl wait --for=condition=Ready succeeded with no gateway: %s", out)
	}

	// 2. A gateway connects: the same policies become Ready, Healthy and Current.
	if err := h.Stack.StartGateway(); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if ok, out := readyWithin(h, ns, 30*time.Second, all...); !ok {
		t.Fatalf("kubectl wait --for=condition=Ready: %s", out)
	}
	t.Logf("gateway started -> kubectl wait saw all three Ready in %s", time.Since(start).Round(time.Millisecond))
	for _, kind := range policyKinds {
		v := judge(t, h, cm, kind, ns, "healthy")
		t.Logf("%s programmed: Argo CD %s (%s), kstatus %s (%s), Flux %s", kind, v.argo, v.argoMsg, v.kstatus, v.kstatusMsg, v.flux)
		if v.argo != "Healthy" || v.kstatus != status.CurrentStatus || v.flux != "Current" {
			t.Errorf("%s accepted and programmed: Argo CD %s %q, kstatus %s; want Healthy, Current", kind, v.argo, v.argoMsg, v.kstatus)
		}
	}

	// 3. Refused (its Service does not exist), with the gateway connected all along.
	v := judge(t, h, cm, "RateLimit", ns, "refused")
	t.Logf("refused: Argo CD %s (%s), kstatus %s (%s)", v.argo, v.argoMsg, v.kstatus, v.kstatusMsg)
	if v.argo != "Degraded" || !strings.Contains(v.argoMsg, "TargetNotFound") || v.kstatus == status.CurrentStatus || v.flux != "Failed" {
		t.Errorf("refused: Argo CD %s %q, kstatus %s, Flux %s; want Degraded (TargetNotFound), not Current, Failed", v.argo, v.argoMsg, v.kstatus, v.flux)
	}
	if ok, out := readyWithin(h, ns, time.Second, "ratelimit/refused"); ok {
		t.Errorf("kubectl wait --for=condition=Ready succeeded for a refused policy: %s", out)
	}
	if out := kubectl(t, h, "", "get", "ratelimit/refused", "-n", ns, "-o", "wide"); !strings.Contains(out, "READY") {
		t.Errorf("kubectl get -o wide shows no READY column:\n%s", out)
	}
}
