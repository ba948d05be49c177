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
	"io"
	"net/http"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"resilience.dev/operator/api/v1alpha1"
)

// soakDuration is RELIABILITY_SOAK (a Go duration), 5 minutes by default.
func soakDuration(t *testing.T) time.Duration {
	v := os.Getenv("RELIABILITY_SOAK")
	if v == "" {
		return 5 * time.Minute
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		t.Fatalf("RELIABILITY_SOAK=%q: %v", v, err)
	}
	return d
}

// processFigures are what a process reports about itself on /metrics.
type processFigures struct {
	goroutines, rss, heap float64
}

// figures collects garbage in the process (through its profiler at pprofAddr), then reads its metrics.
func figures(t *testing.T, metricsAddr, pprofAddr, heapMetric string) processFigures {
	t.Helper()
	resp, err := http.Get("http://" + pprofAddr + "/debug/pprof/heap?gc=1")
	if err != nil {
		t.Fatalf("force a GC: %v", err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	var f processFigures
	if f.goroutines, err = metric(metricsAddr, "go_goroutines"); err != nil {
		t.Fatal(err)
	}
	if f.rss, err = metric(metricsAddr, "process_resident_memory_bytes"); err != nil {
		t.Fatal(err)
	}
	if f.heap, err = metric(metricsAddr, heapMetric); err != nil {
		t.Fatal(err)
	}
	return f
}

func (f processFigures) String() string {
	return fmt.Sprintf("%.0f goroutines, %.1f MiB RSS, %.1f MiB heap", f.goroutines, mib(f.rss), mib(f.heap))
}

// Steady traffic for RELIABILITY_SOAK while the policies are edited every 3 seconds: every request is
// answered, the only gateway answers are those a policy causes, and goroutines and memory of the
// gateway and the manager come back to their baseline.
func TestSoak(t *testing.T) {
	ns := namespace(t, "soak")
	b := backend(t, ns, "soak")
	apply(t, fmt.Sprintf(`
apiVersion: resilience.dev/v1alpha1
kind: RateLimit
metadata: {name: soak, namespace: %[1]s}
spec:
  targetRefs: [{group: "", kind: Service, name: soak}]
  limits:
  - {name: all, requests: 100000, period: 1s}
  - {name: limited, requests: 5, period: 1s, burst: 5, match: {pathPrefix: /limited}}
---
apiVersion: resilience.dev/v1alpha1
kind: CircuitBreaker
metadata: {name: soak, namespace: %[1]s}
spec:
  targetRefs: [{group: "", kind: Service, name: soak}]
  trip: {consecutiveFailures: 5}
---
apiVersion: resilience.dev/v1alpha1
kind: RetryPolicy
metadata: {name: soak, namespace: %[1]s}
spec:
  targetRefs: [{group: "", kind: Service, name: soak}]
  maxAttempts: 2
`, ns))
	host := "soak." + ns
	enforced(t, opts.GatewayListen, host, 200)

	var n atomic.Int64
	send := func() answer {
		path := "/"
		if n.Add(1)%10 == 0 {
			path = "/limited" // 10 of the 100 requests per second, against a limit of 5/s
		}
		return get(opts.GatewayListen, host, path)
	}
	// Warm up (connections, buckets, caches), then take the idle baseline.
	warm := startTraffic(100, send)
	time.Sleep(10 * time.Second)
	warm.Stop()
	time.Sleep(3 * time.Second)
	gwBase := figures(t, opts.GatewayMetrics, opts.GatewayMetrics, "go_gc_heap_live_bytes")
	upstreamBase := b.conns.Load()
	mgrBase := figures(t, opts.ManagerMetrics, managerPprof, "go_memstats_heap_inuse_bytes")
	t.Logf("baseline, idle: gateway %s; manager %s", gwBase, mgrBase)

	d := soakDuration(t)
	tr := startTraffic(100, send)
	ctx, stop := context.WithTimeout(context.Background(), d)
	defer stop()
	edits := 0
	tick := time.NewTicker(3 * time.Second)
	defer tick.Stop()
	var gwPeak, mgrPeak processFigures
editing:
	for {
		select {
		case <-ctx.Done():
			break editing
		case <-tick.C:
		}
		edits++
		odd := edits%2 == 1
		requests, attempts, open := 100000, 2, "30s"
		if odd {
			requests, attempts, open = 200000, 3, "31s"
		}
		patch(t, &v1alpha1.RateLimit{}, ns, "soak", fmt.Sprintf(`{"spec":{"limits":[{"name":"all","requests":%d,"period":"1s"},{"name":"limited","requests":5,"period":"1s","burst":5,"match":{"pathPrefix":"/limited"}}]}}`, requests))
		patch(t, &v1alpha1.RetryPolicy{}, ns, "soak", fmt.Sprintf(`{"spec":{"maxAttempts":%d}}`, attempts))
		patch(t, &v1alpha1.CircuitBreaker{}, ns, "soak", fmt.Sprintf(`{"spec":{"openDuration":%q}}`, open))
		g, m := figures(t, opts.GatewayMetrics, opts.GatewayMetrics, "go_gc_heap_live_bytes"), figures(t, opts.ManagerMetrics, managerPprof, "go_memstats_heap_inuse_bytes")
		gwPeak.goroutines, gwPeak.rss, gwPeak.heap = max(gwPeak.goroutines, g.goroutines), max(gwPeak.rss, g.rss), max(gwPeak.heap, g.heap)
		mgrPeak.goroutines, mgrPeak.rss, mgrPeak.heap = max(mgrPeak.goroutines, m.goroutines), max(mgrPeak.rss, m.rss), max(mgrPeak.heap, m.heap)
	}
	answers := tr.Stop()
	tl := count(answers, time.Time{}, time.Time{})
	allAnswered(t, "soak", tr, tl)
	onlyReasons(t, "soak", tl, `rate limit "limited"`)
	t.Logf("soak: %s with %d edits (3 policies each); peaks under load: gateway %s; manager %s", d, edits, gwPeak, mgrPeak)

	// The last edit is in force and Programmed.
	for _, kind := range []string{"ratelimit", "retrypolicy", "circuitbreaker"} {
		until(t, kind+" Programmed at its last generation", 15*time.Second, func() bool { return condition(t, kind, ns, "soak", "Programmed") == "True" })
	}
	time.Sleep(5 * time.Second)
	gwAfter := figures(t, opts.GatewayMetrics, opts.GatewayMetrics, "go_gc_heap_live_bytes")
	mgrAfter := figures(t, opts.ManagerMetrics, managerPprof, "go_memstats_heap_inuse_bytes")
	upstreamAfter := b.conns.Load()
	t.Logf("after, idle: gateway %s; manager %s; idle connections to the backend: %d before, %d after",
		gwAfter, mgrAfter, upstreamBase, upstreamAfter)
	// Each idle keep-alive connection to the backend holds two goroutines (its reader and writer);
	// the pool may hold more of them after a busier period, which is not a leak.
	if allowed := gwBase.goroutines + 2*float64(max(upstreamAfter-upstreamBase, 0)) + 2; gwAfter.goroutines > allowed {
		t.Errorf("gateway goroutines %.0f after the soak, %.0f before (%d idle backend connections before, %d after)",
			gwAfter.goroutines, gwBase.goroutines, upstreamBase, upstreamAfter)
	}
	if mgrAfter.goroutines > mgrBase.goroutines+10 {
		t.Errorf("manager goroutines %.0f after the soak, %.0f before", mgrAfter.goroutines, mgrBase.goroutines)
	}
	// Live heap after the last GC: a leak of even 1 KiB per request would add ~30 MiB in 5 minutes.
	if gwAfter.heap > 1.5*gwBase.heap+8<<20 {
		t.Errorf("gateway live heap %.1f MiB after the soak, %.1f MiB before", mib(gwAfter.heap), mib(gwBase.heap))
	}
	if mgrAfter.heap > 2*mgrBase.heap+16<<20 {
		t.Errorf("manager heap in use %.1f MiB after the soak, %.1f MiB before", mib(mgrAfter.heap), mib(mgrBase.heap))
	}
}

// patch applies a JSON merge patch to a policy.
func patch(t *testing.T, obj client.Object, ns, name, merge string) {
	t.Helper()
	obj.SetNamespace(ns)
	obj.SetName(name)
	if err := k8s.Patch(context.Background(), obj, client.RawPatch(types.MergePatchType, []byte(merge))); err != nil {
		t.Fatalf("patch %s/%s: %v", ns, name, err)
	}
}
