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
	"encoding/json"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"resilience.dev/operator/internal/patterns/clock"
	"resilience.dev/operator/internal/snapshot"
)

// A new snapshot keeps the state of every part whose StateKey is unchanged: a drained bucket stays
// drained and an open breaker stays open across a rollout of the backend; a changed key starts
// afresh.
func TestStateAcrossApply(t *testing.T) {
	t.Parallel()
	clk := clock.NewFake(t0)
	mem := newMem()
	var failing atomic.Bool
	failing.Store(true)
	h := func(w http.ResponseWriter, r *http.Request) {
		if failing.Load() && r.URL.Path == "/fail" {
			w.WriteHeader(500)
			return
		}
		ok200(w, r)
	}
	for i := 1; i <= 4; i++ {
		mem.handle(epAddr(i), h)
	}
	var log eventLog
	g := newGW(t, Options{Clock: clk, OnBreakerChange: log.add}, mem, nil)

	mk := func(version uint64, gen int64, lim snapshot.Limit, cb *snapshot.CircuitBreaker, eps ...snapshot.Endpoint) *snapshot.Snapshot {
		p := port(eps...)
		p.RateLimit = rateLimit(lim)
		p.CircuitBreaker = cb
		p.Retry = retry(1)
		p.RateLimit.Policy.Generation, p.CircuitBreaker.Policy.Generation = gen, gen
		s := snap(version, p)
		s.Policies = []snapshot.PolicyRef{p.RateLimit.Policy, p.CircuitBreaker.Policy}
		return s
	}
	lim := limit("total", 1, time.Hour, 3)
	cb := circuitBreaker(1)
	cb.ServeStale = snapshot.Duration(time.Hour)
	if err := g.Apply(encoded(mk(1, 1, lim, cb, ep(1), ep(2)))); err != nil {
		t.Fatal(err)
	}
	if rec := get(g, "http://api.shop/page"); rec.Code != 200 { // stored for serveStale
		t.Fatalf("warm: %d", rec.Code)
	}
	if rec := get(g, "http://api.shop/fail"); rec.Code != 500 { // opens the breaker
		t.Fatalf("trip: %d", rec.Code)
	}
	before := g.table.Load().state
	if rec := get(g, "http://api.shop/fail"); rec.Code != 503 { // the last token; the breaker is open
		t.Fatalf("third: %d", rec.Code)
	}
	if rec := get(g, "http://api.shop/fail"); rec.Code != 429 { // the bucket of 3 is drained
		t.Fatalf("drain: %d", rec.Code)
	}

	// Rollout: new endpoints, a new generation of both policies (same parameters), a new version.
	if err := g.Apply(encoded(mk(2, 2, lim, cb, ep(3), ep(4)))); err != nil {
		t.Fatal(err)
	}
	after := g.table.Load().state
	for k, v := range before.limitMap {
		if after.limitMap[k] != v {
			t.Errorf("bucket %s replaced", k)
		}
	}
	for k, v := range before.breakerMap {
		if after.breakerMap[k] != v {
			t.Errorf("breaker %s replaced", k)
		}
	}
	for k, v := range before.budgetMap {
		if after.budgetMap[k] != v {
			t.Errorf("budget %s replaced", k)
		}
	}
	if rec := get(g, "http://api.shop/page"); rec.Code != 429 {
		t.Fatalf("bucket refilled by the rollout: %d", rec.Code)
	}
	clk.Advance(time.Hour) // one token back; the breaker (open 30 s) goes half-open on the next call
	states := g.BreakerStates()
	if len(states) != 1 || states[0].Policy.Generation != 2 {
		t.Fatalf("breaker states after rollout %+v, want the breaker with generation 2", states)
	}

	// A changed limit (and breaker) starts afresh, and the old breaker's events and gauge go.
	lim2 := limit("total", 1, time.Hour, 5)
	cb2 := circuitBreaker(2)
	if err := g.Apply(encoded(mk(3, 3, lim2, cb2, ep(3), ep(4)))); err != nil {
		t.Fatal(err)
	}
	for range 5 {
		if rec := get(g, "http://api.shop/page"); rec.Code != 200 {
			t.Fatalf("new bucket not full: %d", rec.Code)
		}
	}
	if len(g.BreakerStates()) != 0 {
		t.Fatal("a new breaker key kept the old state")
	}
	if v := metricValue(t, g, "resilience_gateway_circuit_breaker_state", map[string]string{"policy": "cb"}); v != 0 {
		t.Fatalf("gauge %v, want the new breaker's 0", v)
	}
}

// An open breaker and its stale responses survive a rollout (a snapshot with new endpoints only).
func TestOpenBreakerSurvivesEndpointChange(t *testing.T) {
	t.Parallel()
	clk := clock.NewFake(t0)
	mem := newMem()
	h := func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/page" {
			ok200(w, r)
			return
		}
		w.WriteHeader(500)
	}
	mem.handle(epAddr(1), h)
	mem.handle(epAddr(2), h)
	cb := circuitBreaker(1)
	cb.OpenDuration = snapshot.Duration(time.Minute)
	cb.ServeStale = snapshot.Duration(time.Hour)
	g := newGW(t, Options{Clock: clk}, mem, withBreaker(cb, ep(1)))
	get(g, "http://api.shop/page")
	get(g, "http://api.shop/x")
	if err := g.Apply(encoded(withBreaker(cb, ep(2)))); err != nil {
		t.Fatal(err)
	}
	clk.Advance(10 * time.Second)
	rec := get(g, "http://api.shop/x")
	if rec.Code != 503 || rec.Header().Get("X-Resilience-Circuit") != "open" || rec.Header().Get("Retry-After") != "50" {
		t.Fatalf("got %d %q Retry-After %q, want still open", rec.Code, rec.Header().Get("X-Resilience-Circuit"), rec.Header().Get("Retry-After"))
	}
	if rec := get(g, "http://api.shop/page"); rec.Code != 200 || rec.Header().Get("X-Resilience-Stale") != "true" {
		t.Fatalf("stale response lost across the rollout: %d", rec.Code)
	}
}

// A malformed snapshot is refused and the last good one stays in force.
func TestApplyRefusesMalformed(t *testing.T) {
	t.Parallel()
	tests := []struct {
		desc   string
		mutate func(*snapshot.Snapshot)
	}{
		{desc: "nil snapshot", mutate: nil},
		{desc: "port 0", mutate: func(s *snapshot.Snapshot) { s.Services[0].Ports[0].Port = 0 }},
		{desc: "service listed twice", mutate: func(s *snapshot.Snapshot) { s.Services = append(s.Services, s.Services[0]) }},
		{desc: "bad endpoint address", mutate: func(s *snapshot.Snapshot) { s.Services[0].Ports[0].Endpoints[0].Address = "10.0.0" }},
		{desc: "limit without state key", mutate: func(s *snapshot.Snapshot) {
			l := limit("x", 1, time.Second, 1)
			l.StateKey = ""
			s.Services[0].Ports[0].RateLimit = rateLimit(l)
		}},
		{desc: "breaker with both trips", mutate: func(s *snapshot.Snapshot) {
			cb := circuitBreaker(3)
			cb.FailureRatio = &snapshot.FailureRatio{Percent: 50, MinimumRequests: 1, Window: snapshot.Duration(time.Second)}
			s.Services[0].Ports[0].CircuitBreaker = cb
		}},
		{desc: "bad status code", mutate: func(s *snapshot.Snapshot) {
			cb := circuitBreaker(3)
			cb.FailureStatusCodes = []string{"5xx"}
			s.Services[0].Ports[0].CircuitBreaker = cb
		}},
		{desc: "maxAttempts 11", mutate: func(s *snapshot.Snapshot) { s.Services[0].Ports[0].Retry = retry(11) }},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			t.Parallel()
			mem := newMem()
			mem.handle(epAddr(1), ok200)
			g := newGW(t, Options{}, mem, snap(1, port(ep(1))))
			var s *snapshot.Snapshot
			if tt.mutate != nil {
				s = snap(2, port(ep(1)))
				tt.mutate(s)
			}
			if err := g.Apply(encoded(s)); err == nil {
				t.Fatal("Apply accepted a malformed snapshot")
			}
			if g.Version() != 1 {
				t.Fatalf("version %d after a refused snapshot", g.Version())
			}
			if rec := get(g, "http://api.shop/"); rec.Code != 200 {
				t.Fatalf("last good snapshot not in force: %d", rec.Code)
			}
			if v := metricValue(t, g, "resilience_gateway_snapshot_apply_errors_total", nil); v != 1 {
				t.Fatalf("apply errors metric %v", v)
			}
		})
	}
}

// A snapshot equal to the one in force but for its version only records the version.
func TestApplyUnchanged(t *testing.T) {
	t.Parallel()
	g := newGW(t, Options{}, newMem(), snap(1, port(ep(1))))
	tab := g.table.Load()
	if err := g.Apply(encoded(snap(7, port(ep(1))))); err != nil {
		t.Fatal(err)
	}
	if g.table.Load() != tab {
		t.Fatal("an unchanged snapshot rebuilt the table")
	}
	if g.Version() != 7 || metricValue(t, g, "resilience_gateway_snapshot_version", nil) != 7 {
		t.Fatalf("version %d", g.Version())
	}
	if err := g.Apply(encoded(snap(8, port(ep(2))))); err != nil {
		t.Fatal(err)
	}
	if g.table.Load() == tab {
		t.Fatal("a changed snapshot did not rebuild the table")
	}
}

// Every metric family is there, and no client-controlled value (a rate-limit key, a host) is a
// label value.
func TestMetrics(t *testing.T) {
	t.Parallel()
	mem := newMem()
	mem.handle(epAddr(1), status(503))
	p := port(ep(1))
	l := limit("per-user", 100, time.Second, 100)
	l.Key = []snapshot.KeyPart{{Header: "X-User-ID"}, {ClientIP: true}}
	p.RateLimit = rateLimit(l)
	p.CircuitBreaker = circuitBreaker(5)
	p.Retry = retry(2)
	g := newGW(t, Options{Clock: clock.NewFake(t0)}, mem, snap(3, p))
	get(g, "http://api.shop/", "X-User-ID: secret-user-value")
	get(g, "http://nosuch.secret-host-value/")
	mfs, err := g.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, mf := range mfs {
		names[mf.GetName()] = true
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if strings.Contains(lp.GetValue(), "secret") {
					t.Errorf("%s has label %s=%q", mf.GetName(), lp.GetName(), lp.GetValue())
				}
			}
		}
	}
	for _, n := range []string{"requests_total", "rejections_total", "circuit_breaker_state", "retries_total",
		"upstream_duration_seconds", "snapshot_version"} {
		if !names["resilience_gateway_"+n] {
			t.Errorf("no resilience_gateway_%s", n)
		}
	}
	if v := metricValue(t, g, "resilience_gateway_requests_total", map[string]string{"target_service": "api", "code": "503"}); v != 1 {
		t.Errorf("requests_total{api,503} = %v", v)
	}
	if v := metricValue(t, g, "resilience_gateway_requests_total", map[string]string{"target_service": "", "code": "403"}); v != 1 {
		t.Errorf("requests_total{\"\",403} = %v", v)
	}
}

// A snapshot that changes one Service keeps the routes of the others as they are (with their state),
// rebuilds the changed one taking over the state whose keys are unchanged, and drops the state of
// a Service that is gone.
func TestApplyKeepsUnchangedServices(t *testing.T) {
	t.Parallel()
	clk := clock.NewFake(t0)
	mem := newMem()
	mem.handle(epAddr(1), status(500))
	mem.handle(epAddr(2), ok200)
	mem.handle(epAddr(3), ok200)
	mk := func(version uint64, apiEps []snapshot.Endpoint, withShop2 bool) *snapshot.Snapshot {
		api := port(apiEps...)
		api.CircuitBreaker = circuitBreaker(1)
		api.RateLimit = rateLimit(limit("total", 1, time.Hour, 3))
		web := port(ep(3))
		web.RateLimit = rateLimit(limit("web", 1, time.Hour, 2))
		web.RateLimit.Limits[0].StateKey = "uid-web/limit"
		web.RateLimit.Policy = ref("RateLimit", "web")
		s := &snapshot.Snapshot{Version: version, Services: []snapshot.Service{
			{Namespace: "shop", Name: "api", Ports: []snapshot.Port{api}},
			{Namespace: "shop", Name: "web", Ports: []snapshot.Port{web}},
		}}
		if withShop2 {
			other := port(ep(2))
			other.CircuitBreaker = circuitBreaker(2)
			other.CircuitBreaker.StateKey = "uid-other/breaker"
			s.Services = append(s.Services, snapshot.Service{Namespace: "shop2", Name: "other", Ports: []snapshot.Port{other}})
		}
		return s
	}
	g := newGW(t, Options{Clock: clk}, mem, mk(1, []snapshot.Endpoint{ep(1)}, true))
	get(g, "http://api.shop/") // opens api's breaker, takes a token
	get(g, "http://web.shop/") // takes one of web's two tokens
	first := g.table.Load()

	// api's endpoints change; web and other do not.
	if err := g.Apply(encoded(mk(2, []snapshot.Endpoint{ep(1), ep(2)}, true))); err != nil {
		t.Fatal(err)
	}
	second := g.table.Load()
	if second == first {
		t.Fatal("a changed snapshot did not make a new table")
	}
	for _, k := range []svcKey{{"shop", "web"}, {"shop2", "other"}} {
		if second.services[k] != first.services[k] {
			t.Errorf("the route of unchanged %v was rebuilt", k)
		}
	}
	if second.services[svcKey{"shop", "api"}] == first.services[svcKey{"shop", "api"}] {
		t.Error("the route of changed api was kept")
	}
	for k, v := range first.state.limitMap {
		if second.state.limitMap[k] != v {
			t.Errorf("bucket %s replaced", k)
		}
	}
	for k, v := range first.state.breakerMap {
		if second.state.breakerMap[k] != v {
			t.Errorf("breaker %s replaced", k)
		}
	}
	if len(second.state.breakerList) != 2 || len(g.BreakerStates()) != 1 {
		t.Fatalf("%d breakers in force, %d not closed; want 2 and api's open", len(second.state.breakerList), len(g.BreakerStates()))
	}
	if rec := get(g, "http://web.shop/"); rec.Code != 200 {
		t.Fatalf("web's last token: %d", rec.Code)
	}
	if rec := get(g, "http://web.shop/"); rec.Code != 429 {
		t.Fatalf("web's bucket refilled by another Service's change: %d", rec.Code)
	}

	// other goes: its breaker is dropped, the rest stays.
	if err := g.Apply(encoded(mk(3, []snapshot.Endpoint{ep(1), ep(2)}, false))); err != nil {
		t.Fatal(err)
	}
	third := g.table.Load()
	if third.services[svcKey{"shop", "web"}] != first.services[svcKey{"shop", "web"}] || third.services[svcKey{"shop2", "other"}] != nil {
		t.Fatal("routes after a Service went")
	}
	if len(third.state.breakerList) != 1 || third.state.breakerList[0] != second.state.breakerMap[third.state.breakerList[0].key] {
		t.Fatalf("breakers after a Service went: %d", len(third.state.breakerList))
	}
	for k, v := range second.state.breakerMap {
		if _, kept := third.state.breakerMap[k]; !kept && !v.dropped.Load() {
			t.Errorf("breaker %s of the Service gone was not dropped", k)
		}
	}
}

// Apply of a snapshot from the Decoder keeps the table built from the same content encoded here.
func TestApplyDecodedMatchesEncoded(t *testing.T) {
	t.Parallel()
	mem := newMem()
	mem.handle(epAddr(1), ok200)
	p := port(ep(1))
	p.RateLimit = rateLimit(limit("total", 1, time.Hour, 3))
	g := newGW(t, Options{}, mem, snap(1, p))
	tab := g.table.Load()
	var d snapshot.Decoder
	data, _ := json.Marshal(snap(0, p))
	e, err := d.Decode(data)
	if err != nil {
		t.Fatal(err)
	}
	e.Version = 2
	if err := g.Apply(e); err != nil {
		t.Fatal(err)
	}
	if g.table.Load() != tab || g.Version() != 2 {
		t.Fatal("the same content, decoded, rebuilt the table")
	}
	if err := g.Apply(&snapshot.Encoded{Snapshot: snap(3, p)}); err == nil {
		t.Fatal("Apply took a snapshot without its encodings")
	}
}
