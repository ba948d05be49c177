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
	"fmt"
	"net/http"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"

	"k8s.io/utils/ptr"

	"resilience.dev/operator/api/v1alpha1"
	"resilience.dev/operator/internal/compile"
	"resilience.dev/operator/internal/gateway"
	"resilience.dev/operator/internal/snapshot"
)

// discardWriter is a ResponseWriter that writes nowhere.
type discardWriter struct {
	h    http.Header
	code int
}

func (w *discardWriter) Header() http.Header         { return w.h }
func (w *discardWriter) Write(p []byte) (int, error) { return len(p), nil }
func (w *discardWriter) WriteHeader(code int)        { w.code = code }

// measureMemory runs in the child: n policies plus one keyed RateLimit with room for keys buckets.
func measureMemory(n, keys int) (*MemFig, error) {
	in := synthetic(n)
	// Service svc0 (a RateLimit) gets a second, keyed limit.
	in.RateLimits[0].Spec.Limits = append(in.RateLimits[0].Spec.Limits, v1alpha1.Limit{Name: "per-user", Requests: initialRequests,
		Period: "1s", MaxKeys: int32(max(keys, 1)), Key: []v1alpha1.KeyPart{{Header: ptr.To(v1alpha1.HeaderName("X-User-ID"))}}})
	enc, err := new(compile.Compiler).Compile(in)
	if err != nil {
		return nil, err
	}
	snap := enc.Snapshot
	snap.Version = 1
	g, err := gateway.New(gateway.Options{Transport: okRT{}})
	if err != nil {
		return nil, err
	}
	e, err := snapshot.Encode(snap)
	if err != nil {
		return nil, err
	}
	if err := g.Apply(e); err != nil {
		return nil, err
	}
	in, enc, snap, e = compile.Input{}, nil, nil, nil
	m := &MemFig{Policies: n, Keys: keys}
	heap, rss, _ := memNow()
	m.HeapAppliedMiB, m.RSSAppliedMiB = mib(heap), mib(rss)
	req, err := http.NewRequest(http.MethodGet, "http://svc0.ns0/", nil)
	if err != nil {
		return nil, err
	}
	w := &discardWriter{h: http.Header{}}
	for k := range keys {
		req.Header.Set("X-User-ID", "user-"+strconv.Itoa(k))
		clear(w.h)
		w.code = 0
		g.ServeHTTP(w, req)
		switch w.code {
		case 200:
			m.KeysServed++
		case 429:
			m.Status429++
		default:
			return nil, fmt.Errorf("key %d: status %d", k, w.code)
		}
	}
	heap, rss, sys := memNow()
	m.HeapKeysMiB, m.RSSKeysMiB, m.SysKeysMiB = mib(heap), mib(rss), mib(sys)
	runtime.KeepAlive(g)
	return m, nil
}

// memNow collects garbage, returns freed memory to the OS and reads the heap in use, VmRSS and the
// Go runtime's total.
func memNow() (heap, rss, sys uint64) {
	runtime.GC()
	debug.FreeOSMemory()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	rss, _ = procStatus(os.Getpid(), "VmRSS")
	return ms.HeapInuse, rss, ms.Sys
}
