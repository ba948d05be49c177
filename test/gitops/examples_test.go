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
	"bufio"
	"bytes"
	"errors"
	"io"
	"strconv"
	"testing"

	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
)

// gitopsObject is what these tests read of the Argo CD Applications and Flux Kustomizations.
type gitopsObject struct {
	Kind     string `json:"kind"`
	Metadata struct {
		Name        string            `json:"name"`
		Annotations map[string]string `json:"annotations"`
	} `json:"metadata"`
	Spec struct {
		// Argo CD Application
		SyncPolicy struct {
			Automated *struct{} `json:"automated"`
			Retry     *struct {
				Limit   int `json:"limit"`
				Backoff struct {
					Duration, MaxDuration string
					Factor                int
				} `json:"backoff"`
			} `json:"retry"`
		} `json:"syncPolicy"`
		// Flux Kustomization
		DependsOn []struct {
			Name string `json:"name"`
		} `json:"dependsOn"`
		Wait             bool              `json:"wait"`
		Timeout          string            `json:"timeout"`
		HealthCheckExprs []healthCheckExpr `json:"healthCheckExprs"`
	} `json:"spec"`
}

func readGitops(t *testing.T, file string) map[string]gitopsObject {
	t.Helper()
	reader := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(repoFile(t, "config", "gitops", file))))
	objs := map[string]gitopsObject{}
	for {
		raw, err := reader.Read()
		if errors.Is(err, io.EOF) {
			return objs
		}
		if err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		var o gitopsObject
		if err := utilyaml.Unmarshal(raw, &o); err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		if o.Kind != "" {
			objs[o.Kind+"/"+o.Metadata.Name] = o
		}
	}
}

// TestArgoCDPoliciesWaitForTheCRDs: the policies' Application, created with the operator's, comes
// in a later sync wave and retries a sync that failed (because the CRDs did not exist yet) with
// backoff, rather than leaving the revision failed until the next commit.
func TestArgoCDPoliciesWaitForTheCRDs(t *testing.T) {
	objs := readGitops(t, "argocd-application.yaml")
	operator, policies := objs["Application/resilience-operator"], objs["Application/resilience-policies"]
	wave := func(o gitopsObject) int {
		w, err := strconv.Atoi(o.Metadata.Annotations["argocd.argoproj.io/sync-wave"])
		if err != nil {
			t.Errorf("Application %s: sync-wave: %v", o.Metadata.Name, err)
		}
		return w
	}
	if wave(policies) <= wave(operator) {
		t.Errorf("the policies' sync wave %d is not after the operator's %d", wave(policies), wave(operator))
	}
	r := policies.Spec.SyncPolicy.Retry
	if policies.Spec.SyncPolicy.Automated == nil || r == nil || r.Limit < 5 || r.Backoff.Duration == "" || r.Backoff.Factor < 2 {
		t.Errorf("the policies' Application does not retry a failed automated sync with backoff: %+v", r)
	}
}

// TestFluxWaitsForHealthyPolicies: the policies' Kustomization depends on the operator's and waits
// for every policy it applies to be healthy (kstatus: Ready), with a timeout.
func TestFluxWaitsForHealthyPolicies(t *testing.T) {
	objs := readGitops(t, "flux.yaml")
	for _, name := range []string{"resilience-operator", "resilience-policies"} {
		k, ok := objs["Kustomization/"+name]
		if !ok {
			t.Fatalf("no Kustomization %s", name)
		}
		if !k.Spec.Wait || k.Spec.Timeout == "" {
			t.Errorf("Kustomization %s: wait %v, timeout %q; want health checks with a timeout", name, k.Spec.Wait, k.Spec.Timeout)
		}
	}
	deps := objs["Kustomization/resilience-policies"].Spec.DependsOn
	if len(deps) != 1 || deps[0].Name != "resilience-operator" {
		t.Errorf("the policies' Kustomization depends on %+v, want resilience-operator", deps)
	}
}
