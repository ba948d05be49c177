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

package ratelimit

import (
	"bytes"
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"
)

// lookup returns the bucket held for key, if any, without creating one.
func (k *Keyed) lookup(key []byte) (*Bucket, bool) {
	var buf [digestLen]byte
	kb, h, sh := k.locate(key, &buf)
	sh.mu.RLock()
	defer sh.mu.RUnlock()
	if i := sh.find(h, kb); i >= 0 {
		return &sh.tab[i].s.b, true
	}
	return nil, false
}

func mustKeyed(t testing.TB, l Limit, maxKeys int) *Keyed {
	t.Helper()
	k, err := NewKeyed(l, maxKeys)
	if err != nil {
		t.Fatalf("NewKeyed(%v, %d): %v", l, maxKeys, err)
	}
	return k
}

func TestNewKeyedValidation(t *testing.T) {
	t.Parallel()
	tests := []struct {
		desc    string
		limit   Limit
		maxKeys int
		wantErr string
	}{
		{desc: "valid", limit: Limit{100, time.Second, 20}, maxKeys: 10000},
		{desc: "one key", limit: Limit{100, time.Second, 20}, maxKeys: 1},
		{desc: "zero maxKeys", limit: Limit{100, time.Second, 20}, maxKeys: 0, wantErr: "maxKeys 0"},
		{desc: "bad limit", limit: Limit{0, time.Second, 20}, maxKeys: 10, wantErr: "requests 0"},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			_, err := NewKeyed(tc.limit, tc.maxKeys)
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("NewKeyed = %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("NewKeyed = %v, want an error containing %q", err, tc.wantErr)
			}
		})
	}
}

// TestKeyedIndependentKeys: each key has its own exact bucket.
func TestKeyedIndependentKeys(t *testing.T) {
	t.Parallel()
	k := mustKeyed(t, Limit{100, time.Second, 10}, 100)
	keys := [][]byte{[]byte("a"), []byte("b"), []byte(""), bytes.Repeat([]byte("x"), 100)}
	for _, key := range keys {
		got := 0
		for i := range 1000 {
			if k.AllowN(t0.Add(time.Duration(i)*time.Millisecond), key, 1) {
				got++
			}
		}
		if got != 109 {
			t.Errorf("key %q admitted %d of 1000 over 1s, want 109", key, got)
		}
	}
	if k.Len() != len(keys) {
		t.Errorf("Len = %d, want %d", k.Len(), len(keys))
	}
}

// TestKeyedLongKeys: keys longer than MaxStoredKey are held as a digest, distinct from each other
// and from every short key.
func TestKeyedLongKeys(t *testing.T) {
	t.Parallel()
	k := mustKeyed(t, Limit{1, time.Hour, 1}, 100)
	long1 := bytes.Repeat([]byte("k"), 200)
	long2 := append(bytes.Repeat([]byte("k"), 199), 'j')
	atLimit := bytes.Repeat([]byte("k"), MaxStoredKey)
	overLimit := bytes.Repeat([]byte("k"), MaxStoredKey+1)
	tests := []struct {
		desc string
		key  []byte
		want bool
	}{
		{desc: "long key, first", key: long1, want: true},
		{desc: "long key, again: same bucket", key: long1, want: false},
		{desc: "long key differing in the last byte", key: long2, want: true},
		{desc: "a key of MaxStoredKey bytes", key: atLimit, want: true},
		{desc: "a key of MaxStoredKey+1 bytes", key: overLimit, want: true},
		{desc: "the MaxStoredKey+1 key again", key: overLimit, want: false},
	}
	for _, tc := range tests {
		if got := k.AllowN(t0, tc.key, 1); got != tc.want {
			t.Errorf("%s: AllowN = %v, want %v", tc.desc, got, tc.want)
		}
	}
	st := k.Stats()
	if st.Keys != 4 || st.KeyBytes != 3*digestLen+MaxStoredKey {
		t.Errorf("Stats = %+v, want 4 keys of %d bytes", st, 3*digestLen+MaxStoredKey)
	}
}

// TestKeyedSpray sends 1,000,000 distinct keys through a limiter capped at 10,000 while 100
// active keys keep using theirs: the limiter never holds more than the cap, the active keys keep
// their own buckets (each admits exactly what a lone bucket fed the same requests admits), and the
// spray ends up in the overflow bucket.
func TestKeyedSpray(t *testing.T) {
	t.Parallel()
	const (
		maxKeys = 10000
		spray   = 1000000
		active  = 100
	)
	l := Limit{10, time.Second, 5}
	k := mustKeyed(t, l, maxKeys)
	shadows := make([]*Bucket, active)
	admitted := make([]int, active)
	want := make([]int, active)
	activeKey := func(i int) []byte { return fmt.Appendf(nil, "active-%d", i) }
	for i := range shadows {
		shadows[i] = mustBucket(t, l)
	}
	buf := make([]byte, 0, 32)
	for i := range spray {
		now := t0.Add(time.Duration(i) * time.Microsecond) // the spray spans 1s
		if i%100 == 0 {
			// Every active key asks every 10ms: 100/s against 10/s, so its bucket is never full.
			a := (i / 100) % active
			if k.AllowN(now, activeKey(a), 1) {
				admitted[a]++
			}
			if shadows[a].Allow(now) {
				want[a]++
			}
		}
		buf = strconv.AppendInt(append(buf[:0], "spray-"...), int64(i), 10)
		k.AllowN(now, buf, 1)
		if i%10000 == 0 && k.Len() > maxKeys {
			t.Fatalf("after %d spray keys the limiter holds %d > %d", i, k.Len(), maxKeys)
		}
	}
	if k.Len() != maxKeys {
		t.Errorf("Len = %d, want the cap %d", k.Len(), maxKeys)
	}
	for a := range active {
		if _, ok := k.lookup(activeKey(a)); !ok {
			t.Errorf("active key %d lost its bucket", a)
		}
		if admitted[a] != want[a] {
			t.Errorf("active key %d admitted %d, its own bucket would admit %d", a, admitted[a], want[a])
		}
	}
	st := k.Stats()
	if wantOver := uint64(spray - (maxKeys - active)); st.OverflowTakes != wantOver {
		t.Errorf("OverflowTakes = %d, want %d", st.OverflowTakes, wantOver)
	}
}

// TestKeyedReclaim: when the limiter is full, a bucket is dropped for a new key once it has been
// full for IdleGrace, and not a nanosecond before; Sweep drops every such bucket.
func TestKeyedReclaim(t *testing.T) {
	t.Parallel()
	const maxKeys = 100
	l := Limit{10, time.Second, 5} // a taken token refills in 100ms
	key := func(prefix string, i int) []byte { return fmt.Appendf(nil, "%s-%d", prefix, i) }
	idleAt := t0.Add(100*time.Millisecond + IdleGrace) // the old keys' buckets become idle
	tests := []struct {
		desc string
		at   time.Time
		// wantOwn: whether the new keys get buckets of their own.
		wantOwn bool
	}{
		{desc: "just after the fill", at: t0.Add(time.Millisecond), wantOwn: false},
		{desc: "1ns before the buckets are idle", at: idleAt.Add(-time.Nanosecond), wantOwn: false},
		{desc: "once they are idle", at: idleAt, wantOwn: true},
		{desc: "an hour later", at: t0.Add(time.Hour), wantOwn: true},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			k := mustKeyed(t, l, maxKeys)
			for i := range maxKeys {
				k.AllowN(t0, key("old", i), 1)
			}
			// A probe at the start of the spray, as an earlier new key would have made: it
			// schedules the next full sweep.
			k.AllowN(t0.Add(time.Millisecond), []byte("probe"), 1)
			for i := range maxKeys {
				k.AllowN(tc.at, key("new", i), 1)
				if k.Len() > maxKeys {
					t.Fatalf("Len = %d > %d", k.Len(), maxKeys)
				}
			}
			own := 0
			for i := range maxKeys {
				if _, ok := k.lookup(key("new", i)); ok {
					own++
				}
			}
			if want := map[bool]int{false: 0, true: maxKeys}[tc.wantOwn]; own != want {
				t.Errorf("%d new keys have their own bucket, want %d", own, want)
			}
		})
	}
}

func TestKeyedSweep(t *testing.T) {
	t.Parallel()
	k := mustKeyed(t, Limit{10, time.Second, 5}, 1000)
	for i := range 500 {
		k.AllowN(t0, fmt.Appendf(nil, "k%d", i), 1)
	}
	k.AllowN(t0.Add(time.Second), []byte("busy"), 1)
	if n := k.Sweep(t0.Add(100*time.Millisecond + IdleGrace - time.Nanosecond)); n != 0 {
		t.Fatalf("Sweep before the grace dropped %d", n)
	}
	if n := k.Sweep(t0.Add(100*time.Millisecond + IdleGrace)); n != 500 {
		t.Fatalf("Sweep dropped %d, want 500", n)
	}
	if _, ok := k.lookup([]byte("busy")); !ok || k.Len() != 1 {
		t.Fatalf("after Sweep Len = %d, busy held = %v; want only busy", k.Len(), ok)
	}
	if st := k.Stats(); st.KeyBytes != 4 {
		t.Errorf("KeyBytes = %d, want 4", st.KeyBytes)
	}
}

// TestKeyedOverflowShared: keys that find no room share one bucket.
func TestKeyedOverflowShared(t *testing.T) {
	t.Parallel()
	k := mustKeyed(t, Limit{1, time.Hour, 3}, 1)
	if !k.AllowN(t0, []byte("first"), 1) {
		t.Fatal("first key refused")
	}
	got := 0
	for i := range 10 {
		if k.AllowN(t0, fmt.Appendf(nil, "other-%d", i), 1) {
			got++
		}
	}
	if got != 3 {
		t.Errorf("10 keys without room admitted %d, want the overflow bucket's 3", got)
	}
	if k.Len() != 1 || k.Stats().OverflowTakes != 10 {
		t.Errorf("Len = %d, OverflowTakes = %d; want 1, 10", k.Len(), k.Stats().OverflowTakes)
	}
}

func TestKeyedReserve(t *testing.T) {
	t.Parallel()
	k := mustKeyed(t, Limit{10, time.Second, 1}, 10)
	key := []byte("user")
	for i, want := range []time.Duration{0, 100 * time.Millisecond, 200 * time.Millisecond} {
		r, ok := k.ReserveN(t0, key, 1, 250*time.Millisecond)
		if !ok || r.Delay() != want {
			t.Fatalf("reservation %d = %v, %v; want %v", i, r.Delay(), ok, want)
		}
	}
	if _, ok := k.ReserveN(t0, key, 1, 250*time.Millisecond); ok {
		t.Fatal("a 300ms wait was admitted within 250ms")
	}
	if _, ok := k.ReserveN(t0, []byte("other"), 2, time.Hour); ok {
		t.Fatal("n > burst was admitted")
	}
	if k.Len() != 1 {
		t.Errorf("a refused n > burst created a bucket: Len = %d", k.Len())
	}
}

// TestHotPathAllocs: taking from a bucket, an existing key (short or long) and three limits at
// once allocates nothing.
func TestHotPathAllocs(t *testing.T) {
	l := Limit{1000000000, time.Second, 1000}
	b := mustBucket(t, l)
	k := mustKeyed(t, l, 10)
	short := []byte("10.1.2.3")
	long := bytes.Repeat([]byte("long"), 20)
	k.AllowN(t0, short, 1)
	k.AllowN(t0, long, 1)
	refs := []Ref{{Bucket: b}, {Keyed: k, Key: short}, {Keyed: k, Key: long}}
	var out [3]Reservation
	tests := []struct {
		desc string
		f    func()
	}{
		{desc: "Bucket.AllowN", f: func() { b.AllowN(t0, 1) }},
		{desc: "Bucket.ReserveN", f: func() { b.ReserveN(t0, 1, time.Second) }},
		{desc: "Keyed.AllowN short key", f: func() { k.AllowN(t0, short, 1) }},
		{desc: "Keyed.AllowN long key", f: func() { k.AllowN(t0, long, 1) }},
		{desc: "TakeAll of 3", f: func() { TakeAll(t0, refs, 1, out[:]) }},
		{desc: "TakeAll of 3 without out", f: func() { TakeAll(t0, refs, 1, nil) }},
		{desc: "ReserveAll of 3", f: func() { ReserveAll(t0, refs, 1, time.Second, nil) }},
		{desc: "Tokens and NextToken", f: func() { b.Tokens(t0); b.NextToken(t0) }},
	}
	for _, tc := range tests {
		if a := testing.AllocsPerRun(1000, tc.f); a != 0 {
			t.Errorf("%s: %v allocs/op, want 0", tc.desc, a)
		}
	}
}

// TestKeyedBytesPerKey measures the heap one held key costs, with keys of the longest stored size,
// and checks it against BytesPerKey at several sizes (maps grow by doubling).
func TestKeyedBytesPerKey(t *testing.T) {
	for _, n := range []int{1000, 10000, 100000, 150000} {
		k := mustKeyed(t, Limit{1, time.Second, 1}, n)
		keys := make([][]byte, n)
		for i := range keys {
			keys[i] = fmt.Appendf(nil, "%0*d", MaxStoredKey, i)
		}
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		for _, key := range keys {
			k.AllowN(t0, key, 1)
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		per := (float64(after.HeapAlloc) - float64(before.HeapAlloc)) / float64(n)
		t.Logf("%d keys: %.0f bytes per key of %d bytes", n, per, MaxStoredKey)
		if per > BytesPerKey {
			t.Errorf("%d keys: %.0f bytes per key > BytesPerKey %d", n, per, BytesPerKey)
		}
		if k.Len() != n {
			t.Fatalf("Len = %d, want %d", k.Len(), n)
		}
		runtime.KeepAlive(keys)
		runtime.KeepAlive(k)
	}
}

// TestKeyedChurnMemory: a stream of new keys at the cap, each dropped once idle, keeps the heap
// within MaxKeys*BytesPerKey (the maps do not grow with churn).
func TestKeyedChurnMemory(t *testing.T) {
	const maxKeys = 10000
	k := mustKeyed(t, Limit{1000, time.Second, 1}, maxKeys)
	var base, ms runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&base)
	buf := make([]byte, 0, 40)
	const churn = 300000
	for i := range churn {
		// About 9,500 new keys a second against 10,000 places freed after IdleGrace: most keys get
		// a place, and every place is reused ~30 times.
		now := t0.Add(time.Duration(i) * 105 * time.Microsecond)
		buf = strconv.AppendInt(append(buf[:0], "churn-key-"...), int64(i), 10)
		k.AllowN(now, buf, 1)
	}
	runtime.GC()
	runtime.ReadMemStats(&ms)
	st := k.Stats()
	grown := int64(ms.HeapAlloc) - int64(base.HeapAlloc)
	t.Logf("heap grew %d bytes for %d keys held; %d overflow takes", grown, st.Keys, st.OverflowTakes)
	if grown > st.MaxBytes {
		t.Errorf("heap grew %d bytes > MaxBytes %d", grown, st.MaxBytes)
	}
	if st.Keys > maxKeys || st.OverflowTakes > churn/20 {
		t.Errorf("Stats = %+v: want at most %d keys and most new keys placed", st, maxKeys)
	}
	runtime.KeepAlive(k)
}

// TestShardTable drives a shard's hash table with random adds and deletes against a Go map, with
// hashes drawn from few home slots so that clusters form and wrap around the end of the table:
// every key stays findable and no deleted key is found.
func TestShardTable(t *testing.T) {
	t.Parallel()
	tests := []struct {
		desc  string
		top   uint64 // the hashes' high bits start here and go down
		homes uint64 // distinct high bits of the hashes
	}{
		{desc: "one home slot at the start", top: 0, homes: 1},
		{desc: "one home slot at the end", top: math.MaxUint64, homes: 1},
		{desc: "a few home slots at the end", top: math.MaxUint64, homes: 3},
		{desc: "spread", top: math.MaxUint64, homes: 1 << 12},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			rng := rand.New(rand.NewPCG(7, uint64(tc.homes)))
			var sh shard
			want := map[string]uint64{}
			hashOf := func(i int) uint64 {
				// High bits pick the home, one slot apart in tables of up to 4096 entries (clusters
				// at the end wrap around to the start); low bits keep hashes distinct.
				return (tc.top - uint64(i)%tc.homes<<52) ^ uint64(i)&0xffff
			}
			for op := range 20000 {
				i := rng.IntN(300)
				key := []byte(strconv.Itoa(i))
				h := hashOf(i)
				at := sh.find(h, key)
				if _, ok := want[string(key)]; ok != (at >= 0) {
					t.Fatalf("op %d: find(%s) = %d, want present %v", op, key, at, ok)
				}
				if at >= 0 {
					sh.del(at)
					delete(want, string(key))
				} else {
					sh.add(h, &slot{key: string(key)})
					want[string(key)] = h
				}
				if sh.n != len(want) {
					t.Fatalf("op %d: n = %d, want %d", op, sh.n, len(want))
				}
			}
			for key, h := range want {
				if sh.find(h, []byte(key)) < 0 {
					t.Errorf("key %s lost", key)
				}
			}
		})
	}
}
