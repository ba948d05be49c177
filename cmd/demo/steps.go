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
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// The numbers of config/samples/ that the steps check against.
const (
	rlRequestsPerSecond = 200 // checkout, limit "total"
	rlBurst             = 50
	rlOrdersPerUser     = 10 // checkout, limit "orders-per-user": 10 per minute, burst unset = 10
	cbFailures          = 5  // payments: trip.consecutiveFailures
	cbDemoOpen          = 3 * time.Second
	retryAttempts       = 3 // catalog: maxAttempts
	retryPerTry         = 500 * time.Millisecond
	retryTimeout        = 2 * time.Second
)

// rateLimit: a burst of requests at once against checkout's token bucket, then one user's orders.
func (d *demo) rateLimit(ctx context.Context, st *step) error {
	fmt.Printf("   RateLimit checkout: \"total\" %d requests/s with a burst of %d; \"orders-per-user\" %d per minute\n"+
		"   per X-User-ID on POST /orders. Over a limit the gateway answers 429 at once.\n",
		rlRequestsPerSecond, rlBurst, rlOrdersPerUser)
	if err := pause(ctx, 400*time.Millisecond); err != nil { // the bucket refills after the probes
		return err
	}
	const n = 300
	results := make([]response, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	gate := make(chan struct{})
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-gate
			results[i], errs[i] = d.send(ctx, http.MethodGet, "checkout.shop", "/", nil)
		}()
	}
	start := time.Now()
	close(gate)
	wg.Wait()
	elapsed := time.Since(start)
	if err := ctx.Err(); err != nil {
		return err
	}
	var admitted, limited, other, badRA int
	var ok, tooMany *response
	for i := range results {
		r := &results[i]
		switch {
		case errs[i] != nil:
			other++
		case r.code == http.StatusOK:
			admitted++
			ok = r
		case r.code == http.StatusTooManyRequests:
			limited++
			if tooMany == nil {
				tooMany = r
			}
			if ra, err := strconv.Atoi(r.header.Get("Retry-After")); err != nil || ra < 1 {
				badRA++
			}
		default:
			other++
		}
	}
	fmt.Printf("   %d GET / at once, all answered within %s: %d admitted (200), %d refused (429), %d other\n",
		n, ms(elapsed), admitted, limited, other)
	maxAdmitted := rlBurst + int(math.Ceil(rlRequestsPerSecond*elapsed.Seconds()))
	st.check(admitted >= rlBurst && admitted <= maxAdmitted && other == 0, "admitted count",
		"admitted %d: the burst of %d plus at most %d/s x %s refilled = at most %d (contract: burst + requests*T/period)",
		admitted, rlBurst, rlRequestsPerSecond, ms(elapsed), maxAdmitted)
	st.check(limited > 0 && badRA == 0 && tooMany != nil, "429 Retry-After",
		"every 429 carries Retry-After >= 1 (%d without)", badRA)
	if ok != nil {
		fmt.Printf("   a 200: %s\n", headers(ok.header, "X-RateLimit-Limit", "X-RateLimit-Remaining", "RateLimit-Policy", "RateLimit"))
	}
	if tooMany != nil {
		fmt.Printf("   a 429: %s\n          body: %s\n", headers(tooMany.header, "Retry-After", "X-RateLimit-Limit",
			"X-RateLimit-Remaining", "RateLimit-Policy", "RateLimit"), tooMany.body)
	}

	// One user's orders: a keyed bucket of its own.
	if err := pause(ctx, 400*time.Millisecond); err != nil {
		return err
	}
	codes := make([]string, 0, rlOrdersPerUser+2)
	var aliceOK, alice429 int
	var last response
	for range rlOrdersPerUser + 2 {
		r, err := d.send(ctx, http.MethodPost, "checkout.shop", "/orders", http.Header{"X-User-Id": {"alice"}})
		if err != nil {
			return err
		}
		codes = append(codes, strconv.Itoa(r.code))
		switch r.code {
		case http.StatusOK:
			aliceOK++
		case http.StatusTooManyRequests:
			alice429++
			last = r
		}
	}
	bob, err := d.send(ctx, http.MethodPost, "checkout.shop", "/orders", http.Header{"X-User-Id": {"bob"}})
	if err != nil {
		return err
	}
	fmt.Printf("   %d POST /orders as alice: %s\n", rlOrdersPerUser+2, strings.Join(codes, " "))
	if alice429 > 0 {
		fmt.Printf("   alice's 429: %s\n          body: %s\n", headers(last.header, "Retry-After", "RateLimit"), last.body)
	}
	fmt.Printf("   then one as bob: %d\n", bob.code)
	st.check(aliceOK == rlOrdersPerUser && alice429 == 2 && strings.Contains(last.body, "orders-per-user") && bob.code == http.StatusOK,
		"orders-per-user", "alice: %d admitted (want %d), %d refused naming orders-per-user (want 2); bob has his own bucket (%d)",
		aliceOK, rlOrdersPerUser, alice429, bob.code)
	return nil
}

var openDurationLine = regexp.MustCompile(`(?m)^(\s*openDuration:).*$`)

// circuitBreaker: payments breaks, the breaker opens after 5 failures and answers fast; payments is
// fixed, the breaker half-opens after openDuration, a probe succeeds and it closes.
func (d *demo) circuitBreaker(ctx context.Context, st *step) error {
	sample, err := os.ReadFile(filepath.Join(d.root, "config", "samples", "resilience_v1alpha1_circuitbreaker.yaml"))
	if err != nil {
		return err
	}
	if !openDurationLine.Match(sample) {
		return fmt.Errorf("the CircuitBreaker sample has no openDuration line to shorten")
	}
	tweaked := openDurationLine.ReplaceAll(sample, []byte("${1} "+cbDemoOpen.String()))
	fmt.Printf("   CircuitBreaker payments: opens on the %dth failure in a row (scope Endpoint: one breaker per\n"+
		"   payments endpoint). The sample stays open 30s; so that recovery shows quickly, the demo applies a\n"+
		"   copy of it with openDuration: %s (everything else as in config/samples/).\n", cbFailures, cbDemoOpen)
	if _, err := d.kubectl(ctx, string(tweaked), "apply", "--server-side", "-f", "-"); err != nil {
		return err
	}
	if err := waitFor(ctx, 10*time.Second, func() bool { return d.programmed(ctx, 3) }); err != nil {
		return fmt.Errorf("the tweaked CircuitBreaker was not Programmed: %w", err)
	}

	healthy := make([]string, 0, 3)
	for range 3 {
		r, err := d.send(ctx, http.MethodGet, "payments.shop", "/pay", nil)
		if err != nil {
			return err
		}
		healthy = append(healthy, strconv.Itoa(r.code))
	}
	fmt.Printf("   payments healthy: %s\n", strings.Join(healthy, " "))

	addr := d.backends["payments"].addr
	if _, err := d.startBackend(ctx, "payments", addr, "-fail-rate=1", "-fail-code=500"); err != nil {
		return err
	}
	fmt.Println("   payments breaks (restarted with -fail-rate=1): every answer is now 500")
	before, _, err := d.stats(ctx, "payments")
	if err != nil {
		return err
	}
	var seq []string
	var fails, firstOpen int
	var opened time.Time
	var rejected response
	for i := 1; i <= 10 && firstOpen == 0; i++ {
		r, err := d.send(ctx, http.MethodGet, "payments.shop", "/pay", nil)
		if err != nil {
			return err
		}
		switch {
		case r.code == http.StatusServiceUnavailable && r.header.Get("X-Resilience-Circuit") == "open":
			firstOpen, opened, rejected = i, time.Now(), r
			seq = append(seq, "503(open)")
		case r.code == http.StatusInternalServerError:
			fails++
			seq = append(seq, "500")
		default:
			seq = append(seq, strconv.Itoa(r.code))
		}
	}
	fmt.Printf("   requests one by one: %s\n", strings.Join(seq, " "))
	st.check(fails == cbFailures && firstOpen == cbFailures+1, "opens after 5 failures",
		"%d failures reached the backend, then the breaker opened (want exactly %d)", fails, cbFailures)
	if firstOpen == 0 {
		return nil // nothing more to show
	}
	fmt.Printf("   the rejection: %s\n          body: %s\n", headers(rejected.header, "X-Resilience-Circuit", "Retry-After"), rejected.body)

	// While open: fast answers, nothing reaches payments.
	mid, _, err := d.stats(ctx, "payments")
	if err != nil {
		return err
	}
	var openCount int
	var slowest time.Duration
	for range 20 {
		r, err := d.send(ctx, http.MethodGet, "payments.shop", "/pay", nil)
		if err != nil {
			return err
		}
		if r.code == http.StatusServiceUnavailable && r.header.Get("X-Resilience-Circuit") == "open" {
			openCount++
		}
		slowest = max(slowest, r.took)
	}
	after, _, err := d.stats(ctx, "payments")
	if err != nil {
		return err
	}
	st.check(openCount == 20 && after == mid && slowest < 100*time.Millisecond, "fast rejections",
		"20 more requests: %d got 503 open, the slowest in %s; payments saw %d of them (%d before the breaker opened)",
		openCount, ms(slowest), after-mid, mid-before)

	var state string
	err = waitFor(ctx, 5*time.Second, func() bool {
		state, _ = d.kubectl(ctx, "", "get", "cb", "payments", "-n", "shop", "-o", "jsonpath={.status.state}")
		return state == "Open"
	})
	took := time.Since(opened)
	fmt.Println("   $ kubectl get cb -n shop")
	if out, err := d.kubectl(ctx, "", "get", "cb", "-n", "shop", "-o", "wide"); err == nil {
		fmt.Print(indent(indent(out)))
	}
	st.check(err == nil && took <= 2500*time.Millisecond, "status Open",
		"status.state Open %s after the breaker opened (contract: within 2s, polled every 100ms)", ms(took))

	// Recovery: a good rollout, then the breaker's own timing.
	if _, err := d.startBackend(ctx, "payments", addr); err != nil {
		return err
	}
	fmt.Printf("   payments fixed (restarted healthy); the breaker stays open %s, then lets one probe through:\n", cbDemoOpen)
	var lastCode atomic.Int64
	var lastRA atomic.Value
	lastRA.Store("")
	stop := progress(func(time.Duration) string {
		return fmt.Sprintf("open for %s: %d, Retry-After: %s", since(opened), lastCode.Load(), lastRA.Load())
	})
	var closedAt time.Time
	var probe response
	for closedAt.IsZero() && time.Since(opened) < cbDemoOpen+5*time.Second {
		r, err := d.send(ctx, http.MethodGet, "payments.shop", "/pay", nil)
		if err != nil {
			stop()
			return err
		}
		lastCode.Store(int64(r.code))
		lastRA.Store(r.header.Get("Retry-After"))
		if r.code == http.StatusOK {
			closedAt, probe = time.Now(), r
			break
		}
		if err := pause(ctx, 100*time.Millisecond); err != nil {
			stop()
			return err
		}
	}
	stop()
	openFor := closedAt.Sub(opened)
	st.check(!closedAt.IsZero() && openFor >= cbDemoOpen-100*time.Millisecond && openFor <= cbDemoOpen+time.Second,
		"closes after openDuration", "the probe went through %s after the breaker opened and succeeded (%d %q): closed again (want ~%s)",
		ms(openFor), probe.code, probe.body, cbDemoOpen)
	err = waitFor(ctx, 5*time.Second, func() bool {
		state, _ = d.kubectl(ctx, "", "get", "cb", "payments", "-n", "shop", "-o", "jsonpath={.status.state}")
		return state == "Closed"
	})
	fmt.Println("   $ kubectl get cb -n shop")
	if out, err := d.kubectl(ctx, "", "get", "cb", "-n", "shop", "-o", "wide"); err == nil {
		fmt.Print(indent(indent(out)))
	}
	st.check(err == nil, "status Closed", "status.state Closed %s after the probe", since(closedAt))
	if out, err := d.kubectl(ctx, "", "get", "events", "-n", "shop", "--sort-by=.metadata.creationTimestamp",
		"-o", "custom-columns=REASON:.reason,OBJECT:.involvedObject.name,MESSAGE:.message"); err == nil {
		fmt.Println("   $ kubectl get events -n shop")
		fmt.Print(indent(indent(out)))
	}
	return nil
}

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
	var sent, succeeded atomic.Int64
	var mu sync.Mutex
	attempts := map[string]int{}
	var failures []string
	var wg sync.WaitGroup
	var firstErr error
	stop := progress(func(el time.Duration) string {
		return fmt.Sprintf("%2.0fs: %d/%d sent, %d succeeded so far", el.Seconds(), sent.Load(), n, succeeded.Load())
	})
	tick := time.NewTicker(time.Second / rate)
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
			attempts[r.header.Get("X-Resilience-Attempts")]++
			if r.code == http.StatusOK {
				succeeded.Add(1)
			} else {
				failures = append(failures, fmt.Sprintf("%d after %s tries", r.code, r.header.Get("X-Resilience-Attempts")))
			}
		}()
	}
	tick.Stop()
	wg.Wait()
	stop()
	if err := ctx.Err(); err != nil {
		return err
	}
	if firstErr != nil {
		return firstErr
	}
	after, _, err := d.stats(ctx, "catalog")
	if err != nil {
		return err
	}
	ok := int(succeeded.Load())
	keys := make([]string, 0, len(attempts))
	tries := 0
	for k := range attempts {
		keys = append(keys, k)
		v, _ := strconv.Atoi(k)
		tries += v * attempts[k]
	}
	sort.Strings(keys)
	var hist []string
	badAttempts := 0
	for _, k := range keys {
		hist = append(hist, fmt.Sprintf("%s: %d", k, attempts[k]))
		if v, err := strconv.Atoi(k); err != nil || v < 1 || v > retryAttempts {
			badAttempts += attempts[k]
		}
	}
	fmt.Printf("   %d GET /items through the gateway (%d/s): %d succeeded (%.1f%%)\n", n, rate, ok, pct(ok, n))
	fmt.Printf("   X-Resilience-Attempts -> requests: %s; %d tries in all, the backend counted %d\n",
		strings.Join(hist, ", "), tries, after-before)
	if len(failures) > 0 {
		fmt.Printf("   the failures: %s\n", summarize(failures))
	}
	expect := 100 * (1 - math.Pow(0.5, retryAttempts))
	st.check(pct(direct, n) <= 70, "flaky backend", "the backend alone fails about half the requests (%.1f%% succeeded)", pct(direct, n))
	st.check(pct(ok, n) >= 75 && badAttempts == 0, "retries succeed",
		"through the gateway %.1f%% succeeded; with independent 50%% failures and %d tries, 1-0.5^%d = %.1f%% is expected (want >= 75%%)",
		pct(ok, n), retryAttempts, retryAttempts, expect)
	return nil
}

// timeouts: an endpoint that takes 3s, straight and through the gateway.
func (d *demo) timeouts(ctx context.Context, st *step) error {
	fmt.Printf("   RetryPolicy catalog: each try may take %s (perTryTimeout), the whole request %s (timeout);\n"+
		"   a GET unanswered after 100ms is hedged. GET /slow?d=3s&rate=0 answers after 3 seconds.\n", retryPerTry, retryTimeout)
	const n = 3
	results := make([]response, n)
	errs := make([]error, n)
	var direct response
	var directErr error
	var wg sync.WaitGroup
	var done atomic.Int64
	stop := progress(func(el time.Duration) string {
		return fmt.Sprintf("%.0fs: %d/%d answered", el.Seconds(), done.Load(), n+1)
	})
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i], errs[i] = d.send(ctx, http.MethodGet, "catalog.shop", "/slow?d=3s&rate=0", nil)
			done.Add(1)
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		direct, directErr = d.do(ctx, http.MethodGet, "http://"+d.backends["catalog"].addr+"/slow?d=3s&rate=0", "", nil)
		done.Add(1)
	}()
	wg.Wait()
	stop()
	for _, err := range append(errs, directErr) {
		if err != nil {
			return err
		}
	}
	fmt.Printf("   straight to the backend: %d after %s\n", direct.code, ms(direct.took))
	for i, r := range results {
		fmt.Printf("   through the gateway #%d: %d after %s, X-Resilience-Attempts: %s, body: %s\n",
			i+1, r.code, ms(r.took), r.header.Get("X-Resilience-Attempts"), r.body)
		st.check(r.code == http.StatusGatewayTimeout && r.took >= retryPerTry && r.took <= retryTimeout+250*time.Millisecond &&
			r.header.Get("X-Resilience-Attempts") != "", "504 in time",
			"504 after %s: at least one per-try timeout (%s) and within the overall timeout (%s)", ms(r.took), retryPerTry, retryTimeout)
	}
	allFull := true
	for _, r := range results {
		allFull = allFull && r.header.Get("X-Resilience-Attempts") == strconv.Itoa(retryAttempts)
	}
	if !allFull {
		fmt.Printf("   Each try is cut at %s; the retry budget allowed fewer than %d tries to some requests.\n", retryPerTry, retryAttempts)
		return nil
	}
	fmt.Printf("   The first try and its hedge (sent after 100ms) are each cut at %s, and so is the retry that\n"+
		"   follows (timeouts are in retryOn): after %d tries in all the client gets 504 at once instead of\n"+
		"   waiting 3s. The %s overall timeout bounds the whole; with these settings the tries end first.\n",
		retryPerTry, retryAttempts, retryTimeout)
	return nil
}

// headers renders the named headers that are present, as "Name: value, ...".
func headers(h http.Header, names ...string) string {
	var parts []string
	for _, n := range names {
		if v := h.Get(n); v != "" {
			parts = append(parts, n+": "+v)
		}
	}
	if len(parts) == 0 {
		return "(none of " + strings.Join(names, ", ") + ")"
	}
	return strings.Join(parts, ", ")
}

// summarize counts equal strings: "503 after 3 tries x 14, ...".
func summarize(items []string) string {
	counts := map[string]int{}
	var order []string
	for _, it := range items {
		if counts[it] == 0 {
			order = append(order, it)
		}
		counts[it]++
	}
	parts := make([]string, len(order))
	for i, it := range order {
		parts[i] = fmt.Sprintf("%s x %d", it, counts[it])
	}
	return strings.Join(parts, ", ")
}

func pct(a, b int) float64 { return 100 * float64(a) / float64(b) }

// pause waits d or until ctx ends.
func pause(ctx context.Context, d time.Duration) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(d):
		return nil
	}
}
