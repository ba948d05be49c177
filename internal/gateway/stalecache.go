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

package gateway

import (
	"bytes"
	"hash/maphash"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"resilience.dev/operator/internal/patterns/stalecache"
)

// serveStale returns the stored response to a GET the breaker refused, if serveStale is on and one
// is fresh enough, and marks it as the stale response of the exchange.
func (s *breakerStage) serveStale(x *exchange, t *try) *http.Response {
	r := x.in
	if s.staleFor <= 0 || r.Method != http.MethodGet || x.upgrade || !storableRequest(r) { // a 200 is no 101
		return nil
	}
	e, ok := s.g.stale.Lookup(t.now, s.staleKey+r.URL.RequestURI(), r.Header.Get, s.staleFor)
	if !ok {
		return nil
	}
	s.staleServed.Inc()
	resp := staleResponse(e, t.now)
	x.staleResp.Store(resp)
	return resp
}

// storableRequest reports whether a request's response may be stored or served stale: never for
// requests with credentials.
func storableRequest(r *http.Request) bool {
	return len(r.Header["Authorization"]) == 0 && len(r.Header["Cookie"]) == 0
}

// storableResponse reports whether a 200 may be kept for serveStale: not with Set-Cookie, nor
// Cache-Control private or no-store.
func storableResponse(h http.Header) bool {
	if len(h["Set-Cookie"]) > 0 {
		return false
	}
	for _, v := range h["Cache-Control"] {
		for d := range strings.SplitSeq(v, ",") {
			name, _, _ := strings.Cut(d, "=")
			name = strings.TrimSpace(name)
			if strings.EqualFold(name, "private") || strings.EqualFold(name, "no-store") {
				return false
			}
		}
	}
	return true
}

// maybeStore arranges for a storable 200 to GET to be kept once its body has been read whole.
func (s *breakerStage) maybeStore(x *exchange, t *try, resp *http.Response) {
	r := x.in
	if r.Method != http.MethodGet || resp.StatusCode != http.StatusOK || !storableRequest(r) ||
		!storableResponse(resp.Header) || resp.ContentLength > int64(s.g.maxStale) {
		return
	}
	names, ok := stalecache.ParseVary(resp.Header.Values("Vary"))
	if !ok {
		return
	}
	var pairs []string
	for k, vv := range resp.Header {
		if isHopByHop(k) || isResilienceHeader(k) || k == "Age" {
			continue
		}
		for _, v := range vv {
			pairs = append(pairs, k, v)
		}
	}
	key, at, cache, get := s.staleKey+r.URL.RequestURI(), t.end, s.g.stale, r.Header.Get
	tb := &teeBody{rc: resp.Body, max: s.g.maxStale}
	if resp.ContentLength > 0 {
		tb.buf = make([]byte, 0, resp.ContentLength)
	}
	tb.done = func(body []byte) {
		cache.Store(at, key, names, get, stalecache.Entry{Header: pairs, Body: body})
	}
	resp.Body = tb
}

// teeBody keeps a copy of a body of at most max bytes and hands it to done at EOF.
type teeBody struct {
	rc   io.ReadCloser
	buf  []byte
	max  int
	over bool
	done func([]byte)
}

func (b *teeBody) Read(p []byte) (int, error) {
	n, err := b.rc.Read(p)
	if !b.over {
		if len(b.buf)+n > b.max {
			b.over, b.buf = true, nil
		} else {
			b.buf = append(b.buf, p[:n]...)
		}
	}
	if err == io.EOF && !b.over && b.done != nil {
		b.done(b.buf)
		b.done = nil
	}
	return n, err
}

func (b *teeBody) Close() error { return b.rc.Close() }

// staleShards spreads the stale responses over several byte-bounded caches by primary key (policy
// state key and URL), so that storing a response takes no lock shared by every request. A primary
// key and its Vary record always live in the same shard. The bound is the sum of the shards'.
type staleShards struct {
	seed       maphash.Seed
	shards     []*stalecache.Cache
	shardBytes int64
}

func newStaleShards(total int64) (*staleShards, error) {
	n := 1
	if total >= 16<<20 {
		n = 16
	}
	s := &staleShards{seed: maphash.MakeSeed(), shardBytes: total / int64(n)}
	for range n {
		c, err := stalecache.New(s.shardBytes)
		if err != nil {
			return nil, err
		}
		s.shards = append(s.shards, c)
	}
	return s, nil
}

func (s *staleShards) shard(primary string) *stalecache.Cache {
	if len(s.shards) == 1 {
		return s.shards[0]
	}
	return s.shards[maphash.String(s.seed, primary)%uint64(len(s.shards))]
}

// Store is stalecache.Cache.Store on primary's shard.
func (s *staleShards) Store(now time.Time, primary string, vary []string, value func(string) string, e stalecache.Entry) bool {
	return s.shard(primary).Store(now, primary, vary, value, e)
}

// Lookup is stalecache.Cache.Lookup on primary's shard.
func (s *staleShards) Lookup(now time.Time, primary string, value func(string) string, maxAge time.Duration) (stalecache.Entry, bool) {
	return s.shard(primary).Lookup(now, primary, value, maxAge)
}

// staleResponse rebuilds a stored response; decorate adds X-Resilience-Stale.
func staleResponse(e stalecache.Entry, now time.Time) *http.Response {
	h := make(http.Header, len(e.Header)/2+1)
	for i := 0; i+1 < len(e.Header); i += 2 {
		h[e.Header[i]] = append(h[e.Header[i]], e.Header[i+1])
	}
	h["Age"] = []string{strconv.FormatInt(int64(max(now.Sub(e.StoredAt), 0)/time.Second), 10)}
	return &http.Response{
		Status: "200 OK", StatusCode: http.StatusOK, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: h, Body: io.NopCloser(bytes.NewReader(e.Body)), ContentLength: int64(len(e.Body)),
	}
}
