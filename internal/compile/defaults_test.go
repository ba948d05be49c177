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
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"sigs.k8s.io/yaml"
)

// Defaults are written twice: as `+kubebuilder:default` markers (the API server applies them when an
// object is stored) and as the compiler's constants (for objects stored before the CRD defaulted them,
// and for defaults that depend on another field). These tests fail when the two drift apart, and pin
// both to the contract (shared design contract.md, "defaults shown"); contract and CRDs agree on every
// value today.

// contractDefaults are every `default:` of the CRDs (file, then the field's path with [] for list
// items), as JSON, at the contract's value.
var contractDefaults = map[string]map[string]string{
	"ratelimits": {
		".spec.clientIP":                  `{}`,
		".spec.clientIP.ipv6PrefixLength": `64`,
		".spec.limits[].maxKeys":          `10000`,
		".spec.mode":                      `"Enforce"`,
		".spec.onExceeded":                `"Reject"`,
	},
	"circuitbreakers": {
		// The contract shows maxQueued 50 as an example, not as a default: no queue unless asked.
		".spec.concurrency.maxQueued":             `0`,
		".spec.concurrency.queueTimeout":          `"1s"`,
		".spec.failureCriteria":                   `{}`,
		".spec.failureCriteria.connectErrors":     `true`,
		".spec.failureCriteria.grpcCodes":         `["Unavailable","Internal","DeadlineExceeded","Unknown"]`,
		".spec.failureCriteria.slowCallDuration":  `"0s"`,
		".spec.failureCriteria.statusCodes":       `["500-599"]`,
		".spec.failureCriteria.timeouts":          `true`,
		".spec.fallback":                          `{}`,
		".spec.fallback.serveStale":               `"0s"`,
		".spec.fallback.statusCode":               `503`,
		".spec.halfOpen":                          `{}`,
		".spec.halfOpen.maxRequests":              `1`,
		".spec.halfOpen.successThreshold":         `1`,
		".spec.maxOpenDuration":                   `"0s"`,
		".spec.maxOpenPercent":                    `50`,
		".spec.mode":                              `"Enforce"`,
		".spec.openDuration":                      `"30s"`,
		".spec.scope":                             `"Service"`,
		".spec.trip":                              `{"consecutiveFailures":5}`,
		".spec.trip.failureRatio.minimumRequests": `20`,
		".spec.trip.failureRatio.percent":         `50`,
		".spec.trip.failureRatio.window":          `"30s"`,
		".status.openEndpoints":                   `0`,
		".status.openReplicas":                    `0`,
	},
	"retrypolicies": {
		".spec.backoff":                    `{}`,
		".spec.backoff.base":               `"25ms"`,
		".spec.backoff.jitter":             `"Full"`,
		".spec.backoff.max":                `"1s"`,
		".spec.backoff.strategy":           `"Exponential"`,
		".spec.budget":                     `{}`,
		".spec.budget.minRetriesPerSecond": `10`,
		".spec.budget.percent":             `20`,
		".spec.budget.window":              `"10s"`,
		".spec.hedge.maxHedges":            `1`,
		".spec.maxAttempts":                `3`,
		".spec.methods":                    `["GET","HEAD","OPTIONS","PUT","DELETE"]`,
		".spec.perTryTimeout":              `"0s"`,
		".spec.respectRetryAfter":          `true`,
		".spec.retryOn":                    `{}`,
		".spec.retryOn.connectErrors":      `true`,
		".spec.retryOn.grpcCodes":          `["Unavailable"]`,
		".spec.retryOn.resets":             `true`,
		".spec.retryOn.statusCodes":        `["502","503","504"]`,
		".spec.retryOn.timeouts":           `true`,
		".spec.timeout":                    `"0s"`,
	},
}

// Every kind's targetRefs (spec and status) default to a core Service, as Gateway API's do.
var targetRefDefaults = map[string]string{
	".spec.targetRefs[].group":          `""`,
	".spec.targetRefs[].kind":           `"Service"`,
	".status.targets[].targetRef.group": `""`,
	".status.targets[].targetRef.kind":  `"Service"`,
}

// compilerDefaults are the compiler's constants, each at the CRD field whose default it stands for.
var compilerDefaults = map[string]map[string]any{
	"ratelimits": {
		".spec.clientIP.ipv6PrefixLength": defaultIPv6Prefix,
		".spec.limits[].maxKeys":          defaultMaxKeys,
	},
	"circuitbreakers": {
		".spec.concurrency.queueTimeout":          gep(defaultQueueTimeout),
		".spec.failureCriteria.statusCodes":       defaultFailureCodes,
		".spec.failureCriteria.grpcCodes":         defaultFailureGRPC,
		".spec.fallback.statusCode":               defaultFallbackStatus,
		".spec.maxOpenPercent":                    defaultMaxOpenPercent,
		".spec.openDuration":                      gep(defaultOpenDuration),
		".spec.trip":                              map[string]int{"consecutiveFailures": defaultConsecutive},
		".spec.trip.failureRatio.minimumRequests": defaultRatioMinimum,
		".spec.trip.failureRatio.percent":         defaultRatioPercent,
		".spec.trip.failureRatio.window":          gep(defaultRatioWindow),
	},
	"retrypolicies": {
		".spec.backoff.base":               gep(defaultBackoffBase),
		".spec.backoff.max":                gep(defaultBackoffMax),
		".spec.budget.minRetriesPerSecond": defaultBudgetMinPerSec,
		".spec.budget.percent":             defaultBudgetPercent,
		".spec.budget.window":              gep(defaultBudgetWindow),
		".spec.maxAttempts":                defaultMaxAttempts,
		".spec.methods":                    defaultRetryMethods,
		".spec.retryOn.statusCodes":        defaultRetryCodes,
		".spec.retryOn.grpcCodes":          defaultRetryGRPC,
	},
}

// TestCRDDefaultsMatchContract reads every `default:` of the generated CRDs.
func TestCRDDefaultsMatchContract(t *testing.T) {
	for file, want := range contractDefaults {
		want = mergedWith(want, targetRefDefaults)
		got := map[string]string{}
		collectDefaults("", crdSchema(t, file), got)
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("%s: CRD defaults differ from the contract's (-contract +CRD):\n%s", file, diff)
		}
	}
}

// TestCompilerDefaultsMatchCRD compares each compiler constant with the CRD's default for its field.
func TestCompilerDefaultsMatchCRD(t *testing.T) {
	for file, consts := range compilerDefaults {
		crd := map[string]string{}
		collectDefaults("", crdSchema(t, file), crd)
		for path, v := range consts {
			b, _ := json.Marshal(v)
			if crd[path] != string(b) {
				t.Errorf("%s %s: the compiler defaults to %s, the CRD to %s", file, path, b, crd[path])
			}
		}
	}
	// A default that depends on another field is the compiler's alone (the contract's conventions):
	// maxDelay applies only with onExceeded: Delay.
	if gep(defaultMaxDelay) != "500ms" {
		t.Errorf("maxDelay defaults to %s, the contract says 500ms", gep(defaultMaxDelay))
	}
}

// sparsePolicies leave out every field they may, or hold optional objects empty, so that the CRD has
// defaults to fill in.
var sparsePolicies = []struct{ desc, file, spec string }{
	{"RateLimit, minimal", "ratelimits", `
kind: RateLimit
spec:
  limits: [{name: all, requests: 10, period: 1s}]`},
	{"RateLimit, delayed and keyed", "ratelimits", `
kind: RateLimit
spec:
  clientIP: {}
  onExceeded: Delay
  limits: [{name: per-ip, requests: 10, period: 1s, key: [{clientIP: {}}]}]`},
	{"CircuitBreaker, minimal", "circuitbreakers", `
kind: CircuitBreaker
spec: {}`},
	{"CircuitBreaker, optional objects empty", "circuitbreakers", `
kind: CircuitBreaker
spec:
  concurrency: {maxRequests: 10}
  failureCriteria: {}
  trip: {failureRatio: {}}
  halfOpen: {}
  fallback: {}`},
	{"RetryPolicy, minimal", "retrypolicies", `
kind: RetryPolicy
spec: {}`},
	{"RetryPolicy, optional objects empty", "retrypolicies", `
kind: RetryPolicy
spec:
  retryOn: {}
  backoff: {}
  budget: {}
  hedge: {delay: 50ms}`},
}

const defaultsService = `apiVersion: v1
kind: Service
metadata: {name: svc, namespace: ns, uid: svc-uid}
spec:
  ports: [{name: http, port: 80}]`

// TestCompilerAppliesCRDDefaults compiles each sparse policy as it is and as the API server stores it
// (the CRD's defaults applied): the snapshots must be the same, so a default of the CRD and the
// compiler's (constant or literal) cannot drift apart unnoticed.
func TestCompilerAppliesCRDDefaults(t *testing.T) {
	for _, tc := range sparsePolicies {
		t.Run(tc.desc, func(t *testing.T) {
			var obj map[string]any
			if err := yaml.Unmarshal([]byte(tc.spec), &obj); err != nil {
				t.Fatal(err)
			}
			obj["apiVersion"] = "resilience.dev/v1alpha1"
			obj["metadata"] = map[string]any{"name": "p", "namespace": "ns", "uid": "p-uid", "generation": 1}
			obj["spec"].(map[string]any)["targetRefs"] = []any{map[string]any{"group": "", "kind": "Service", "name": "svc"}}
			sparse := compileDocs(t, obj)
			applyDefaults(obj, crdSchema(t, tc.file))
			if diff := cmp.Diff(sparse, compileDocs(t, obj)); diff != "" {
				t.Errorf("the CRD's defaults change the snapshot (-as written +as stored):\n%s", diff)
			}
		})
	}
}

// compileDocs compiles the Service svc with one policy, and returns the snapshot as JSON.
func compileDocs(t *testing.T, policy map[string]any) string {
	t.Helper()
	doc, err := yaml.Marshal(policy)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "in.yaml")
	if err := os.WriteFile(path, []byte(defaultsService+"\n---\n"+string(doc)), 0o644); err != nil {
		t.Fatal(err)
	}
	enc, err := new(Compiler).Compile(readInput(t, path))
	if err != nil {
		t.Fatal(err)
	}
	if len(enc.Policies) != 1 {
		t.Fatalf("%d policies in force, want 1 (is the policy valid?)", len(enc.Policies))
	}
	out, err := json.MarshalIndent(enc.Snapshot, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	return string(out)
}

// applyDefaults does what the API server does with a CRD's defaults: a field left out takes its
// default, and the fields of objects (present or defaulted) take theirs in turn.
func applyDefaults(obj map[string]any, schema map[string]any) {
	props, _ := schema["properties"].(map[string]any)
	for name, p := range props {
		ps := p.(map[string]any)
		if d, ok := ps["default"]; ok && obj[name] == nil {
			b, _ := json.Marshal(d) // a copy: defaults must not be shared between objects
			var v any
			_ = json.Unmarshal(b, &v)
			obj[name] = v
		}
		switch v := obj[name].(type) {
		case map[string]any:
			applyDefaults(v, ps)
		case []any:
			items, _ := ps["items"].(map[string]any)
			for _, item := range v {
				if m, ok := item.(map[string]any); ok && items != nil {
					applyDefaults(m, items)
				}
			}
		}
	}
}

// gep formats a duration as the CRDs write it (GEP-2257): whole seconds in s, else ms.
func gep(d time.Duration) string {
	if d%time.Second == 0 {
		return fmt.Sprintf("%ds", d/time.Second)
	}
	return fmt.Sprintf("%dms", d/time.Millisecond)
}

func mergedWith(a, b map[string]string) map[string]string {
	out := map[string]string{}
	for _, m := range []map[string]string{a, b} {
		for k, v := range m {
			out[k] = v
		}
	}
	return out
}

// crdSchema returns the openAPIV3Schema of the CRD config/crd/bases/resilience.dev_<file>.yaml.
func crdSchema(t *testing.T, file string) map[string]any {
	t.Helper()
	data, err := os.ReadFile("../../config/crd/bases/resilience.dev_" + file + ".yaml")
	if err != nil {
		t.Fatal(err)
	}
	var crd struct {
		Spec struct {
			Versions []struct {
				Schema struct {
					OpenAPIV3Schema map[string]any `json:"openAPIV3Schema"`
				} `json:"schema"`
			} `json:"versions"`
		} `json:"spec"`
	}
	if err := yaml.Unmarshal(data, &crd); err != nil || len(crd.Spec.Versions) != 1 {
		t.Fatalf("%s: %v (%d versions, want 1)", file, err, len(crd.Spec.Versions))
	}
	return crd.Spec.Versions[0].Schema.OpenAPIV3Schema
}

// collectDefaults records the default of every field under schema, as JSON, by path.
func collectDefaults(path string, schema map[string]any, out map[string]string) {
	if d, ok := schema["default"]; ok {
		b, _ := json.Marshal(d)
		out[path] = string(b)
	}
	props, _ := schema["properties"].(map[string]any)
	for name, p := range props {
		collectDefaults(path+"."+name, p.(map[string]any), out)
	}
	if items, ok := schema["items"].(map[string]any); ok {
		collectDefaults(path+"[]", items, out)
	}
}
