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
	"strconv"
	"strings"
	"sync"
	"time"
)

// rateLimit: a burst of requests at once against checkout's token bucket, then one user's orders.
func (d *demo) rateLimit(ctx context.Context, st *step) error {
	fmt.Printf("   RateLimit checkout: \"total\" %d requests/s with a burst of %d; \"orders-per-user\" %d per minute\n"+
		"   per X-User-ID on POST /orders. Over a limit the gateway answers 429 at once.\n",
		rlRequestsPerSecond, rlBurst, rlOrdersPerUser)
	if err := pause(ctx, 400*time.Millisecond); err != nil { // the bucket refills after the probes
		return err
	}
	if err := d.rateLimitBurst(ctx, st); err != nil {
		return err
	}
	// One user's orders: a keyed bucket of its own.
	if err := pause(ctx, 400*time.Millisecond); err != nil {
		return err
	}
	return d.ordersPerUser(ctx, st)
}

// burstTally counts the answers to a burst: admitted, refused (and how many 429s lack a valid
// Retry-After), anything else; with one 200 and the first 429 to show.
type burstTally struct {
	admitted, limited, other, badRA int
	ok, tooMany                     *response
}

func tallyBurst(results []response, errs []error) burstTally {
	var t burstTally
	for i := range results {
		r := &results[i]
		switch {
		case errs[i] != nil:
			t.other++
		case r.code == http.StatusOK:
			t.admitted++
			t.ok = r
		case r.code == http.StatusTooManyRequests:
			t.limited++
			if t.tooMany == nil {
				t.tooMany = r
			}
			if ra, err := strconv.Atoi(r.header.Get("Retry-After")); err != nil || ra < 1 {
				t.badRA++
			}
		default:
			t.other++
		}
	}
	return t
}

// rateLimitBurst sends 300 requests at once: the bucket admits its burst plus what refills meanwhile.
func (d *demo) rateLimitBurst(ctx context.Context, st *step) error {
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
	t := tallyBurst(results, errs)
	fmt.Printf("   %d GET / at once, all answered within %s: %d admitted (200), %d refused (429), %d other\n",
		n, ms(elapsed), t.admitted, t.limited, t.other)
	maxAdmitted := rlBurst + int(math.Ceil(rlRequestsPerSecond*elapsed.Seconds()))
	st.check(t.admitted >= rlBurst && t.admitted <= maxAdmitted && t.other == 0, "admitted count",
		"admitted %d: the burst of %d plus at most %d/s x %s refilled = at most %d (contract: burst + requests*T/period)",
		t.admitted, rlBurst, rlRequestsPerSecond, ms(elapsed), maxAdmitted)
	st.check(t.limited > 0 && t.badRA == 0 && t.tooMany != nil, "429 Retry-After",
		"every 429 carries Retry-After >= 1 (%d without)", t.badRA)
	if t.ok != nil {
		fmt.Printf("   a 200: %s\n", headers(t.ok.header, "X-RateLimit-Limit", "X-RateLimit-Remaining", "RateLimit-Policy", "RateLimit"))
	}
	if t.tooMany != nil {
		fmt.Printf("   a 429: %s\n          body: %s\n", headers(t.tooMany.header, "Retry-After", "X-RateLimit-Limit",
			"X-RateLimit-Remaining", "RateLimit-Policy", "RateLimit"), t.tooMany.body)
	}
	return nil
}

// ordersPerUser: alice orders past her per-user limit; bob, with a bucket of his own, still may.
func (d *demo) ordersPerUser(ctx context.Context, st *step) error {
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
