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
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"sort"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"resilience.dev/operator/api/v1alpha1"
	"resilience.dev/operator/internal/controlplane"
)

// TestSamplesApplyAndAreAccepted applies every manifest in config/samples (server-side, in file order,
// as `kubectl apply --server-side -f config/samples/` does) and expects every policy to be Accepted.
func TestSamplesApplyAndAreAccepted(t *testing.T) {
	suite(t)
	root, err := controlplane.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	files, err := filepath.Glob(filepath.Join(root, "config", "samples", "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no samples found: %v", err)
	}
	sort.Strings(files)
	var policies []v1alpha1.Policy
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(data), 4096)
		for {
			u := &unstructured.Unstructured{}
			if err := dec.Decode(&u.Object); errors.Is(err, io.EOF) {
				break
			} else if err != nil {
				t.Fatalf("%s: %v", filepath.Base(f), err)
			}
			if len(u.Object) == 0 {
				continue
			}
			if err := k8s.Patch(context.Background(), u, client.Apply, client.FieldOwner("samples-test")); err != nil {
				t.Fatalf("%s: apply %s %s: %v", filepath.Base(f), u.GetKind(), u.GetName(), err)
			}
			if u.GetAPIVersion() == v1alpha1.GroupVersion.String() {
				obj, err := scheme.New(u.GroupVersionKind())
				if err != nil {
					t.Fatal(err)
				}
				p := obj.(v1alpha1.Policy)
				p.SetNamespace(u.GetNamespace())
				p.SetName(u.GetName())
				policies = append(policies, p)
			}
		}
	}
	if len(policies) != 3 {
		t.Fatalf("found %d policies in the samples, want one of each kind", len(policies))
	}
	for _, p := range policies {
		accepted(t, p, metav1.ConditionTrue, v1alpha1.ReasonAccepted)
	}
}
