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

package gateway

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"testing"
	"time"

	"resilience.dev/operator/internal/snapshot"
)

// freePort returns a loopback port that was free a moment ago.
func freePort(t *testing.T) int32 {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return int32(l.Addr().(*net.TCPAddr).Port)
}

// rawRequest writes head (without the final blank line) to 127.0.0.1:port and reads the response.
func rawRequest(t *testing.T, port int32, head string) (*http.Response, error) {
	t.Helper()
	c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), 2*time.Second)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := fmt.Fprintf(c, "%s\r\n\r\n", head); err != nil {
		return nil, err
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err == nil {
		resp.Body.Close()
	}
	return resp, err
}

// TestCapturePorts: a capture port serves its front port whatever the Host (a short name, the
// ClusterIP, none at all), with the port's policy enforced; it closes when the snapshot drops it, a
// port outside the range is never opened, and a port in use is opened once it is free.
func TestCapturePorts(t *testing.T) {
	p := freePort(t)
	mem := newMem()
	hosts := make(chan string, 10)
	mem.handle(epAddr(1), func(w http.ResponseWriter, r *http.Request) { hosts <- r.Host; ok200(w, r) })
	pt := port(ep(1))
	pt.CapturePort = p
	pt.RateLimit = rateLimit(limit("l", 3, time.Hour, 3))
	g := newGW(t, Options{CaptureHost: "127.0.0.1", CaptureRange: snapshot.PortRange{First: 1024, Last: 65535}}, mem, snap(1, pt))
	t.Cleanup(func() { g.ShutdownCapture(context.Background()) })

	for _, c := range []struct{ head, host string }{
		{"GET / HTTP/1.1\r\nHost: checkout", "checkout"},
		{"GET / HTTP/1.1\r\nHost: 10.96.0.10:80", "10.96.0.10:80"},
		{"GET / HTTP/1.0", ""},
	} {
		resp, err := rawRequest(t, p, c.head)
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("%q: %v %v", c.head, resp, err)
		}
		if got := <-hosts; got != c.host {
			t.Errorf("%q: the backend saw Host %q, want %q", c.head, got, c.host)
		}
	}
	if resp, err := rawRequest(t, p, "GET / HTTP/1.1\r\nHost: anything"); err != nil || resp.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("the fourth request within the limit of 3: %v %v, want 429", resp, err)
	}
	if got := metricValue(t, g, "resilience_gateway_capture_requests_total", map[string]string{"capture_port": fmt.Sprint(p),
		"target_namespace": "shop", "target_service": "api"}); got != 4 {
		t.Errorf("capture requests counted %v, want 4", got)
	}

	pt.CapturePort = 0 // dropped: the listener closes
	if err := g.Apply(encoded(snap(2, pt))); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the capture port to close", func() bool { _, err := rawRequest(t, p, "GET / HTTP/1.0"); return err != nil })

	pt.CapturePort = 1000 // outside the range
	if err := g.Apply(encoded(snap(3, pt))); err != nil {
		t.Fatal(err)
	}
	if len(g.CapturePorts()) != 0 || metricValue(t, g, "resilience_gateway_capture_listen_errors_total", nil) != 1 {
		t.Fatalf("a port outside the range: open %v, errors %v", g.CapturePorts(),
			metricValue(t, g, "resilience_gateway_capture_listen_errors_total", nil))
	}

	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p = int32(busy.Addr().(*net.TCPAddr).Port)
	pt.CapturePort = p // in use: not opened, then opened once free
	if err := g.Apply(encoded(snap(4, pt))); err != nil {
		t.Fatal(err)
	}
	if len(g.CapturePorts()) != 0 {
		t.Fatalf("opened a port in use: %v", g.CapturePorts())
	}
	busy.Close()
	g.capture.retry()
	if got := g.CapturePorts(); len(got) != 1 || got[0] != p {
		t.Fatalf("after the port was freed: open %v", got)
	}
	g.ShutdownCapture(context.Background())
	if _, err := rawRequest(t, p, "GET / HTTP/1.0"); err == nil {
		t.Fatal("the capture port still answers after ShutdownCapture")
	}
}

// TestCaptureDuplicatePortRefused: a snapshot that gives one capture port twice is refused whole.
func TestCaptureDuplicatePortRefused(t *testing.T) {
	a, b := port(ep(1)), port(ep(2))
	a.CapturePort, b.CapturePort = 20001, 20001
	s := &snapshot.Snapshot{Services: []snapshot.Service{{Namespace: "shop", Name: "a", Ports: []snapshot.Port{a}},
		{Namespace: "shop", Name: "b", Ports: []snapshot.Port{b}}}}
	g := newGW(t, Options{}, newMem(), nil)
	if err := g.Apply(encoded(s)); err == nil {
		t.Fatal("a capture port given twice was applied")
	}
}

// TestCaptureDrain: a capture port dropped by a snapshot stops accepting connections at once, and a
// request already in flight on it is answered.
func TestCaptureDrain(t *testing.T) {
	mem := newMem()
	arrived, release := make(chan struct{}), make(chan struct{})
	mem.handle(epAddr(1), func(w http.ResponseWriter, r *http.Request) {
		close(arrived)
		<-release
		ok200(w, r)
	})
	pt := port(ep(1))
	pt.CapturePort = freePort(t)
	g := newGW(t, Options{CaptureHost: "127.0.0.1", CaptureRange: snapshot.PortRange{First: 1024, Last: 65535}}, mem, snap(1, pt))
	t.Cleanup(func() { g.ShutdownCapture(context.Background()) })
	type result struct {
		resp *http.Response
		err  error
	}
	done := make(chan result, 1)
	go func() {
		resp, err := rawRequest(t, pt.CapturePort, "GET / HTTP/1.1\r\nHost: x")
		done <- result{resp, err}
	}()
	<-arrived
	p := pt.CapturePort
	pt.CapturePort = 0
	if err := g.Apply(encoded(snap(2, pt))); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the dropped port to refuse connections", func() bool {
		c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", p), time.Second)
		if err == nil {
			c.Close()
		}
		return err != nil
	})
	close(release)
	if r := <-done; r.err != nil || r.resp.StatusCode != http.StatusOK {
		t.Fatalf("the request in flight when its port closed: %v %v, want 200", r.resp, r.err)
	}
}
