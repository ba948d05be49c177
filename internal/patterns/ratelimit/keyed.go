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
	"encoding/binary"
	"fmt"
	"hash/maphash"
	"math"
	"math/bits"
	"sync"
	"sync/atomic"
	"time"
)

const (
	// IdleGrace is how long a keyed bucket must have been full before the limiter may drop it to make
	// room for a new key. A full bucket holds no information (a new one would be identical), and the
	// grace keeps a key that is in use, if slowly, from losing its place to a spray of new keys.
	IdleGrace = time.Second

	// MaxStoredKey is the longest key held as is; a longer key is held as a 128-bit digest padded to
	// MaxStoredKey+1 bytes (its length keeps it apart from every key held as is).
	MaxStoredKey = 32

	// BytesPerKey bounds the heap one held key costs, its bytes included (measured by
	// TestKeyedBytesPerKey): the memory of a Keyed is at most MaxKeys*BytesPerKey plus a constant.
	BytesPerKey = 160

	numShards = 64 // a power of two
	// reclaimScan is how many buckets of its shard a new key inspects for an idle one to drop when
	// the limiter is at MaxKeys: constant work per new key, and every bucket is seen again after
	// about len(shard)/reclaimScan new keys.
	reclaimScan = 8
	digestLen   = MaxStoredKey + 1
)

// Keyed is a limiter with one bucket per key (a client IP, header values, or a composite of them,
// as bytes), all with the same Limit. It holds at most MaxKeys buckets. When it is full, a new key
// first makes room by dropping buckets that have been full for IdleGrace: a few of its own shard
// at once, and, when that frees nothing, every such bucket in one sweep (at most one sweep per
// IdleGrace/16 plus 200 ns per key of MaxKeys, and only once some bucket can have become idle). If
// there is still no room, the key shares one overflow bucket with every other key that found none.
// Active keys therefore keep their own buckets however many new keys arrive.
//
// Keys are spread over 64 shards by a seeded hash, each with its own RWMutex held for reading while
// a bucket is looked up and taken from (the take itself is the bucket's compare-and-swap), so the
// hot path is shared by every key of a shard and never waits behind a global lock. The bucket
// count is enforced across shards with an atomic counter. Lookups with an existing key do not
// allocate. It is safe for concurrent use.
type Keyed struct {
	p          *params
	maxKeys    int64
	graceTicks int64
	seed       maphash.Seed
	seed2      maphash.Seed // second half of the digest of long keys

	count     atomic.Int64 // buckets held
	keyBytes  atomic.Int64 // bytes of the keys held
	overflow  atomic.Uint64
	nextSweep atomic.Int64 // ns since the epoch: no full sweep before, as none would free a place
	sweepGap  int64        // least ns between two full sweeps

	overflowBucket Bucket
	shards         [numShards]shard
}

// shard is an open-addressing hash table (linear probing, at most 3/4 full, backward-shift
// deletion) indexed by the seeded hash the shard was chosen with, so a key is hashed once.
type shard struct {
	mu   sync.RWMutex
	tab  []entry  // a power of two long; an entry with a nil slot is free
	n    int      // entries used
	hand int      // the reclaim clock hand: an index in tab
	_    [64]byte // keeps neighbouring shards' mutexes off one cache line pair
}

type entry struct {
	h uint64
	s *slot
}

type slot struct {
	b   Bucket
	key string
}

// home returns the index where h belongs: the high bits, as the low ones chose the shard.
func (sh *shard) home(h uint64) int {
	return int(h >> (64 - bits.TrailingZeros(uint(len(sh.tab)))))
}

// find returns the index of key in sh, or -1.
func (sh *shard) find(h uint64, key []byte) int {
	if sh.n == 0 {
		return -1
	}
	mask := len(sh.tab) - 1
	for i := sh.home(h); ; i = (i + 1) & mask {
		e := &sh.tab[i]
		if e.s == nil {
			return -1
		}
		if e.h == h && e.s.key == string(key) {
			return i
		}
	}
}

// add puts s, of hash h and not in sh, into sh, growing the table to stay at most 3/4 full.
func (sh *shard) add(h uint64, s *slot) {
	if (sh.n+1)*4 > len(sh.tab)*3 {
		old := sh.tab
		sh.tab = make([]entry, max(8, 2*len(old)))
		sh.n = 0
		for _, e := range old {
			if e.s != nil {
				sh.add(e.h, e.s)
			}
		}
	}
	mask := len(sh.tab) - 1
	i := sh.home(h)
	for sh.tab[i].s != nil {
		i = (i + 1) & mask
	}
	sh.tab[i] = entry{h: h, s: s}
	sh.n++
}

// del empties index i, moving back the entries after it that would otherwise become unreachable.
// An entry that was after i may now sit at i.
func (sh *shard) del(i int) {
	mask := len(sh.tab) - 1
	for j := (i + 1) & mask; sh.tab[j].s != nil; j = (j + 1) & mask {
		// The entry at j stays when its home lies cyclically in (i, j].
		if h := sh.home(sh.tab[j].h); (i < j && i < h && h <= j) || (i > j && (i < h || h <= j)) {
			continue
		}
		sh.tab[i] = sh.tab[j]
		i = j
	}
	sh.tab[i] = entry{}
	sh.n--
}

// NewKeyed returns a keyed limiter applying l to every key and holding at most maxKeys buckets.
func NewKeyed(l Limit, maxKeys int) (*Keyed, error) {
	p, err := newParams(l)
	if err != nil {
		return nil, fmt.Errorf("new keyed limiter: %w", err)
	}
	if maxKeys < 1 {
		return nil, fmt.Errorf("new keyed limiter: maxKeys %d: must be at least 1", maxKeys)
	}
	k := &Keyed{
		p:          p,
		maxKeys:    int64(maxKeys),
		graceTicks: p.ticks(int64(IdleGrace)),
		seed:       maphash.MakeSeed(),
		seed2:      maphash.MakeSeed(),
		sweepGap:   int64(IdleGrace/16) + int64(maxKeys)*200,
	}
	k.overflowBucket.p = p
	return k, nil
}

// Limit returns the limit of every bucket.
func (k *Keyed) Limit() Limit { return k.p.limit }

// AllowN reports whether n tokens are available at now in key's bucket, and takes them if so.
func (k *Keyed) AllowN(now time.Time, key []byte, n int) bool {
	e := elapsed(now)
	_, ok := k.reserve(e, e, key, n, 0)
	return ok
}

// ReserveN is Bucket.ReserveN on key's bucket.
func (k *Keyed) ReserveN(now time.Time, key []byte, n int, maxWait time.Duration) (Reservation, bool) {
	e := elapsed(now)
	r, ok := k.reserve(e, e, key, n, clampWait(maxWait))
	if !ok {
		return Reservation{}, false
	}
	return r, true
}

// Len returns the number of buckets held (the overflow bucket aside).
func (k *Keyed) Len() int { return int(k.count.Load()) }

// KeyedStats describes what a Keyed holds.
type KeyedStats struct {
	Keys     int   // buckets held, at most MaxKeys
	MaxKeys  int   // the cap
	KeyBytes int64 // bytes of the keys held (each at most MaxStoredKey+1)
	// MaxBytes bounds the heap the buckets can take: MaxKeys*BytesPerKey.
	MaxBytes int64
	// OverflowTakes counts requests served by the shared overflow bucket since creation.
	OverflowTakes uint64
}

// Stats returns the limiter's occupancy; the counts are read without stopping takes.
func (k *Keyed) Stats() KeyedStats {
	return KeyedStats{
		Keys:          int(k.count.Load()),
		MaxKeys:       int(k.maxKeys),
		KeyBytes:      k.keyBytes.Load(),
		MaxBytes:      k.maxKeys * BytesPerKey,
		OverflowTakes: k.overflow.Load(),
	}
}

// Sweep drops every bucket that has been full for IdleGrace at now and returns how many it
// dropped. The limiter reclaims such buckets by itself when it is full; Sweep lets an owner give
// memory back sooner, from a ticker say. It locks one shard at a time.
func (k *Keyed) Sweep(now time.Time) int { return k.sweep(elapsed(now)) }

// sweep drops every idle bucket at e, and schedules the next automatic sweep no earlier than the
// first moment a kept bucket can become idle.
func (k *Keyed) sweep(e int64) int {
	v := k.p.ticks(e)
	dropped := 0
	first := int64(math.MaxInt64) // smallest tat kept
	for i := range k.shards {
		sh := &k.shards[i]
		sh.mu.Lock()
		for j := 0; j < len(sh.tab); {
			s := sh.tab[j].s
			switch {
			case s == nil:
			case k.idle(s, v):
				k.remove(sh, j)
				dropped++
				continue // another entry may have moved into j
			default:
				first = min(first, s.b.tat.Load())
			}
			j++
		}
		sh.mu.Unlock()
	}
	next := e + k.sweepGap
	if first != math.MaxInt64 {
		next = max(next, k.p.nanos(first+k.graceTicks))
	}
	k.nextSweep.Store(next)
	return dropped
}

// sweepDue reports whether a full sweep is due at e, and if so claims it for the caller.
func (k *Keyed) sweepDue(e int64) bool {
	next := k.nextSweep.Load()
	return e >= next && k.nextSweep.CompareAndSwap(next, e+k.sweepGap)
}

// locate returns the stored form of key (buf holds it for a long key), its hash and its shard.
func (k *Keyed) locate(key []byte, buf *[digestLen]byte) ([]byte, uint64, *shard) {
	h := maphash.Bytes(k.seed, key)
	if len(key) > MaxStoredKey {
		binary.LittleEndian.PutUint64(buf[0:], h)
		binary.LittleEndian.PutUint64(buf[8:], maphash.Bytes(k.seed2, key))
		key = buf[:]
	}
	return key, h, &k.shards[h&(numShards-1)]
}

// reserve is Bucket.reserve on key's bucket. The take happens under the shard's read lock, so a
// bucket is never dropped between its lookup and a take (a take on a dropped bucket would be lost).
func (k *Keyed) reserve(eNow, eAt int64, key []byte, n int, maxWait int64) (Reservation, bool) {
	var buf [digestLen]byte
	kb, h, sh := k.locate(key, &buf)
	sh.mu.RLock()
	if i := sh.find(h, kb); i >= 0 {
		r, ok := sh.tab[i].s.b.reserve(eNow, eAt, n, maxWait)
		sh.mu.RUnlock()
		return r, ok
	}
	sh.mu.RUnlock()
	if n <= 0 || n > k.p.limit.Burst {
		return Reservation{}, n == 0
	}
	return k.reserveNew(sh, kb, h, eNow, eAt, n, maxWait)
}

// reserveNew is the slow path of a key without a bucket: make one, or use the overflow bucket.
func (k *Keyed) reserveNew(sh *shard, kb []byte, h uint64, eNow, eAt int64, n int, maxWait int64) (Reservation, bool) {
	sh.mu.Lock()
	s := k.findOrInsert(sh, kb, h, eNow)
	if s == nil && k.sweepDue(eNow) {
		sh.mu.Unlock() // sweep locks every shard in turn
		k.sweep(eNow)
		sh.mu.Lock()
		s = k.findOrInsert(sh, kb, h, eNow)
	}
	if s == nil {
		sh.mu.Unlock()
		k.overflow.Add(1)
		return k.overflowBucket.reserve(eNow, eAt, n, maxWait)
	}
	r, ok := s.b.reserve(eNow, eAt, n, maxWait)
	sh.mu.Unlock()
	return r, ok
}

// findOrInsert returns kb's slot in sh (locked), adding one if there is none, after dropping idle
// buckets of sh if the limiter is full. It returns nil when there is still no room.
func (k *Keyed) findOrInsert(sh *shard, kb []byte, h uint64, e int64) *slot {
	if i := sh.find(h, kb); i >= 0 {
		return sh.tab[i].s
	}
	if !k.claim() {
		k.reclaim(sh, k.p.ticks(e))
		if !k.claim() {
			return nil
		}
	}
	s := &slot{b: Bucket{p: k.p}, key: string(kb)}
	sh.add(h, s)
	k.keyBytes.Add(int64(len(s.key)))
	return s
}

// claim counts one more bucket if that stays within maxKeys.
func (k *Keyed) claim() bool {
	for {
		c := k.count.Load()
		if c >= k.maxKeys {
			return false
		}
		if k.count.CompareAndSwap(c, c+1) {
			return true
		}
	}
}

// reclaim moves sh's clock hand over up to reclaimScan buckets, dropping the idle ones.
func (k *Keyed) reclaim(sh *shard, v int64) {
	if sh.n == 0 {
		return
	}
	mask := len(sh.tab) - 1
	for seen := 0; seen < reclaimScan; {
		sh.hand &= mask
		s := sh.tab[sh.hand].s
		if s == nil {
			sh.hand++
			continue
		}
		seen++
		if k.idle(s, v) {
			k.remove(sh, sh.hand) // another entry may have moved into hand: look at it next
			if sh.n == 0 {
				return
			}
			continue
		}
		sh.hand++
	}
}

// idle reports whether s's bucket has been full for IdleGrace at tick v. The caller holds the
// shard's write lock, so no take is in flight on it.
func (k *Keyed) idle(s *slot, v int64) bool {
	return s.b.tat.Load() <= v-k.graceTicks
}

// remove drops the bucket at index i of sh (locked). A reservation still pointing at the bucket
// may refund it later; that refund lands on the dropped bucket and is harmless, as it was full.
func (k *Keyed) remove(sh *shard, i int) {
	s := sh.tab[i].s
	sh.del(i)
	k.count.Add(-1)
	k.keyBytes.Add(-int64(len(s.key)))
}
