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

package codeshape

import (
	"os/exec"
	"strings"
	"testing"
)

// TestGatewayLinksNoKubernetes keeps the data plane's binary free of Kubernetes client code: the
// gateway reads snapshots over its own stream and needs none of it (issue 11 took it from 772
// packages, 429 of them Kubernetes', to under 300 with none).
func TestGatewayLinksNoKubernetes(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "resilience.dev/operator/cmd/gateway").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	var k8s []string
	for _, pkg := range strings.Fields(string(out)) {
		if strings.HasPrefix(pkg, "k8s.io/") || strings.HasPrefix(pkg, "sigs.k8s.io/") {
			k8s = append(k8s, pkg)
		}
	}
	if len(k8s) > 0 {
		t.Errorf("cmd/gateway links %d Kubernetes packages (find the import with `go list -deps -f '{{.ImportPath}}: {{.Imports}}' ./cmd/gateway/...`): %s",
			len(k8s), strings.Join(k8s, ", "))
	}
}
