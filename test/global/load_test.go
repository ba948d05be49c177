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
	"bufio"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// outcome is one request's answer: its status (0: no answer), when it was sent (since the start) and
// answered (wall clock), what it was labelled with, and the body of a refusal.
type outcome struct {
	code     int
	at       time.Duration
	answered time.Time
	label    string
	body     string
	err      error
}

// request is what a load's pick function makes of request i.
type request struct {
	replica int
	path    string
	header  http.Header
	label   string
}

var loadClient = &http.Client{Timeout: 10 * time.Second,
	Transport: &http.Transport{MaxIdleConnsPerHost: 512, MaxIdleConns: 2048, IdleConnTimeout: 30 * time.Second}}

// spread70_20_10 sends 7 of every 10 requests to replica 0, 2 to replica 1 and 1 to replica 2: a
// client pinned by keep-alive to one replica, as Split cannot serve.
func spread70_20_10(i int) int {
	switch r := i % 10; {
	case r < 7:
		return 0
	case r < 9:
		return 1
	}
	return 2
}

// offer sends rate requests per second for d, open loop (each at its own time, whether or not earlier
// ones were answered), to Service api in ns, and returns every outcome and the span from the first
// send to the last.
func offer(ns string, rate int, d time.Duration, pick func(i int) request) ([]outcome, time.Duration) {
	n := int(d.Seconds() * float64(rate))
	out := make([]outcome, n)
	interval := time.Second / time.Duration(rate)
	sem := make(chan struct{}, 512)
	var wg sync.WaitGroup
	start := time.Now()
	var last time.Duration
	for i := range n {
		if wait := time.Until(start.Add(time.Duration(i) * interval)); wait > 0 {
			time.Sleep(wait)
		}
		sem <- struct{}{}
		last = time.Since(start)
		wg.Add(1)
		go func(i int, at time.Duration) {
			defer func() { <-sem; wg.Done() }()
			r := pick(i)
			out[i] = send(ns, r)
			out[i].at, out[i].answered, out[i].label = at, time.Now(), r.label
		}(i, last)
	}
	wg.Wait()
	return out, last
}

func send(ns string, r request) outcome {
	path := r.path
	if path == "" {
		path = "/"
	}
	req, err := http.NewRequest(http.MethodGet, "http://"+gateways[r.replica]+path, nil)
	if err != nil {
		return outcome{err: err}
	}
	req.Host = "api." + ns
	for k, v := range r.header {
		req.Header[k] = v
	}
	resp, err := loadClient.Do(req)
	if err != nil {
		return outcome{err: err}
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	o := outcome{code: resp.StatusCode}
	if resp.StatusCode != http.StatusOK {
		o.body = strings.TrimSpace(string(body))
	}
	return o
}

// tally counts the answers with a label ("" counts all) sent within [from, to), and fails the test on
// any request without an answer or with an answer that is neither 200 nor 429.
func tally(t *testing.T, outs []outcome, label string, from, to time.Duration) (ok, limited int) {
	t.Helper()
	for _, o := range outs {
		if (label != "" && o.label != label) || o.at < from || o.at >= to {
			continue
		}
		switch {
		case o.err != nil:
			t.Fatalf("a request went unanswered: %v", o.err)
		case o.code == http.StatusOK:
			ok++
		case o.code == http.StatusTooManyRequests:
			limited++
		default:
			t.Fatalf("unexpected answer %d: %s", o.code, o.body)
		}
	}
	return ok, limited
}

// storeCalls sums resilience_gateway_store_calls_total over the replicas (every outcome but skipped).
func storeCalls(t *testing.T) float64 {
	t.Helper()
	return sumMetric(t, "resilience_gateway_store_calls_total{", `outcome="skipped"`)
}

// storeFallbacks sums resilience_gateway_store_error_decisions_total over the replicas: requests a
// Global limit decided by onStoreError because the store could not be asked in time.
func storeFallbacks(t *testing.T) float64 {
	t.Helper()
	return sumMetric(t, "resilience_gateway_store_error_decisions_total", "\x00")
}

// sumMetric sums the series whose line starts with prefix and does not contain exclude, over the
// replicas' /metrics.
func sumMetric(t *testing.T, prefix, exclude string) float64 {
	t.Helper()
	var sum float64
	for _, m := range metrics {
		resp, err := http.Get("http://" + m + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			line := sc.Text()
			if !strings.HasPrefix(line, prefix) || strings.Contains(line, exclude) {
				continue
			}
			f := strings.Fields(line)
			v, err := strconv.ParseFloat(f[len(f)-1], 64)
			if err != nil {
				t.Fatalf("metric line %q: %v", line, err)
			}
			sum += v
		}
		resp.Body.Close()
	}
	return sum
}

func pct(a, b float64) string { return fmt.Sprintf("%.1f%%", 100*a/b) }
