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
// Package e2e runs the operator as it runs for real: the manager and gateway binaries as separate
// processes against a local control plane, policies applied with kubectl, traffic over real sockets to
// backends registered as FQDN endpoints under .localhost.
package e2e

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/client"

	"resilience.dev/operator/internal/localstack"
)

var (
	stack   *localstack.Stack
	k8s     client.Client
	opts    localstack.Options
	harness *localstack.Harness
)

func TestMain(m *testing.M) { os.Exit(run(m)) }

func run(m *testing.M) int {
	h, err := localstack.NewHarness("resilience-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer h.Close()
	stack, k8s, opts, harness = h.Stack, h.Client, h.Opts, h
	code := m.Run()
	if code != 0 {
		tailLog(200)
	}
	return code
}

func tailLog(lines int) {
	fmt.Fprintf(os.Stderr, "--- last %d lines of the manager and gateway logs ---\n%s\n", lines, harness.TailLog(lines))
}

// kubectl runs the real kubectl against the local control plane.
func kubectl(t *testing.T, stdin string, args ...string) string {
	t.Helper()
	out, err := stack.Kubectl(stdin, args...)
	if err != nil {
		t.Fatalf("kubectl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

// response is what the tests need of one answer.
type response struct {
	code   int
	header http.Header
	body   string
}

var httpClient = &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 64}}

// send makes one request through the gateway, naming the Service by Host.
func send(t *testing.T, method, host, path string, header http.Header) response {
	t.Helper()
	req, err := http.NewRequest(method, "http://"+opts.GatewayListen+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Host = host
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s%s: %v", method, host, path, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return response{code: resp.StatusCode, header: resp.Header, body: string(body)}
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

// stackUp starts the manager and the gateway unless they run, and waits until the gateway is ready,
// so that a test needs no earlier one to have set the stack up.
func stackUp(t *testing.T) {
	t.Helper()
	if !stack.Running("manager") {
		if err := stack.StartManager(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	if !stack.Running("gateway") {
		if err := stack.StartGateway(); err != nil {
			t.Fatal(err)
		}
	}
	until(t, "gateway ready", 30*time.Second, gatewayReady)
}

func gatewayReady() bool {
	resp, err := http.Get("http://" + opts.GatewayHealth + "/readyz")
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// backend registers a Service whose only endpoint is an in-test HTTP server, through an FQDN
// EndpointSlice under .localhost (the API server refuses loopback addresses).
func backend(t *testing.T, ns, name string, h http.Handler) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { _ = srv.Close() })
	port := l.Addr().(*net.TCPAddr).Port
	kubectl(t, localstack.LocalService(ns, name, port), "apply", "-f", "-")
}

// namespaces counts the namespaces the tests created, so that each gets a name of its own.
var namespaces atomic.Int64

// namespace creates a namespace for one test, named prefix-N: a test run again (-count) starts
// afresh, since the local control plane never finishes deleting a namespace.
func namespace(t *testing.T, prefix string) string {
	t.Helper()
	name := fmt.Sprintf("%s-%d", prefix, namespaces.Add(1))
	kubectl(t, "", "create", "namespace", name)
	return name
}
