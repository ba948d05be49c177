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

package server

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"

	"resilience.dev/operator/api/v1alpha1"
	"resilience.dev/operator/internal/distribution"
	"resilience.dev/operator/internal/patterns/clock"
	"resilience.dev/operator/internal/snapshot"
)

// checkout is the one policy of the test snapshots.
var checkout = snapshot.PolicyKey{Kind: v1alpha1.KindRateLimit, Namespace: "shop", Name: "checkout"}

// encoded holds checkout at generation gen; endpoints makes snapshots of one generation differ.
func encoded(t *testing.T, gen int64, endpoints int) *snapshot.Encoded {
	t.Helper()
	s := &snapshot.Snapshot{Services: []snapshot.Service{}, Policies: []snapshot.PolicyRef{
		{Kind: checkout.Kind, Namespace: checkout.Namespace, Name: checkout.Name, UID: "u", Generation: gen}}}
	if endpoints > 0 {
		port := snapshot.Port{Port: 80, Endpoints: []snapshot.Endpoint{}}
		for i := range endpoints {
			port.Endpoints = append(port.Endpoints, snapshot.Endpoint{Address: fmt.Sprintf("10.0.0.%d", i+1), Port: 8080, Type: snapshot.AddressIPv4})
		}
		s.Services = append(s.Services, snapshot.Service{Namespace: "shop", Name: "checkout", Ports: []snapshot.Port{port}})
	}
	e, err := snapshot.Encode(s)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// acceptAll takes any token, naming the replica as it claims.
type acceptAll struct{}

func (acceptAll) Authenticate(_ context.Context, _, claimed string) (string, error) {
	return claimed, nil
}

// TestPublishStampsVersionsFromTheClock: a version is the clock's milliseconds, and above the one
// before even within one millisecond; identical content keeps the current version.
func TestPublishStampsVersionsFromTheClock(t *testing.T) {
	fake := clock.NewFake(time.UnixMilli(1_000_000))
	srv := NewServer(acceptAll{}, &MemoryStore{}, "m0", logr.Discard(), WithClock(fake))
	steps := []struct {
		desc        string
		gen, eps    int
		advance     time.Duration
		wantVersion uint64
		wantChanged bool
	}{
		{desc: "the first version is the clock's milliseconds", gen: 1, eps: 2, wantVersion: 1_000_000, wantChanged: true},
		{desc: "identical content keeps the version", gen: 1, eps: 2, advance: time.Second, wantVersion: 1_000_000},
		{desc: "new content takes the clock's milliseconds", gen: 1, eps: 3, wantVersion: 1_001_000, wantChanged: true},
		{desc: "within one millisecond: one above the last", gen: 2, eps: 3, wantVersion: 1_001_001, wantChanged: true},
	}
	for _, st := range steps {
		fake.Advance(st.advance)
		e := encoded(t, int64(st.gen), st.eps)
		e.Version = 99 // a version in the input is not content
		v, changed, err := srv.Publish(e)
		if err != nil || v != st.wantVersion || changed != st.wantChanged {
			t.Fatalf("%s: version %d changed %v err %v; want %d, %v", st.desc, v, changed, err, st.wantVersion, st.wantChanged)
		}
	}
}

// TestStaleStatesDoNotCount: a gateway state whose heartbeat is older than StaleAfter belongs to a
// manager replica that died, and counts for neither Replicas nor Programmed.
func TestStaleStatesDoNotCount(t *testing.T) {
	fake := clock.NewFake(time.Unix(1_000, 0))
	store := &MemoryStore{}
	srv := NewServer(acceptAll{}, store, "m0", logr.Discard(), WithClock(fake))
	if _, _, err := srv.Publish(encoded(t, 1, 0)); err != nil {
		t.Fatal(err)
	}
	_ = store.Put(context.Background(), GatewayState{Replica: "gw-0", Manager: "m1", Heartbeat: fake.Now(),
		Policies: map[snapshot.PolicyKey]int64{checkout: 1}})
	if ok, _, msg := srv.Programmed(checkout, 1); !ok || srv.Replicas() != 1 {
		t.Fatalf("fresh state: Programmed %v (%s), %d replicas; want true, 1", ok, msg, srv.Replicas())
	}
	fake.Advance(StaleAfter + time.Millisecond)
	if ok, reason, _ := srv.Programmed(checkout, 1); ok || reason != v1alpha1.ReasonNoGateways || srv.Replicas() != 0 {
		t.Fatalf("stale state: Programmed %v %s, %d replicas; want NoGateways, 0", ok, reason, srv.Replicas())
	}
}

func TestChangedKeys(t *testing.T) {
	x := snapshot.PolicyKey{Kind: v1alpha1.KindRateLimit, Namespace: "a", Name: "x"}
	y := snapshot.PolicyKey{Kind: v1alpha1.KindRetryPolicy, Namespace: "a", Name: "y"}
	base := func() map[string]GatewayState {
		return map[string]GatewayState{
			"gw-0": {Replica: "gw-0", Policies: map[snapshot.PolicyKey]int64{x: 1, y: 2}, Breakers: breakerStates{}},
			"gw-1": {Replica: "gw-1", Policies: map[snapshot.PolicyKey]int64{x: 1, y: 2}, Breakers: breakerStates{}},
		}
	}
	cases := []struct {
		desc   string
		mutate func(map[string]GatewayState)
		want   []snapshot.PolicyKey
	}{
		{desc: "a heartbeat only", mutate: func(m map[string]GatewayState) {
			st := m["gw-0"]
			st.Heartbeat = time.Unix(1, 0)
			m["gw-0"] = st
		}, want: []snapshot.PolicyKey{}},
		{desc: "one replica applied a new generation", mutate: func(m map[string]GatewayState) { m["gw-1"].Policies[x] = 2 },
			want: []snapshot.PolicyKey{x}},
		{desc: "a policy left the snapshot", mutate: func(m map[string]GatewayState) { delete(m["gw-0"].Policies, y) },
			want: []snapshot.PolicyKey{y}},
		{desc: "a breaker opened", mutate: func(m map[string]GatewayState) {
			m["gw-0"].Breakers[BreakerKey{Namespace: "a", Name: "pay", Service: "pay", Port: 80}] = v1alpha1.CircuitOpen
		}, want: []snapshot.PolicyKey{{Kind: v1alpha1.KindCircuitBreaker, Namespace: "a", Name: "pay"}}},
	}
	for _, tc := range cases {
		t.Run(tc.desc, func(t *testing.T) {
			cur := base()
			tc.mutate(cur)
			if got := changedKeys(base(), cur); !slices.Equal(got, tc.want) {
				t.Errorf("changed %v, want %v", got, tc.want)
			}
		})
	}
}

// TestWholeFramesWithoutDeltas: a gateway that does not ask for deltas gets every version whole.
func TestWholeFramesWithoutDeltas(t *testing.T) {
	srv := NewServer(acceptAll{}, &MemoryStore{}, "m0", logr.Discard())
	hs := httptest.NewServer(srv)
	t.Cleanup(hs.Close)
	if _, _, err := srv.Publish(encoded(t, 1, 1)); err != nil {
		t.Fatal(err)
	}
	body, w := io.Pipe()
	t.Cleanup(func() { _ = w.Close() })
	req, _ := http.NewRequest(http.MethodPost, hs.URL+distribution.StreamPath, body)
	req.Header.Set("Authorization", "Bearer any")
	req.Header.Set(distribution.ReplicaHeader, "gw-0")
	resp, err := hs.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	frames := bufio.NewScanner(resp.Body)
	frames.Buffer(nil, 1<<20)
	for k := range 2 {
		if k > 0 {
			if _, _, err := srv.Publish(encoded(t, 2, 2)); err != nil {
				t.Fatal(err)
			}
		}
		if !frames.Scan() {
			t.Fatalf("frame %d: stream ended: %v", k, frames.Err())
		}
		if f := frames.Text(); !strings.Contains(f, `"snapshot":`) || strings.Contains(f, `"delta":`) {
			t.Fatalf("frame %d is not a whole snapshot: %s", k, f)
		}
	}
}
