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

package compile

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	"resilience.dev/operator/api/v1alpha1"
	"resilience.dev/operator/internal/snapshot"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

// TestGolden compiles every testdata/*.in.yaml and compares the snapshot with its .out.json.
// Run `go test ./internal/compile -update` to regenerate them after an intended change.
func TestGolden(t *testing.T) {
	inputs, err := filepath.Glob("testdata/*.in.yaml")
	if err != nil || len(inputs) == 0 {
		t.Fatalf("no golden inputs: %v", err)
	}
	for _, in := range inputs {
		name := strings.TrimSuffix(filepath.Base(in), ".in.yaml")
		t.Run(name, func(t *testing.T) {
			input := readInput(t, in)
			enc, err := new(Compiler).Compile(input)
			if err != nil {
				t.Fatalf("compile: %v", err)
			}
			snap := enc.Snapshot
			got, err := json.MarshalIndent(snap, "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, '\n')
			golden := filepath.Join("testdata", name+".out.json")
			if *update {
				if err := os.WriteFile(golden, got, 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run with -update to create it)", err)
			}
			if diff := cmp.Diff(string(want), string(got)); diff != "" {
				t.Errorf("snapshot differs from %s (-want +got):\n%s", golden, diff)
			}
			// The snapshot survives the gateway's strict decoder unchanged.
			back, err := snapshot.Decode(got)
			if err != nil {
				t.Fatalf("decode the compiled snapshot: %v", err)
			}
			if diff := cmp.Diff(snap, back); diff != "" {
				t.Errorf("decode(encode(snapshot)) differs:\n%s", diff)
			}
		})
	}
}

// readInput decodes a multi-document YAML file strictly into compiler input.
func readInput(t testing.TB, path string) Input {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var in Input
	for i, doc := range bytes.Split(data, []byte("\n---\n")) {
		var head struct {
			Kind string `json:"kind"`
		}
		if err := yaml.Unmarshal(doc, &head); err != nil {
			t.Fatalf("document %d: %v", i, err)
		}
		strict := func(into any) {
			if err := yaml.UnmarshalStrict(doc, into); err != nil {
				t.Fatalf("document %d (%s): %v", i, head.Kind, err)
			}
		}
		switch head.Kind {
		case "Options":
			var o struct {
				Kind            string `json:"kind"`
				GatewayReplicas int    `json:"gatewayReplicas"`
			}
			strict(&o)
			in.GatewayReplicas = o.GatewayReplicas
		case "Service":
			var s corev1.Service
			strict(&s)
			in.Services = append(in.Services, s)
		case "EndpointSlice":
			var s discoveryv1.EndpointSlice
			strict(&s)
			in.EndpointSlices = append(in.EndpointSlices, s)
		case "RateLimit":
			var p v1alpha1.RateLimit
			strict(&p)
			in.RateLimits = append(in.RateLimits, p)
		case "CircuitBreaker":
			var p v1alpha1.CircuitBreaker
			strict(&p)
			in.CircuitBreakers = append(in.CircuitBreakers, p)
		case "RetryPolicy":
			var p v1alpha1.RetryPolicy
			strict(&p)
			in.RetryPolicies = append(in.RetryPolicies, p)
		default:
			t.Fatalf("document %d: unknown kind %q", i, head.Kind)
		}
	}
	return in
}

func TestStateKeys(t *testing.T) {
	base := readInput(t, "testdata/shop.in.yaml")
	keys := func(in Input) (limit, breaker, budget string) {
		t.Helper()
		snap, err := new(Compiler).Compile(in)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range snap.Services {
			p := s.Ports[0]
			switch {
			case p.RateLimit != nil:
				limit = p.RateLimit.Limits[0].StateKey
			case p.CircuitBreaker != nil:
				breaker = p.CircuitBreaker.StateKey
			case p.Retry != nil:
				budget = p.Retry.StateKey
			}
		}
		return
	}
	l0, b0, r0 := keys(base)
	cases := []struct {
		desc                               string
		mutate                             func(*Input)
		limitSame, breakerSame, budgetSame bool
	}{
		{desc: "new generations with the same parameters keep all state", mutate: func(in *Input) {
			in.RateLimits[0].Generation++
			in.CircuitBreakers[0].Generation++
			in.RetryPolicies[0].Generation++
		}, limitSame: true, breakerSame: true, budgetSame: true},
		{desc: "endpoint churn keeps all state", mutate: func(in *Input) {
			in.EndpointSlices[0].Endpoints = in.EndpointSlices[0].Endpoints[:1]
		}, limitSame: true, breakerSame: true, budgetSame: true},
		{desc: "a changed rate starts a new bucket", mutate: func(in *Input) {
			in.RateLimits[0].Spec.Limits[0].Requests = 300
		}, breakerSame: true, budgetSame: true},
		{desc: "a new replica count changes the split share", mutate: func(in *Input) {
			in.GatewayReplicas = 3
		}, breakerSame: true, budgetSame: true},
		{desc: "a changed threshold starts a new breaker", mutate: func(in *Input) {
			in.CircuitBreakers[0].Spec.Trip.ConsecutiveFailures = ptrTo[int32](7)
		}, limitSame: true, budgetSame: true},
		{desc: "a changed backoff keeps the budget", mutate: func(in *Input) {
			in.RetryPolicies[0].Spec.Backoff.Base = "50ms"
		}, limitSame: true, breakerSame: true, budgetSame: true},
		{desc: "a changed budget starts a new budget", mutate: func(in *Input) {
			in.RetryPolicies[0].Spec.Budget.Percent = ptrTo[int32](50)
		}, limitSame: true, breakerSame: true},
	}
	for _, tc := range cases {
		t.Run(tc.desc, func(t *testing.T) {
			in := readInput(t, "testdata/shop.in.yaml")
			tc.mutate(&in)
			l, b, r := keys(in)
			if (l == l0) != tc.limitSame || (b == b0) != tc.breakerSame || (r == r0) != tc.budgetSame {
				t.Errorf("same limit/breaker/budget key = %v/%v/%v, want %v/%v/%v",
					l == l0, b == b0, r == r0, tc.limitSame, tc.breakerSame, tc.budgetSame)
			}
		})
	}
}

func TestDeletedAndInvalidPoliciesAreLeftOut(t *testing.T) {
	in := readInput(t, "testdata/shop.in.yaml")
	now := metav1.Now()
	in.RateLimits[0].DeletionTimestamp = &now
	in.CircuitBreakers[0].Spec.OpenDuration = "1.5s" // not GEP-2257
	snap, err := new(Compiler).Compile(in)
	if err != nil {
		t.Fatal(err)
	}
	if len(snap.Services) != 1 || snap.Services[0].Name != "catalog" {
		t.Errorf("managed services = %+v, want only catalog", snap.Services)
	}
	if len(snap.Policies) != 1 || snap.Policies[0].Kind != "RetryPolicy" {
		t.Errorf("policies in force = %+v", snap.Policies)
	}
}

func ptrTo[T any](v T) *T { return &v }

// An endpoint whose targetRef names a pod of another namespace is not followed, whoever made the
// slice: a Service routes only to its own namespace's pods.
func TestForeignNamespaceEndpointsAreLeftOut(t *testing.T) {
	in := readInput(t, "testdata/shop.in.yaml")
	eps := in.EndpointSlices[0].Endpoints // checkout: 10.0.0.2 and 10.0.0.1 ready
	eps[0].TargetRef = &corev1.ObjectReference{Kind: "Pod", Namespace: "payments-team", Name: "vault-0"}
	eps[1].TargetRef = &corev1.ObjectReference{Kind: "Pod", Namespace: "shop", Name: "checkout-1"}
	snap, err := new(Compiler).Compile(in)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, s := range snap.Services {
		if s.Name == "checkout" {
			for _, e := range s.Ports[0].Endpoints {
				got = append(got, e.Address)
			}
		}
	}
	if len(got) != 1 || got[0] != "10.0.0.1" {
		t.Errorf("checkout endpoints = %v, want only 10.0.0.1 (10.0.0.2 names a pod of another namespace)", got)
	}
}
