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

package capture

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestCaptureRefusals: every front that cannot be captured gets a CaptureRefused Event saying why and
// no slice; the manager neither crashes nor spins on them.
func TestCaptureRefusals(t *testing.T) {
	ns := namespace(t, "refused")
	backend(t, ns, "pods")
	wide := "apiVersion: v1\nkind: Service\nmetadata: {name: wide-pods, namespace: " + ns + "}\nspec:\n  ports:\n"
	widePorts := ""
	for i := range 100 {
		widePorts += fmt.Sprintf("  - {name: p%d, port: %d}\n", i, 1000+i)
	}
	kubectl(t, wide+widePorts+"---\n"+strings.Replace(frontYAML(ns, "wide", "wide-pods"), "spec:\n  ports: [{name: http, port: 80}]\n",
		"spec:\n  ports:\n"+widePorts, 1), "apply", "-f", "-")
	cases := []struct{ name, yaml, reason string }{
		{"label", strings.Replace(frontYAML(ns, "label", "pods"), "capture: gateway", "capture: sidecar", 1), `unknown value "sidecar"`},
		{"itself", frontYAML(ns, "itself", "itself"), "names the front itself"},
		{"missing", frontYAML(ns, "missing", "nowhere"), "not found"},
		{"elsewhere", frontYAML(ns, "elsewhere", "other/pods"), "front's own namespace"},
		{"failure", frontYAML(ns, "failure", "pods", "resilience.dev/capture-failure: sometimes"), `unknown value "sometimes"`},
		{"headless", strings.Replace(frontYAML(ns, "headless", "pods"), "spec:\n", "spec:\n  clusterIP: None\n", 1), "headless"},
		{"external", strings.Replace(frontYAML(ns, "external", "pods"), "spec:\n", "spec:\n  type: ExternalName\n  externalName: example.com\n", 1), "ExternalName"},
		{"unpaired", strings.Replace(frontYAML(ns, "unpaired", "pods"), "[{name: http, port: 80}]", "[{name: http, port: 80}, {name: grpc, port: 90}]", 1), `"grpc" (90) has no backend port`},
		{"wide", "", "capture range " + captureRange + " is exhausted"},
	}
	var all []string
	for _, c := range cases {
		if c.yaml != "" {
			all = append(all, c.yaml)
		}
	}
	kubectl(t, strings.Join(all, "---\n"), "apply", "-f", "-")
	for _, c := range cases {
		until(t, c.name+": CaptureRefused Event", 30*time.Second, func() bool { return hasEvent(t, ns, c.name, "CaptureRefused", c.reason) })
		if s := frontSlices(t, ns, c.name); len(s) != 0 {
			t.Errorf("%s: refused, yet it has slices %v", c.name, s)
		}
	}
	// Nothing changes now: the reconciler must be idle, not requeueing the refusals in a loop.
	before := reconciles(t)
	time.Sleep(2 * time.Second)
	if after := reconciles(t); after-before > 2 || !stack.Running("manager") {
		t.Fatalf("the capture reconciler ran %v times in 2 idle seconds (manager running: %v)", after-before, stack.Running("manager"))
	}
}

// reconciles reads the capture controller's reconcile count from the manager's metrics.
func reconciles(t *testing.T) float64 {
	t.Helper()
	resp, err := http.Get("http://" + harness.Opts.ManagerMetrics + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var total float64
	for _, line := range strings.Split(string(body), "\n") {
		if strings.HasPrefix(line, `controller_runtime_reconcile_total{controller="capture"`) {
			var v float64
			_, _ = fmt.Sscanf(line[strings.LastIndexByte(line, ' ')+1:], "%g", &v)
			total += v
		}
	}
	if total == 0 {
		t.Fatal("no controller_runtime_reconcile_total for the capture controller")
	}
	return total
}
