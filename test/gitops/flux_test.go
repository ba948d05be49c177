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
	"fmt"
	"testing"

	"github.com/google/cel-go/cel"
)

// healthCheckExpr is one of a Flux Kustomization's healthCheckExprs.
type healthCheckExpr struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	InProgress string `json:"inProgress"`
	Current    string `json:"current"`
	Failed     string `json:"failed"`
}

// fluxHealth evaluates the policies Kustomization's expression for obj's kind as kustomize-controller
// does: the object's top-level fields are the variables; inProgress, then failed, then current
// decide, and an object none of them matches is still in progress.
func fluxHealth(t *testing.T, obj map[string]any) string {
	t.Helper()
	kind, _ := obj["kind"].(string)
	var hc *healthCheckExpr
	for _, e := range readGitops(t, "flux.yaml")["Kustomization/resilience-policies"].Spec.HealthCheckExprs {
		if e.Kind == kind && e.APIVersion == obj["apiVersion"] {
			hc = &e
		}
	}
	if hc == nil {
		t.Fatalf("flux.yaml has no healthCheckExprs for %s", kind)
	}
	vars := map[string]any{"apiVersion": obj["apiVersion"], "kind": kind, "metadata": obj["metadata"], "spec": obj["spec"], "status": obj["status"]}
	if vars["status"] == nil {
		vars["status"] = map[string]any{}
	}
	for _, step := range []struct{ expr, verdict string }{{hc.InProgress, "InProgress"}, {hc.Failed, "Failed"}, {hc.Current, "Current"}} {
		if step.expr == "" {
			continue
		}
		ok, err := evalBool(step.expr, vars)
		if err != nil {
			t.Fatalf("%s expression %q: %v", kind, step.expr, err)
		}
		if ok {
			return step.verdict
		}
	}
	return "InProgress"
}

func evalBool(expr string, vars map[string]any) (bool, error) {
	var opts []cel.EnvOption
	for name := range vars {
		opts = append(opts, cel.Variable(name, cel.DynType))
	}
	env, err := cel.NewEnv(opts...)
	if err != nil {
		return false, err
	}
	ast, iss := env.Compile(expr)
	if iss.Err() != nil {
		return false, iss.Err()
	}
	prg, err := env.Program(ast)
	if err != nil {
		return false, err
	}
	out, _, err := prg.Eval(vars)
	if err != nil {
		return false, err
	}
	b, ok := out.Value().(bool)
	if !ok {
		return false, fmt.Errorf("the expression gives %T, not a bool", out.Value())
	}
	return b, nil
}
