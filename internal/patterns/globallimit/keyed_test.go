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

package globallimit

import (
	"context"
	"strings"
	"testing"
	"time"

	"resilience.dev/operator/internal/patterns/clock"
)

func TestBucketKey(t *testing.T) {
	if got := BucketKey("uid/total/abc", nil); got != "resilience:rl:{uid/total/abc}" {
		t.Errorf("unkeyed: %q", got)
	}
	a, b := BucketKey("uid/per-user/abc", []byte("alice")), BucketKey("uid/per-user/abc", []byte("bob"))
	if a == b || !strings.HasPrefix(a, "resilience:rl:{uid/per-user/abc/") || !strings.HasSuffix(a, "}") || strings.Contains(a, "alice") {
		t.Errorf("keyed: %q %q: want distinct hashed names inside one hash tag", a, b)
	}
	if BucketKey("n", []byte{}) == BucketKey("n", nil) {
		t.Error("the empty key value (a request without the header) must not share the unkeyed bucket")
	}
}

// TestKeyedBucketsPerUser: three users on two replicas each get their own burst, exactly.
func TestKeyedBucketsPerUser(t *testing.T) {
	clk := clock.NewFake(start)
	store := NewMemoryStore(clk)
	r := Rate{Requests: 10, PeriodMicros: 1_000_000, Burst: 5}
	var replicas []*Keyed
	for range 2 {
		k, err := NewKeyed(store, clk, "uid/per-user/h", Options{Rate: r, Replicas: 2}, 100)
		if err != nil {
			t.Fatal(err)
		}
		replicas = append(replicas, k)
	}
	admitted := map[string]int{}
	for i := range 60 { // 20 requests per user, alternating replicas, all within one instant
		user := []string{"alice", "bob", "carol"}[i%3]
		if d := replicas[i%2].Take(context.Background(), []byte(user), 1); d.Allowed {
			admitted[user]++
		}
	}
	for _, user := range []string{"alice", "bob", "carol"} {
		if admitted[user] != 5 {
			t.Errorf("%s: %d admitted, want the burst of 5", user, admitted[user])
		}
	}
	clk.Advance(100 * time.Millisecond) // one token back for each user
	for _, user := range []string{"alice", "bob", "carol"} {
		if d := replicas[0].Take(context.Background(), []byte(user), 1); !d.Allowed {
			t.Errorf("%s after 100ms: %+v", user, d)
		}
	}
}

func TestKeyedOverflowAndForget(t *testing.T) {
	clk := clock.NewFake(start)
	store := NewMemoryStore(clk)
	k, err := NewKeyed(store, clk, "uid/per-user/h", Options{Rate: Rate{Requests: 1, PeriodMicros: 1_000_000, Burst: 1}}, 2)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, user := range []string{"a", "b"} {
		if d := k.Take(ctx, []byte(user), 1); !d.Allowed {
			t.Fatalf("%s: %+v", user, d)
		}
	}
	// Beyond maxKeys, new users share the overflow bucket: the first gets its token, the next does not.
	if d := k.Take(ctx, []byte("c"), 1); !d.Allowed {
		t.Fatalf("c (overflow): %+v", d)
	}
	if d := k.Take(ctx, []byte("d"), 1); d.Allowed {
		t.Fatal("d shares the overflow bucket with c, which is empty")
	}
	if k.Len() != 2 {
		t.Fatalf("%d keys kept, want maxKeys 2", k.Len())
	}
	clk.Advance(999 * time.Millisecond)
	if err := k.Sweep(ctx); err != nil || k.Len() != 2 {
		t.Fatalf("swept keys used within a Lapse: %d left (%v)", k.Len(), err)
	}
	clk.Advance(time.Millisecond)
	if err := k.Sweep(ctx); err != nil || k.Len() != 0 {
		t.Fatalf("after a Lapse idle: %d keys left (%v)", k.Len(), err)
	}
	if d := k.Take(ctx, []byte("e"), 1); !d.Allowed || k.Len() != 1 {
		t.Fatalf("a new user after forgetting: %+v, %d keys", d, k.Len())
	}
	if _, err := NewKeyed(store, clk, "x", Options{Rate: Rate{Requests: 1, PeriodMicros: 1, Burst: 1}}, 0); err == nil {
		t.Error("maxKeys 0 accepted")
	}
}
