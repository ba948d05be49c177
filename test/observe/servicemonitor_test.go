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

package observe

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os/exec"
	"slices"
	"strings"
	"testing"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	yamlutil "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"
)

// kustomize renders dir with the real kubectl and returns its documents.
func kustomize(t *testing.T, dir string) [][]byte {
	t.Helper()
	out, err := exec.Command("kubectl", "kustomize", dir).Output()
	if err != nil {
		t.Fatalf("kubectl kustomize %s: %v", dir, err)
	}
	r := yamlutil.NewYAMLReader(bufio.NewReader(bytes.NewReader(out)))
	var docs [][]byte
	for {
		doc, err := r.Read()
		if err == io.EOF {
			return docs
		}
		if err != nil {
			t.Fatal(err)
		}
		docs = append(docs, doc)
	}
}

// TestServiceMonitorScrapesBothMetricsServices: config/prometheus decodes strictly as the
// Prometheus Operator's ServiceMonitor and, in config/default's namespace, selects the manager's
// and the gateway's metrics Services by a port they have, and no Service where that port is missing
// would be its only target.
func TestServiceMonitorScrapesBothMetricsServices(t *testing.T) {
	docs := kustomize(t, "../../config/prometheus")
	if len(docs) != 1 {
		t.Fatalf("config/prometheus renders %d objects, want one ServiceMonitor", len(docs))
	}
	var sm monitoringv1.ServiceMonitor
	if err := yaml.UnmarshalStrict(docs[0], &sm); err != nil {
		t.Fatalf("config/prometheus is not a valid ServiceMonitor: %v", err)
	}
	if sm.APIVersion != "monitoring.coreos.com/v1" || sm.Kind != "ServiceMonitor" {
		t.Fatalf("config/prometheus renders %s %s", sm.APIVersion, sm.Kind)
	}
	sel, err := metav1.LabelSelectorAsSelector(&sm.Spec.Selector)
	if err != nil {
		t.Fatal(err)
	}
	var scraped []string
	for _, doc := range kustomize(t, "../../config/default") {
		var svc corev1.Service
		if err := yaml.Unmarshal(doc, &svc); err != nil || svc.Kind != "Service" {
			continue
		}
		if svc.Namespace != sm.Namespace || !sel.Matches(labels.Set(svc.Labels)) {
			continue
		}
		for _, ep := range sm.Spec.Endpoints {
			if slices.ContainsFunc(svc.Spec.Ports, func(p corev1.ServicePort) bool { return p.Name == ep.Port }) {
				scraped = append(scraped, fmt.Sprintf("%s:%s%s", svc.Name, ep.Port, ep.Path))
			}
		}
	}
	slices.Sort(scraped)
	want := []string{"resilience-gateway-metrics:metrics/metrics", "resilience-manager-metrics:metrics/metrics"}
	if !slices.Equal(scraped, want) {
		t.Errorf("the ServiceMonitor scrapes %v, want %v", scraped, want)
	}
	for _, ep := range sm.Spec.Endpoints {
		if ep.Scheme != nil && !strings.EqualFold(ep.Scheme.String(), "http") {
			t.Errorf("endpoint %s: scheme %s, but both binaries serve /metrics over plain HTTP", ep.Port, ep.Scheme.String())
		}
	}
}
