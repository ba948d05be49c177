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
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"resilience.dev/operator/internal/localstack"
)

// canary is a loopback listener that counts the connections it accepts: the place a gateway must
// never be tricked into connecting to.
type canary struct {
	l        net.Listener
	accepted atomic.Int64
}

func newCanary(t *testing.T) *canary {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	c := &canary{l: l}
	go func() {
		for {
			conn, err := l.Accept()
			if err != nil {
				return
			}
			c.accepted.Add(1)
			conn.Close()
		}
	}()
	t.Cleanup(func() { l.Close() })
	return c
}

func (c *canary) port() int { return c.l.Addr().(*net.TCPAddr).Port }

// strictGateway starts a second gateway as deployed in a cluster: no local-development mode, so it
// follows only EndpointSlices made by the EndpointSlice controller and never dials loopback.
func strictGateway(t *testing.T, extra ...string) localstack.GatewayAddrs {
	t.Helper()
	a := localstack.GatewayAddrs{Listen: freeAddr(), Health: freeAddr(), Metrics: freeAddr()}
	args := append([]string{"--local-dev=false"}, extra...)
	if err := stack.StartGatewayAs("gateway-strict", a, args...); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { stack.Stop("gateway-strict") })
	until(t, "strict gateway ready", 30*time.Second, func() bool { return ready(a.Health) })
	return a
}

// raw sends bytes on a new connection and returns the status code of the answer (0 if the
// connection closed without one) and its body's first line.
func raw(t *testing.T, addr, request string) (int, string) {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(conn, request); err != nil {
		return 0, "write: " + err.Error()
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		return 0, "no response: " + err.Error()
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	line, _, _ := strings.Cut(string(body), "\n")
	return resp.StatusCode, line
}

// Requests that try to use the gateway as an open proxy: absolute-form URLs to external hosts, to
// loopback, link-local and the metadata address, IP-literal Hosts and CONNECT all get 403 with a
// reason, and nothing connects anywhere.
func TestOpenProxyAttemptsRefused(t *testing.T) {
	c := newCanary(t)
	strict := strictGateway(t)
	p := c.port()
	attempts := []struct{ name, request string }{
		{"absolute-form to an external host", "GET http://example.com/ HTTP/1.1\r\nHost: example.com\r\n\r\n"},
		{"absolute-form to loopback", fmt.Sprintf("GET http://127.0.0.1:%d/ HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n\r\n", p, p)},
		{"absolute-form to the metadata address", "GET http://169.254.169.254/latest/meta-data/ HTTP/1.1\r\nHost: 169.254.169.254\r\n\r\n"},
		{"absolute-form https", "GET https://example.com/ HTTP/1.1\r\nHost: example.com\r\n\r\n"},
		{"Host: the metadata address", "GET /latest/meta-data/ HTTP/1.1\r\nHost: 169.254.169.254\r\n\r\n"},
		{"Host: link-local IPv6", "GET / HTTP/1.1\r\nHost: [fe80::1]:80\r\n\r\n"},
		{"Host: loopback IP literal", fmt.Sprintf("GET / HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n\r\n", p)},
		{"Host: loopback IPv6 literal", fmt.Sprintf("GET / HTTP/1.1\r\nHost: [::1]:%d\r\n\r\n", p)},
		{"Host: localhost", fmt.Sprintf("GET / HTTP/1.1\r\nHost: localhost:%d\r\n\r\n", p)},
		{"Host: a public IP literal", "GET / HTTP/1.1\r\nHost: 93.184.215.14\r\n\r\n"},
		{"Host: a Service without a policy", "GET / HTTP/1.1\r\nHost: kubernetes.default.svc\r\n\r\n"},
		{"CONNECT to loopback", fmt.Sprintf("CONNECT 127.0.0.1:%d HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n\r\n", p, p)},
		{"CONNECT to an external host", "CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n"},
	}
	for _, gw := range []struct{ name, addr string }{{"local-dev gateway", opts.GatewayListen}, {"strict gateway", strict.Listen}} {
		for _, a := range attempts {
			code, reason := raw(t, gw.addr, a.request)
			if code != http.StatusForbidden || reason == "" {
				t.Errorf("%s, %s: got %d %q, want 403 with a reason", gw.name, a.name, code, reason)
			}
		}
	}
	time.Sleep(200 * time.Millisecond)
	if n := c.accepted.Load(); n != 0 {
		t.Errorf("the loopback canary accepted %d connections", n)
	}
	t.Logf("%d open-proxy attempts on each of 2 gateways: all 403 with a reason; the loopback canary saw 0 connections", len(attempts))
}

// EndpointSlices that point a managed Service at loopback, link-local, the metadata address or
// another namespace's pods are refused by the API server or not followed by the gateway.
func TestHostileEndpointsNotFollowed(t *testing.T) {
	c := newCanary(t)
	ns := namespace(t, "hostile-endpoints")
	strict := strictGateway(t)
	service := func(name string) {
		apply(t, fmt.Sprintf(`
apiVersion: v1
kind: Service
metadata: {name: %[1]s, namespace: %[2]s}
spec:
  ports: [{name: http, port: 80, targetPort: %[3]d}]
---
apiVersion: resilience.dev/v1alpha1
kind: RateLimit
metadata: {name: %[1]s, namespace: %[2]s}
spec:
  targetRefs: [{group: "", kind: Service, name: %[1]s}]
  limits: [{name: all, requests: 1000, period: 1s}]
`, name, ns, c.port()))
	}
	slice := func(svc, addrType, address, extra string, controllerMade bool) (string, error) {
		labels := "kubernetes.io/service-name: " + svc
		if controllerMade {
			labels += ", endpointslice.kubernetes.io/managed-by: endpointslice-controller.k8s.io"
		}
		return tryKubectl(fmt.Sprintf(`
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: %[1]s-%[5]s
  namespace: %[2]s
  labels: {%[3]s}
addressType: %[4]s
ports: [{name: http, port: %[6]d}]
endpoints:
- addresses: [%[7]q]
  conditions: {ready: true}
%[8]s`, svc, ns, labels, addrType, strings.ToLower(addrType), c.port(), address, extra),
			"apply", "--server-side", "--field-manager=attacker", "-f", "-")
	}

	// The API server itself refuses loopback, link-local and metadata IPs in EndpointSlices.
	service("trap-ip")
	for _, addr := range []string{"127.0.0.1", "169.254.169.254"} {
		out, err := slice("trap-ip", "IPv4", addr, "", true)
		if err == nil {
			t.Errorf("the API server accepted an EndpointSlice with address %s", addr)
		} else {
			t.Logf("API server refused an EndpointSlice address %s: %s", addr, strings.TrimSpace(out))
		}
	}
	if out, err := slice("trap-ip", "IPv6", "::1", "", true); err == nil {
		t.Errorf("the API server accepted an EndpointSlice with address ::1")
	} else {
		t.Logf("API server refused an EndpointSlice address ::1: %s", strings.TrimSpace(out))
	}

	cases := []struct {
		svc, addrType, address, extra string
		controllerMade                bool
		why                           string
	}{
		// IP literals dressed as FQDNs pass the API server's FQDN check, skipping its IP rules.
		{"trap-fqdn-loopback", "FQDN", "127.0.0.1", "", true, "an FQDN endpoint that is a loopback IP is refused by the dial guard"},
		{"trap-fqdn-metadata", "FQDN", "169.254.169.254", "", true, "an FQDN endpoint that is the metadata IP is refused by the dial guard"},
		{"trap-handmade", "IPv4", "10.96.0.10", "", false, "a hand-made EndpointSlice is not followed"},
		{"trap-foreign", "IPv4", "10.244.7.7", "  targetRef: {kind: Pod, namespace: kube-system, name: coredns-0}", true,
			"an endpoint naming another namespace's pod is not followed"},
	}
	for _, tc := range cases {
		service(tc.svc)
		if out, err := slice(tc.svc, tc.addrType, tc.address, tc.extra, tc.controllerMade); err != nil {
			t.Fatalf("%s: apply the EndpointSlice: %v\n%s", tc.svc, err, out)
		}
	}
	time.Sleep(time.Second) // let the snapshot with the slices reach the gateway
	for _, tc := range cases {
		host := tc.svc + "." + ns
		a := get(strict.Listen, host, "/")
		if a.from != fromGateway || (a.code != 502 && a.code != 503) {
			t.Errorf("%s (%s): got %d from %s (%s), want a gateway 502 or 503", tc.svc, tc.why, a.code, a.from, a.reason)
		} else {
			t.Logf("%s: %d %s", tc.why, a.code, a.reason)
		}
	}
	if n := c.accepted.Load(); n != 0 {
		t.Errorf("the loopback canary accepted %d connections", n)
	}
}

// A clientIP-keyed limit: a spoofed X-Forwarded-For does not give a client a new bucket, unless the
// hop it came from is a trusted proxy.
func TestSpoofedForwardedFor(t *testing.T) {
	ns := namespace(t, "hostile-xff")
	backend(t, ns, "keyed")
	policy := func(trusted string) {
		apply(t, fmt.Sprintf(`
apiVersion: resilience.dev/v1alpha1
kind: RateLimit
metadata: {name: keyed, namespace: %[1]s}
spec:
  targetRefs: [{group: "", kind: Service, name: keyed}]
  limits: [{name: per-client, requests: 3, period: 1h, burst: 3, key: [{clientIP: {}}]}]
  clientIP: {trustedProxies: [%[2]s]}
`, ns, trusted))
	}
	host := "keyed." + ns
	send := func(xff string) int {
		req, _ := http.NewRequest(http.MethodGet, "http://"+opts.GatewayListen+"/", nil)
		req.Host = host
		req.Header.Set("X-Forwarded-For", xff)
		resp, err := trafficClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	policy("")
	enforced(t, opts.GatewayListen, host, 200) // spends one of the 3 tokens of 127.0.0.1
	var got []int
	for i := range 5 {
		got = append(got, send(fmt.Sprintf("198.51.100.%d", i+1)))
	}
	if want := []int{200, 200, 429, 429, 429}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("untrusted peer, 5 spoofed X-Forwarded-For values: codes %v, want %v (one bucket for the real peer)", got, want)
	}

	// The same from a trusted proxy (the test client is 127.0.0.1): each forwarded client has its own bucket.
	policy(`"127.0.0.0/8"`)
	time.Sleep(time.Second) // the new parameters make new buckets
	got = got[:0]
	for i := range 5 {
		got = append(got, send(fmt.Sprintf("198.51.100.%d", i+1)))
	}
	if want := []int{200, 200, 200, 200, 200}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("trusted proxy, 5 forwarded clients: codes %v, want %v", got, want)
	}
	t.Logf("spoofed X-Forwarded-For from an untrusted peer shares the peer's bucket; from a trusted proxy each client gets its own")
}

// A response kept for serveStale is never served to a user it was not for: requests with
// Authorization or Cookie and responses with Set-Cookie or Cache-Control: private are not stored, and
// Vary is honoured.
func TestStaleNeverServedToAnotherUser(t *testing.T) {
	ns := namespace(t, "hostile-stale")
	var failing atomic.Bool
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Backend", "stale")
		if failing.Load() {
			w.WriteHeader(http.StatusInternalServerError)
			return
		}
		switch r.URL.Path {
		case "/profile": // personal, asked with credentials
			fmt.Fprintf(w, "secret of %s%s\n", r.Header.Get("Authorization"), r.Header.Get("Cookie"))
		case "/session":
			w.Header().Set("Set-Cookie", "session=alice")
			fmt.Fprintln(w, "alice's session")
		case "/private":
			w.Header().Set("Cache-Control", "private")
			fmt.Fprintln(w, "alice's page")
		case "/greeting":
			w.Header().Set("Vary", "Accept-Language")
			fmt.Fprintf(w, "greeting in %s\n", r.Header.Get("Accept-Language"))
		default:
			fmt.Fprintln(w, "public page")
		}
	})
	registerHandler(t, ns, "stale", mux)
	apply(t, fmt.Sprintf(`
apiVersion: resilience.dev/v1alpha1
kind: CircuitBreaker
metadata: {name: stale, namespace: %[1]s}
spec:
  targetRefs: [{group: "", kind: Service, name: stale}]
  trip: {consecutiveFailures: 1}
  openDuration: 60s
  fallback: {serveStale: 5m}
`, ns))
	host := "stale." + ns
	enforced(t, opts.GatewayListen, host, 200)
	type reply struct {
		code  int
		body  string
		stale bool
	}
	ask := func(path string, hdr ...string) reply {
		req, _ := http.NewRequest(http.MethodGet, "http://"+opts.GatewayListen+path, nil)
		req.Host = host
		for i := 0; i+1 < len(hdr); i += 2 {
			if hdr[i] != "" {
				req.Header.Set(hdr[i], hdr[i+1])
			}
		}
		resp, err := trafficClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return reply{code: resp.StatusCode, body: strings.TrimSpace(string(body)), stale: resp.Header.Get("X-Resilience-Stale") == "true"}
	}
	// Alice's requests, while the backend is healthy.
	ask("/profile", "Authorization", "Bearer alice")
	ask("/profile", "Cookie", "id=alice")
	ask("/session")
	ask("/private")
	ask("/greeting", "Accept-Language", "en")
	ask("/public")

	failing.Store(true)
	until(t, "breaker open", 10*time.Second, func() bool { return ask("/nothing").code == 503 })
	// Bob, while the breaker is open.
	for _, tc := range []struct{ path, header, value string }{
		{"/profile", "", ""},
		{"/profile", "Authorization", "Bearer bob"},
		{"/session", "", ""},
		{"/private", "", ""},
		{"/greeting", "Accept-Language", "fr"},
	} {
		a := ask(tc.path, tc.header, tc.value)
		if a.code == 200 || strings.Contains(a.body, "alice") || strings.Contains(a.body, " en") {
			t.Errorf("%s (%s %s) while open: got %d %q: another user's response", tc.path, tc.header, tc.value, a.code, a.body)
		}
	}
	// What may be served stale is: the public page, and the greeting in the same language.
	if a := ask("/public"); a.code != 200 || !a.stale {
		t.Errorf("/public while open: got %d (stale %v), want the stale 200", a.code, a.stale)
	}
	if a := ask("/greeting", "Accept-Language", "en"); a.code != 200 || !a.stale || a.body != "greeting in en" {
		t.Errorf("/greeting in en while open: got %d %q (stale %v), want the stale English greeting", a.code, a.body, a.stale)
	}
}

// registerHandler is backend with a handler of the test's own.
func registerHandler(t *testing.T, ns, name string, h http.Handler) {
	t.Helper()
	b := backend(t, ns, name)
	b.handler.Store(&h)
}

// Oversized headers, malformed requests and slow clients are cut off with the right code, and the
// gateway keeps answering others meanwhile.
func TestMalformedOversizedAndSlowClients(t *testing.T) {
	strict := strictGateway(t, "--read-header-timeout=1s")
	big := strings.Repeat("a", 2<<20)
	for _, tc := range []struct {
		name, request string
		want          int
	}{
		{"header larger than 1 MiB", "GET / HTTP/1.1\r\nHost: web.shop\r\nX-Big: " + big + "\r\n\r\n", 431},
		{"garbage request line", "GARBAGE\r\n\r\n", 400},
		{"unsupported HTTP version", "GET / HTTP/9.9\r\nHost: web.shop\r\n\r\n", 505},
		{"two Host headers", "GET / HTTP/1.1\r\nHost: a.shop\r\nHost: b.shop\r\n\r\n", 400},
		{"no Host in HTTP/1.1", "GET / HTTP/1.1\r\n\r\n", 400},
		{"space in a header name", "GET / HTTP/1.1\r\nHost: web.shop\r\nBad Header: x\r\n\r\n", 400},
		{"control character in a header value", "GET / HTTP/1.1\r\nHost: web.shop\r\nX-A: a\x00b\r\n\r\n", 400},
		{"bad Content-Length", "POST / HTTP/1.1\r\nHost: web.shop\r\nContent-Length: -1\r\n\r\n", 400},
		{"two different Content-Lengths", "POST / HTTP/1.1\r\nHost: web.shop\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd", 400},
		{"a transfer coding other than chunked", "POST / HTTP/1.1\r\nHost: web.shop\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n", 501},
	} {
		if code, reason := raw(t, strict.Listen, tc.request); code != tc.want {
			t.Errorf("%s: got %d %q, want %d", tc.name, code, reason, tc.want)
		}
	}

	// Slowloris: 200 connections that send half a request and stall are closed after the header
	// timeout (1 s here), while other clients are answered at once.
	const slow = 200
	var wg sync.WaitGroup
	closedAfter := make([]time.Duration, slow)
	for i := range slow {
		conn, err := net.Dial("tcp", strict.Listen)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.WriteString(conn, "GET / HTTP/1.1\r\nHost: web.shop\r\nX-Slow: "); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer conn.Close()
			_ = conn.SetReadDeadline(time.Now().Add(15 * time.Second))
			_, _ = io.Copy(io.Discard, conn) // returns when the gateway closes the connection
			closedAfter[i] = time.Since(start)
		}()
	}
	served := time.Now()
	if code, _ := raw(t, strict.Listen, "GET / HTTP/1.1\r\nHost: kubernetes.default.svc\r\n\r\n"); code != 403 {
		t.Errorf("a normal client during the slowloris got %d, want the usual 403", code)
	}
	answeredIn := time.Since(served)
	wg.Wait()
	worst := time.Duration(0)
	for _, d := range closedAfter {
		worst = max(worst, d)
	}
	t.Logf("slowloris: %d stalled connections all closed within %s (header timeout 1s); a normal client was answered in %s",
		slow, worst.Round(time.Millisecond), answeredIn.Round(time.Millisecond))
	if worst > 5*time.Second {
		t.Errorf("a stalled connection stayed open %s", worst)
	}
}

// Bodies over --max-request-body-bytes get 413 and never reach the upstream whole: announced by
// Content-Length (refused before anything is sent) or chunked (cut where they cross the limit).
func TestOversizedBodies(t *testing.T) {
	ns := namespace(t, "hostile-body")
	b := backend(t, ns, "upload")
	var received atomic.Int64 // the largest body the backend read
	h := http.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, _ := io.Copy(io.Discard, r.Body)
		for {
			old := received.Load()
			if n <= old || received.CompareAndSwap(old, n) {
				break
			}
		}
		w.Header().Set("X-Backend", "upload")
		fmt.Fprintf(w, "read %d bytes\n", n)
	}))
	b.handler.Store(&h)
	apply(t, neverInTheWay(ns, "upload"))
	host := "upload." + ns
	enforced(t, opts.GatewayListen, host, 200)

	post := func(body io.Reader, length int64) (int, string) {
		req, _ := http.NewRequest(http.MethodPost, "http://"+opts.GatewayListen+"/", body)
		req.Host = host
		req.ContentLength = length // -1: chunked
		resp, err := trafficClient.Do(req)
		if err != nil {
			return 0, err.Error()
		}
		defer resp.Body.Close()
		msg, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, strings.TrimSpace(string(msg))
	}
	if code, msg := post(strings.NewReader(strings.Repeat("x", 1<<20)), 1<<20); code != 200 {
		t.Fatalf("a 1 MiB body: got %d %q, want 200", code, msg)
	}
	over := int64(maxBody + 1)
	if code, msg := post(io.LimitReader(zeros{}, over), over); code != 413 || !strings.Contains(msg, "exceeds") {
		t.Errorf("Content-Length one byte over the limit: got %d %q, want 413 with a reason", code, msg)
	} else {
		t.Logf("Content-Length over the limit: %d %s", code, msg)
	}
	if code, msg := post(io.LimitReader(zeros{}, 4*maxBody), -1); code != 413 {
		t.Errorf("a chunked body of 4x the limit: got %d %q, want 413", code, msg)
	} else {
		t.Logf("chunked body over the limit: %d %s", code, msg)
	}
	if got := received.Load(); got > maxBody {
		t.Errorf("the backend read a body of %d bytes, over the limit of %d", got, maxBody)
	}
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) { clear(p); return len(p), nil }

// A spray of distinct keys against a keyed limit: the gateway keeps at most maxKeys buckets (the
// rest share one overflow bucket), so its memory stays flat, and an active key keeps its own bucket.
func TestKeySpray(t *testing.T) {
	ns := namespace(t, "hostile-spray")
	backend(t, ns, "spray")
	apply(t, fmt.Sprintf(`
apiVersion: resilience.dev/v1alpha1
kind: RateLimit
metadata: {name: spray, namespace: %[1]s}
spec:
  targetRefs: [{group: "", kind: Service, name: spray}]
  limits: [{name: per-user, requests: 5, period: 1h, burst: 5, key: [{header: X-User-ID}], maxKeys: 1000}]
`, ns))
	host := "spray." + ns
	enforced(t, opts.GatewayListen, host, 200)
	asUser := func(user string) int {
		req, _ := http.NewRequest(http.MethodGet, "http://"+opts.GatewayListen+"/", nil)
		req.Host = host
		req.Header.Set("X-User-ID", user)
		resp, err := trafficClient.Do(req)
		if err != nil {
			t.Error(err)
			return 0
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	for range 2 {
		if c := asUser("alice"); c != 200 {
			t.Fatalf("alice before the spray: %d", c)
		}
	}
	before := figures(t, opts.GatewayMetrics, opts.GatewayMetrics, "go_gc_heap_live_bytes")

	const keys, workers = 1000000, 32
	var next, admitted, refused atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := next.Add(1); i <= keys; i = next.Add(1) {
				switch asUser(fmt.Sprintf("spray-%d", i)) {
				case 200:
					admitted.Add(1)
				case 429:
					refused.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	took := time.Since(start)
	trafficClient.CloseIdleConnections()
	after := figures(t, opts.GatewayMetrics, opts.GatewayMetrics, "go_gc_heap_live_bytes")
	t.Logf("%d distinct keys in %s: %d admitted, %d refused (maxKeys 1000, then one shared overflow bucket of 5); gateway live heap %.1f MiB before, %.1f MiB after",
		keys, took.Round(time.Millisecond), admitted.Load(), refused.Load(), mib(before.heap), mib(after.heap))
	if a := admitted.Load(); a > 1000+5+5 || a < 900 {
		t.Errorf("%d spray requests admitted, want about 1000 (one per kept key) plus the overflow bucket's 5", a)
	}
	// 999,000 keys beyond the cap would cost well over 50 MiB if each got a bucket.
	if grew := after.heap - before.heap; grew > 3<<20 {
		t.Errorf("the gateway's live heap grew by %.1f MiB during the spray", mib(grew))
	}
	for i := range 3 {
		if c := asUser("alice"); c != 200 {
			t.Errorf("alice's request %d after the spray: %d, want 200 (her bucket had 3 tokens left)", i+3, c)
		}
	}
	if c := asUser("alice"); c != 429 {
		t.Errorf("alice's 6th request: %d, want 429", c)
	}
}
