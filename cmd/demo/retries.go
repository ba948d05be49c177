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
	"context"
	"fmt"
	"math"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// retries: a flaky catalog, first straight, then through the gateway with the sample's retries.
func (d *demo) retries(ctx context.Context, st *step) error {
	const n, rate = 120, 12 // requests, per second: the budget's floor (10/s) plus 20% covers the retries
	fmt.Printf("   RetryPolicy catalog: %d tries in all on 502/503/504, timeouts and resets, with backoff\n"+
		"   (25ms base, full jitter) and a retry budget (20%% of requests + 10/s). The catalog backend\n"+
		"   answers 503 to half the requests at random.\n", retryAttempts)
	direct := 0
	for range n {
		r, err := d.do(ctx, http.MethodGet, "http://"+d.backends["catalog"].addr+"/items", "", nil)
		if err != nil {
			return err
		}
		if r.code == http.StatusOK {
			direct++
		}
	}
	fmt.Printf("   %d GET /items straight to the backend: %d succeeded (%.1f%%)\n", n, direct, pct(direct, n))

	before, _, err := d.stats(ctx, "catalog")
	if err != nil {
		return err
	}
	res, err := d.retriedRequests(ctx, n, rate)
	if err != nil {
		return err
	}
	after, _, err := d.stats(ctx, "catalog")
	if err != nil {
		return err
	}
	hist, tries, badAttempts := res.histogram()
	fmt.Printf("   %d GET /items through the gateway (%d/s): %d succeeded (%.1f%%)\n", n, rate, res.ok, pct(res.ok, n))
	fmt.Printf("   X-Resilience-Attempts -> requests: %s; %d tries in all, the backend counted %d\n",
		strings.Join(hist, ", "), tries, after-before)
	if len(res.failures) > 0 {
		fmt.Printf("   the failures: %s\n", summarize(res.failures))
	}
	expect := 100 * (1 - math.Pow(0.5, retryAttempts))
	st.check(pct(direct, n) <= 70, "flaky backend", "the backend alone fails about half the requests (%.1f%% succeeded)", pct(direct, n))
	st.check(pct(res.ok, n) >= 75 && badAttempts == 0, "retries succeed",
		"through the gateway %.1f%% succeeded; with independent 50%% failures and %d tries, 1-0.5^%d = %.1f%% is expected (want >= 75%%)",
		pct(res.ok, n), retryAttempts, retryAttempts, expect)
	return nil
}

// retried is what the requests through the gateway got: how many succeeded, how many requests took
// each number of tries (by X-Resilience-Attempts), and the failures.
type retried struct {
	ok       int
	attempts map[string]int
	failures []string
}

// retriedRequests sends n requests to catalog through the gateway at rate per second, printing
// progress each second.
func (d *demo) retriedRequests(ctx context.Context, n, rate int) (*retried, error) {
	res := &retried{attempts: map[string]int{}}
	var sent, succeeded atomic.Int64
	var mu sync.Mutex
	var wg sync.WaitGroup
	var firstErr error
	stop := progress(func(el time.Duration) string {
		return fmt.Sprintf("%2.0fs: %d/%d sent, %d succeeded so far", el.Seconds(), sent.Load(), n, succeeded.Load())
	})
	tick := time.NewTicker(time.Second / time.Duration(rate))
	for range n {
		select {
		case <-ctx.Done():
		case <-tick.C:
		}
		if ctx.Err() != nil {
			break
		}
		sent.Add(1)
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, err := d.send(ctx, http.MethodGet, "catalog.shop", "/items", nil)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				firstErr = err
				return
			}
			res.attempts[r.header.Get("X-Resilience-Attempts")]++
			if r.code == http.StatusOK {
				succeeded.Add(1)
			} else {
				res.failures = append(res.failures, fmt.Sprintf("%d after %s tries", r.code, r.header.Get("X-Resilience-Attempts")))
			}
		}()
	}
	tick.Stop()
	wg.Wait()
	stop()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if firstErr != nil {
		return nil, firstErr
	}
	res.ok = int(succeeded.Load())
	return res, nil
}

// histogram renders the tries per request as "1: 60, 2: 31, ...", and counts the tries in all and
// the requests whose count of tries is out of range.
func (r *retried) histogram() (hist []string, tries, bad int) {
	keys := make([]string, 0, len(r.attempts))
	for k := range r.attempts {
		keys = append(keys, k)
		v, _ := strconv.Atoi(k)
		tries += v * r.attempts[k]
	}
	sort.Strings(keys)
	for _, k := range keys {
		hist = append(hist, fmt.Sprintf("%s: %d", k, r.attempts[k]))
		if v, err := strconv.Atoi(k); err != nil || v < 1 || v > retryAttempts {
			bad += r.attempts[k]
		}
	}
	return hist, tries, bad
}
