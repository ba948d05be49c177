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

// Package capture tests capture (contract, section 5) as it runs for real: the manager and gateway
// binaries against a local control plane, front Services applied with kubectl, their EndpointSlices
// read back, and traffic sent to the capture ports on loopback, with no Host, a short name or the
// ClusterIP. Tests that need the EndpointSlice controller run the real kube-controller-manager.
package capture

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	discoveryv1 "k8s.io/api/discovery/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"resilience.dev/operator/internal/capture"
	"resilience.dev/operator/internal/controlplane"
	"resilience.dev/operator/internal/localstack"
)

var (
	harness      *localstack.Harness
	stack        *localstack.Stack
	k8s          client.Client
	captureRange string
	rangeFirst   int32
)

func TestMain(m *testing.M) { os.Exit(run(m)) }

func run(m *testing.M) int {
	h, err := localstack.NewHarness("resilience-capture-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer h.Close()
	harness, stack, k8s = h, h.Stack, h.Client
	stopKCM, err := startControllerManager(h.CP)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer stopKCM()
	rangeFirst = freeRange(64)
	captureRange = fmt.Sprintf("%d-%d", rangeFirst, rangeFirst+63)
	if err := startManager(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if err := stack.StartGateway("--capture-range=" + captureRange); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if err := waitReady("http://"+h.Opts.GatewayHealth+"/readyz", time.Minute); err != nil {
		fmt.Fprintln(os.Stderr, err, h.TailLog(50))
		return 1
	}
	code := m.Run()
	if code != 0 {
		fmt.Fprintf(os.Stderr, "--- last 200 lines of the manager and gateway logs ---\n%s\n", h.TailLog(200))
	}
	return code
}

// kcmRunning says whether the real kube-controller-manager runs (its EndpointSlice controller and
// garbage collector); tests that need it skip without it unless RESILIENCE_REQUIRE_KCM is set, as
// make test sets it.
var kcmRunning bool

func startControllerManager(cp *controlplane.ControlPlane) (func(), error) {
	if _, err := os.Stat(controlplane.ControllerManagerBinary()); err != nil && os.Getenv("RESILIENCE_REQUIRE_KCM") == "" {
		fmt.Fprintln(os.Stderr, "no kube-controller-manager (make setup-envtest builds it): the tests that need it skip")
		return func() {}, nil
	}
	kcm, err := cp.StartControllerManager("endpointslice", "endpointslicemirroring", "garbagecollector")
	if err != nil {
		return nil, err
	}
	kcmRunning = true
	return func() { _ = kcm.Stop() }, nil
}

// waitReady polls a readiness URL until it answers 200.
func waitReady(url string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if resp, err := http.Get(url); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("%s not ready within %s", url, timeout)
}

func startManager() error {
	return stack.StartManager(context.Background(), "--capture-range="+captureRange)
}

// freeRange finds n consecutive ports free on 127.0.0.1 and 127.0.0.2 (the second gateway replica),
// away from the default range, so that test binaries running side by side do not collide.
func freeRange(n int) int32 {
	for {
		first := 30000 + rand.IntN(30000-n)
		free := true
		for p := first; p < first+n && free; p++ {
			for _, host := range []string{"127.0.0.1", "127.0.0.2"} {
				l, err := net.Listen("tcp", fmt.Sprintf("%s:%d", host, p))
				if err != nil {
					free = false
					break
				}
				_ = l.Close()
			}
		}
		if free {
			return int32(first)
		}
	}
}

func kubectl(t *testing.T, stdin string, args ...string) string {
	t.Helper()
	out, err := stack.Kubectl(stdin, args...)
	if err != nil {
		t.Fatalf("kubectl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

var namespaces atomic.Int64

func namespace(t *testing.T, prefix string) string {
	t.Helper()
	name := fmt.Sprintf("%s-%d", prefix, namespaces.Add(1))
	kubectl(t, "", "create", "namespace", name)
	return name
}

// until polls cond every 10 ms for at most timeout and returns how long it took.
func until(t *testing.T, what string, timeout time.Duration, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > timeout {
			t.Fatalf("%s: not within %s", what, timeout)
		}
		time.Sleep(10 * time.Millisecond)
	}
	return time.Since(start)
}

// backend registers Service ns/name (port 80 named http) whose only endpoint is an in-test server
// that answers with its own name, as a hand-made FQDN slice under .localhost.
func backend(t *testing.T, ns, name string) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "%s host=%q", name, r.Host)
	})}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { _ = srv.Close() })
	kubectl(t, localstack.LocalService(ns, name, l.Addr().(*net.TCPAddr).Port), "apply", "-f", "-")
}

// frontYAML is a front Service ns/name of backend, port 80 named http, with extra metadata lines.
func frontYAML(ns, name, backend string, annotations ...string) string {
	return fmt.Sprintf(`apiVersion: v1
kind: Service
metadata:
  name: %s
  namespace: %s
  labels: {resilience.dev/capture: gateway}
  annotations:
    resilience.dev/backend: %s
%s
spec:
  ports: [{name: http, port: 80}]
`, name, ns, backend, indent(annotations))
}

func indent(lines []string) string {
	var b strings.Builder
	for _, l := range lines {
		b.WriteString("    " + l + "\n")
	}
	return b.String()
}

// frontSlices lists the manager's slices of a front.
func frontSlices(t *testing.T, ns, front string) []discoveryv1.EndpointSlice {
	t.Helper()
	var list discoveryv1.EndpointSliceList
	if err := k8s.List(context.Background(), &list, client.InNamespace(ns), client.MatchingLabels{capture.LabelFront: front}); err != nil {
		t.Fatal(err)
	}
	return list.Items
}

// capturePort is the capture port of a front's port http, 0 until its slices record one.
func capturePort(t *testing.T, ns, front string) int32 {
	t.Helper()
	for _, s := range frontSlices(t, ns, front) {
		if ports, err := capture.DecodePorts(s.Annotations[capture.AnnotationPorts]); err == nil {
			return ports["http"]
		}
	}
	return 0
}

// rawGet sends "GET / HTTP/1.x" with the given header lines to host:port and returns status and body.
func rawGet(host string, port int32, version string, headers ...string) (int, string, error) {
	c, err := net.DialTimeout("tcp", fmt.Sprintf("%s:%d", host, port), 2*time.Second)
	if err != nil {
		return 0, "", err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	req := "GET / HTTP/" + version + "\r\n"
	for _, h := range headers {
		req += h + "\r\n"
	}
	req += "Connection: close\r\n\r\n"
	if _, err := io.WriteString(c, req); err != nil {
		return 0, "", err
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.Header.Get("X-RateLimit-Limit") != "" {
		body = append(body, " [rate-limited]"...)
	}
	return resp.StatusCode, string(body), nil
}
