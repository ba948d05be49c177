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

package reliability

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"resilience.dev/operator/internal/localstack"
)

// neverInTheWay is a RateLimit that never rejects, a CircuitBreaker that never opens on a healthy
// backend and a RetryPolicy, all on one Service.
func neverInTheWay(ns, svc string) string {
	return fmt.Sprintf(`
apiVersion: resilience.dev/v1alpha1
kind: RateLimit
metadata: {name: %[2]s, namespace: %[1]s}
spec:
  targetRefs: [{group: "", kind: Service, name: %[2]s}]
  limits: [{name: all, requests: 100000, period: 1s}]
---
apiVersion: resilience.dev/v1alpha1
kind: CircuitBreaker
metadata: {name: %[2]s, namespace: %[1]s}
spec:
  targetRefs: [{group: "", kind: Service, name: %[2]s}]
  trip: {consecutiveFailures: 5}
  openDuration: 30s
---
apiVersion: resilience.dev/v1alpha1
kind: RetryPolicy
metadata: {name: %[2]s, namespace: %[1]s}
spec:
  targetRefs: [{group: "", kind: Service, name: %[2]s}]
  maxAttempts: 3
`, ns, svc)
}

// admittedRate is the rate of 200 answers among those sent in [from, to).
func admittedRate(answers []answer, from, to time.Time) float64 {
	return float64(count(answers, from, to).codes[200]) / to.Sub(from).Seconds()
}

// The manager is killed (SIGKILL) and restarted under traffic: the gateway keeps enforcing its last
// snapshot, so a rate limit admits the same rate before, during and after, and every request is answered.
func TestManagerKilledAndRestarted(t *testing.T) {
	ns := namespace(t, "fault-manager")
	backend(t, ns, "steady")
	apply(t, fmt.Sprintf(`
apiVersion: resilience.dev/v1alpha1
kind: RateLimit
metadata: {name: steady, namespace: %[1]s}
spec:
  targetRefs: [{group: "", kind: Service, name: steady}]
  limits: [{name: all, requests: 40, period: 1s, burst: 10}]
---
apiVersion: resilience.dev/v1alpha1
kind: CircuitBreaker
metadata: {name: steady, namespace: %[1]s}
spec:
  targetRefs: [{group: "", kind: Service, name: steady}]
  trip: {consecutiveFailures: 5}
---
apiVersion: resilience.dev/v1alpha1
kind: RetryPolicy
metadata: {name: steady, namespace: %[1]s}
spec:
  targetRefs: [{group: "", kind: Service, name: steady}]
  maxAttempts: 2
`, ns))
	host := "steady." + ns
	enforced(t, opts.GatewayListen, host, 200)
	until(t, "RateLimit Programmed", 15*time.Second, func() bool { return condition(t, "ratelimit", ns, "steady", "Programmed") == "True" })

	const limit = 40.0
	tr := startTraffic(60, func() answer { return get(opts.GatewayListen, host, "/") })
	start := time.Now()
	time.Sleep(5 * time.Second)

	killed := time.Now()
	stack.Kill("manager")
	notReady := 0
	for time.Since(killed) < 5*time.Second {
		if !ready(opts.GatewayHealth) {
			notReady++
		}
		time.Sleep(100 * time.Millisecond)
	}
	restarted := time.Now()
	if err := stack.StartManager(context.Background(), managerArgs...); err != nil {
		t.Fatal(err)
	}
	reconnect := until(t, "gateway reconnected to the restarted manager", 30*time.Second, func() bool {
		n, err := metric(opts.ManagerMetrics, "resilience_manager_gateway_replicas")
		return err == nil && n == 1
	})
	time.Sleep(5 * time.Second)
	end := time.Now()
	answers := tr.Stop()

	allAnswered(t, "manager killed and restarted", tr, count(answers, time.Time{}, time.Time{}))
	onlyReasons(t, "manager killed and restarted", count(answers, time.Time{}, time.Time{}), "rate limit")
	if notReady > 0 {
		t.Errorf("the gateway reported not ready %d times while the manager was down", notReady)
	}
	// Each phase admits the limit's rate: the bucket was neither lost nor refilled. The first second
	// is left out (the burst).
	for _, ph := range []struct {
		name     string
		from, to time.Time
	}{
		{"before the kill", start.Add(time.Second), killed},
		{"manager down", killed, restarted},
		{"after the restart", restarted, end},
	} {
		r := admittedRate(answers, ph.from, ph.to)
		t.Logf("%s: %.1f admitted/s (limit %.0f/s, offered 60/s)", ph.name, r, limit)
		if r < 0.8*limit || r > 1.2*limit+10/ph.to.Sub(ph.from).Seconds() {
			t.Errorf("%s: %.1f admitted/s, want about %.0f/s", ph.name, r, limit)
		}
	}
	t.Logf("the gateway reconnected %s after the manager's restart", reconnect.Round(time.Millisecond))
}

// A gateway replica is restarted behind a readiness-checking balancer while the manager is down:
// it is not ready, and gets no traffic, until it holds a snapshot; no request is lost on the way out
// (SIGTERM drains) or in.
func TestGatewayRestart(t *testing.T) {
	ns := namespace(t, "fault-gateway")
	b := backend(t, ns, "web")
	apply(t, neverInTheWay(ns, "web"))
	host := "web." + ns
	enforced(t, opts.GatewayListen, host, 200)

	second := localstack.GatewayAddrs{Listen: freeAddr(), Health: freeAddr(), Metrics: freeAddr()}
	if err := stack.StartGatewayAs("gateway-b", second, "--drain-delay=1s"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { stack.Stop("gateway-b") })
	// 30 s, not 15: once in a clean-clone CI run gateway-b was not ready within 15 s (not seen again
	// in three runs since); the time it took is logged, so a slow start shows.
	took := until(t, "gateway-b ready", 30*time.Second, func() bool { return ready(second.Health) })
	t.Logf("gateway-b ready %s after its start", took.Round(time.Millisecond))
	enforced(t, second.Listen, host, 200)

	a := &balancedGateway{listen: opts.GatewayListen, health: opts.GatewayHealth}
	bb := &balancedGateway{listen: second.Listen, health: second.Health}
	lb := newReadyBalancer(a, bb)
	defer lb.Close()
	tr := startTraffic(80, func() answer { return lb.get(host, "/") })
	time.Sleep(3 * time.Second)

	// SIGTERM: gateway-b fails /readyz, keeps serving for its drain delay, then exits.
	stopped := time.Now()
	stack.Stop("gateway-b")
	drained := time.Since(stopped)
	t.Logf("gateway-b drained and exited in %s", drained.Round(time.Millisecond))
	if drained < time.Second {
		t.Errorf("gateway-b exited %s after SIGTERM, before its 1s drain delay", drained)
	}
	stack.Stop("manager")
	sentToB := bb.sent.Load()

	if err := stack.StartGatewayAs("gateway-b", second, "--drain-delay=1s"); err != nil {
		t.Fatal(err)
	}
	// With no manager, the new gateway-b has no snapshot: it must say so and forward nothing.
	until(t, "gateway-b listening again", 10*time.Second, func() bool {
		_, err := metric(second.Metrics, "go_goroutines")
		return err == nil
	})
	probe := get(second.Listen, host, "/probe-before-snapshot")
	if probe.code != 503 || probe.from != fromGateway {
		t.Errorf("a request to gateway-b before its snapshot got %d from %s (%s), want 503 from the gateway", probe.code, probe.from, probe.reason)
	}
	for range 20 {
		if ready(second.Health) {
			t.Fatal("gateway-b is ready without a snapshot")
		}
		time.Sleep(100 * time.Millisecond)
	}
	if b.seen.has("/probe-before-snapshot") {
		t.Error("gateway-b forwarded a request before it had a snapshot")
	}
	if n := bb.sent.Load(); n != sentToB {
		t.Errorf("the balancer sent %d requests to gateway-b while it was not ready", n-sentToB)
	}

	managerBack := time.Now()
	if err := stack.StartManager(context.Background(), managerArgs...); err != nil {
		t.Fatal(err)
	}
	took = until(t, "gateway-b ready after the manager's return", 30*time.Second, func() bool { return ready(second.Health) })
	t.Logf("gateway-b became ready %s after the manager started", took.Round(time.Millisecond))
	until(t, "traffic through gateway-b again", 10*time.Second, func() bool { return bb.sent.Load() > sentToB+20 })
	time.Sleep(2 * time.Second)
	answers := tr.Stop()

	tl := count(answers, time.Time{}, time.Time{})
	allAnswered(t, "gateway restart", tr, tl)
	if tl.codes[200] != tl.total {
		t.Errorf("want every request answered 200 by the upstream, got %s", tl)
	}
	t.Logf("gateway-b served %d requests before its restart and %d after (manager back at +%s)", sentToB, bb.sent.Load()-sentToB,
		time.Since(managerBack).Round(time.Millisecond))
}

// kube-apiserver stops: the gateway keeps enforcing its last snapshot (a breaker still opens), the
// manager survives, and when the API server returns the breaker's status catches up.
func TestAPIServerStoppedAndRestarted(t *testing.T) {
	ns := namespace(t, "fault-apiserver")
	b := backend(t, ns, "api")
	apply(t, fmt.Sprintf(`
apiVersion: resilience.dev/v1alpha1
kind: CircuitBreaker
metadata: {name: api, namespace: %[1]s}
spec:
  targetRefs: [{group: "", kind: Service, name: api}]
  failureCriteria: {statusCodes: ["503"]}
  trip: {consecutiveFailures: 5}
  openDuration: 60s
`, ns))
	host := "api." + ns
	enforced(t, opts.GatewayListen, host, 200)
	until(t, "CircuitBreaker Programmed", 15*time.Second, func() bool { return condition(t, "circuitbreaker", ns, "api", "Programmed") == "True" })

	tr := startTraffic(50, func() answer { return get(opts.GatewayListen, host, "/") })
	time.Sleep(2 * time.Second)
	stopped := time.Now()
	if err := cp.StopAPIServer(); err != nil {
		t.Fatal(err)
	}
	t.Logf("kube-apiserver stopped in %s", time.Since(stopped).Round(time.Millisecond))
	time.Sleep(time.Second)
	b.fail.Store(true) // the breaker must still open, with no API server
	opened := until(t, "breaker open during the outage", 10*time.Second, func() bool {
		a := get(opts.GatewayListen, host, "/")
		return a.from == fromGateway && a.code == 503
	})
	if !ready(opts.GatewayHealth) {
		t.Error("the gateway is not ready during the API server outage")
	}
	time.Sleep(time.Second)
	restarting := time.Now()
	if err := cp.StartAPIServer(); err != nil {
		t.Fatal(err)
	}
	t.Logf("API server down for %s; the breaker opened %s after the backend began failing; kube-apiserver took %s to be healthy again",
		time.Since(stopped).Round(time.Millisecond), opened.Round(time.Millisecond), time.Since(restarting).Round(time.Millisecond))
	// A leader that cannot renew its lease within the renew deadline (10 s) exits rather than risk
	// two leaders; in a cluster the kubelet restarts it, and here the test does.
	if !stack.Running("manager") {
		t.Logf("the manager exited during the outage (lost its lease); restarting it as the kubelet would")
		if err := stack.StartManager(context.Background(), managerArgs...); err != nil {
			t.Fatal(err)
		}
	}
	caught := until(t, "CircuitBreaker status Open after the outage", 60*time.Second, func() bool {
		return breakerState(ns, "api") == "Open"
	})
	t.Logf("status showed Open %s after the API server was back", caught.Round(time.Millisecond))
	answers := tr.Stop()
	if !stack.Running("gateway") {
		t.Error("the gateway exited during the outage")
	}
	tl := count(answers, time.Time{}, time.Time{})
	allAnswered(t, "API server outage", tr, tl)
	onlyReasons(t, "API server outage", tl, "circuit")
	if !ready(opts.ManagerHealth) {
		t.Error("the manager is not ready after the outage")
	}
}

// The backend flaps between healthy and failing: the breaker opens and closes again, every request
// is answered, and retries stay within the budget.
func TestFlappingBackend(t *testing.T) {
	ns := namespace(t, "fault-flapping")
	b := backend(t, ns, "flappy")
	apply(t, fmt.Sprintf(`
apiVersion: resilience.dev/v1alpha1
kind: CircuitBreaker
metadata: {name: flappy, namespace: %[1]s}
spec:
  targetRefs: [{group: "", kind: Service, name: flappy}]
  failureCriteria: {statusCodes: ["503"]}
  trip: {consecutiveFailures: 5}
  openDuration: 1s
---
apiVersion: resilience.dev/v1alpha1
kind: RetryPolicy
metadata: {name: flappy, namespace: %[1]s}
spec:
  targetRefs: [{group: "", kind: Service, name: flappy}]
  maxAttempts: 3
  backoff: {base: 5ms, max: 20ms}
  budget: {percent: 20, minRetriesPerSecond: 5, window: 10s}
`, ns))
	host := "flappy." + ns
	enforced(t, opts.GatewayListen, host, 200)

	const rate, seconds = 50, 16
	tr := startTraffic(rate, func() answer { return get(opts.GatewayListen, host, "/") })
	start := time.Now()
	for i := range seconds / 2 {
		b.fail.Store(i%2 == 0)
		time.Sleep(2 * time.Second)
	}
	b.fail.Store(false)
	elapsed := time.Since(start)
	// After the last failing phase the breaker closes through a probe.
	until(t, "breaker closed at the end", 10*time.Second, func() bool { return get(opts.GatewayListen, host, "/").code == 200 })
	answers := tr.Stop()

	tl := count(answers, time.Time{}, time.Time{})
	allAnswered(t, "flapping backend", tr, tl)
	onlyReasons(t, "flapping backend", tl, "circuit")
	retries := 0
	for _, a := range answers {
		retries += max(a.attempts-1, 0) // a request the open breaker refused made 0 tries
	}
	// Budget: 20% of the requests plus 5 retries per second, in every 10 s window; over the run that is
	// at most 20% of the requests plus 5/s for the run and one more window.
	bound := 0.2*float64(tl.total) + 5*(elapsed.Seconds()+10)
	t.Logf("%d retries for %d requests in %s (budget bound %.0f); %d answered by the upstream, %d rejected by the open breaker",
		retries, tl.total, elapsed.Round(time.Millisecond), bound, tl.upstream, tl.gateway)
	if retries <= 0 {
		t.Error("no retries were made against a flapping backend")
	}
	if float64(retries) > bound {
		t.Errorf("%d retries exceed the budget bound %.0f", retries, bound)
	}
	events := kubectl(t, "", "get", "events", "-n", ns, "-o", "jsonpath={range .items[*]}{.reason}{\"\\n\"}{end}")
	opens, closes := strings.Count(events, "CircuitOpened"), strings.Count(events, "CircuitClosed")
	t.Logf("events: %d CircuitOpened, %d CircuitClosed", opens, closes)
	if opens < 2 || closes < 2 {
		t.Errorf("want the breaker to open and close at least twice each, events: %d opened, %d closed", opens, closes)
	}
	until(t, "status Closed at the end", 10*time.Second, func() bool {
		return breakerState(ns, "flappy") == "Closed"
	})
}

// Two manager replicas with leader election; the leader is killed: the other takes over status
// within its lease.
func TestLeaderFailover(t *testing.T) {
	ns := namespace(t, "fault-leader")
	backend(t, ns, "svc")
	backend(t, ns, "late") // gets its policy after the leader's death
	apply(t, neverInTheWay(ns, "svc"))
	host := "svc." + ns
	enforced(t, opts.GatewayListen, host, 200)

	const lease = 4 * time.Second
	timing := []string{"--leader-elect", "--leader-elect-lease-duration=" + lease.String(),
		"--leader-elect-renew-deadline=3s", "--leader-elect-retry-period=500ms"}
	stack.Stop("manager") // releases the lease
	ctx := context.Background()
	a := localstack.ManagerAddrs{Metrics: freeAddr(), Health: freeAddr(), Stream: freeAddr()}
	if err := stack.StartManagerAs(ctx, "manager-a", a, timing...); err != nil {
		t.Fatal(err)
	}
	until(t, "manager-a leads", 30*time.Second, func() bool { return leads(a.Metrics) })
	// manager-b serves the stream at the address the gateway knows, so it reconnects there.
	bAddrs := localstack.ManagerAddrs{Metrics: opts.ManagerMetrics, Health: opts.ManagerHealth, Stream: opts.ManagerStream}
	if err := stack.StartManagerAs(ctx, "manager-b", bAddrs, timing...); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		stack.Stop("manager-a")
		stack.Stop("manager-b")
		if err := stack.StartManager(context.Background(), managerArgs...); err != nil {
			t.Errorf("restart the primary manager: %v", err)
		}
	})
	until(t, "gateway connected to manager-b", 30*time.Second, func() bool {
		n, err := metric(bAddrs.Metrics, "resilience_manager_gateway_replicas")
		return err == nil && n == 1
	})
	if leads(bAddrs.Metrics) {
		t.Fatal("both replicas claim leadership")
	}
	holder := leaseHolder(t)

	tr := startTraffic(50, func() answer { return get(opts.GatewayListen, host, "/") })
	time.Sleep(2 * time.Second)
	killed := time.Now()
	stack.Kill("manager-a")
	// A change made right after the kill: only a leader writes its status.
	apply(t, fmt.Sprintf(`
apiVersion: resilience.dev/v1alpha1
kind: RateLimit
metadata: {name: after-failover, namespace: %[1]s}
spec:
  targetRefs: [{group: "", kind: Service, name: late}]
  limits: [{name: all, requests: 100000, period: 1s}]
`, ns))
	tookOver := until(t, "manager-b leads", 3*lease, func() bool { return leads(bAddrs.Metrics) })
	for condition(t, "ratelimit", ns, "after-failover", "Accepted") != "True" ||
		condition(t, "ratelimit", ns, "after-failover", "Programmed") != "True" {
		if time.Since(killed) > 3*lease {
			out, _ := tryKubectl("", "get", "ratelimit", "-n", ns, "after-failover", "-o", "yaml")
			t.Fatalf("the status of a policy created after the kill is not Accepted and Programmed within %s:\n%s", 3*lease, out)
		}
		time.Sleep(20 * time.Millisecond)
	}
	sinceKill := time.Since(killed)
	answers := tr.Stop()
	tl := count(answers, time.Time{}, time.Time{})
	allAnswered(t, "leader failover", tr, tl)
	if tl.codes[200] != tl.total {
		t.Errorf("want every request answered 200, got %s", tl)
	}
	if h := leaseHolder(t); h == holder {
		t.Errorf("the lease is still held by %s", h)
	}
	t.Logf("lease %s: manager-b led %s after the kill; the new policy was Accepted and Programmed %s after the kill",
		lease, tookOver.Round(time.Millisecond), sinceKill.Round(time.Millisecond))
	if sinceKill > lease+5*time.Second {
		t.Errorf("status took %s after the leader's death, lease is %s", sinceKill, lease)
	}
}

// leads reads controller-runtime's leader_election_master_status from a manager's metrics.
func leads(metricsAddr string) bool {
	v, err := metric(metricsAddr, "leader_election_master_status")
	return err == nil && v == 1
}

func leaseHolder(t *testing.T) string {
	t.Helper()
	var l coordinationv1.Lease
	if err := k8s.Get(context.Background(), client.ObjectKey{Namespace: localstack.SystemNamespace, Name: "resilience-operator.resilience.dev"}, &l); err != nil {
		t.Fatalf("read the leader lease: %v", err)
	}
	if l.Spec.HolderIdentity == nil {
		return ""
	}
	return *l.Spec.HolderIdentity
}
