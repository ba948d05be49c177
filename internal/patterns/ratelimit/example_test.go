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

package ratelimit_test

import (
	"fmt"
	"math"
	"time"

	"resilience.dev/operator/internal/patterns/ratelimit"
)

// A request passing a global limit and a per-client one, as the gateway takes it: all or nothing,
// then the headers from the limit with the fewest tokens left, or Retry-After on refusal.
func ExampleTakeAll() {
	global, _ := ratelimit.NewBucket(ratelimit.Limit{Requests: 100, Period: time.Second, Burst: 100})
	perClient, _ := ratelimit.NewKeyed(ratelimit.Limit{Requests: 2, Period: time.Second, Burst: 2}, 10000)
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

	var out [2]ratelimit.Reservation
	for range 3 {
		refs := []ratelimit.Ref{{Bucket: global}, {Keyed: perClient, Key: []byte("10.0.0.7")}}
		o := ratelimit.TakeAll(now, refs, 1, out[:])
		if !o.OK {
			fmt.Printf("429, limit %d refused, Retry-After %ds\n", o.Refused, int(math.Ceil(o.RetryAfter.Seconds())))
			continue
		}
		fewest := out[0].Bucket()
		for i := range out {
			if b := out[i].Bucket(); b.Tokens(now) < fewest.Tokens(now) {
				fewest = b
			}
		}
		fmt.Printf("admitted, X-RateLimit-Remaining %d\n", int(fewest.Tokens(now)))
	}
	fmt.Println("global tokens left:", global.Tokens(now))
	// Output:
	// admitted, X-RateLimit-Remaining 1
	// admitted, X-RateLimit-Remaining 0
	// 429, limit 1 refused, Retry-After 1s
	// global tokens left: 98
}
