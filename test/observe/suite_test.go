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

// Package observe checks the Grafana dashboard in config/grafana against the metrics the real
// manager and gateway expose: both run against a local control plane, traffic goes through policies
// of every kind so that the series exist, and /metrics of both is scraped and parsed.
package observe

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"resilience.dev/operator/internal/localstack"
)

var harness *localstack.Harness

func TestMain(m *testing.M) { os.Exit(run(m)) }

func run(m *testing.M) int {
	h, err := localstack.NewHarness("resilience-observe-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer h.Close()
	harness = h
	code := m.Run()
	if code != 0 {
		fmt.Fprintf(os.Stderr, "--- last 100 lines of the manager and gateway logs ---\n%s\n", h.TailLog(100))
	}
	return code
}

// kubectl runs the real kubectl against the local control plane.
func kubectl(t *testing.T, stdin string, args ...string) string {
	t.Helper()
	out, err := harness.Stack.Kubectl(stdin, args...)
	if err != nil {
		t.Fatalf("kubectl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

var httpClient = &http.Client{Timeout: 10 * time.Second}

// send makes one request through the gateway, naming the Service by Host, and returns its status
// code and the X-Resilience-Stale header.
func send(t *testing.T, host, path string) (int, bool) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, "http://"+harness.Opts.GatewayListen+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Host = host
	resp, err := httpClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s%s: %v", host, path, err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, resp.Header.Get("X-Resilience-Stale") == "true"
}

// until polls cond every 20 ms for at most timeout.
func until(t *testing.T, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s", what, timeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// backend registers Service ns/name whose only endpoint is an in-test HTTP server.
func backend(t *testing.T, ns, name string, h http.Handler) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { _ = srv.Close() })
	kubectl(t, localstack.LocalService(ns, name, l.Addr().(*net.TCPAddr).Port), "apply", "-f", "-")
}
