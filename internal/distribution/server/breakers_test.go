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
	"context"
	"testing"
	"time"

	"github.com/go-logr/logr"

	"resilience.dev/operator/api/v1alpha1"
	"resilience.dev/operator/internal/distribution"
)

func TestBreakerKeyRoundTrip(t *testing.T) {
	cases := []struct {
		desc string
		key  BreakerKey
		text string
	}{
		{desc: "scope Service", key: BreakerKey{Namespace: "shop", Name: "pay", Service: "payments", Port: 80},
			text: "shop/pay|payments:80|"},
		{desc: "an IPv4 endpoint", key: BreakerKey{Namespace: "shop", Name: "pay", Service: "payments", Port: 80, Endpoint: "10.0.0.1:8080"},
			text: "shop/pay|payments:80|10.0.0.1:8080"},
		{desc: "an IPv6 endpoint", key: BreakerKey{Namespace: "shop", Name: "pay", Service: "payments", Port: 443, Endpoint: "[fd00::1]:8080"},
			text: "shop/pay|payments:443|[fd00::1]:8080"},
	}
	for _, tc := range cases {
		t.Run(tc.desc, func(t *testing.T) {
			if got := tc.key.String(); got != tc.text {
				t.Fatalf("String() = %q, want %q", got, tc.text)
			}
			if got, err := ParseBreakerKey(tc.text); err != nil || got != tc.key {
				t.Fatalf("ParseBreakerKey = %+v, %v; want %+v", got, err, tc.key)
			}
		})
	}
	for _, bad := range []string{"", "shop/pay", "shop/pay|payments|", "shop|payments:80|", "shop/pay|payments:x|"} {
		if _, err := ParseBreakerKey(bad); err == nil {
			t.Errorf("ParseBreakerKey(%q) took a malformed key", bad)
		}
	}
}

// TestBreakerStatus aggregates the breakers of live replicas: the worst state, the replicas with the
// Service-scope breaker open, and the distinct open endpoints.
func TestBreakerStatus(t *testing.T) {
	svc := BreakerKey{Namespace: "shop", Name: "pay", Service: "payments", Port: 80}
	ep := func(e string) BreakerKey { k := svc; k.Endpoint = e; return k }
	other := BreakerKey{Namespace: "shop", Name: "other", Service: "other", Port: 80}
	cases := []struct {
		desc          string
		replicas      []breakerStates
		wantState     v1alpha1.CircuitState
		wantReplicas  int
		wantEndpoints int
	}{
		{desc: "no replica", wantState: v1alpha1.CircuitClosed},
		{desc: "another breaker open", replicas: []breakerStates{{other: v1alpha1.CircuitOpen}}, wantState: v1alpha1.CircuitClosed},
		{desc: "half-open on one replica", replicas: []breakerStates{{svc: v1alpha1.CircuitHalfOpen}, {}}, wantState: v1alpha1.CircuitHalfOpen},
		{desc: "open beats half-open", replicas: []breakerStates{{svc: v1alpha1.CircuitHalfOpen}, {svc: v1alpha1.CircuitOpen}},
			wantState: v1alpha1.CircuitOpen, wantReplicas: 1},
		{desc: "endpoints counted once across replicas",
			replicas:  []breakerStates{{ep("10.0.0.1:80"): v1alpha1.CircuitOpen}, {ep("10.0.0.1:80"): v1alpha1.CircuitOpen, ep("10.0.0.2:80"): v1alpha1.CircuitOpen}},
			wantState: v1alpha1.CircuitOpen, wantEndpoints: 2},
	}
	for _, tc := range cases {
		t.Run(tc.desc, func(t *testing.T) {
			store := &MemoryStore{}
			for i, b := range tc.replicas {
				_ = store.Put(context.Background(), GatewayState{Replica: string(rune('a' + i)), Heartbeat: time.Now(), Breakers: b})
			}
			srv := NewServer(acceptAll{}, store, "m0", logr.Discard())
			st, replicas, endpoints := srv.BreakerStatus("shop", "pay")
			if st != tc.wantState || replicas != tc.wantReplicas || endpoints != tc.wantEndpoints {
				t.Errorf("got %s, %d replicas, %d endpoints; want %s, %d, %d", st, replicas, endpoints, tc.wantState, tc.wantReplicas, tc.wantEndpoints)
			}
		})
	}
}

// TestRecordBreaker: a transition to Closed (or to nothing) forgets the breaker.
func TestRecordBreaker(t *testing.T) {
	m := breakerStates{}
	change := distribution.BreakerChange{Namespace: "shop", Name: "pay", Service: "payments", Port: 80}
	for _, step := range []struct {
		to   v1alpha1.CircuitState
		want int
	}{{v1alpha1.CircuitOpen, 1}, {v1alpha1.CircuitHalfOpen, 1}, {v1alpha1.CircuitClosed, 0}, {v1alpha1.CircuitOpen, 1}, {"", 0}} {
		change.To = string(step.to)
		m.record(change)
		if len(m) != step.want || (step.want == 1 && m[keyOf(change)] != step.to) {
			t.Fatalf("after a transition to %q: %v", step.to, m)
		}
	}
}

// TestBreakerLinesAreTheSharedFormat pins the text of the breakers in a gateway state ConfigMap,
// which manager replicas of other versions read: "namespace/name|service:port|endpoint=State" lines sorted by key.
func TestBreakerLinesAreTheSharedFormat(t *testing.T) {
	states := map[BreakerKey]v1alpha1.CircuitState{
		{Namespace: "shop", Name: "pay", Service: "payments", Port: 80, Endpoint: "10.0.0.1:8080"}: v1alpha1.CircuitOpen,
		{Namespace: "shop", Name: "pay", Service: "payments", Port: 80}:                            v1alpha1.CircuitHalfOpen,
	}
	text := encodeLines(breakerLines(states), func(s v1alpha1.CircuitState) string { return string(s) })
	if want := "shop/pay|payments:80|=HalfOpen\nshop/pay|payments:80|10.0.0.1:8080=Open\n"; text != want {
		t.Fatalf("encoded %q, want %q", text, want)
	}
	back := breakersOf(decodeLines(text, func(v string) (v1alpha1.CircuitState, bool) { return v1alpha1.CircuitState(v), v != "" }))
	if len(back) != len(states) || back[BreakerKey{Namespace: "shop", Name: "pay", Service: "payments", Port: 80}] != v1alpha1.CircuitHalfOpen {
		t.Fatalf("decoded %v, want %v", back, states)
	}
}
