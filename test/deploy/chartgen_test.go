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
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

var updateChart = flag.Bool("update-chart", false, "regenerate charts/resilience-operator from config/default")

// chartDir is the Helm chart, relative to the repository root.
const chartDir = "charts/resilience-operator"

// generatedHeader starts every generated file of the chart.
const generatedHeader = "# Generated from config/default by test/deploy (go test ./test/deploy -run TestChartIsGenerated -update-chart); do not edit.\n"

// TestChartIsGenerated: the chart's templates and CRDs are config/default's objects, with the
// namespace, images, replicas, resources and the gateway's extra flags, environment and store as
// values. Changing config/ without regenerating the chart fails here.
func TestChartIsGenerated(t *testing.T) {
	files, err := chartFiles(render(t))
	if err != nil {
		t.Fatal(err)
	}
	root := filepath.Join(repoRoot(t), chartDir)
	if *updateChart {
		writeChartFiles(t, root, files)
		return
	}
	var stale []string
	for name, want := range files {
		got, err := os.ReadFile(filepath.Join(root, name))
		if err != nil || !bytes.Equal(got, []byte(want)) {
			stale = append(stale, name)
		}
	}
	for _, dir := range []string{"templates", "crds"} {
		entries, _ := os.ReadDir(filepath.Join(root, dir))
		for _, e := range entries {
			name := dir + "/" + e.Name()
			data, _ := os.ReadFile(filepath.Join(root, name))
			if _, ok := files[name]; !ok && bytes.HasPrefix(data, []byte(generatedHeader)) {
				stale = append(stale, name+" (no longer generated)")
			}
		}
	}
	sort.Strings(stale)
	if len(stale) > 0 {
		t.Fatalf("the chart is not what config/default generates (run: go test ./test/deploy -run TestChartIsGenerated -update-chart):\n  %s",
			strings.Join(stale, "\n  "))
	}
}

func writeChartFiles(t *testing.T, root string, files map[string]string) {
	t.Helper()
	for _, dir := range []string{"templates", "crds"} {
		entries, _ := os.ReadDir(filepath.Join(root, dir))
		for _, e := range entries {
			p := filepath.Join(root, dir, e.Name())
			if data, _ := os.ReadFile(p); bytes.HasPrefix(data, []byte(generatedHeader)) {
				_ = os.Remove(p)
			}
		}
	}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(root, name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// chartFiles generates the chart's files from config/default's objects: crds/<name>.yaml as rendered,
// templates/<kind>-<name>.yaml with values in place of what a release may change. The Namespace is
// left out: Helm installs into the release's namespace (--create-namespace).
func chartFiles(docs []doc) (map[string]string, error) {
	files := map[string]string{}
	for _, d := range docs {
		var obj map[string]any
		if err := yaml.Unmarshal(d.raw, &obj); err != nil {
			return nil, err
		}
		meta, _ := obj["metadata"].(map[string]any)
		name, _ := meta["name"].(string)
		switch d.gvk {
		case "Namespace":
			continue
		case "CustomResourceDefinition":
			files["crds/"+name+".yaml"] = generatedHeader + string(d.raw)
			continue
		}
		templated(obj, d.gvk)
		out, err := yaml.Marshal(obj)
		if err != nil {
			return nil, err
		}
		text, err := substitute(string(out))
		if err != nil {
			return nil, fmt.Errorf("%s %s: %w", d.gvk, name, err)
		}
		files["templates/"+strings.ToLower(d.gvk)+"-"+name+".yaml"] = generatedHeader + text
	}
	return files, nil
}

// templated puts placeholders where the chart's values go; substitute turns them into templates.
func templated(obj map[string]any, kind string) {
	meta := obj["metadata"].(map[string]any)
	if _, ok := meta["namespace"]; ok {
		meta["namespace"] = "__NAMESPACE__"
	}
	if labels, ok := meta["labels"].(map[string]any); ok {
		if _, ok := labels["app.kubernetes.io/managed-by"]; ok {
			labels["app.kubernetes.io/managed-by"] = "__MANAGED_BY__"
		}
	}
	if subjects, ok := obj["subjects"].([]any); ok {
		for _, s := range subjects {
			if sm := s.(map[string]any); sm["namespace"] != nil {
				sm["namespace"] = "__NAMESPACE__"
			}
		}
	}
	if kind != "Deployment" {
		return
	}
	component := meta["labels"].(map[string]any)["app.kubernetes.io/component"].(string)
	spec := obj["spec"].(map[string]any)
	spec["replicas"] = "__REPLICAS_" + component + "__"
	c := spec["template"].(map[string]any)["spec"].(map[string]any)["containers"].([]any)[0].(map[string]any)
	c["image"] = "__IMAGE_" + component + "__"
	c["resources"] = "__RESOURCES_" + component + "__"
}

var (
	placeholderLine = regexp.MustCompile(`(?m)^( *)(- )?([a-zA-Z]+): __(REPLICAS|IMAGE|RESOURCES)_([a-z]+)__$`)
	indentOf        = func(line string) string { return line[:len(line)-len(strings.TrimLeft(line, " "))] }
)

// substitute turns the placeholders into Helm templates, and adds the gateway's optional flags,
// environment and store volume after the lines config/default names for them.
func substitute(text string) (string, error) {
	text = strings.ReplaceAll(text, "__NAMESPACE__", "{{ .Release.Namespace }}")
	text = strings.ReplaceAll(text, "__MANAGED_BY__", "{{ .Release.Service }}")
	text = strings.ReplaceAll(text, "- --capture-range=20000-29999", `- {{ printf "--capture-range=%s" .Values.captureRange | quote }}`)
	text = placeholderLine.ReplaceAllStringFunc(text, func(line string) string {
		m := placeholderLine.FindStringSubmatch(line)
		indent, dash, key, what, comp := m[1], m[2], m[3], m[4], m[5]
		switch what {
		case "REPLICAS":
			if comp == "gateway" { // the HorizontalPodAutoscaler owns the count when it is on
				return "{{- if not .Values.gateway.autoscaling.enabled }}\n" + indent + key + ": {{ .Values.gateway.replicas }}\n{{- end }}"
			}
			return indent + dash + key + ": {{ .Values." + comp + ".replicas }}"
		case "IMAGE":
			return indent + dash + key + ": {{ .Values." + comp + ".image }}"
		}
		inner := len(indent) + len(dash) + 2
		return indent + dash + key + ":\n" + fmt.Sprintf("{{- toYaml .Values.%s.resources | nindent %d }}", comp, inner)
	})
	if !strings.Contains(text, "name: resilience-gateway\n") || !strings.Contains(text, "kind: Deployment") {
		return text, nil
	}
	return gatewayAdditions(text)
}

// gatewayAdditions adds, to the gateway's Deployment, the flags, environment and volume of the
// chart's gateway and store values (none by default).
func gatewayAdditions(text string) (string, error) {
	lines := strings.Split(text, "\n")
	var out []string
	found := map[string]bool{}
	for _, line := range lines {
		out = append(out, line)
		trimmed := strings.TrimSpace(line)
		in := indentOf(line)
		switch trimmed {
		case "- --listen=:8080":
			found[trimmed] = true
			out = append(out,
				"{{- if .Values.gateway.accessLog }}", in+"- --access-log", "{{- end }}",
				"{{- with .Values.store }}", "{{- if .url }}", in+`- {{ printf "--store-url=%s" .url | quote }}`,
				"{{- if .passwordSecret }}", in+"- --store-password-file=/etc/resilience/store/password", "{{- end }}",
				"{{- if .budget }}", in+`- {{ printf "--store-budget=%s" .budget | quote }}`, "{{- end }}",
				"{{- end }}", "{{- end }}",
				"{{- range .Values.gateway.extraArgs }}", in+"- {{ . | quote }}", "{{- end }}")
		case "env:":
			found[trimmed] = true
			out = append(out, "{{- with .Values.gateway.env }}", "{{- toYaml . | nindent "+fmt.Sprint(len(in))+" }}", "{{- end }}")
		case "volumeMounts:":
			found[trimmed] = true
			out = append(out, "{{- if and .Values.store.url .Values.store.passwordSecret }}",
				in+"- mountPath: /etc/resilience/store", in+"  name: store-password", in+"  readOnly: true", "{{- end }}")
		case "volumes:":
			found[trimmed] = true
			out = append(out, "{{- if and .Values.store.url .Values.store.passwordSecret }}",
				in+"- name: store-password", in+"  secret:", in+"    secretName: {{ .Values.store.passwordSecret }}", "{{- end }}")
		}
	}
	for _, want := range []string{"- --listen=:8080", "env:", "volumeMounts:", "volumes:"} {
		if !found[want] {
			return "", fmt.Errorf("the gateway Deployment has no %q line to add the chart's values after", want)
		}
	}
	return strings.Join(out, "\n"), nil
}
