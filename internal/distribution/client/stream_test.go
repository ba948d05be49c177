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

package client

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr"

	"resilience.dev/operator/internal/distribution"
	"resilience.dev/operator/internal/distribution/server"
	"resilience.dev/operator/internal/snapshot"
)

// tokenAuth accepts one token.
type tokenAuth struct{ token string }

func (a tokenAuth) Authenticate(_ context.Context, token, claimed string) (string, error) {
	if token != a.token {
		return "", server.ErrUnauthenticated
	}
	return claimed, nil
}

// recorder is a gateway stand-in: it records the snapshots it is given.
type recorder struct {
	mu       sync.Mutex
	versions []uint64
	refuse   bool
}

func (r *recorder) apply(version uint64, _ *snapshot.Encoded) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.refuse {
		return errors.New("refused for the test")
	}
	r.versions = append(r.versions, version)
	return nil
}

func (r *recorder) last() uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.versions) == 0 {
		return 0
	}
	return r.versions[len(r.versions)-1]
}

// newServer returns a server sharing gateway states through a MemoryStore, with its state writer
// running; it logs to log when given one.
func newServer(t *testing.T, manager string, store *server.MemoryStore, log ...logr.Logger) *server.Server {
	t.Helper()
	l := logr.Discard()
	if len(log) > 0 {
		l = log[0]
	}
	srv := server.NewServer(tokenAuth{"good"}, store, manager, l)
	prev := store.OnChange
	store.OnChange = func() {
		if prev != nil {
			prev()
		}
		srv.StoreChanged()
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	go func() { _ = srv.Start(ctx) }()
	return srv
}

func startServer(t *testing.T, srv *server.Server) (string, *tls.Config) {
	t.Helper()
	ca, err := server.NewCA(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	cert, err := ca.Issue(time.Now(), time.Hour, "127.0.0.1", "localhost")
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewUnstartedServer(srv)
	hs.EnableHTTP2 = true
	hs.TLS = &tls.Config{Certificates: []tls.Certificate{cert}, NextProtos: []string{"h2"}}
	hs.StartTLS()
	t.Cleanup(hs.Close)
	return hs.URL, &tls.Config{RootCAs: ca.Pool()}
}

// snapshotWith holds the checkout RateLimit at generation gen; endpoints > 0 adds that many endpoints to
// a Service, so snapshots of one generation can differ the way endpoint churn makes them differ.
func snapshotWith(gen int64, endpoints ...int) *snapshot.Snapshot {
	s := &snapshot.Snapshot{Services: []snapshot.Service{}, Policies: []snapshot.PolicyRef{
		{Kind: "RateLimit", Namespace: "shop", Name: "checkout", UID: "u", Generation: gen}}}
	if len(endpoints) > 0 {
		port := snapshot.Port{Port: 80, Endpoints: []snapshot.Endpoint{}}
		for i := range endpoints[0] {
			port.Endpoints = append(port.Endpoints, snapshot.Endpoint{Address: fmt.Sprintf("10.0.0.%d", i+1), Port: 8080, Type: snapshot.AddressIPv4})
		}
		s.Services = append(s.Services, snapshot.Service{Namespace: "shop", Name: "checkout", Ports: []snapshot.Port{port}})
	}
	return s
}

// publish publishes and fails the test unless a new version went out.
func publish(t *testing.T, srv *server.Server, snap *snapshot.Snapshot) uint64 {
	t.Helper()
	e, err := snapshot.Encode(snap)
	if err != nil {
		t.Fatal(err)
	}
	v, changed, err := srv.Publish(e)
	if err != nil || !changed {
		t.Fatalf("publish: version %d changed %v: %v", v, changed, err)
	}
	return v
}

// refused reports whether the manager logged that replica refused a snapshot (version 0: any) with
// an error containing text: the manager's record of the refusal the gateway acked.
func refused(manager *logs, replica string, version uint64, text string) bool {
	manager.mu.Lock()
	defer manager.mu.Unlock()
	for _, e := range manager.entries {
		msg, _ := e.kv["error"].(string)
		if e.msg == "gateway refused a snapshot" && e.kv["replica"] == replica && strings.Contains(msg, text) &&
			(version == 0 || e.kv["version"] == version) {
			return true
		}
	}
	return false
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestStreamDeliversAcksAndProgrammed(t *testing.T) {
	srv := newServer(t, "m0", &server.MemoryStore{})
	url, tlsCfg := startServer(t, srv)
	if ok, reason, _ := srv.Programmed(snapshot.PolicyKey{Kind: "RateLimit", Namespace: "shop", Name: "checkout"}, 1); ok || reason != "NoGateways" {
		t.Fatalf("before any gateway: %v %s, want NoGateways", ok, reason)
	}
	v1 := publish(t, srv, snapshotWith(1))

	rec := &recorder{}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	client := &Client{URL: url, TLS: tlsCfg, Replica: "gw-0", Token: func() (string, error) { return "good", nil },
		Apply: rec.apply, Log: logr.Discard()}
	done := make(chan struct{})
	go func() { defer close(done); _ = client.Run(ctx) }()

	eventually(t, "the current snapshot at connect", func() bool { return rec.last() == v1 })
	eventually(t, "Programmed 1/1", func() bool {
		ok, _, msg := srv.Programmed(snapshot.PolicyKey{Kind: "RateLimit", Namespace: "shop", Name: "checkout"}, 1)
		return ok && msg == "1/1 gateway replicas"
	})

	// A new generation is Pending until the gateway acks the version that holds it.
	rec.mu.Lock()
	rec.refuse = true
	rec.mu.Unlock()
	publish(t, srv, snapshotWith(2))
	eventually(t, "Pending naming the lagging replica", func() bool {
		ok, reason, msg := srv.Programmed(snapshot.PolicyKey{Kind: "RateLimit", Namespace: "shop", Name: "checkout"}, 2)
		return !ok && reason == "Pending" && strings.Contains(msg, "0/1 gateway replicas; waiting for gw-0")
	})
	rec.mu.Lock()
	rec.refuse = false
	rec.mu.Unlock()
	v3 := publish(t, srv, snapshotWith(2, 1)) // the same generation, other content: a new version
	eventually(t, "the new version applied", func() bool { return rec.last() == v3 })
	eventually(t, "Programmed for generation 2", func() bool {
		ok, _, _ := srv.Programmed(snapshot.PolicyKey{Kind: "RateLimit", Namespace: "shop", Name: "checkout"}, 2)
		return ok
	})
	// Endpoint churn: a new version with the same generation keeps it Programmed throughout.
	for i := range 5 {
		publish(t, srv, snapshotWith(2, i+2))
		if ok, _, msg := srv.Programmed(snapshot.PolicyKey{Kind: "RateLimit", Namespace: "shop", Name: "checkout"}, 2); !ok {
			t.Fatalf("a new version with the same generation flipped Programmed: %s", msg)
		}
	}

	// Breaker state flows back and aggregates.
	client.Send(distribution.BreakerChange{Namespace: "shop", Name: "payments", Service: "payments", Port: 80, From: "Closed", To: "Open"})
	eventually(t, "breaker open in status", func() bool {
		st, replicas, _ := srv.BreakerStatus("shop", "payments")
		return st == "Open" && replicas == 1
	})
	client.Send(distribution.BreakerChange{Namespace: "shop", Name: "payments", Service: "payments", Port: 80, From: "Open", To: "HalfOpen"})
	eventually(t, "breaker half-open", func() bool {
		st, replicas, _ := srv.BreakerStatus("shop", "payments")
		return st == "HalfOpen" && replicas == 0
	})

	cancel()
	<-done
	eventually(t, "NoGateways after the gateway left", func() bool {
		_, reason, _ := srv.Programmed(snapshot.PolicyKey{Kind: "RateLimit", Namespace: "shop", Name: "checkout"}, 2)
		return reason == "NoGateways"
	})
	if st, _, _ := srv.BreakerStatus("shop", "payments"); st != "Closed" {
		t.Errorf("a departed replica's breakers still count: %s", st)
	}
}

func TestUnauthenticatedGetsNothing(t *testing.T) {
	srv := newServer(t, "m0", &server.MemoryStore{})
	url, tlsCfg := startServer(t, srv)
	publish(t, srv, snapshotWith(1))
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: tlsCfg, ForceAttemptHTTP2: true}}
	cases := []struct {
		desc   string
		header string
		want   int
	}{
		{desc: "no token", header: "", want: http.StatusUnauthorized},
		{desc: "wrong token", header: "Bearer bad", want: http.StatusUnauthorized},
		{desc: "not bearer", header: "Basic Z29vZA==", want: http.StatusUnauthorized},
	}
	for _, tc := range cases {
		t.Run(tc.desc, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodPost, url+distribution.StreamPath, strings.NewReader(""))
			if tc.header != "" {
				req.Header.Set("Authorization", tc.header)
			}
			resp, err := hc.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var body strings.Builder
			buf := make([]byte, 4096)
			n, _ := resp.Body.Read(buf)
			body.Write(buf[:n])
			if resp.StatusCode != tc.want || strings.Contains(body.String(), "snapshot") {
				t.Errorf("status %d body %q, want %d and no snapshot", resp.StatusCode, body.String(), tc.want)
			}
		})
	}
	if srv.Replicas() != 0 {
		t.Errorf("an unauthenticated client counts as a replica")
	}
}

func TestRefusedSnapshotIsReportedInTheAck(t *testing.T) {
	var manager logs
	srv := newServer(t, "m0", &server.MemoryStore{}, manager.logger())
	url, tlsCfg := startServer(t, srv)
	bad := &snapshot.Snapshot{Services: []snapshot.Service{{Namespace: "a", Name: "b"}}, Policies: []snapshot.PolicyRef{}} // no ports: invalid
	publish(t, srv, bad)
	rec := &recorder{}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	client := &Client{URL: url, TLS: tlsCfg, Replica: "gw-1", Token: func() (string, error) { return "good", nil },
		Apply: rec.apply, Log: logr.Discard()}
	go func() { _ = client.Run(ctx) }()
	eventually(t, "the refusal acked", func() bool { return refused(&manager, "gw-1", 0, "no ports") })
	if rec.last() != 0 {
		t.Errorf("an invalid snapshot reached the gateway")
	}
}

// TestTwoManagerReplicasShareGatewayStates connects one gateway to each of two manager replicas that
// share a store: either replica (the leader, say) counts both gateways and sees both breakers.
func TestTwoManagerReplicasShareGatewayStates(t *testing.T) {
	store := &server.MemoryStore{}
	leader, follower := newServer(t, "manager-0", store), newServer(t, "manager-1", store)
	urlL, tlsL := startServer(t, leader)
	urlF, tlsF := startServer(t, follower)
	for _, s := range []*server.Server{leader, follower} {
		publish(t, s, snapshotWith(1))
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	clients := map[string]*Client{}
	for name, target := range map[string]struct {
		url string
		tls *tls.Config
	}{"gw-a": {urlL, tlsL}, "gw-b": {urlF, tlsF}} {
		rec := &recorder{}
		c := &Client{URL: target.url, TLS: target.tls, Replica: name, Token: func() (string, error) { return "good", nil },
			Apply: rec.apply, Log: logr.Discard()}
		clients[name] = c
		go func() { _ = c.Run(ctx) }()
	}
	eventually(t, "the leader counts both gateways", func() bool {
		ok, _, msg := leader.Programmed(snapshot.PolicyKey{Kind: "RateLimit", Namespace: "shop", Name: "checkout"}, 1)
		return ok && msg == "2/2 gateway replicas"
	})
	if n := leader.Replicas(); n != 2 {
		t.Errorf("leader counts %d replicas for Split, want 2", n)
	}
	clients["gw-b"].Send(distribution.BreakerChange{Namespace: "shop", Name: "payments", Service: "payments", Port: 80,
		Endpoint: "10.0.0.1:8080", From: "Closed", To: "Open"})
	eventually(t, "the follower's gateway breaker seen by the leader", func() bool {
		st, _, endpoints := leader.BreakerStatus("shop", "payments")
		return st == "Open" && endpoints == 1
	})
	// A new generation that only the leader's gateway has applied is Pending, naming the other.
	publish(t, leader, snapshotWith(2))
	eventually(t, "Pending waiting for gw-b", func() bool {
		ok, reason, msg := leader.Programmed(snapshot.PolicyKey{Kind: "RateLimit", Namespace: "shop", Name: "checkout"}, 2)
		return !ok && reason == "Pending" && msg == "1/2 gateway replicas; waiting for gw-b"
	})
}

// deltaRecorder is a gateway stand-in that takes deltas: it records each snapshot it is given whole.
type deltaRecorder struct {
	mu      sync.Mutex
	bodies  map[uint64][]byte
	last    uint64
	refuse  bool
	onApply func() // run on the client's stream goroutine
}

func (r *deltaRecorder) apply(version uint64, e *snapshot.Encoded) error {
	body, err := e.Body()
	if err != nil {
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.refuse {
		return errors.New("refused for the test")
	}
	if r.bodies == nil {
		r.bodies = map[uint64][]byte{}
	}
	r.bodies[version], r.last = body, version
	if r.onApply != nil {
		r.onApply()
		r.onApply = nil
	}
	return nil
}

func (r *deltaRecorder) body(version uint64) []byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.bodies[version]
}

// A gateway that takes deltas gets the whole snapshot at connect and only deltas after it, and
// holds exactly what the manager published; one that lost the base of a delta asks for the whole
// snapshot and gets it; a refused version is acked as refused, and the next delta builds on it.
func TestDeltas(t *testing.T) {
	var manager, gateway logs
	srv := newServer(t, "m0", &server.MemoryStore{}, manager.logger())
	url, tlsCfg := startServer(t, srv)
	twoServices := func(gen int64, eps int) *snapshot.Snapshot {
		s := snapshotWith(gen, eps)
		other := s.Services[0]
		other.Name = "web"
		s.Services = append(s.Services, other)
		return s
	}
	want := func(s *snapshot.Snapshot) []byte {
		c := *s
		c.Version = 0
		b, _ := json.Marshal(&c)
		return b
	}
	s1 := twoServices(1, 1)
	v1 := publish(t, srv, s1)
	rec := &deltaRecorder{}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	client := &Client{URL: url, TLS: tlsCfg, Replica: "gw-0", Token: func() (string, error) { return "good", nil },
		Apply: rec.apply, Log: gateway.logger()}
	done := make(chan struct{})
	go func() { defer close(done); _ = client.Run(ctx) }()
	eventually(t, "the whole snapshot at connect", func() bool { return rec.body(v1) != nil })
	if !bytes.Equal(rec.body(v1), want(s1)) {
		t.Fatalf("got %s, want %s", rec.body(v1), want(s1))
	}

	for i, s := range []*snapshot.Snapshot{twoServices(1, 2), twoServices(2, 2), snapshotWith(2, 2), twoServices(3, 1)} {
		v := publish(t, srv, s)
		eventually(t, fmt.Sprintf("version %d", i), func() bool { return rec.body(v) != nil })
		if !bytes.Equal(rec.body(v), want(s)) {
			t.Fatalf("change %d: the gateway holds %s, want %s", i, rec.body(v), want(s))
		}
		if !gateway.has("received snapshot", "version", v, "delta", true) {
			t.Fatalf("change %d went whole, not as a delta", i)
		}
	}

	// Refused, then the next delta builds on the refused version all the same.
	rec.mu.Lock()
	rec.refuse = true
	rec.mu.Unlock()
	vr := publish(t, srv, twoServices(4, 1))
	eventually(t, "the refusal acked", func() bool { return refused(&manager, "gw-0", vr, "refused for the test") })
	rec.mu.Lock()
	rec.refuse = false
	rec.mu.Unlock()
	s5 := twoServices(4, 3)
	v5 := publish(t, srv, s5)
	eventually(t, "the delta after a refusal", func() bool { return bytes.Equal(rec.body(v5), want(s5)) })

	// The gateway loses what it held: the next delta cannot apply, and it gets the whole snapshot.
	rec.mu.Lock()
	rec.onApply = client.decoder.Reset
	rec.mu.Unlock()
	s55 := twoServices(5, 2)
	v55 := publish(t, srv, s55)
	eventually(t, "the version that loses the base", func() bool { return rec.body(v55) != nil })
	s6 := twoServices(5, 3)
	v6 := publish(t, srv, s6)
	eventually(t, "the whole snapshot after a lost base", func() bool { return bytes.Equal(rec.body(v6), want(s6)) })
	if !gateway.has("received snapshot", "version", v6, "delta", false) {
		t.Fatal("the version after a lost base was not sent whole")
	}
	eventually(t, "Programmed for generation 5", func() bool {
		ok, _, _ := srv.Programmed(snapshot.PolicyKey{Kind: "RateLimit", Namespace: "shop", Name: "checkout"}, 5)
		return ok
	})
	cancel()
	<-done
}
