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

package deploy

import (
	"bytes"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"

	"helm.sh/helm/v4/pkg/chart/common"
	"helm.sh/helm/v4/pkg/chart/common/util"
	"helm.sh/helm/v4/pkg/chart/v2/loader"
	"helm.sh/helm/v4/pkg/engine"
)

// renderChart renders the chart with Helm's Go SDK as `helm template` would: its templates with the
// values, then its crds/ (which Helm installs first, as they are).
func renderChart(t *testing.T, namespace string, values map[string]any) ([]doc, []byte) {
	t.Helper()
	ch, err := loader.Load(filepath.Join(repoRoot(t), chartDir))
	if err != nil {
		t.Fatalf("load the chart: %v", err)
	}
	vals, err := util.ToRenderValues(ch, values, common.ReleaseOptions{Name: "resilience", Namespace: namespace, IsInstall: true},
		common.DefaultCapabilities)
	if err != nil {
		t.Fatalf("chart values: %v", err)
	}
	out, err := engine.Render(ch, vals)
	if err != nil {
		t.Fatalf("render the chart: %v", err)
	}
	names := make([]string, 0, len(out))
	for name := range out {
		names = append(names, name)
	}
	sort.Strings(names)
	var all bytes.Buffer
	for _, crd := range ch.CRDObjects() {
		all.WriteString("---\n")
		all.Write(crd.File.Data)
	}
	for _, name := range names {
		if strings.HasSuffix(name, ".yaml") && strings.TrimSpace(out[name]) != "" {
			all.WriteString("---\n" + out[name] + "\n")
		}
	}
	docs, err := decodeAll(all.Bytes())
	if err != nil {
		t.Fatalf("decode the chart's objects: %v", err)
	}
	return docs, all.Bytes()
}

// key names an object for the comparison.
func key(t *testing.T, d doc) string {
	m, err := meta.Accessor(d.obj)
	if err != nil {
		t.Fatal(err)
	}
	return d.gvk + " " + m.GetNamespace() + "/" + m.GetName()
}

// TestChartRendersConfigDefault: with its default values the chart renders config/default's objects,
// field for field. The intended differences: no Namespace object (Helm installs into the release's
// namespace, created with --create-namespace), and app.kubernetes.io/managed-by says Helm.
func TestChartRendersConfigDefault(t *testing.T) {
	want := map[string]doc{}
	for _, d := range render(t) {
		if d.gvk != "Namespace" {
			want[key(t, d)] = d
		}
	}
	got, _ := renderChart(t, systemNS, nil)
	seen := map[string]bool{}
	for _, d := range got {
		k := key(t, d)
		seen[k] = true
		w, ok := want[k]
		if !ok {
			t.Errorf("the chart renders %s, which config/default does not have", k)
			continue
		}
		normalizeManagedBy(t, d)
		if !reflect.DeepEqual(d.obj, w.obj) {
			t.Errorf("%s differs from config/default:\nchart:\n%s\nconfig/default:\n%s", k, d.raw, w.raw)
		}
	}
	for k := range want {
		if !seen[k] {
			t.Errorf("the chart does not render %s", k)
		}
	}
}

// normalizeManagedBy puts back the label value kustomize writes, the one intended difference inside
// objects.
func normalizeManagedBy(t *testing.T, d doc) {
	m, err := meta.Accessor(d.obj)
	if err != nil {
		t.Fatal(err)
	}
	if l := m.GetLabels(); l["app.kubernetes.io/managed-by"] == "Helm" {
		l["app.kubernetes.io/managed-by"] = "kustomize"
		m.SetLabels(l)
	}
}

// TestChartValues: a release in another namespace, with its own images, replicas, store, access log,
// extra flags, environment and autoscaling, renders what those values say and nothing else changes.
func TestChartValues(t *testing.T) {
	docs, _ := renderChart(t, "team-ops", map[string]any{
		"manager": map[string]any{"image": "registry.example/manager:v1", "replicas": 3},
		"gateway": map[string]any{"image": "registry.example/gateway:v1", "accessLog": true,
			"extraArgs":   []any{"--allow-pass-through"},
			"env":         []any{map[string]any{"name": "OTEL_EXPORTER_OTLP_ENDPOINT", "value": "http://collector:4318"}},
			"autoscaling": map[string]any{"enabled": true, "maxReplicas": 6}},
		"store":        map[string]any{"url": "redis://valkey.team-ops:6379/0", "passwordSecret": "valkey-auth", "budget": "10ms"},
		"captureRange": "31000-31999",
	})
	var gw, mgr *appsv1.Deployment
	hpa := false
	for _, d := range docs {
		if m, err := meta.Accessor(d.obj); err == nil && m.GetNamespace() != "" && m.GetNamespace() != "team-ops" {
			t.Errorf("%s is in namespace %s, want team-ops", key(t, d), m.GetNamespace())
		}
		switch o := d.obj.(type) {
		case *appsv1.Deployment:
			if o.Name == gatewayApp {
				gw = o
			} else {
				mgr = o
			}
		default:
			hpa = hpa || d.gvk == "HorizontalPodAutoscaler"
		}
	}
	if gw == nil || mgr == nil || !hpa {
		t.Fatalf("rendered gateway %v, manager %v, HorizontalPodAutoscaler %v; want all three", gw != nil, mgr != nil, hpa)
	}
	c := gw.Spec.Template.Spec.Containers[0]
	wantArgs := []string{"--listen=:8080", "--access-log", "--store-url=redis://valkey.team-ops:6379/0",
		"--store-password-file=/etc/resilience/store/password", "--store-budget=10ms", "--allow-pass-through", "--capture-range=31000-31999"}
	if !reflect.DeepEqual(c.Args, wantArgs) {
		t.Errorf("gateway args %q, want %q", c.Args, wantArgs)
	}
	if args := mgr.Spec.Template.Spec.Containers[0].Args; !slices.Contains(args, "--capture-range=31000-31999") {
		t.Errorf("manager args %q: want the chart's capture range", args)
	}
	if c.Image != "registry.example/gateway:v1" || mgr.Spec.Template.Spec.Containers[0].Image != "registry.example/manager:v1" {
		t.Errorf("images %s, %s", c.Image, mgr.Spec.Template.Spec.Containers[0].Image)
	}
	if gw.Spec.Replicas != nil || *mgr.Spec.Replicas != 3 {
		t.Errorf("gateway replicas %v (want unset: the autoscaler owns them), manager %d", gw.Spec.Replicas, *mgr.Spec.Replicas)
	}
	if c.Env[0].Name != "OTEL_EXPORTER_OTLP_ENDPOINT" || !hasSecretVolume(gw.Spec.Template.Spec.Volumes, "valkey-auth") {
		t.Errorf("gateway env %v, volumes %v: want the OTLP endpoint and the password Secret", c.Env, gw.Spec.Template.Spec.Volumes)
	}
}

func hasSecretVolume(vs []corev1.Volume, secret string) bool {
	for _, v := range vs {
		if v.Secret != nil && v.Secret.SecretName == secret {
			return true
		}
	}
	return false
}

// TestGatewayHPAComponent: the optional kustomize component adds the gateway's HorizontalPodAutoscaler
// in the overlay's namespace and leaves the replica count to it.
func TestGatewayHPAComponent(t *testing.T) {
	docs, _ := renderIn(t, "team-ops", "config/components/gateway-hpa")
	var hpa *autoscalingv2.HorizontalPodAutoscaler
	for _, d := range docs {
		switch o := d.obj.(type) {
		case *autoscalingv2.HorizontalPodAutoscaler:
			hpa = o
		case *appsv1.Deployment:
			if o.Name == gatewayApp && o.Spec.Replicas != nil {
				t.Errorf("the gateway Deployment keeps replicas %d: the autoscaler must own them", *o.Spec.Replicas)
			}
		}
	}
	if hpa == nil || hpa.Namespace != "team-ops" || hpa.Spec.ScaleTargetRef.Name != gatewayApp || hpa.Spec.MinReplicas == nil || *hpa.Spec.MinReplicas != 2 {
		t.Fatalf("HorizontalPodAutoscaler %+v, want one for the gateway in team-ops with at least 2 replicas", hpa)
	}
}
