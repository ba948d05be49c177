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

package gitops

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	lua "github.com/yuin/gopher-lua"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"

	"resilience.dev/operator/internal/controlplane"
)

// argoHealth runs an Argo CD health script on obj the way Argo CD's controller does
// (util/lua/lua.go): a gopher-lua state with only the package, base and table libraries open (no
// string library unless useOpenLibs), the object converted to Lua tables in the global obj, a
// one-second limit, and the returned table's status and message read back. Argo CD turns a status
// outside its six health codes into Unknown; so does this.
func argoHealth(script string, obj map[string]any) (status, message string, err error) {
	l := lua.NewState(lua.Options{SkipOpenLibs: true})
	defer l.Close()
	for _, lib := range []struct {
		name string
		open lua.LGFunction
	}{{lua.LoadLibName, lua.OpenPackage}, {lua.BaseLibName, lua.OpenBase}, {lua.TabLibName, lua.OpenTable}} {
		if err := l.CallByParam(lua.P{Fn: l.NewFunction(lib.open), Protect: true}, lua.LString(lib.name)); err != nil {
			return "", "", err
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	l.SetContext(ctx)
	l.SetGlobal("obj", toLua(l, obj))
	if err := l.DoString(script); err != nil {
		return "", "", err
	}
	ret, ok := l.Get(-1).(*lua.LTable)
	if !ok {
		return "", "", fmt.Errorf("the script returned %s, not a table", l.Get(-1).Type())
	}
	status, message = lua.LVAsString(ret.RawGetString("status")), lua.LVAsString(ret.RawGetString("message"))
	switch status {
	case "Healthy", "Progressing", "Degraded", "Suspended", "Missing", "Unknown":
		return status, message, nil
	}
	return "Unknown", "Lua returned an invalid health status", nil
}

// toLua converts a decoded object as Argo CD's decodeValue does: maps and lists become tables
// (lists 1-based), numbers of every Go type become Lua numbers.
func toLua(l *lua.LState, v any) lua.LValue {
	switch v := v.(type) {
	case bool:
		return lua.LBool(v)
	case string:
		return lua.LString(v)
	case float64:
		return lua.LNumber(v)
	case int64:
		return lua.LNumber(v)
	case int:
		return lua.LNumber(v)
	case int32:
		return lua.LNumber(v)
	case []any:
		t := l.CreateTable(len(v), 0)
		for _, item := range v {
			t.Append(toLua(l, item))
		}
		return t
	case map[string]any:
		t := l.CreateTable(0, len(v))
		for k, item := range v {
			t.RawSetH(lua.LString(k), toLua(l, item))
		}
		return t
	}
	return lua.LNil
}

func repoFile(t *testing.T, parts ...string) []byte {
	t.Helper()
	root, err := controlplane.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join(append([]string{root}, parts...)...))
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func healthScript(t *testing.T) string {
	return string(repoFile(t, "config", "gitops", "argocd-health.lua"))
}

// healthKey is the argocd-cm key under which Argo CD looks for the health check of a kind.
func healthKey(kind string) string { return "resource.customizations.health.resilience.dev_" + kind }

var policyKinds = []string{"RateLimit", "CircuitBreaker", "RetryPolicy"}

// TestArgoCDSnippetCarriesTheScript: argocd-cm-health.yaml holds argocd-health.lua, unchanged, under
// the key of each policy kind and nothing else.
func TestArgoCDSnippetCarriesTheScript(t *testing.T) {
	var cm struct {
		APIVersion string `json:"apiVersion"`
		Kind       string `json:"kind"`
		Metadata   struct{ Name, Namespace string }
		Data       map[string]string `json:"data"`
	}
	if err := yaml.UnmarshalStrict(repoFile(t, "config", "gitops", "argocd-cm-health.yaml"), &cm); err != nil {
		t.Fatal(err)
	}
	if cm.Kind != "ConfigMap" || cm.Metadata.Name != "argocd-cm" || cm.Metadata.Namespace != "argocd" {
		t.Errorf("a %s %s/%s, want the ConfigMap argocd/argocd-cm", cm.Kind, cm.Metadata.Namespace, cm.Metadata.Name)
	}
	script := healthScript(t)
	for _, kind := range policyKinds {
		if got, ok := cm.Data[healthKey(kind)]; !ok {
			t.Errorf("no %s", healthKey(kind))
		} else if got != script {
			t.Errorf("%s differs from argocd-health.lua", healthKey(kind))
		}
	}
	if len(cm.Data) != len(policyKinds) {
		t.Errorf("%d keys, want %d", len(cm.Data), len(policyKinds))
	}
}

// policy is a RateLimit as the API server returns it, with the given status (nil: none yet).
func policy(generation int64, status map[string]any) map[string]any {
	obj := map[string]any{
		"apiVersion": "resilience.dev/v1alpha1", "kind": "RateLimit",
		"metadata": map[string]any{"name": "checkout", "namespace": "shop", "generation": generation},
		"spec":     map[string]any{"targetRefs": []any{map[string]any{"kind": "Service", "name": "checkout"}}},
	}
	if status != nil {
		obj["status"] = status
	}
	return obj
}

func conds(observed int64, c ...[3]string) map[string]any {
	var list []any
	for _, c := range c {
		list = append(list, map[string]any{"type": c[0], "status": c[1], "reason": c[2], "message": "msg of " + c[0],
			"observedGeneration": observed, "lastTransitionTime": "2026-12-03T08:00:00Z"})
	}
	return map[string]any{"observedGeneration": observed, "conditions": list}
}

// TestArgoCDHealthCases: the verdicts of argocd-health.lua on every shape of status.
func TestArgoCDHealthCases(t *testing.T) {
	acc := [3]string{"Accepted", "True", "Accepted"}
	prog := [3]string{"Programmed", "True", "Programmed"}
	ready := [3]string{"Ready", "True", "Ready"}
	cases := []struct {
		desc       string
		obj        map[string]any
		want, text string
	}{
		{"healthy", policy(2, conds(2, acc, prog, ready)), "Healthy", "Ready: msg of Ready"},
		{"no status yet", policy(1, nil), "Progressing", "Waiting for the operator to report status"},
		{"status of an older generation", policy(3, conds(2, acc, prog, ready)), "Progressing", "observe generation 3 (status is of 2)"},
		{"refused", policy(1, conds(1, [3]string{"Accepted", "False", "TargetNotFound"}, [3]string{"Programmed", "False", "NoGateways"},
			[3]string{"Ready", "False", "TargetNotFound"})), "Degraded", "Not accepted: TargetNotFound: msg of Accepted"},
		{"refused though programmed", policy(1, conds(1, [3]string{"Accepted", "False", "Conflicted"}, prog,
			[3]string{"Ready", "False", "Conflicted"})), "Degraded", "Not accepted: Conflicted"},
		{"pending", policy(1, conds(1, acc, [3]string{"Programmed", "False", "Pending"}, [3]string{"Ready", "False", "Pending"})),
			"Progressing", "Not programmed yet: Pending: msg of Programmed"},
		{"no gateways", policy(1, conds(1, acc, [3]string{"Programmed", "False", "NoGateways"}, [3]string{"Ready", "False", "NoGateways"})),
			"Progressing", "Not programmed yet: NoGateways"},
		{"programmed unknown", policy(1, conds(1, acc, [3]string{"Programmed", "Unknown", "Pending"})), "Progressing", "Not programmed yet"},
		{"an operator without Ready", policy(1, conds(1, acc, prog)), "Healthy", "Accepted and programmed"},
		{"Ready False alone", policy(1, conds(1, acc, prog, [3]string{"Ready", "False", "Pending"})), "Progressing", "Not ready: Pending"},
		{"no conditions yet", policy(1, map[string]any{"observedGeneration": int64(1)}), "Progressing", "report status"},
	}
	script := healthScript(t)
	for _, tc := range cases {
		t.Run(tc.desc, func(t *testing.T) {
			// The object goes through JSON as Argo CD's cache holds it: numbers as int64.
			u := &unstructured.Unstructured{Object: tc.obj}
			data, err := u.MarshalJSON()
			if err != nil {
				t.Fatal(err)
			}
			if err := u.UnmarshalJSON(data); err != nil {
				t.Fatal(err)
			}
			status, msg, err := argoHealth(script, u.Object)
			if err != nil {
				t.Fatal(err)
			}
			if status != tc.want || !strings.Contains(msg, tc.text) {
				t.Errorf("%s %q, want %s with %q", status, msg, tc.want, tc.text)
			}
		})
	}
}
