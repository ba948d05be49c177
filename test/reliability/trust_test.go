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
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"

	"resilience.dev/operator/internal/distribution"
	"resilience.dev/operator/internal/localstack"
)

// Without a valid gateway token, a client of the manager's stream reads no snapshot and its breaker
// reports change nothing: no token, a garbage token, another ServiceAccount's token with the right
// audience, and the gateway's own token minted for the API server's audience all get 401.
func TestStreamRefusesStrangers(t *testing.T) {
	ns := namespace(t, "trust-stream")
	backend(t, ns, "victim")
	apply(t, fmt.Sprintf(`
apiVersion: resilience.dev/v1alpha1
kind: CircuitBreaker
metadata: {name: victim, namespace: %[1]s}
spec:
  targetRefs: [{group: "", kind: Service, name: victim}]
`, ns))
	enforced(t, opts.GatewayListen, "victim."+ns, 200)

	ctx := context.Background()
	cs, err := kubernetes.NewForConfig(cp.Config)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cs.CoreV1().ServiceAccounts(localstack.SystemNamespace).Create(ctx,
		&corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "intruder"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	token := func(sa string, audiences ...string) string {
		tr, err := cs.CoreV1().ServiceAccounts(localstack.SystemNamespace).CreateToken(ctx, sa, &authenticationv1.TokenRequest{
			Spec: authenticationv1.TokenRequestSpec{Audiences: audiences, ExpirationSeconds: ptr.To[int64](3600)}}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return tr.Status.Token
	}
	caPEM, err := os.ReadFile(filepath.Join(opts.Dir, "ca.crt"))
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)
	hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}, ForceAttemptHTTP2: true}}

	// What a forged gateway would send: the victim's breaker is open.
	forged, _ := json.Marshal(distribution.GatewayFrame{Breaker: &distribution.BreakerChange{Kind: "CircuitBreaker",
		Namespace: ns, Name: "victim", Service: "victim", Port: 80, From: "Closed", To: "Open", Cause: "forged", At: time.Now()}})
	stream := func(bearer, frames string) (int, string) {
		req, _ := http.NewRequest(http.MethodPost, "https://"+opts.ManagerStream+distribution.StreamPath, strings.NewReader(frames))
		if bearer != "" {
			req.Header.Set("Authorization", "Bearer "+bearer)
		}
		req.Header.Set(distribution.ReplicaHeader, "forged-gateway")
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatalf("stream request: %v", err)
		}
		defer resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			line, _ := bufio.NewReader(resp.Body).ReadString('\n') // the first frame: the snapshot
			return resp.StatusCode, line
		}
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return resp.StatusCode, string(body)
	}

	refusedBefore, _ := metric(opts.ManagerMetrics, "resilience_manager_unauthenticated_streams_total")
	strangers := []struct{ name, token string }{
		{"no token", ""},
		{"a garbage token", "not-a-token"},
		{"another ServiceAccount's token for the gateway audience", token("intruder", distribution.Audience)},
		{"the gateway's token for the API server's audience", token(localstack.GatewaySA)},
	}
	for _, s := range strangers {
		code, body := stream(s.token, string(forged)+"\n")
		if code != http.StatusUnauthorized || strings.Contains(body, "snapshot") || strings.Contains(body, "victim") {
			t.Errorf("%s: got %d %q, want 401 and nothing else", s.name, code, body)
		}
	}
	refusedAfter, _ := metric(opts.ManagerMetrics, "resilience_manager_unauthenticated_streams_total")
	if got := refusedAfter - refusedBefore; got < 3 {
		t.Errorf("resilience_manager_unauthenticated_streams_total rose by %.0f, want at least 3 (the attempts with a token)", got)
	}

	// The check can fail for the right reason: the gateway's own token opens the stream.
	if code, body := stream(token(localstack.GatewaySA, distribution.Audience), ""); code != http.StatusOK || !strings.Contains(body, "victim") {
		t.Fatalf("the gateway's token: got %d %.200q, want 200 and the snapshot", code, body)
	}

	time.Sleep(2 * time.Second) // status would follow a breaker report within 2 s (contract)
	if breakerState(ns, "victim") == "Open" {
		t.Error("a stranger's breaker report turned the victim's status Open")
	}
	if ev := kubectl(t, "", "get", "events", "-n", ns, "-o", "jsonpath={range .items[*]}{.reason}{\"\\n\"}{end}"); strings.Contains(ev, "CircuitOpened") {
		t.Error("a stranger's breaker report made a CircuitOpened Event")
	}
	t.Logf("%d strangers refused with 401 and no snapshot; the manager counted %.0f refusals with a token; the forged breaker report changed nothing",
		len(strangers), refusedAfter-refusedBefore)
}

// A policy governs Services of its own namespace only: a targetRef cannot name a namespace, and a
// name that exists only in another namespace resolves to nothing there.
func TestNoCrossNamespaceTargets(t *testing.T) {
	a, b := namespace(t, "tenant-a"), namespace(t, "tenant-b")
	backend(t, b, "web")
	apply(t, fmt.Sprintf(`
apiVersion: resilience.dev/v1alpha1
kind: RetryPolicy
metadata: {name: web, namespace: %[1]s}
spec:
  targetRefs: [{group: "", kind: Service, name: web}]
`, b))
	enforced(t, opts.GatewayListen, "web."+b, 200)

	out, err := tryKubectl(fmt.Sprintf(`
apiVersion: resilience.dev/v1alpha1
kind: RateLimit
metadata: {name: reach-across, namespace: %[1]s}
spec:
  targetRefs: [{group: "", kind: Service, name: web, namespace: %[2]s}]
  limits: [{name: all, requests: 1, period: 1h}]
`, a, b), "apply", "--server-side", "-f", "-")
	if err == nil || !strings.Contains(out, "namespace") {
		t.Errorf("a targetRef with a namespace: want the API server to refuse it naming the field, got err=%v\n%s", err, out)
	} else {
		t.Logf("refused: %s", strings.TrimSpace(out))
	}

	apply(t, fmt.Sprintf(`
apiVersion: resilience.dev/v1alpha1
kind: RateLimit
metadata: {name: same-name, namespace: %[1]s}
spec:
  targetRefs: [{group: "", kind: Service, name: web}]
  limits: [{name: all, requests: 1, period: 1h, burst: 1}]
`, a))
	until(t, "same-name resolved", 15*time.Second, func() bool { return condition(t, "ratelimit", a, "same-name", "Accepted") == "False" })
	reason := kubectl(t, "", "get", "ratelimit", "-n", a, "same-name", "-o", `jsonpath={.status.conditions[?(@.type=="Accepted")].message}`)
	t.Logf("tenant-a's policy on a Service named web: Accepted=False: %s", reason)
	for i := range 5 {
		if r := get(opts.GatewayListen, "web."+b, "/"); r.code != 200 {
			t.Fatalf("request %d to tenant-b's web got %d (%s): tenant-a's 1-per-hour limit reached across", i+1, r.code, r.reason)
		}
	}
}
