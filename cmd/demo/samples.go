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

package main

import (
	"context"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"time"

	"resilience.dev/operator/internal/localstack"
)

// applySamples applies config/samples/ and an FQDN EndpointSlice per Service, and waits until the
// policies are Accepted and Programmed and traffic reaches every backend.
func (d *demo) applySamples(ctx context.Context) error {
	t := time.Now()
	fmt.Println("\n$ kubectl apply --server-side -f config/samples/")
	out, err := d.kubectl(ctx, "", "apply", "--server-side", "-f", filepath.Join(d.root, "config", "samples"))
	if err != nil {
		return cause(ctx, err)
	}
	fmt.Print(indent(out))
	var slices strings.Builder
	for _, svc := range []string{"checkout", "payments", "catalog"} {
		slices.WriteString(localstack.LocalEndpointSlice("shop", svc+"-pods", d.backends[svc].port()) + "---\n")
	}
	if _, err := d.kubectl(ctx, slices.String(), "apply", "--server-side", "-f", "-"); err != nil {
		return cause(ctx, err)
	}
	fmt.Println("  (and an FQDN EndpointSlice per backend Service: <service>-pods.localhost at its demo-backend's port)")
	if err := waitFor(ctx, 30*time.Second, func() bool { return d.programmed(ctx, 3) }); err != nil {
		return fmt.Errorf("the samples did not become Accepted and Programmed: %w", cause(ctx, err))
	}
	// Programmed says the policies are in force; the endpoints follow in the same or the next snapshot.
	for _, svc := range []string{"checkout", "payments", "catalog"} {
		if err := waitFor(ctx, 10*time.Second, func() bool {
			r, err := d.send(ctx, http.MethodGet, svc+".shop", "/", nil)
			return err == nil && r.header.Get("X-Backend") == svc
		}); err != nil {
			return fmt.Errorf("the gateway does not reach the %s backend: %w", svc, cause(ctx, err))
		}
	}
	fmt.Printf("Accepted and Programmed, traffic reaches every backend, %s after the apply:\n", since(t))
	fmt.Println("$ kubectl get resilience -n shop")
	if out, err = d.kubectl(ctx, "", "get", "resilience", "-n", "shop"); err != nil {
		return cause(ctx, err)
	}
	fmt.Print(indent(out))
	return nil
}

// programmed reports whether n policies in shop are Accepted and Programmed at their generation.
func (d *demo) programmed(ctx context.Context, n int) bool {
	out, err := d.kubectl(ctx, "", "get", "resilience", "-n", "shop", "-o", "jsonpath="+
		`{range .items[*]}{.metadata.generation} {.status.conditions[?(@.type=="Accepted")].status} `+
		`{.status.conditions[?(@.type=="Programmed")].status} {.status.conditions[?(@.type=="Programmed")].observedGeneration}{"\n"}{end}`)
	if err != nil {
		return false
	}
	lines := strings.Fields(strings.ReplaceAll(out, " ", "/"))
	if len(lines) != n {
		return false
	}
	for _, l := range lines {
		f := strings.Split(l, "/")
		if len(f) != 4 || f[1] != "True" || f[2] != "True" || f[3] != f[0] {
			return false
		}
	}
	return true
}
