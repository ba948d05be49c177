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

package e2e

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	eventsv1 "k8s.io/api/events/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"resilience.dev/operator/api/v1alpha1"
)

// The tests share one manager and one gateway but not their order: each brings the stack up with
// stackUp and works in a namespace of its own.

func TestGatewayIsNotReadyUntilItHasASnapshot(t *testing.T) {
	// A fresh gateway with no manager: stop both (an earlier test may have started them). The manager
	// must run once to create the stream's CA; then the gateway starts with no manager.
	stack.Stop("gateway")
	stack.Stop("manager")
	if err := stack.StartManager(context.Background()); err != nil {
		t.Fatal(err)
	}
	stack.Stop("manager")
	if err := stack.StartGateway(); err != nil {
		t.Fatal(err)
	}
	until(t, "gateway health endpoint up", 20*time.Second, func() bool {
		resp, err := http.Get("http://" + opts.GatewayHealth + "/healthz")
		if err == nil {
			resp.Body.Close()
		}
		return err == nil
	})
	for range 10 { // a second without a manager: never ready
		if gatewayReady() {
			t.Fatal("the gateway is ready with no snapshot")
		}
		time.Sleep(100 * time.Millisecond)
	}
	if r := send(t, http.MethodGet, "anything.default", "/", nil); r.code != http.StatusServiceUnavailable {
		t.Errorf("traffic before the first snapshot got %d, want 503", r.code)
	}
	if err := stack.StartManager(context.Background()); err != nil {
		t.Fatal(err)
	}
	took := until(t, "gateway ready once the manager is up", 30*time.Second, gatewayReady)
	t.Logf("manager started -> gateway ready in %s (includes the gateway's reconnect backoff)", took)
}

func TestSamplesApply(t *testing.T) {
	stackUp(t)
	out := kubectl(t, "", "apply", "-f", "../../config/samples/")
	for _, want := range []string{"ratelimit.resilience.dev/checkout", "circuitbreaker.resilience.dev/payments", "retrypolicy.resilience.dev/catalog"} {
		if !strings.Contains(out, want) {
			t.Errorf("kubectl apply output lacks %s:\n%s", want, out)
		}
	}
	until(t, "samples Accepted and Programmed", 10*time.Second, func() bool {
		out := kubectl(t, "", "get", "resilience", "-n", "shop", "--no-headers")
		return strings.Count(out, "True") == 6 // Accepted and Programmed, three policies
	})
}

func rateLimitManifest(ns string, requests int) string {
	return fmt.Sprintf(`
apiVersion: resilience.dev/v1alpha1
kind: RateLimit
metadata: {name: orders, namespace: %s}
spec:
  targetRefs: [{name: orders}]
  limits: [{name: per-minute, requests: %d, period: 1m}]
`, ns, requests)
}

func TestRateLimitLifecycle(t *testing.T) {
	stackUp(t)
	ns := namespace(t, "e2e-ratelimit")
	var hits atomic.Int64
	backend(t, ns, "orders", http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		hits.Add(1)
		_, _ = w.Write([]byte("ok"))
	}))
	host := "orders." + ns
	if r := send(t, http.MethodGet, host, "/", nil); r.code != http.StatusForbidden {
		t.Fatalf("a Service with no policy got %d, want 403", r.code)
	}

	// Apply: enforced within a second.
	applied := time.Now()
	kubectl(t, rateLimitManifest(ns, 5), "apply", "--server-side", "-f", "-")
	t.Logf("kubectl apply --server-side itself took %s", time.Since(applied))
	var first response
	until(t, "the RateLimit enforced", 5*time.Second, func() bool {
		first = send(t, http.MethodGet, host, "/", nil)
		return first.header.Get("X-RateLimit-Limit") == "5"
	})
	took := time.Since(applied)
	t.Logf("kubectl apply -> enforced in %s", took)
	if took > time.Second {
		t.Errorf("apply -> enforced took %s, want under 1s", took)
	}
	// Exactly the burst passes: the first enforced request took one token, four more pass.
	for i := 2; i <= 5; i++ {
		if r := send(t, http.MethodGet, host, "/", nil); r.code != http.StatusOK {
			t.Fatalf("request %d got %d, want 200", i, r.code)
		}
	}
	r := send(t, http.MethodGet, host, "/", nil)
	if r.code != http.StatusTooManyRequests || r.header.Get("Retry-After") == "" ||
		!strings.Contains(r.body, "orders") || !strings.Contains(r.body, "per-minute") {
		t.Fatalf("6th request: %d Retry-After=%q body %q; want 429 naming the Service and the limit", r.code, r.header.Get("Retry-After"), r.body)
	}
	rl := &v1alpha1.RateLimit{}
	until(t, "Programmed True at generation 1", 5*time.Second, func() bool {
		return programmedAt(t, ns, "orders", rl, 1)
	})

	// Edit: the new value is enforced and Programmed follows the new generation.
	edited := time.Now()
	kubectl(t, rateLimitManifest(ns, 50), "apply", "--server-side", "-f", "-")
	t.Logf("kubectl apply --server-side (edit) itself took %s", time.Since(edited))
	until(t, "the edited RateLimit enforced", 5*time.Second, func() bool {
		return send(t, http.MethodGet, host, "/", nil).header.Get("X-RateLimit-Limit") == "50"
	})
	t.Logf("kubectl apply (edit) -> enforced in %s", time.Since(edited))
	if took := time.Since(edited); took > time.Second {
		t.Errorf("edit -> enforced took %s, want under 1s", took)
	}
	until(t, "Programmed True at generation 2", 5*time.Second, func() bool {
		return programmedAt(t, ns, "orders", rl, 2)
	})
	if msg := meta.FindStatusCondition(rl.Status.Conditions, v1alpha1.ConditionProgrammed).Message; msg != "1/1 gateway replicas" {
		t.Errorf("Programmed message %q, want 1/1 gateway replicas", msg)
	}

	// Manager stopped: the gateway stays ready and keeps enforcing its last snapshot.
	stack.Stop("manager")
	if !gatewayReady() {
		t.Error("the gateway stopped being ready when the manager went away")
	}
	if r := send(t, http.MethodGet, host, "/", nil); r.header.Get("X-RateLimit-Limit") != "50" {
		t.Errorf("without the manager the limit is no longer enforced: %d %v", r.code, r.header)
	}
	if err := stack.StartManager(context.Background()); err != nil {
		t.Fatal(err)
	}

	// Delete: enforcement stops, and a Service left with no policy is not managed any more.
	deleted := time.Now()
	kubectl(t, "", "delete", "ratelimit", "orders", "-n", ns)
	until(t, "the Service unmanaged after the delete", 15*time.Second, func() bool {
		return send(t, http.MethodGet, host, "/", nil).code == http.StatusForbidden
	})
	t.Logf("kubectl delete -> 403 in %s (includes the gateway reconnecting to the restarted manager)", time.Since(deleted))
}

func programmedAt(t *testing.T, ns, name string, rl *v1alpha1.RateLimit, gen int64) bool {
	t.Helper()
	if err := k8s.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, rl); err != nil {
		return false
	}
	c := meta.FindStatusCondition(rl.Status.Conditions, v1alpha1.ConditionProgrammed)
	return rl.Generation == gen && c != nil && c.Status == metav1.ConditionTrue && c.ObservedGeneration == gen
}

func TestBreakerOpensVisiblyAndRecovers(t *testing.T) {
	stackUp(t)
	ns := namespace(t, "e2e-breaker")
	var failing atomic.Bool
	failing.Store(true)
	backend(t, ns, "payments", http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		if failing.Load() {
			http.Error(w, "boom", http.StatusInternalServerError)
			return
		}
		_, _ = w.Write([]byte("paid"))
	}))
	kubectl(t, fmt.Sprintf(`
apiVersion: resilience.dev/v1alpha1
kind: CircuitBreaker
metadata: {name: payments, namespace: %s}
spec:
  targetRefs: [{name: payments}]
  trip: {consecutiveFailures: 3}
  openDuration: 2s
`, ns), "apply", "-f", "-")
	host := "payments." + ns
	until(t, "the breaker in force", 5*time.Second, func() bool {
		return send(t, http.MethodGet, host, "/", nil).code == http.StatusInternalServerError
	})
	for range 2 {
		send(t, http.MethodGet, host, "/", nil)
	}
	r := send(t, http.MethodGet, host, "/", nil)
	if r.code != http.StatusServiceUnavailable || r.header.Get("X-Resilience-Circuit") != "open" || r.header.Get("Retry-After") == "" {
		t.Fatalf("after 3 failures: %d %v %q; want 503 with X-Resilience-Circuit: open and Retry-After", r.code, r.header, r.body)
	}
	opened := time.Now()
	until(t, "kubectl get cb shows Open", 5*time.Second, func() bool {
		return strings.Contains(kubectl(t, "", "get", "cb", "payments", "-n", ns, "--no-headers"), "Open")
	})
	t.Logf("breaker opened -> kubectl get cb shows Open in %s", time.Since(opened))
	if took := time.Since(opened); took > 2*time.Second {
		t.Errorf("status followed after %s, want within 2s", took)
	}
	until(t, "a CircuitOpened Event", 5*time.Second, func() bool {
		var evs eventsv1.EventList
		if err := k8s.List(context.Background(), &evs, client.InNamespace(ns)); err != nil {
			return false
		}
		for _, e := range evs.Items {
			if e.Reason == "CircuitOpened" && e.Regarding.Name == "payments" && strings.Contains(e.Note, "local-gateway") {
				return true
			}
		}
		return false
	})

	// Recovery: after openDuration a probe goes through; the backend is healthy again, so it closes.
	failing.Store(false)
	until(t, "the breaker closed again", 10*time.Second, func() bool {
		return send(t, http.MethodGet, host, "/", nil).code == http.StatusOK
	})
	until(t, "kubectl get cb shows Closed", 5*time.Second, func() bool {
		return strings.Contains(kubectl(t, "", "get", "cb", "payments", "-n", ns, "--no-headers"), "Closed")
	})
}

func TestRetriesTurnAFlakyBackendIntoSuccess(t *testing.T) {
	stackUp(t)
	ns := namespace(t, "e2e-retry")
	var calls atomic.Int64
	backend(t, ns, "catalog", http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		if calls.Add(1)%3 != 0 { // the first two tries of every request fail
			http.Error(w, "unavailable", http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte("item"))
	}))
	kubectl(t, fmt.Sprintf(`
apiVersion: resilience.dev/v1alpha1
kind: RetryPolicy
metadata: {name: catalog, namespace: %s}
spec:
  targetRefs: [{name: catalog}]
  maxAttempts: 3
  backoff: {base: 1ms, max: 5ms}
  budget: {percent: 100, minRetriesPerSecond: 100}   # this test retries every request twice
`, ns), "apply", "-f", "-")
	host := "catalog." + ns
	until(t, "the RetryPolicy in force", 5*time.Second, func() bool {
		return send(t, http.MethodGet, host, "/", nil).header.Get("X-Resilience-Attempts") != ""
	})
	calls.Store(0)
	for i := range 10 {
		r := send(t, http.MethodGet, host, "/", nil)
		if r.code != http.StatusOK || r.header.Get("X-Resilience-Attempts") != "3" {
			t.Fatalf("request %d: %d attempts %q; want 200 after 3 tries", i, r.code, r.header.Get("X-Resilience-Attempts"))
		}
	}
}

func TestForeignHostsAndConnectRefused(t *testing.T) {
	stackUp(t)
	cases := []struct {
		desc   string
		method string
		host   string
	}{
		{desc: "an external host", method: http.MethodGet, host: "example.com"},
		{desc: "the metadata address", method: http.MethodGet, host: "169.254.169.254"},
		{desc: "an unknown Service", method: http.MethodGet, host: "nothing.nowhere"},
	}
	for _, tc := range cases {
		t.Run(tc.desc, func(t *testing.T) {
			r := send(t, tc.method, tc.host, "/", nil)
			if r.code != http.StatusForbidden || strings.Count(strings.TrimSpace(r.body), "\n") != 0 {
				t.Errorf("%s: %d %q, want 403 with a one-line reason", tc.host, r.code, r.body)
			}
		})
	}
}

// TestMalformedAndHostileRequests speaks raw HTTP/1.1 to the gateway process: each bad request gets a
// clear status code, and nothing is forwarded.
func TestMalformedAndHostileRequests(t *testing.T) {
	stackUp(t)
	huge := strings.Repeat("a", 2<<20)
	cases := []struct {
		desc string
		raw  string
		want string
	}{
		{desc: "garbage request line", raw: "GARBAGE\r\n\r\n", want: "HTTP/1.1 400"},
		{desc: "oversized header", raw: "GET / HTTP/1.1\r\nHost: anything.default\r\nX-Big: " + huge + "\r\n\r\n", want: "HTTP/1.1 431"},
		{desc: "CONNECT", raw: "CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n", want: "HTTP/1.1 403"},
		{desc: "absolute-form to an external host", raw: "GET http://example.com/ HTTP/1.1\r\nHost: example.com\r\n\r\n", want: "HTTP/1.1 403"},
		{desc: "absolute-form to the metadata address", raw: "GET http://169.254.169.254/latest/meta-data HTTP/1.1\r\nHost: 169.254.169.254\r\n\r\n", want: "HTTP/1.1 403"},
		{desc: "no Host", raw: "GET / HTTP/1.1\r\n\r\n", want: "HTTP/1.1 400"},
	}
	for _, tc := range cases {
		t.Run(tc.desc, func(t *testing.T) {
			conn, err := net.DialTimeout("tcp", opts.GatewayListen, 5*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
			_, _ = conn.Write([]byte(tc.raw)) // the server may cut an oversized request short
			status, err := bufio.NewReader(conn).ReadString('\n')
			if err != nil {
				t.Fatalf("no answer: %v", err)
			}
			if !strings.HasPrefix(status, tc.want) {
				t.Errorf("answered %q, want %s", strings.TrimSpace(status), tc.want)
			}
		})
	}
}

// TestAllThreePatternsComposed puts a RateLimit, a CircuitBreaker and a RetryPolicy on one Service:
// each admitted request is retried past one failure, the breaker sees every try but never trips, and
// the rate limit counts client requests, not tries.
func TestAllThreePatternsComposed(t *testing.T) {
	stackUp(t)
	ns := namespace(t, "e2e-composed")
	var tries atomic.Int64
	backend(t, ns, "shop", http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		if tries.Add(1)%2 == 1 { // every first try fails
			http.Error(w, "busy", http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte("ok"))
	}))
	kubectl(t, fmt.Sprintf(`
apiVersion: resilience.dev/v1alpha1
kind: RateLimit
metadata: {name: shop, namespace: %[1]s}
spec:
  targetRefs: [{name: shop}]
  limits: [{name: per-minute, requests: 5, period: 1m}]
---
apiVersion: resilience.dev/v1alpha1
kind: CircuitBreaker
metadata: {name: shop, namespace: %[1]s}
spec:
  targetRefs: [{name: shop}]
  trip: {consecutiveFailures: 2}
---
apiVersion: resilience.dev/v1alpha1
kind: RetryPolicy
metadata: {name: shop, namespace: %[1]s}
spec:
  targetRefs: [{name: shop}]
  maxAttempts: 3
  backoff: {base: 1ms, max: 2ms}
  budget: {percent: 100, minRetriesPerSecond: 100}
`, ns), "apply", "--server-side", "-f", "-")
	host := "shop." + ns
	until(t, "all three policies Programmed", 10*time.Second, func() bool {
		return strings.Count(kubectl(t, "", "get", "resilience", "-n", ns, "--no-headers"), "True") == 6
	})
	tries.Store(0)
	for i := 1; i <= 5; i++ {
		r := send(t, http.MethodGet, host, "/", nil)
		if r.code != http.StatusOK || r.header.Get("X-Resilience-Attempts") != "2" || r.header.Get("X-RateLimit-Remaining") != fmt.Sprint(5-i) {
			t.Fatalf("request %d: %d attempts %q remaining %q; want 200 after 2 tries with %d left",
				i, r.code, r.header.Get("X-Resilience-Attempts"), r.header.Get("X-RateLimit-Remaining"), 5-i)
		}
	}
	r := send(t, http.MethodGet, host, "/", nil)
	if r.code != http.StatusTooManyRequests {
		t.Fatalf("6th request got %d, want 429 (the limit counts requests, not tries)", r.code)
	}
	if got := tries.Load(); got != 10 {
		t.Errorf("the backend saw %d tries, want 10: the 429 must not reach it and no try may be lost", got)
	}
	if out := kubectl(t, "", "get", "cb", "shop", "-n", ns, "--no-headers"); !strings.Contains(out, "Closed") {
		t.Errorf("a failure followed by a success each time must not trip 2 consecutive failures: %s", out)
	}
}
