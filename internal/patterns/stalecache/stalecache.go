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

// Package stalecache keeps the last good response per key, bounded in bytes, so that a circuit
// breaker can serve it (stale) while the target is failing.
//
// It is a byte-bounded LRU: Put and Get hits count as uses, and when a Put would exceed the byte cap
// the least recently used items are evicted first; an entry larger than the cap is refused. Entries
// remember when they were stored, and Get(now, key, maxAge) returns only those younger than maxAge,
// dropping the ones it finds expired. All methods take one mutex: the cache sits on the store and
// serve-stale paths only, and what a Put costs is dominated by the caller copying the body.
//
// Vary. Store and Lookup key a response by its primary key (say policy UID + URL) and by the
// request's values of the headers the response's Vary names. The cache remembers the Vary names of
// the latest response stored under each primary key, so Lookup can pick the variant that matches a
// new request:
//
//	names, ok := stalecache.ParseVary(resp.Header.Values("Vary"))
//	if ok { c.Store(now, primary, names, req.Header.Get, entry) }   // ok is false for Vary: *
//	...
//	e, ok := c.Lookup(now, primary, req.Header.Get, maxAge)
//
// The caller decides what may be stored (no Authorization or Cookie on the request, no Set-Cookie,
// Cache-Control private or no-store on the response). Put and Get use plain keys in a namespace of
// their own, apart from Store and Lookup.
package stalecache

import (
	"encoding/binary"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"
)

// Entry is a stored response. The cache keeps the slices given to Put or Store and hands the same
// slices to every Get or Lookup: neither side may modify them afterwards.
type Entry struct {
	// Header holds name/value pairs: Header[2i] is a name, Header[2i+1] its value.
	Header []string
	Body   []byte
	// StoredAt is set by Put and Store to the time they were given.
	StoredAt time.Time
}

// Overheads charged on top of the strings and bytes an item holds, for the item, its map slot and
// string headers, so that the byte cap bounds memory even for many small items.
const (
	ItemOverhead   = 160
	StringOverhead = 16
)

// Size is what an entry stored under key counts against the cap.
func Size(key string, e Entry) int64 {
	n := int64(ItemOverhead + len(key) + len(e.Body) + StringOverhead*len(e.Header))
	for _, h := range e.Header {
		n += int64(len(h))
	}
	return n
}

type kind uint8

const (
	plain   kind = iota // Put/Get
	variant             // Store/Lookup entries, keyed by variantKey
	vary                // Vary names per primary key, in item.e.Header
)

type item struct {
	kind       kind
	key        string
	e          Entry
	size       int64
	prev, next *item // towards the most / least recently used
}

// Cache is a byte-bounded LRU store of entries. It is safe for concurrent use.
type Cache struct {
	mu         sync.Mutex
	max, used  int64
	maps       [3]map[string]*item // by kind
	head, tail *item               // most and least recently used
}

// New returns a Cache holding at most maxBytes (as counted by Size).
func New(maxBytes int64) (*Cache, error) {
	if maxBytes <= 0 {
		return nil, fmt.Errorf("stalecache: maxBytes %d must be positive", maxBytes)
	}
	c := &Cache{max: maxBytes}
	for i := range c.maps {
		c.maps[i] = map[string]*item{}
	}
	return c, nil
}

// MaxBytes returns the cap given to New.
func (c *Cache) MaxBytes() int64 { return c.max }

// Put stores e under key with StoredAt = now, replacing any entry there, and reports whether it was
// stored. An entry larger than the cap is refused, and the entry it would have replaced is dropped
// (it is no longer the latest response).
func (c *Cache) Put(now time.Time, key string, e Entry) bool {
	e.StoredAt = now
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.put(plain, key, e)
}

// Get returns the entry under key if it is younger than maxAge at now (now - StoredAt < maxAge);
// an entry that old or older is dropped. A hit counts as a use.
func (c *Cache) Get(now time.Time, key string, maxAge time.Duration) (Entry, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.fresh(c.maps[plain][key], now, maxAge)
}

// Delete drops the entry under key, if any.
func (c *Cache) Delete(key string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if it := c.maps[plain][key]; it != nil {
		c.drop(it)
	}
}

// Store saves e (StoredAt = now) as the response for primary to a request whose values for the
// headers named in varyNames are given by value, and records varyNames (as returned by ParseVary)
// as primary's Vary, replacing the names recorded before (variants stored under other names become
// unreachable and age out of the LRU). It reports whether the entry is held. value must not be nil
// when varyNames is not empty; net/http's Header.Get fits, as the names are lower-cased tokens.
func (c *Cache) Store(now time.Time, primary string, varyNames []string, value func(name string) string, e Entry) bool {
	e.StoredAt = now
	var buf [256]byte
	key := string(variantKey(buf[:0], primary, varyNames, value))
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.put(variant, key, e) {
		return false
	}
	// After the entry, so that the record is the more recently used of the two.
	if rec := c.maps[vary][primary]; rec != nil && slices.Equal(rec.e.Header, varyNames) {
		rec.e.StoredAt = now
		c.touch(rec)
		return true
	}
	// Storing the record may evict the entry in a cache too small for both.
	return c.put(vary, primary, Entry{Header: slices.Clone(varyNames), StoredAt: now}) && c.maps[variant][key] != nil
}

// Lookup returns the response stored for primary whose Vary'd request headers match value, if it is
// younger than maxAge, like Get. value must not be nil (a request's Header.Get, say).
func (c *Cache) Lookup(now time.Time, primary string, value func(name string) string, maxAge time.Duration) (Entry, bool) {
	var buf [256]byte
	c.mu.Lock()
	defer c.mu.Unlock()
	rec := c.maps[vary][primary]
	if rec == nil {
		return Entry{}, false
	}
	c.touch(rec)
	key := variantKey(buf[:0], primary, rec.e.Header, value)
	return c.fresh(c.maps[variant][string(key)], now, maxAge) // string(key) in a map index does not allocate
}

// Len returns the number of items held (entries and Vary records).
func (c *Cache) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.maps[plain]) + len(c.maps[variant]) + len(c.maps[vary])
}

// Bytes returns the bytes held, as counted by Size; it never exceeds MaxBytes.
func (c *Cache) Bytes() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.used
}

// fresh returns it's entry if it is younger than maxAge, and drops it otherwise.
func (c *Cache) fresh(it *item, now time.Time, maxAge time.Duration) (Entry, bool) {
	if it == nil {
		return Entry{}, false
	}
	if now.Sub(it.e.StoredAt) >= maxAge {
		c.drop(it)
		return Entry{}, false
	}
	c.touch(it)
	return it.e, true
}

func (c *Cache) put(k kind, key string, e Entry) bool {
	size := Size(key, e)
	it := c.maps[k][key]
	if size > c.max {
		if it != nil {
			c.drop(it)
		}
		return false
	}
	if it != nil { // replace in place: no allocation on the common re-store of a known key
		c.used += size - it.size
		it.e, it.size = e, size
		c.touch(it)
	} else {
		it = &item{kind: k, key: key, e: e, size: size}
		c.maps[k][key] = it
		c.used += size
		c.pushFront(it)
	}
	// it is the most recently used and fits alone, so eviction stops before reaching it.
	for c.used > c.max {
		c.drop(c.tail)
	}
	return true
}

func (c *Cache) drop(it *item) {
	delete(c.maps[it.kind], it.key)
	c.used -= it.size
	c.unlink(it)
}

func (c *Cache) touch(it *item) {
	if c.head != it {
		c.unlink(it)
		c.pushFront(it)
	}
}

func (c *Cache) pushFront(it *item) {
	it.prev, it.next = nil, c.head
	if c.head != nil {
		c.head.prev = it
	} else {
		c.tail = it
	}
	c.head = it
}

func (c *Cache) unlink(it *item) {
	if it.prev != nil {
		it.prev.next = it.next
	} else {
		c.head = it.next
	}
	if it.next != nil {
		it.next.prev = it.prev
	} else {
		c.tail = it.prev
	}
	it.prev, it.next = nil, nil
}

// variantKey appends to dst an encoding of primary and, for each name, the request's value. Each
// part is prefixed by its length, so distinct inputs never share a key.
func variantKey(dst []byte, primary string, names []string, value func(string) string) []byte {
	dst = appendPart(dst, primary)
	for _, n := range names {
		dst = appendPart(dst, n)
		dst = appendPart(dst, value(n))
	}
	return dst
}

func appendPart(dst []byte, s string) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(s)))
	return append(dst, s...)
}

// ParseVary reads the values of a response's Vary header fields (RFC 9110 12.5.5) into the header
// names a stored response varies on: lower-cased, without duplicates, sorted. ok is false when the
// response must not be stored: Vary contains "*" or something that is not a header name.
func ParseVary(values []string) (names []string, ok bool) {
	for _, v := range values {
		for f := range strings.SplitSeq(v, ",") {
			f = strings.Trim(f, " \t")
			if f == "" {
				continue
			}
			if f == "*" || !isToken(f) {
				return nil, false
			}
			names = append(names, strings.ToLower(f))
		}
	}
	slices.Sort(names)
	return slices.Compact(names), true
}

// isToken reports whether s is an RFC 9110 token (the syntax of a field name).
func isToken(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0:
		default:
			return false
		}
	}
	return true
}
