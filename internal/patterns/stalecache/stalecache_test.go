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

package stalecache

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

func mustNew(t testing.TB, maxBytes int64) *Cache {
	t.Helper()
	c, err := New(maxBytes)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// sized returns an entry whose Size under a one-byte key is exactly size.
func sized(size int) Entry { return Entry{Body: make([]byte, size-ItemOverhead-1)} }

// check verifies the internal invariants: list and maps agree, bytes add up, cap respected.
func (c *Cache) check() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	var n int
	var sum int64
	var prev *item
	for it := c.head; it != nil; it = it.next {
		if it.prev != prev {
			return fmt.Errorf("broken back link at %q", it.key)
		}
		if c.maps[it.kind][it.key] != it {
			return fmt.Errorf("item %q not in its map", it.key)
		}
		n++
		sum += it.size
		prev = it
	}
	if prev != c.tail {
		return fmt.Errorf("tail is not the last item")
	}
	if m := len(c.maps[0]) + len(c.maps[1]) + len(c.maps[2]); m != n {
		return fmt.Errorf("%d items listed, %d in maps", n, m)
	}
	if sum != c.used || c.used > c.max {
		return fmt.Errorf("used %d, items add up to %d, max %d", c.used, sum, c.max)
	}
	return nil
}

func TestNew(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		desc string
		max  int64
		ok   bool
	}{
		{desc: "positive", max: 1, ok: true},
		{desc: "zero", max: 0},
		{desc: "negative", max: -5},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			if _, err := New(tc.max); (err == nil) != tc.ok {
				t.Errorf("New(%d) error = %v, want ok=%v", tc.max, err, tc.ok)
			}
		})
	}
}

func TestSize(t *testing.T) {
	t.Parallel()
	e := Entry{Header: []string{"Content-Type", "text/plain"}, Body: []byte("hello")}
	want := int64(ItemOverhead + len("key") + 5 + 2*StringOverhead + len("Content-Type") + len("text/plain"))
	if got := Size("key", e); got != want {
		t.Errorf("Size = %d, want %d", got, want)
	}
}

func TestLRUEvictionByBytes(t *testing.T) {
	t.Parallel()
	type op struct {
		get  bool
		key  string
		size int // for puts
	}
	for _, tc := range []struct {
		desc      string
		max       int64
		ops       []op
		want      []string // keys held, most recently used first
		wantBytes int64
	}{
		{desc: "fits exactly", max: 600,
			ops:  []op{{key: "a", size: 200}, {key: "b", size: 200}, {key: "c", size: 200}},
			want: []string{"c", "b", "a"}, wantBytes: 600},
		{desc: "evicts the least recently put", max: 600,
			ops:  []op{{key: "a", size: 200}, {key: "b", size: 200}, {key: "c", size: 200}, {key: "d", size: 200}},
			want: []string{"d", "c", "b"}, wantBytes: 600},
		{desc: "a get counts as a use", max: 600,
			ops:  []op{{key: "a", size: 200}, {key: "b", size: 200}, {key: "c", size: 200}, {get: true, key: "a"}, {key: "d", size: 200}},
			want: []string{"d", "a", "c"}, wantBytes: 600},
		{desc: "a large entry evicts several", max: 600,
			ops:  []op{{key: "a", size: 200}, {key: "b", size: 200}, {key: "c", size: 200}, {get: true, key: "a"}, {key: "e", size: 400}},
			want: []string{"e", "a"}, wantBytes: 600},
		{desc: "replacing re-counts bytes and refreshes", max: 600,
			ops:  []op{{key: "a", size: 200}, {key: "b", size: 200}, {key: "a", size: 300}, {key: "c", size: 200}},
			want: []string{"c", "a"}, wantBytes: 500},
		{desc: "a miss changes nothing", max: 600,
			ops:  []op{{key: "a", size: 200}, {key: "b", size: 200}, {get: true, key: "z"}, {key: "c", size: 300}},
			want: []string{"c", "b"}, wantBytes: 500},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			c := mustNew(t, tc.max)
			for _, o := range tc.ops {
				if o.get {
					c.Get(t0, o.key, time.Hour)
					continue
				}
				if !c.Put(t0, o.key, sized(o.size)) {
					t.Fatalf("Put(%s, %d) refused", o.key, o.size)
				}
				if err := c.check(); err != nil {
					t.Fatal(err)
				}
			}
			var got []string
			for it := c.head; it != nil; it = it.next {
				got = append(got, it.key)
			}
			if !slices.Equal(got, tc.want) || c.Bytes() != tc.wantBytes {
				t.Errorf("held %q (%d bytes), want %q (%d bytes)", got, c.Bytes(), tc.want, tc.wantBytes)
			}
			for _, k := range tc.want {
				if _, ok := c.Get(t0, k, time.Hour); !ok {
					t.Errorf("Get(%s) missed", k)
				}
			}
		})
	}
}

func TestExpiryExact(t *testing.T) {
	t.Parallel()
	const maxAge = 30 * time.Second
	for _, tc := range []struct {
		desc string
		at   time.Time
		hit  bool
	}{
		{desc: "at store time", at: t0, hit: true},
		{desc: "1ns before maxAge", at: t0.Add(maxAge - time.Nanosecond), hit: true},
		{desc: "at maxAge", at: t0.Add(maxAge)},
		{desc: "long after", at: t0.Add(time.Hour)},
		{desc: "clock behind the store time", at: t0.Add(-time.Second), hit: true},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			c := mustNew(t, 1<<20)
			c.Put(t0, "k", Entry{Body: []byte("v")})
			e, ok := c.Get(tc.at, "k", maxAge)
			if ok != tc.hit {
				t.Fatalf("Get at %v: hit %v, want %v", tc.at.Sub(t0), ok, tc.hit)
			}
			if ok && (!e.StoredAt.Equal(t0) || string(e.Body) != "v") {
				t.Errorf("got %+v", e)
			}
			if wantLen := map[bool]int{true: 1, false: 0}[tc.hit]; c.Len() != wantLen || (c.Bytes() == 0) != !tc.hit {
				t.Errorf("after Get: Len %d Bytes %d; an expired entry must be dropped, a fresh one kept", c.Len(), c.Bytes())
			}
		})
	}
}

func TestOversizeRefused(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		desc    string
		size    int
		prior   bool // an entry is already under the key
		wantOK  bool
		wantLen int
	}{
		{desc: "exactly the cap", size: 500, wantOK: true, wantLen: 1},
		{desc: "one byte over", size: 501},
		{desc: "over the cap drops the entry it would replace", size: 501, prior: true},
		{desc: "within the cap replaces", size: 300, prior: true, wantOK: true, wantLen: 1},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			c := mustNew(t, 500)
			if tc.prior {
				c.Put(t0, "k", sized(200))
			}
			if ok := c.Put(t0, "k", sized(tc.size)); ok != tc.wantOK {
				t.Fatalf("Put = %v, want %v", ok, tc.wantOK)
			}
			if c.Len() != tc.wantLen {
				t.Errorf("Len = %d, want %d", c.Len(), tc.wantLen)
			}
			if err := c.check(); err != nil {
				t.Error(err)
			}
		})
	}
}

func TestDelete(t *testing.T) {
	t.Parallel()
	c := mustNew(t, 1<<20)
	c.Put(t0, "a", Entry{Body: []byte("x")})
	c.Delete("a")
	c.Delete("missing")
	if _, ok := c.Get(t0, "a", time.Hour); ok || c.Len() != 0 || c.Bytes() != 0 {
		t.Errorf("after Delete: hit %v, Len %d, Bytes %d", ok, c.Len(), c.Bytes())
	}
}

// headers is a request's headers, looked up by lower-case name.
type headers map[string]string

func (h headers) get(name string) string { return h[name] }

func TestStoreLookupVary(t *testing.T) {
	t.Parallel()
	gzip, br, none := headers{"accept-encoding": "gzip"}, headers{"accept-encoding": "br"}, headers{}
	type step struct {
		store   bool
		names   []string // for stores
		req     headers
		body    string // stored, or wanted from a lookup ("" = miss)
		primary string // default "u"
	}
	for _, tc := range []struct {
		desc  string
		steps []step
	}{
		{desc: "no Vary: any request matches", steps: []step{
			{store: true, req: gzip, body: "plain"},
			{req: br, body: "plain"},
			{req: none, body: "plain"},
		}},
		{desc: "unknown primary misses", steps: []step{
			{store: true, req: gzip, body: "plain"},
			{primary: "other", req: gzip},
		}},
		{desc: "Vary picks the variant", steps: []step{
			{store: true, names: []string{"accept-encoding"}, req: gzip, body: "gz"},
			{req: gzip, body: "gz"},
			{req: br},
			{req: none},
			{store: true, names: []string{"accept-encoding"}, req: br, body: "br"},
			{req: br, body: "br"},
			{req: gzip, body: "gz"},
		}},
		{desc: "an absent header is its own variant", steps: []step{
			{store: true, names: []string{"accept-encoding"}, req: none, body: "id"},
			{req: gzip},
			{req: none, body: "id"},
		}},
		{desc: "the latest Vary names rule", steps: []step{
			{store: true, names: []string{"accept-encoding"}, req: gzip, body: "gz"},
			{store: true, req: br, body: "plain"},
			{req: gzip, body: "plain"},
		}},
		{desc: "several names", steps: []step{
			{store: true, names: []string{"accept-encoding", "accept-language"}, req: headers{"accept-encoding": "gzip", "accept-language": "fr"}, body: "gz-fr"},
			{req: headers{"accept-encoding": "gzip", "accept-language": "fr"}, body: "gz-fr"},
			{req: headers{"accept-encoding": "gzip", "accept-language": "de"}},
			{req: headers{"accept-encoding": "gzipfr"}},
		}},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			c := mustNew(t, 1<<20)
			for i, s := range tc.steps {
				p := s.primary
				if p == "" {
					p = "u"
				}
				if s.store {
					if !c.Store(t0, p, s.names, s.req.get, Entry{Body: []byte(s.body)}) {
						t.Fatalf("step %d: Store refused", i)
					}
					continue
				}
				e, ok := c.Lookup(t0.Add(time.Second), p, s.req.get, time.Minute)
				if got := string(e.Body); ok != (s.body != "") || got != s.body {
					t.Fatalf("step %d: Lookup(%v) = %q, %v; want %q", i, s.req, got, ok, s.body)
				}
			}
			if err := c.check(); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestLookupExpiry(t *testing.T) {
	t.Parallel()
	c := mustNew(t, 1<<20)
	h := headers{"accept": "json"}
	c.Store(t0, "u", []string{"accept"}, h.get, Entry{Body: []byte("x")})
	if _, ok := c.Lookup(t0.Add(time.Minute-1), "u", h.get, time.Minute); !ok {
		t.Fatal("missed before maxAge")
	}
	if _, ok := c.Lookup(t0.Add(time.Minute), "u", h.get, time.Minute); ok {
		t.Fatal("hit at maxAge")
	}
	if n := len(c.maps[variant]); n != 0 {
		t.Fatalf("%d expired variants kept", n)
	}
}

func TestNamespacesApart(t *testing.T) {
	t.Parallel()
	c := mustNew(t, 1<<20)
	c.Put(t0, "u", Entry{Body: []byte("put")})
	c.Store(t0, "u", nil, nil, Entry{Body: []byte("store")})
	if e, _ := c.Get(t0, "u", time.Hour); string(e.Body) != "put" {
		t.Errorf("Get = %q, want put", e.Body)
	}
	if e, _ := c.Lookup(t0, "u", headers{}.get, time.Hour); string(e.Body) != "store" {
		t.Errorf("Lookup = %q, want store", e.Body)
	}
}

func TestStoreInTinyCache(t *testing.T) {
	t.Parallel()
	e := Entry{Body: make([]byte, 100)}
	key := string(variantKey(nil, "u", nil, nil))
	// Room for the entry but not for the entry and its Vary record: Store must not claim success.
	c := mustNew(t, Size(key, e)+ItemOverhead)
	if c.Store(t0, "u", nil, nil, e) {
		t.Error("Store reported success though the entry was evicted by its own Vary record")
	}
	if err := c.check(); err != nil {
		t.Error(err)
	}
}

func TestVariantKeyInjective(t *testing.T) {
	t.Parallel()
	type in struct {
		primary string
		names   []string
		values  headers
	}
	for _, tc := range []struct {
		desc string
		a, b in
	}{
		{desc: "value spills into the next name",
			a: in{"u", []string{"a", "b"}, headers{"a": "x", "b": "y"}},
			b: in{"u", []string{"a", "b"}, headers{"a": "x\x01b\x01y", "b": ""}}},
		{desc: "primary absorbs a name",
			a: in{"u", []string{"a"}, headers{"a": "x"}},
			b: in{"u\x01a", nil, nil}},
		{desc: "empty value vs no name",
			a: in{"u", []string{"a"}, headers{}},
			b: in{"u", nil, nil}},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			ka := string(variantKey(nil, tc.a.primary, tc.a.names, tc.a.values.get))
			kb := string(variantKey(nil, tc.b.primary, tc.b.names, tc.b.values.get))
			if ka == kb {
				t.Errorf("distinct inputs share the key %q", ka)
			}
		})
	}
}

func FuzzVariantKey(f *testing.F) {
	f.Add("u", "a", "x", "u", "a", "x")
	f.Add("u", "a", "x\x01b", "u\x01", "a", "x")
	f.Fuzz(func(t *testing.T, p1, n1, v1, p2, n2, v2 string) {
		k1 := string(variantKey(nil, p1, []string{n1}, func(string) string { return v1 }))
		k2 := string(variantKey(nil, p2, []string{n2}, func(string) string { return v2 }))
		if (k1 == k2) != (p1 == p2 && n1 == n2 && v1 == v2) {
			t.Errorf("(%q %q %q) and (%q %q %q): keys equal %v", p1, n1, v1, p2, n2, v2, k1 == k2)
		}
	})
}

func TestParseVary(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		desc   string
		values []string
		want   []string
		ok     bool
	}{
		{desc: "none", ok: true},
		{desc: "empty values", values: []string{"", " , "}, ok: true},
		{desc: "one", values: []string{"Accept-Encoding"}, want: []string{"accept-encoding"}, ok: true},
		{desc: "list, spaces, case, duplicates, several fields",
			values: []string{"Accept-Encoding,  accept-language\t", "ACCEPT-ENCODING, Origin"},
			want:   []string{"accept-encoding", "accept-language", "origin"}, ok: true},
		{desc: "star", values: []string{"Accept, *"}},
		{desc: "not a token", values: []string{"Accept Encoding"}},
		{desc: "quoted", values: []string{`"Accept"`}},
		{desc: "non-ASCII", values: []string{"Accépt"}},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			got, ok := ParseVary(tc.values)
			if ok != tc.ok || !slices.Equal(got, tc.want) {
				t.Errorf("ParseVary(%q) = %q, %v; want %q, %v", tc.values, got, ok, tc.want, tc.ok)
			}
		})
	}
}

func FuzzParseVary(f *testing.F) {
	for _, s := range []string{"", "Accept-Encoding", "a, B ,a", "*", "x,\t*", "\"q\"", "Ä", ",,,"} {
		f.Add(s, "Origin")
	}
	f.Fuzz(func(t *testing.T, v1, v2 string) {
		names, ok := ParseVary([]string{v1, v2})
		if !ok {
			if names != nil {
				t.Fatalf("refused but returned %q", names)
			}
			return
		}
		if !slices.IsSorted(names) || len(slices.Compact(slices.Clone(names))) != len(names) {
			t.Fatalf("names %q not sorted and unique", names)
		}
		for _, n := range names {
			if n == "" || !isToken(n) || n != strings.ToLower(n) || n == "*" {
				t.Fatalf("bad name %q", n)
			}
		}
		// Parsing the result again gives the same names.
		again, ok := ParseVary([]string{strings.Join(names, ", ")})
		if !ok || !slices.Equal(again, names) {
			t.Fatalf("re-parse of %q = %q, %v", names, again, ok)
		}
	})
}

// TestHammer mixes every operation from 64 goroutines under a small cap and checks after each
// operation that the cap holds, and at the end that the internal structure is consistent.
func TestHammer(t *testing.T) {
	t.Parallel()
	const workers, rounds, max = 64, 500, 20_000
	c := mustNew(t, max)
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(w), 3))
			for i := range rounds {
				key := fmt.Sprint(rng.IntN(64))
				now := t0.Add(time.Duration(i) * time.Millisecond)
				h := headers{"accept": fmt.Sprint(rng.IntN(3))}
				switch rng.IntN(6) {
				case 0:
					c.Put(now, key, Entry{Header: []string{"k", "v"}, Body: make([]byte, rng.IntN(3000))})
				case 1:
					if e, ok := c.Get(now, key, 100*time.Millisecond); ok && now.Sub(e.StoredAt) >= 100*time.Millisecond {
						errs <- fmt.Errorf("Get returned an entry aged %v", now.Sub(e.StoredAt))
						return
					}
				case 2:
					c.Delete(key)
				case 3:
					c.Store(now, key, []string{"accept"}, h.get, Entry{Body: make([]byte, rng.IntN(3000))})
				case 4:
					c.Lookup(now, key, h.get, 100*time.Millisecond)
				default:
					c.Put(now, key, Entry{Body: make([]byte, max)}) // always refused
				}
				if b := c.Bytes(); b > max {
					errs <- fmt.Errorf("%d bytes held, cap %d", b, max)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if err := c.check(); err != nil {
		t.Fatal(err)
	}
	if c.Len() == 0 {
		t.Fatal("the hammer left nothing stored: it tested nothing")
	}
}
