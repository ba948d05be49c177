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
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"sync"

	"resilience.dev/operator/internal/patterns/clock"
)

// keyPrefix starts every bucket's name in the store, so that an operator sharing the store with
// others can find (and account for) its keys.
const keyPrefix = "resilience:rl:"

// BucketKey names the store's bucket of a limit (name: the limit's state key) and, for a keyed limit,
// of one key value. The whole name is the hash tag, so a bucket maps to one slot; key values are
// hashed, so what clients send never reaches the store's key space.
func BucketKey(name string, key []byte) string {
	if key == nil {
		return keyPrefix + "{" + name + "}"
	}
	sum := sha256.Sum256(key)
	return keyPrefix + "{" + name + "/" + hex.EncodeToString(sum[:16]) + "}"
}

// overflowKey is the key value every key beyond maxKeys shares (it cannot collide with a client's key:
// those are hashed, this is not).
var overflowKey = []byte("\x00overflow")

// Keyed spends a keyed Global limit on one replica: a Limiter per key value it has seen recently, at
// most maxKeys of them; beyond that, new key values share one overflow bucket, as local keyed limits do.
// The buckets themselves live in the store and expire there when full; Sweep forgets limiters that
// hold nothing and have been idle for a Lapse.
type Keyed struct {
	store   Store
	clock   clock.Clock
	o       Options
	name    string
	maxKeys int

	mu       sync.RWMutex
	limiters map[string]*Limiter
	overflow *Limiter
}

// NewKeyed returns a keyed limiter for the limit name (its state key); o.Key is ignored.
func NewKeyed(store Store, clk clock.Clock, name string, o Options, maxKeys int) (*Keyed, error) {
	if maxKeys < 1 {
		return nil, fmt.Errorf("keyed global limit %q: maxKeys %d, want at least 1", name, maxKeys)
	}
	k := &Keyed{store: store, clock: clk, o: o, name: name, maxKeys: maxKeys, limiters: map[string]*Limiter{}}
	var err error
	k.overflow, err = k.newLimiter(overflowKey)
	return k, err
}

func (k *Keyed) newLimiter(key []byte) (*Limiter, error) {
	o := k.o
	o.Key = BucketKey(k.name, key)
	return New(k.store, k.clock, o)
}

// Take spends n tokens of key's bucket (see Limiter.Take).
func (k *Keyed) Take(ctx context.Context, key []byte, n int64) Decision {
	return k.limiter(key).Take(ctx, n)
}

// Return gives back n tokens of key's bucket that a request did not spend (see Limiter.Return).
func (k *Keyed) Return(key []byte, n int64) { k.limiter(key).Return(n) }

// Len is the number of key values with a limiter of their own.
func (k *Keyed) Len() int {
	k.mu.RLock()
	defer k.mu.RUnlock()
	return len(k.limiters)
}

func (k *Keyed) limiter(key []byte) *Limiter {
	k.mu.RLock()
	l := k.limiters[string(key)]
	k.mu.RUnlock()
	if l != nil {
		return l
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if l := k.limiters[string(key)]; l != nil {
		return l
	}
	if len(k.limiters) >= k.maxKeys {
		return k.overflow
	}
	l, err := k.newLimiter(key)
	if err != nil { // cannot happen: the options were valid for the overflow limiter
		return k.overflow
	}
	k.limiters[string(key)] = l
	return l
}

// Sweep gives back lapsed tokens of every key (see Limiter.Sweep) and forgets the limiters that hold
// nothing and were not used for a Lapse. It returns the first store error.
func (k *Keyed) Sweep(ctx context.Context) error {
	now := k.clock.Now()
	k.mu.RLock()
	all := make([]*Limiter, 0, len(k.limiters)+1)
	for _, l := range k.limiters {
		all = append(all, l)
	}
	k.mu.RUnlock()
	all = append(all, k.overflow)
	var first error
	for _, l := range all {
		if err := l.Sweep(ctx); err != nil && first == nil {
			first = err
		}
	}
	// A request that looked a limiter up just before it is forgotten still spends from it: harmless
	// (its tokens came from the store), and rare, since forgetting takes a Lapse without any request.
	k.mu.Lock()
	for key, l := range k.limiters {
		if l.idle(now) {
			delete(k.limiters, key)
		}
	}
	k.mu.Unlock()
	return first
}
