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

package server

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"

	"resilience.dev/operator/internal/distribution"
	"resilience.dev/operator/internal/patterns/clock"
	"resilience.dev/operator/internal/snapshot"
)

// TestStoreStatus: StoreAvailable is True only when every live replica says it reaches the store;
// otherwise the message names the replicas that do not, and why.
func TestStoreStatus(t *testing.T) {
	up := &distribution.StoreHealth{Available: true}
	down := &distribution.StoreHealth{Error: "dial tcp 127.0.0.1:6379: connection refused"}
	cases := []struct {
		desc     string
		replicas map[string]*distribution.StoreHealth
		wantOK   bool
		wantMsg  string
	}{
		{desc: "no replica", wantMsg: "no gateway replica is connected"},
		{desc: "all reach it", replicas: map[string]*distribution.StoreHealth{"g0": up, "g1": up}, wantOK: true, wantMsg: "2/2 gateway replicas reach the store"},
		{desc: "one lost it", replicas: map[string]*distribution.StoreHealth{"g0": up, "g1": down},
			wantMsg: "1/2 gateway replicas cannot reach the store, so Global limits follow onStoreError: g1 (dial tcp 127.0.0.1:6379: connection refused)"},
		{desc: "one not reported yet", replicas: map[string]*distribution.StoreHealth{"g0": up, "g1": nil}, wantMsg: "1/2 gateway replicas reported on the store"},
	}
	for _, tc := range cases {
		t.Run(tc.desc, func(t *testing.T) {
			fake := clock.NewFake(time.Unix(1_700_000_000, 0))
			store := &MemoryStore{}
			srv := NewServer(acceptAll{}, store, "m0", logr.Discard(), WithClock(fake))
			for r, h := range tc.replicas {
				_ = store.Put(context.Background(), GatewayState{Replica: r, Manager: "m0", Heartbeat: fake.Now(), Store: h})
			}
			ok, msg := srv.StoreStatus()
			if ok != tc.wantOK || !strings.Contains(msg, tc.wantMsg) {
				t.Fatalf("StoreStatus = %v %q, want %v %q", ok, msg, tc.wantOK, tc.wantMsg)
			}
		})
	}
}

// TestStoreFlipRequeues: a replica's store health changing requeues every policy (the RateLimits with
// a Global limit show it), and a heartbeat alone does not.
func TestStoreFlipRequeues(t *testing.T) {
	fake := clock.NewFake(time.Unix(1_700_000_000, 0))
	store := &MemoryStore{}
	srv := NewServer(acceptAll{}, store, "m0", logr.Discard(), WithClock(fake))
	calls := 0
	srv.OnChange = func(keys []snapshot.PolicyKey) {
		if keys == nil {
			calls++
		}
	}
	put := func(h *distribution.StoreHealth) {
		_ = store.Put(context.Background(), GatewayState{Replica: "g0", Manager: "m0", Heartbeat: fake.Now(), Store: h})
		srv.StoreChanged()
	}
	put(&distribution.StoreHealth{Available: true}) // a new replica: every policy
	put(&distribution.StoreHealth{Available: true}) // a heartbeat
	put(&distribution.StoreHealth{Error: "refused"})
	put(&distribution.StoreHealth{Available: true})
	if calls != 3 {
		t.Fatalf("requeued all %d times, want 3 (new replica, lost, back)", calls)
	}
}
