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
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"resilience.dev/operator/api/v1alpha1"
)

var openDurationLine = regexp.MustCompile(`(?m)^(\s*openDuration:).*$`)

// circuitBreaker: payments breaks, the breaker opens after 5 failures and answers fast; payments is
// fixed, the breaker half-opens after openDuration, a probe succeeds and it closes.
func (d *demo) circuitBreaker(ctx context.Context, st *step) error {
	if err := d.applyDemoBreaker(ctx); err != nil {
		return err
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
	opened, err := d.tripBreaker(ctx, st)
	if err != nil || opened.IsZero() {
		return err // on zero: the breaker never opened, nothing more to show
	}
	if err := d.whileOpen(ctx, st, before, opened); err != nil {
		return err
	}
	return d.recoverBreaker(ctx, st, addr, opened)
}

// applyDemoBreaker applies the CircuitBreaker sample with a short openDuration, so that recovery
// shows quickly, and waits until it is Programmed.
func (d *demo) applyDemoBreaker(ctx context.Context) error {
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
	return nil
}

// tripBreaker sends requests one by one to the failing payments until the breaker opens, and returns
// when it opened (zero if it did not within 10 requests).
func (d *demo) tripBreaker(ctx context.Context, st *step) (time.Time, error) {
	var seq []string
	var fails, firstOpen int
	var opened time.Time
	var rejected response
	for i := 1; i <= 10 && firstOpen == 0; i++ {
		r, err := d.send(ctx, http.MethodGet, "payments.shop", "/pay", nil)
		if err != nil {
			return time.Time{}, err
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
		return time.Time{}, nil
	}
	fmt.Printf("   the rejection: %s\n          body: %s\n", headers(rejected.header, "X-Resilience-Circuit", "Retry-After"), rejected.body)
	return opened, nil
}

// whileOpen: fast answers, nothing reaches payments, and the status follows within the contract's 2s.
func (d *demo) whileOpen(ctx context.Context, st *step, before int64, opened time.Time) error {
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
	err = d.waitBreakerState(ctx, v1alpha1.CircuitOpen)
	took := time.Since(opened)
	d.showBreakers(ctx)
	st.check(err == nil && took <= 2500*time.Millisecond, "status Open",
		"status.state Open %s after the breaker opened (contract: within 2s, polled every 100ms)", ms(took))
	return nil
}

// recoverBreaker: a good rollout, then the breaker's own timing: it lets one probe through after
// openDuration, the probe succeeds and the breaker closes.
func (d *demo) recoverBreaker(ctx context.Context, st *step, addr string, opened time.Time) error {
	if _, err := d.startBackend(ctx, "payments", addr); err != nil {
		return err
	}
	fmt.Printf("   payments fixed (restarted healthy); the breaker stays open %s, then lets one probe through:\n", cbDemoOpen)
	closedAt, probe, err := d.awaitProbe(ctx, opened)
	if err != nil {
		return err
	}
	openFor := closedAt.Sub(opened)
	st.check(!closedAt.IsZero() && openFor >= cbDemoOpen-100*time.Millisecond && openFor <= cbDemoOpen+time.Second,
		"closes after openDuration", "the probe went through %s after the breaker opened and succeeded (%d %q): closed again (want ~%s)",
		ms(openFor), probe.code, probe.body, cbDemoOpen)
	err = d.waitBreakerState(ctx, v1alpha1.CircuitClosed)
	d.showBreakers(ctx)
	st.check(err == nil, "status Closed", "status.state Closed %s after the probe", since(closedAt))
	if out, err := d.kubectl(ctx, "", "get", "events", "-n", "shop", "--sort-by=.metadata.creationTimestamp",
		"-o", "custom-columns=REASON:.reason,OBJECT:.involvedObject.name,MESSAGE:.message"); err == nil {
		fmt.Println("   $ kubectl get events -n shop")
		fmt.Print(indent(indent(out)))
	}
	return nil
}

// awaitProbe sends to payments every 100 ms, printing progress each second, until a request
// succeeds (the probe, which closes the breaker) or openDuration plus 5s have passed since opened.
func (d *demo) awaitProbe(ctx context.Context, opened time.Time) (time.Time, response, error) {
	var lastCode atomic.Int64
	var lastRA atomic.Value
	lastRA.Store("")
	stop := progress(func(time.Duration) string {
		return fmt.Sprintf("open for %s: %d, Retry-After: %s", since(opened), lastCode.Load(), lastRA.Load())
	})
	defer stop()
	for time.Since(opened) < cbDemoOpen+5*time.Second {
		r, err := d.send(ctx, http.MethodGet, "payments.shop", "/pay", nil)
		if err != nil {
			return time.Time{}, response{}, err
		}
		lastCode.Store(int64(r.code))
		lastRA.Store(r.header.Get("Retry-After"))
		if r.code == http.StatusOK {
			return time.Now(), r, nil
		}
		if err := pause(ctx, 100*time.Millisecond); err != nil {
			return time.Time{}, response{}, err
		}
	}
	return time.Time{}, response{}, nil
}

// waitBreakerState waits up to 5s for payments' status.state to be want.
func (d *demo) waitBreakerState(ctx context.Context, want v1alpha1.CircuitState) error {
	return waitFor(ctx, 5*time.Second, func() bool {
		state, _ := d.kubectl(ctx, "", "get", "cb", "payments", "-n", "shop", "-o", "jsonpath={.status.state}")
		return v1alpha1.CircuitState(state) == want
	})
}

// showBreakers prints `kubectl get cb -n shop -o wide`.
func (d *demo) showBreakers(ctx context.Context) {
	fmt.Println("   $ kubectl get cb -n shop")
	if out, err := d.kubectl(ctx, "", "get", "cb", "-n", "shop", "-o", "wide"); err == nil {
		fmt.Print(indent(indent(out)))
	}
}
