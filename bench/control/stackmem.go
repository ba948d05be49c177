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

package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"

	"resilience.dev/operator/api/v1alpha1"
)

// The memory of the real processes over time (-stack with -stack-keys): the manager's and the
// gateway's VmRSS from /proc every second, and the gateway's live heap (go_gc_heap_live_bytes, the
// heap marked live by the last GC) and heap in use from its /metrics, scraped every 15 s as a
// Prometheus would, and at the end of each phase.

// MemSample is one reading.
type MemSample struct {
	AtSecs        float64 `json:"atSeconds"` // since the stack started
	Phase         string  `json:"phase"`
	GatewayRSSMiB float64 `json:"gatewayRssMiB"`
	ManagerRSSMiB float64 `json:"managerRssMiB"`
	// Only in scraped samples (0 otherwise).
	GatewayLiveHeapMiB  float64 `json:"gatewayLiveHeapMiB,omitempty"`
	GatewayHeapInuseMiB float64 `json:"gatewayHeapInuseMiB,omitempty"`
}

// StackMemFig is the memory of the real processes at one size, phase by phase.
type StackMemFig struct {
	Policies int `json:"policies"`
	Keys     int `json:"keys"`
	// Phases: each the reading at its end (scraped).
	Phases []MemSample `json:"phases"`
	// Over the whole size: the largest readings, and the peak RSS (VmHWM) of each process.
	MaxGatewayRSSMiB  float64     `json:"maxGatewayRssMiB"`
	MaxGatewayLiveMiB float64     `json:"maxGatewayLiveHeapMiB"`
	GatewayHWMMiB     float64     `json:"gatewayPeakRssMiB"`
	ManagerHWMMiB     float64     `json:"managerPeakRssMiB"`
	Samples           []MemSample `json:"samples"`
}

// memWatch samples the processes in the background.
type memWatch struct {
	s     *stack
	start time.Time
	phase atomic.Pointer[string]
	mu    sync.Mutex
	all   []MemSample
	stop  chan struct{}
	done  chan struct{}
}

func (s *stack) watchMemory(start time.Time) *memWatch {
	w := &memWatch{s: s, start: start, stop: make(chan struct{}), done: make(chan struct{})}
	p := "populate"
	w.phase.Store(&p)
	go func() {
		defer close(w.done)
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		lastScrape := time.Now()
		for {
			select {
			case <-w.stop:
				return
			case <-tick.C:
			}
			scrape := time.Since(lastScrape) >= 15*time.Second
			if scrape {
				lastScrape = time.Now()
			}
			w.add(w.read(scrape))
		}
	}()
	return w
}

func (w *memWatch) close() {
	close(w.stop)
	<-w.done
}

func (w *memWatch) setPhase(p string) { w.phase.Store(&p) }

func (w *memWatch) add(m MemSample) {
	w.mu.Lock()
	w.all = append(w.all, m)
	w.mu.Unlock()
}

// read takes one sample; scrape also reads the gateway's /metrics.
func (w *memWatch) read(scrape bool) MemSample {
	m := MemSample{AtSecs: time.Since(w.start).Seconds(), Phase: *w.phase.Load()}
	if pid, err := pidByArg("--listen=" + w.s.opts.GatewayListen); err == nil {
		rss, _ := procStatus(pid, "VmRSS")
		m.GatewayRSSMiB = mib(rss)
	}
	if pid, err := pidByArg("--distribution-bind-address=" + w.s.opts.ManagerStream); err == nil {
		rss, _ := procStatus(pid, "VmRSS")
		m.ManagerRSSMiB = mib(rss)
	}
	if scrape {
		live, inuse, _ := w.s.gatewayHeap()
		m.GatewayLiveHeapMiB, m.GatewayHeapInuseMiB = mib(live), mib(inuse)
	}
	return m
}

// phaseEnd records the end of the current phase (with a scrape) and returns the reading.
func (w *memWatch) phaseEnd() MemSample {
	m := w.read(true)
	w.add(m)
	return m
}

// fig summarises the samples taken since index from.
func (w *memWatch) fig(n, keys int, phases []MemSample, from int) (StackMemFig, int) {
	w.mu.Lock()
	samples := append([]MemSample(nil), w.all[from:]...)
	next := len(w.all)
	w.mu.Unlock()
	f := StackMemFig{Policies: n, Keys: keys, Phases: phases, Samples: samples}
	for _, m := range samples {
		f.MaxGatewayRSSMiB = max(f.MaxGatewayRSSMiB, m.GatewayRSSMiB)
		f.MaxGatewayLiveMiB = max(f.MaxGatewayLiveMiB, m.GatewayLiveHeapMiB)
	}
	for _, p := range []struct {
		arg string
		hwm *float64
	}{{"--listen=" + w.s.opts.GatewayListen, &f.GatewayHWMMiB}, {"--distribution-bind-address=" + w.s.opts.ManagerStream, &f.ManagerHWMMiB}} {
		if pid, err := pidByArg(p.arg); err == nil {
			hwm, _ := procStatus(pid, "VmHWM")
			*p.hwm = mib(hwm)
		}
	}
	return f, next
}

// gatewayHeap scrapes the gateway's /metrics for its live heap and heap in use.
func (s *stack) gatewayHeap() (live, inuse uint64, err error) {
	resp, err := s.http.Get("http://" + s.opts.GatewayMetrics + "/metrics")
	if err != nil {
		return 0, 0, err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		for _, f := range []struct {
			name string
			v    *uint64
		}{{"go_gc_heap_live_bytes ", &live}, {"go_memstats_heap_inuse_bytes ", &inuse}} {
			if v, ok := strings.CutPrefix(line, f.name); ok {
				x, _ := strconv.ParseFloat(strings.TrimSpace(v), 64)
				*f.v = uint64(x)
			}
		}
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	return live, inuse, sc.Err()
}

// heapProfile saves the gateway's heap profile (taken after a GC) to path.
func (s *stack) heapProfile(path string) error {
	resp, err := s.http.Get("http://" + s.opts.GatewayMetrics + "/debug/pprof/heap?gc=1")
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET heap profile: %s", resp.Status)
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		_ = f.Close()
		return err
	}
	return f.Close()
}

// keyedName is the Service with a keyed RateLimit the key phase drives: in ns0, outside the
// svc<i> numbering, so the timed changes never touch it.
const keyedName = "keyed"

// ensureKeyed creates the keyed Service, its EndpointSlice and its RateLimit (one limit keyed by
// X-User-ID with room for keys buckets), and waits until the gateway enforces it.
func (s *stack) ensureKeyed(ctx context.Context, keys int) error {
	meta := metav1.ObjectMeta{Namespace: "ns0", Name: keyedName}
	svc := &corev1.Service{ObjectMeta: meta, Spec: corev1.ServiceSpec{ClusterIP: corev1.ClusterIPNone,
		Ports: []corev1.ServicePort{{Name: "http", Port: 80}}}}
	slice := &discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Namespace: "ns0", Name: keyedName + "-local", Labels: map[string]string{discoveryv1.LabelServiceName: keyedName}},
		AddressType: discoveryv1.AddressTypeFQDN,
		Ports:       []discoveryv1.EndpointPort{{Name: ptr.To("http"), Port: ptr.To(s.backendPort)}},
		Endpoints:   []discoveryv1.Endpoint{{Addresses: []string{keyedName + ".localhost"}}},
	}
	rl := &v1alpha1.RateLimit{ObjectMeta: meta, Spec: v1alpha1.RateLimitSpec{
		TargetRefs: []v1alpha1.PolicyTargetReference{{Kind: "Service", Name: keyedName}},
		Limits: []v1alpha1.Limit{{Name: "per-user", Requests: initialRequests, Period: "1s", MaxKeys: int32(min(max(keys, 1), 1_000_000)),
			Key: []v1alpha1.KeyPart{{Header: ptr.To(v1alpha1.HeaderName("X-User-ID"))}}}},
	}}
	if err := s.k8s.Create(ctx, svc); err != nil && !apierrors.IsAlreadyExists(err) {
		return err
	}
	if err := s.k8s.Create(ctx, slice); err != nil && !apierrors.IsAlreadyExists(err) {
		return err
	}
	if err := s.k8s.Create(ctx, rl); err != nil && !apierrors.IsAlreadyExists(err) {
		return err
	}
	deadline := time.Now().Add(2 * time.Minute)
	for {
		code, h, err := s.getKey("probe")
		if err == nil && code == 200 && h.Get("X-RateLimit-Limit") != "" {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("keyed RateLimit not enforced within 2 minutes (last: %d %v)", code, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// getKey sends GET / for the keyed Service with X-User-ID key.
func (s *stack) getKey(key string) (int, http.Header, error) {
	req, err := http.NewRequest(http.MethodGet, "http://"+s.opts.GatewayListen+"/", nil)
	if err != nil {
		return 0, nil, err
	}
	req.Host = keyedName + ".ns0"
	req.Header.Set("X-User-ID", key)
	resp, err := s.keysHTTP.Do(req)
	if err != nil {
		return 0, nil, err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	return resp.StatusCode, resp.Header, nil
}

// driveKeys sends one request for each of keys distinct X-User-ID values (prefix keeps the rounds
// apart), 8 at a time.
func (s *stack) driveKeys(keys int, prefix string) error {
	var next atomic.Int64
	var firstErr error
	var once sync.Once
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for {
				k := int(next.Add(1)) - 1
				if k >= keys {
					return
				}
				code, _, err := s.getKey(prefix + strconv.Itoa(k))
				if err == nil && code != 200 && code != 429 {
					err = fmt.Errorf("status %d", code)
				}
				if err != nil {
					once.Do(func() { firstErr = fmt.Errorf("key %d: %w", k, err) })
					return
				}
			}
		})
	}
	wg.Wait()
	return firstErr
}

// memoryPhases runs after the timed changes at one size: the keys, then more changes, then idle.
func (s *stack) memoryPhases(ctx context.Context, w *memWatch, n, keys, round int) ([]MemSample, error) {
	var phases []MemSample
	end := func(name string) {
		m := w.phaseEnd()
		m.Phase = name
		phases = append(phases, m)
		if s.o.heapProfiles != "" { // after the reading: the profile's GC must not flatter it
			path := filepath.Join(s.o.heapProfiles, fmt.Sprintf("gateway-heap-%d-%d.pprof", n, len(phases)))
			if err := s.heapProfile(path); err != nil {
				fmt.Fprintf(os.Stderr, "heap profile: %v\n", err)
			}
		}
	}
	end("enforced, after the timed changes")
	w.setPhase("keys")
	if err := s.ensureKeyed(ctx, keys); err != nil {
		return phases, err
	}
	if err := s.driveKeys(keys, fmt.Sprintf("r%d-user-", round)); err != nil {
		return phases, err
	}
	end(fmt.Sprintf("+ %d distinct keys", keys))
	w.setPhase("changes after keys")
	rls := n / 3
	for k := range 5 {
		i := 3 * ((k*104729 + 1) % rls)
		requests := initialRequests + n + 500 + 1000*round + k
		if err := s.apply(ctx, "api", fmt.Sprintf("ns%d", i%namespaces), fmt.Sprintf("svc%d", i), requests); err != nil {
			return phases, err
		}
		want := strconv.Itoa(requests)
		deadline := time.Now().Add(30 * time.Second)
		for {
			code, h, err := s.get(i)
			if err == nil && code == 200 && h.Get("X-RateLimit-Limit") == want {
				break
			}
			if time.Now().After(deadline) {
				return phases, fmt.Errorf("change of svc%d not enforced within 30s", i)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	end("+ 5 more snapshot changes")
	w.setPhase("idle")
	time.Sleep(30 * time.Second)
	end("30 s idle")
	return phases, nil
}

func printMemFig(f StackMemFig) {
	fmt.Printf("\n  memory of the real processes, %d policies (+1 keyed RateLimit):\n", f.Policies)
	fmt.Printf("    %-38s %12s %16s %16s %12s\n", "phase (reading at its end)", "gateway RSS", "gateway live heap", "gateway heap inuse", "manager RSS")
	for _, p := range f.Phases {
		fmt.Printf("    %-38s %8.1f MiB %12.1f MiB %12.1f MiB %8.1f MiB\n", p.Phase, p.GatewayRSSMiB, p.GatewayLiveHeapMiB, p.GatewayHeapInuseMiB, p.ManagerRSSMiB)
	}
	fmt.Printf("    over the run: gateway RSS max %.1f MiB (VmHWM %.1f MiB), live heap max %.1f MiB; manager VmHWM %.1f MiB\n",
		f.MaxGatewayRSSMiB, f.GatewayHWMMiB, f.MaxGatewayLiveMiB, f.ManagerHWMMiB)
}
