//go:build reliability

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

// Package reliability is the fault, soak, hostile-input and trust suite (`make test-reliability`).
// Like test/e2e it runs the real manager and gateway binaries against a real kube-apiserver and etcd,
// with traffic over real sockets; unlike it, it breaks things on purpose while traffic flows and counts
// every request and its answer.
package reliability

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/client"

	"resilience.dev/operator/internal/controlplane"
	"resilience.dev/operator/internal/localstack"
)

var (
	stack   *localstack.Stack
	cp      *controlplane.ControlPlane
	k8s     client.Client
	opts    localstack.Options
	harness *localstack.Harness
)

// maxBody is the primary gateway's --max-request-body-bytes.
const maxBody = 8 << 20

// managerPprof is where the primary manager serves /debug/pprof/ (the soak forces GCs through it).
var managerPprof = freeAddr()

// managerArgs are the primary manager's flags: leader election on, as deployed.
var managerArgs = []string{"--leader-elect", "--pprof-bind-address=" + managerPprof}

func TestMain(m *testing.M) { os.Exit(run(m)) }

func run(m *testing.M) int {
	h, err := localstack.NewHarness("resilience-reliability-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer h.Close()
	stack, cp, k8s, opts, harness = h.Stack, h.CP, h.Client, h.Opts, h
	if err := stack.StartManager(context.Background(), managerArgs...); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if err := stack.StartGateway("--pprof", "--max-request-body-bytes="+strconv.Itoa(maxBody)); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	code := m.Run()
	if code != 0 {
		tailLog(300)
	}
	return code
}

func tailLog(lines int) {
	fmt.Fprintf(os.Stderr, "--- last %d lines of the manager and gateway logs ---\n%s\n", lines, harness.TailLog(lines))
}

var freeAddr = localstack.FreeAddr

// kubectl runs the real kubectl against the local control plane and fails the test on error.
func kubectl(t *testing.T, stdin string, args ...string) string {
	t.Helper()
	out, err := tryKubectl(stdin, args...)
	if err != nil {
		t.Fatalf("kubectl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

// tryKubectl runs kubectl and returns its combined output and error.
func tryKubectl(stdin string, args ...string) (string, error) { return stack.Kubectl(stdin, args...) }

func apply(t *testing.T, manifest string) {
	t.Helper()
	kubectl(t, manifest, "apply", "--server-side", "--field-manager=reliability", "-f", "-")
}

func namespace(t *testing.T, name string) string {
	t.Helper()
	kubectl(t, "", "create", "namespace", name)
	return name
}

// until polls cond every 20 ms for at most timeout and returns how long it took.
func until(t *testing.T, what string, timeout time.Duration, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > timeout {
			t.Fatalf("%s: not within %s", what, timeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return time.Since(start)
}

func ready(healthAddr string) bool {
	resp, err := http.Get("http://" + healthAddr + "/readyz")
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// backendServer is an in-test HTTP server registered as a Service's only endpoint. Every response
// carries X-Backend: <name>, so the traffic tally can tell the upstream's answers from the gateway's.
type backendServer struct {
	name string
	// hits counts the requests that reached it.
	hits atomic.Int64
	// fail, when set, makes it answer 503.
	fail atomic.Bool
	// conns is the number of connections open to it (idle keep-alive ones included).
	conns atomic.Int64
	// handler, when set, answers instead of the default behaviour.
	handler atomic.Pointer[http.Handler]
	// seen records request paths that start with "/probe-" (to prove a request never arrived).
	seen pathSet
}

type pathSet struct{ m atomic.Value } // map[string]bool, copy on write (probes are rare)

func (c *pathSet) add(s string) {
	old, _ := c.m.Load().(map[string]bool)
	next := map[string]bool{s: true}
	for k := range old {
		next[k] = true
	}
	c.m.Store(next)
}

func (c *pathSet) has(s string) bool {
	m, _ := c.m.Load().(map[string]bool)
	return m[s]
}

func (b *backendServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b.hits.Add(1)
	if strings.HasPrefix(r.URL.Path, "/probe-") {
		b.seen.add(r.URL.Path)
	}
	if h := b.handler.Load(); h != nil {
		(*h).ServeHTTP(w, r)
		return
	}
	_, _ = io.Copy(io.Discard, r.Body)
	w.Header().Set("X-Backend", b.name)
	if b.fail.Load() {
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = io.WriteString(w, "backend failing on purpose\n")
		return
	}
	w.Header().Set("Content-Type", "text/plain")
	_, _ = io.WriteString(w, "hello from "+b.name+"\n")
}

// backend registers Service ns/name, port 80 "http", whose only endpoint is a new in-test server,
// through an FQDN EndpointSlice under .localhost (followed by a gateway in local-development mode).
func backend(t *testing.T, ns, name string) *backendServer {
	t.Helper()
	b := &backendServer{name: name}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: b, ReadHeaderTimeout: 5 * time.Second, ConnState: func(_ net.Conn, st http.ConnState) {
		switch st {
		case http.StateNew:
			b.conns.Add(1)
		case http.StateClosed, http.StateHijacked:
			b.conns.Add(-1)
		}
	}}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { _ = srv.Close() })
	port := l.Addr().(*net.TCPAddr).Port
	apply(t, localstack.LocalService(ns, name, port))
	return b
}

// enforced waits until a GET through the gateway at addr to host answers code.
func enforced(t *testing.T, addr, host string, code int) {
	t.Helper()
	until(t, fmt.Sprintf("%s answering %d through %s", host, code, addr), 15*time.Second, func() bool {
		a := get(addr, host, "/")
		return a.code == code
	})
}

// condition returns the status of a condition of a policy, read with kubectl.
func condition(t *testing.T, kind, ns, name, cond string) string {
	t.Helper()
	out, err := tryKubectl("", "get", kind, "-n", ns, name,
		"-o", `jsonpath={.status.conditions[?(@.type=="`+cond+`")].status}`)
	if err != nil {
		return ""
	}
	return strings.TrimSpace(out)
}

// breakerState is a CircuitBreaker's status.state, read with kubectl ("" when it cannot be read).
func breakerState(ns, name string) string {
	out, err := tryKubectl("", "get", "circuitbreaker", "-n", ns, name, "-o", "jsonpath={.status.state}")
	if err != nil {
		return ""
	}
	return strings.TrimSpace(out)
}

// metric reads one unlabelled sample (or the sum of a labelled family) from a Prometheus endpoint.
func metric(addr, name string) (float64, error) {
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	var sum float64
	found := false
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "#") {
			continue
		}
		metricName, rest, ok := strings.Cut(line, " ")
		if !ok {
			continue
		}
		if base, _, labelled := strings.Cut(metricName, "{"); base != name || (!labelled && metricName != name) {
			continue
		}
		v, err := strconv.ParseFloat(strings.Fields(rest)[0], 64)
		if err != nil {
			return 0, err
		}
		sum += v
		found = true
	}
	if !found {
		return 0, fmt.Errorf("no metric %s at %s", name, addr)
	}
	return sum, sc.Err()
}

func mib(b float64) float64 { return b / (1 << 20) }
