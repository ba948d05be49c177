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

package observe

import (
	"context"
	"fmt"
	"net/http"
	"sync/atomic"
	"testing"
	"time"
)

const policies = `
apiVersion: resilience.dev/v1alpha1
kind: RateLimit
metadata: {name: limited, namespace: %[1]s}
spec:
  targetRefs: [{name: limited}]
  limits: [{name: total, requests: 2, period: 1m}]
---
apiVersion: resilience.dev/v1alpha1
kind: RateLimit
metadata: {name: dry, namespace: %[1]s}
spec:
  targetRefs: [{name: dry}]
  limits: [{name: total, requests: 1, period: 1m}]
  mode: DryRun
---
apiVersion: resilience.dev/v1alpha1
kind: CircuitBreaker
metadata: {name: flaky, namespace: %[1]s}
spec:
  targetRefs: [{name: flaky}]
  trip: {consecutiveFailures: 1}
  openDuration: 60s
  fallback: {serveStale: 5m}
---
apiVersion: resilience.dev/v1alpha1
kind: RetryPolicy
metadata: {name: retried, namespace: %[1]s}
spec:
  targetRefs: [{name: retried}]
  maxAttempts: 3
  retryOn: {statusCodes: ["503"]}
  methods: [GET]
  backoff: {strategy: Fixed, base: 1ms}
  respectRetryAfter: true
  timeout: 5s
  hedge: {delay: 50ms, maxHedges: 1}
`

// traffic starts the manager and the gateway and sends requests through a policy of each kind, so
// that every series the dashboard reads exists: requests and codes, rate-limit rejections and
// dry-run rejections, a breaker that opens (its state, the transition the manager counts, a stale
// response), retries by status, a retry skipped for Retry-After, a hedge, upstream latency.
func traffic(t *testing.T) {
	t.Helper()
	s := harness.Stack
	if err := s.StartManager(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := s.StartGateway(); err != nil {
		t.Fatal(err)
	}
	until(t, "gateway ready", 30*time.Second, func() bool {
		resp, err := http.Get("http://" + harness.Opts.GatewayHealth + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	const ns = "observe"
	kubectl(t, "", "create", "namespace", ns)
	ok := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok")) })
	backend(t, ns, "limited", ok)
	backend(t, ns, "dry", ok)
	var failing atomic.Bool
	backend(t, ns, "flaky", http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		if failing.Load() {
			w.WriteHeader(http.StatusInternalServerError)
			return
		}
		_, _ = w.Write([]byte("ok"))
	}))
	var slowOnce atomic.Bool
	backend(t, ns, "retried", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/unavailable":
			w.WriteHeader(http.StatusServiceUnavailable)
		case "/later":
			w.Header().Set("Retry-After", "3600")
			w.WriteHeader(http.StatusServiceUnavailable)
		case "/slow":
			if slowOnce.CompareAndSwap(false, true) {
				time.Sleep(500 * time.Millisecond) // the first try is slow: the hedge answers
			}
		}
		_, _ = w.Write([]byte("ok"))
	}))
	kubectl(t, fmt.Sprintf(policies, ns), "apply", "--server-side", "-f", "-")
	for _, svc := range []string{"limited", "dry", "flaky", "retried"} {
		until(t, svc+" enforced", 15*time.Second, func() bool {
			code, _ := send(t, svc+"."+ns, "/")
			return code == http.StatusOK
		})
	}
	sendAll(t, ns, &failing)
}

// sendAll sends the requests that make the series; each step checks the answer it causes.
func sendAll(t *testing.T, ns string, failing *atomic.Bool) {
	t.Helper()
	want := func(host, path string, code int) {
		t.Helper()
		if got, _ := send(t, host+"."+ns, path); got != code {
			t.Errorf("GET %s.%s%s: %d, want %d", host, ns, path, got, code)
		}
	}
	for range 3 { // "limited" allowed 2 a minute, and one went through while waiting for enforcement
		send(t, "limited."+ns, "/")
	}
	want("limited", "/", http.StatusTooManyRequests)
	for range 3 {
		want("dry", "/", http.StatusOK) // DryRun: counted, not refused
	}
	want("flaky", "/page", http.StatusOK) // kept for serveStale
	failing.Store(true)
	want("flaky", "/page", http.StatusInternalServerError) // trips the breaker (one failure)
	if code, stale := send(t, "flaky."+ns, "/page"); code != http.StatusOK || !stale {
		t.Errorf("GET flaky/page with the breaker open: %d stale=%v, want a stale 200", code, stale)
	}
	want("retried", "/unavailable", http.StatusServiceUnavailable) // two retries, both 503
	want("retried", "/later", http.StatusServiceUnavailable)       // retry skipped: Retry-After too long
	want("retried", "/slow", http.StatusOK)                        // hedged after 50ms
}
