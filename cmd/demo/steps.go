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
	"strings"
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

// runSteps runs the steps pattern by pattern, recording in d.failed those that misbehaved.
func (d *demo) runSteps(ctx context.Context) error {
	for _, s := range []struct {
		name string
		run  func(context.Context, *step) error
	}{
		{"1. Rate limit (checkout)", d.rateLimit},
		{"2. Circuit breaker (payments)", d.circuitBreaker},
		{"3. Retries (catalog)", d.retries},
		{"4. Timeouts (catalog)", d.timeouts},
		{"5. Global rate limit across two gateway replicas (tickets)", d.globalLimit},
		{"6. Capture: callers keep their URLs (checkout)", d.captured},
	} {
		fmt.Printf("\n%s\n%s\n", s.name, strings.Repeat("-", len(s.name)))
		st := &step{}
		t := time.Now()
		if err := s.run(ctx, st); err != nil {
			return fmt.Errorf("%s: %w", s.name, cause(ctx, err))
		}
		if len(st.bad) > 0 {
			d.failed = append(d.failed, s.name+" ("+strings.Join(st.bad, ", ")+")")
			fmt.Printf("   => MISBEHAVED (%s)\n", since(t))
		} else {
			fmt.Printf("   => behaved (%s)\n", since(t))
		}
	}
	return nil
}

// step collects what a step found wrong.
type step struct{ bad []string }

// check prints one expectation and whether it held.
func (s *step) check(ok bool, short, format string, args ...any) {
	mark := "ok  "
	if !ok {
		mark = "FAIL"
		s.bad = append(s.bad, short)
	}
	fmt.Printf("   [%s] %s\n", mark, fmt.Sprintf(format, args...))
}
