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
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

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
