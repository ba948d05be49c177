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
	"testing"
	"time"
)

const benchKeys = 1024

// benchCache holds benchKeys entries of 1 KiB under plain keys and under Store/Lookup with a Vary.
func benchCache(b *testing.B) (*Cache, []string) {
	c := mustNew(b, 64<<20)
	keys := make([]string, benchKeys)
	for i := range keys {
		keys[i] = fmt.Sprintf("policy-uid/GET http://svc.ns/items/%d", i)
		e := Entry{Header: []string{"Content-Type", "application/json"}, Body: make([]byte, 1024)}
		c.Put(t0, keys[i], e)
		c.Store(t0, keys[i], []string{"accept-encoding"}, benchHeaders.get, e)
	}
	return c, keys
}

var benchHeaders = headers{"accept-encoding": "gzip"}

func BenchmarkGetHit(b *testing.B) {
	b.Run("ours", func(b *testing.B) {
		c, keys := benchCache(b)
		now := t0.Add(time.Second)
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			if _, ok := c.Get(now, keys[i%benchKeys], time.Minute); !ok {
				b.Fatal("miss")
			}
			i++
		}
	})
}

func BenchmarkGetHitParallel(b *testing.B) {
	b.Run("ours", func(b *testing.B) {
		c, keys := benchCache(b)
		now := t0.Add(time.Second)
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			i := 0
			for pb.Next() {
				if _, ok := c.Get(now, keys[i%benchKeys], time.Minute); !ok {
					b.Error("miss")
					return
				}
				i++
			}
		})
	})
}

func BenchmarkGetMiss(b *testing.B) {
	b.Run("ours", func(b *testing.B) {
		c, _ := benchCache(b)
		now := t0.Add(time.Second)
		b.ReportAllocs()
		for b.Loop() {
			if _, ok := c.Get(now, "policy-uid/GET http://svc.ns/absent", time.Minute); ok {
				b.Fatal("hit")
			}
		}
	})
}

func BenchmarkGetMissParallel(b *testing.B) {
	b.Run("ours", func(b *testing.B) {
		c, _ := benchCache(b)
		now := t0.Add(time.Second)
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, ok := c.Get(now, "policy-uid/GET http://svc.ns/absent", time.Minute); ok {
					b.Error("hit")
					return
				}
			}
		})
	})
}

func BenchmarkLookupHit(b *testing.B) {
	b.Run("ours", func(b *testing.B) {
		c, keys := benchCache(b)
		now := t0.Add(time.Second)
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			if _, ok := c.Lookup(now, keys[i%benchKeys], benchHeaders.get, time.Minute); !ok {
				b.Fatal("miss")
			}
			i++
		}
	})
}

func BenchmarkLookupHitParallel(b *testing.B) {
	b.Run("ours", func(b *testing.B) {
		c, keys := benchCache(b)
		now := t0.Add(time.Second)
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			i := 0
			for pb.Next() {
				if _, ok := c.Lookup(now, keys[i%benchKeys], benchHeaders.get, time.Minute); !ok {
					b.Error("miss")
					return
				}
				i++
			}
		})
	})
}

// Put replaces an existing entry: the store path for a URL seen before.
func BenchmarkPut(b *testing.B) {
	b.Run("ours", func(b *testing.B) {
		c, keys := benchCache(b)
		e := Entry{Header: []string{"Content-Type", "application/json"}, Body: make([]byte, 1024)}
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			c.Put(t0, keys[i%benchKeys], e)
			i++
		}
	})
}

func BenchmarkPutParallel(b *testing.B) {
	b.Run("ours", func(b *testing.B) {
		c, keys := benchCache(b)
		e := Entry{Header: []string{"Content-Type", "application/json"}, Body: make([]byte, 1024)}
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			i := 0
			for pb.Next() {
				c.Put(t0, keys[i%benchKeys], e)
				i++
			}
		})
	})
}
