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

package global

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"resilience.dev/operator/api/v1alpha1"
)

// A Global 100/s burst 10 limit, three replicas, 70/20/10 traffic for 10 s: Global admits between
// 98% and 100% of 10 + 100*10 (never more than burst + rate*T plus one per replica) at 200 and at
// 600 req/s; Split, in the same test, admits what the replicas' shares allow (about 87% at 200 req/s).
func TestGlobalLimitIsExactAcrossReplicas(t *testing.T) {
	cases := []struct {
		desc         string
		distribution string
		rate         int
		min, max     float64 // of 10 + 100*T
	}{
		{desc: "Global at 200 req/s", distribution: "Global", rate: 200, min: 0.98, max: 1},
		{desc: "Global at 600 req/s", distribution: "Global", rate: 600, min: 0.98, max: 1},
		{desc: "Split at 200 req/s", distribution: "Split", rate: 200, min: 0.80, max: 0.95},
	}
	for _, tc := range cases {
		t.Run(tc.desc, func(t *testing.T) {
			ns := service(t, "exact")
			apply(t, ns, `  distribution: `+tc.distribution+`
  limits: [{name: total, requests: 100, period: 1s, burst: 10}]`)
			calls, fallbacks := storeCalls(t), storeFallbacks(t)
			outs, span := offer(ns, tc.rate, 10*time.Second, func(i int) request { return request{replica: spread70_20_10(i)} })
			calls, fallbacks = storeCalls(t)-calls, storeFallbacks(t)-fallbacks
			if fallbacks > 0 {
				t.Fatalf("%.0f requests were decided by onStoreError: the store missed its budget, so this run did not measure Global limits", fallbacks)
			}
			ok, limited := tally(t, outs, "", 0, time.Hour)
			ideal := 10 + 100*span.Seconds()
			t.Logf("%s: offered %d in %.2fs, admitted %d (%s of 10 + 100*T = %.0f), refused %d, store calls per request %.3f",
				tc.desc, len(outs), span.Seconds(), ok, pct(float64(ok), ideal), ideal, limited, calls/float64(len(outs)))
			if float64(ok) < tc.min*ideal || float64(ok) > tc.max*ideal+replicas {
				t.Fatalf("admitted %d, want between %.0f and %.0f", ok, tc.min*ideal, tc.max*ideal+replicas)
			}
		})
	}
}

// A keyed Global limit keeps one bucket per key in the store: three users, each offering three times
// their 20/s (burst 5) over the three replicas for 5 s, each get their own 5 + 20*5, exactly.
func TestKeyedGlobalLimit(t *testing.T) {
	ns := service(t, "keyed")
	apply(t, ns, `  distribution: Global
  limits: [{name: per-user, requests: 20, period: 1s, burst: 5, key: [{header: X-User}]}]`)
	users := []string{"ann", "bob", "cy"}
	defer noFallbacks(t, storeFallbacks(t))
	outs, span := offer(ns, 180, 5*time.Second, func(i int) request {
		u := users[i%3]
		return request{replica: spread70_20_10(i / 3), header: http.Header{"X-User": {u}}, label: u}
	})
	ideal := 5 + 20*span.Seconds()
	for _, u := range users {
		ok, _ := tally(t, outs, u, 0, time.Hour)
		t.Logf("user %s: admitted %d (%s of 5 + 20*T = %.1f)", u, ok, pct(float64(ok), ideal), ideal)
		if float64(ok) < 0.98*ideal || float64(ok) > ideal+replicas {
			t.Errorf("user %s: admitted %d, want between %.1f and %.1f", u, ok, 0.98*ideal, ideal+replicas)
		}
	}
}

// All or nothing, Global and local together: requests that a local limit refuses take nothing from
// the Global one, so the other path keeps the whole Global rate.
func TestGlobalAndLocalAllOrNothing(t *testing.T) {
	ns := service(t, "aon")
	apply(t, ns, `  limits:
  - {name: all, requests: 100, period: 1s, burst: 10, distribution: Global}
  - {name: slow-path, requests: 1, period: 1s, burst: 1, distribution: PerReplica, match: {pathPrefix: /a}}`)
	defer noFallbacks(t, storeFallbacks(t))
	outs, span := offer(ns, 200, 5*time.Second, func(i int) request {
		p := []string{"/a", "/b"}[i%2]
		return request{replica: spread70_20_10(i / 2), path: p, label: p}
	})
	okA, _ := tally(t, outs, "/a", 0, time.Hour)
	okB, _ := tally(t, outs, "/b", 0, time.Hour)
	global := 10 + 100*span.Seconds()
	wantB := min(float64(len(outs)/2), global-float64(okA))
	t.Logf("/a (local 1/s per replica): %d admitted; /b: %d admitted of the %.0f Global tokens left", okA, okB, wantB)
	if okA > replicas*(1+6) {
		t.Errorf("/a admitted %d, more than its local limit allows", okA)
	}
	if float64(okB) < 0.95*wantB {
		t.Errorf("/b admitted %d, want at least %.0f: refused /a requests took Global tokens", okB, 0.95*wantB)
	}
}

// The store killed mid-traffic and started again: each onStoreError behaves as the contract says,
// nothing is left unanswered, StoreAvailable turns False within 2 s and True again within 2 s.
func TestStoreOutage(t *testing.T) {
	modes := []string{"Local", "Allow", "Deny"}
	nss := map[string]string{}
	for _, m := range modes {
		ns := service(t, "outage-"+strings.ToLower(m))
		apply(t, ns, `  distribution: Global
  onStoreError: `+m+`
  limits: [{name: total, requests: 30, period: 1s, burst: 3}]`)
		nss[m] = ns
		until(t, m+": StoreAvailable True", 10*time.Second, func() bool { return storeCond(t, ns) == "True" })
	}
	const killAt, backAt, end = 2 * time.Second, 6 * time.Second, 9 * time.Second
	results := map[string][]outcome{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	start := time.Now()
	for _, m := range modes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			outs, _ := offer(nss[m], 60, end, func(i int) request { return request{replica: spread70_20_10(i)} })
			mu.Lock()
			results[m] = outs
			mu.Unlock()
		}()
	}
	time.Sleep(time.Until(start.Add(killAt)))
	store.Stop()
	killed := time.Now()
	for _, m := range modes {
		until(t, m+": StoreAvailable False after the kill", 2*time.Second-time.Since(killed), func() bool { return storeCond(t, nss[m]) == "False" })
		t.Logf("%s: StoreAvailable=False %v after the kill", m, time.Since(killed).Round(time.Millisecond))
	}
	time.Sleep(time.Until(start.Add(backAt)))
	restarting := time.Now()
	restarted, err := store.Restart(context.Background(), harness.Log)
	if err != nil {
		t.Fatal(err)
	}
	store = restarted
	back := time.Now()
	for _, m := range modes {
		until(t, m+": StoreAvailable True after the return", 2*time.Second-time.Since(back), func() bool { return storeCond(t, nss[m]) == "True" })
		t.Logf("%s: StoreAvailable=True %v after the store returned", m, time.Since(back).Round(time.Millisecond))
	}
	wg.Wait()
	checkOutage(t, results, start, killAt, restarting, end)
}

// checkOutage judges the answers sent and answered while the store was down (sent from 1.2 s after
// the kill: every replica has noticed, and the tokens the store granted before it died, which a
// replica may spend for up to a second, are gone; answered before its restart began, since a
// request still in flight then may rightly be decided by the returned store): Allow admits all,
// Deny refuses all, saying why, and Local enforces the Split share on each replica.
func checkOutage(t *testing.T, results map[string][]outcome, start time.Time, killAt time.Duration, restarting time.Time, end time.Duration) {
	t.Helper()
	from, to := killAt+1200*time.Millisecond, restarting.Sub(start)
	secs := (to - from).Seconds()
	for m, outs := range results {
		tally(t, outs, "", 0, end) // every request answered with 200 or 429
		var down []outcome
		for _, o := range outs {
			if o.answered.Before(restarting) {
				down = append(down, o)
			}
		}
		ok, limited := tally(t, down, "", from, to)
		t.Logf("%s while the store was down: %d admitted (%.1f/s), %d refused", m, ok, float64(ok)/secs, limited)
		switch m {
		case "Allow":
			if limited != 0 {
				t.Errorf("Allow refused %d requests while the store was down", limited)
			}
		case "Deny":
			if ok != 0 {
				t.Errorf("Deny admitted %d requests while the store was down", ok)
			}
			for _, o := range down {
				if o.at >= from && o.code == http.StatusTooManyRequests && !strings.Contains(o.body, "store of Global limits is unavailable") {
					t.Fatalf("Deny refusal says %q, want the store named", o.body)
				}
			}
		case "Local":
			// Shares of 10/s and burst 1 per replica against 42, 12 and 6 req/s offered: at most 26/s,
			// less what a bucket of one token loses between requests (about 20/s here).
			if rate := float64(ok) / secs; rate < 14 || rate > 27 {
				t.Errorf("Local admitted %.1f/s while the store was down, want the Split shares (at most 26/s)", rate)
			}
		}
	}
}

// noFallbacks fails the test if requests were decided by onStoreError since the count was before.
func noFallbacks(t *testing.T, before float64) {
	t.Helper()
	if n := storeFallbacks(t) - before; n > 0 {
		t.Errorf("%.0f requests were decided by onStoreError: the store missed its budget, so this run did not measure Global limits", n)
	}
}

// storeCond is the StoreAvailable status of RateLimit ns/rl ("" while it is not there).
func storeCond(t *testing.T, ns string) string {
	c := condition(t, ns, v1alpha1.ConditionStoreAvailable)
	if c == nil {
		return ""
	}
	return c.Status
}
