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
	"net"
	"net/http"
	"strconv"
	"strings"

	"resilience.dev/operator/internal/capture"
)

// captured: checkout is a front Service, so a caller that keeps its URL (a short name, as a pod in
// namespace shop would use, here sent to the capture port that kube-proxy would send it to) passes
// the same rate limit as requests sent to the gateway by name.
func (d *demo) captured(ctx context.Context, st *step) error {
	fmt.Println("   checkout is a front Service (label resilience.dev/capture: gateway, backend checkout-pods): the manager")
	fmt.Println("   points its EndpointSlice at the gateway on a capture port, where kube-proxy sends callers' traffic.")
	fmt.Println("$ kubectl get endpointslices -n shop -l resilience.dev/front=checkout")
	out, err := d.kubectl(ctx, "", "get", "endpointslices", "-n", "shop", "-l", capture.LabelFront+"=checkout")
	if err != nil {
		return err
	}
	fmt.Print(indent(out))
	raw, err := d.kubectl(ctx, "", "get", "endpointslices", "-n", "shop", "-l", capture.LabelFront+"=checkout",
		"-o", `jsonpath={.items[0].metadata.annotations.resilience\.dev/capture-ports}`)
	if err != nil {
		return err
	}
	ports, err := capture.DecodePorts(raw)
	if err != nil || ports["http"] == 0 {
		return fmt.Errorf("no capture port for checkout's port http in %q: %v", raw, err)
	}
	host, _, _ := net.SplitHostPort(d.gateway)
	url := "http://" + net.JoinHostPort(host, strconv.Itoa(int(ports["http"]))) + "/orders"
	fmt.Printf("   %d POST %s with Host: checkout (a short name) and X-User-ID: carol\n", rlOrdersPerUser+2, url)
	var codes []string
	ok, limited, fromCheckout := 0, 0, true
	for range rlOrdersPerUser + 2 {
		r, err := d.do(ctx, http.MethodPost, url, "checkout", http.Header{"X-User-Id": {"carol"}})
		if err != nil {
			return err
		}
		codes = append(codes, strconv.Itoa(r.code))
		switch r.code {
		case http.StatusOK:
			ok++
			fromCheckout = fromCheckout && r.header.Get("X-Backend") == "checkout"
		case http.StatusTooManyRequests:
			limited++
		}
	}
	fmt.Printf("   %s\n", strings.Join(codes, " "))
	st.check(ok == rlOrdersPerUser && limited == 2, "capture port enforces",
		"the capture port enforces checkout's per-user limit like :8080 does: %d admitted, %d got 429 (want %d and 2)", ok, limited, rlOrdersPerUser)
	st.check(fromCheckout, "capture port reaches checkout", "the admitted ones reached checkout's backend (X-Backend: checkout)")
	return nil
}
