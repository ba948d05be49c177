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
	"context"
	"encoding/binary"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"resilience.dev/operator/internal/patterns/clock"
	"resilience.dev/operator/internal/patterns/ratelimit"
	"resilience.dev/operator/internal/patterns/waitqueue"
	"resilience.dev/operator/internal/snapshot"
)

// maxLimits is the most limits a RateLimit has (the CRD's maxItems).
const maxLimits = 8

// limitEntry is one limit of a RateLimit on one port: its bucket (or keyed buckets), what it matches
// and its header values, computed once per snapshot.
type limitEntry struct {
	name       string
	bucket     *ratelimit.Bucket
	keyed      *ratelimit.Keyed
	parts      []keyPart
	methods    []string
	pathPrefix string

	quotedName  string   // "name" as an sf-string
	limitValue  []string // X-RateLimit-Limit
	policyValue []string // RateLimit-Policy

	msg      string
	rejected prometheus.Counter
	dry      prometheus.Counter

	// A Global limit takes from global; bucket or keyed are then its Local fallback (onStoreError).
	global       *globalState
	onStoreError string
	storeMsg     string
}

type keyPart struct {
	clientIP bool
	header   string // canonical
}

// matches reports whether the limit applies to r: its method is listed (or none are), and its path
// is under pathPrefix by whole segments (as Gateway API's PathPrefix: "/orders" matches "/orders"
// and "/orders/7", not "/ordersx").
func (l *limitEntry) matches(r *http.Request) bool {
	if len(l.methods) > 0 && !slices.Contains(l.methods, r.Method) {
		return false
	}
	return pathUnder(r.URL.Path, l.pathPrefix)
}

func pathUnder(path, prefix string) bool {
	if prefix == "" || prefix == "/" {
		return true
	}
	prefix = strings.TrimSuffix(prefix, "/")
	return strings.HasPrefix(path, prefix) && (len(path) == len(prefix) || path[len(prefix)] == '/')
}

// rateHeaders are the values of the rate-limit response headers, for the matching limit with the
// fewest tokens left.
type rateHeaders struct {
	limit     *limitEntry
	remaining int64
	reset     int64
}

// rateLimitStage takes a token from every limit matching the request, all or nothing.
type rateLimitStage struct {
	next   stage
	route  *portRoute
	limits []*limitEntry
	ip     ipResolver
	queue  *waitqueue.Queue // Delay mode
	dryRun bool
	log    *slog.Logger
	logged logThrottle
	policy string

	queueFull      prometheus.Counter
	storeDecisions prometheus.Counter // requests a Global limit decided by onStoreError
	clk            clock.Clock
}

func (g *Gateway) newRateLimitStage(next stage, pr *portRoute, rl *snapshot.RateLimit, prev, reg *registry) (stage, error) {
	if len(rl.Limits) == 0 || len(rl.Limits) > maxLimits {
		return nil, fmt.Errorf("rate limit %s: %d limits, want 1..%d", rl.Policy.Name, len(rl.Limits), maxLimits)
	}
	s := &rateLimitStage{next: next, route: pr, dryRun: rl.DryRun, log: g.log, policy: rl.Policy.Name, clk: g.clk,
		storeDecisions: g.global.onStore,
		ip:             ipResolver{v6bits: rl.IPv6PrefixLength}}
	for _, c := range rl.TrustedProxies {
		p, err := netip.ParsePrefix(c)
		if err != nil {
			return nil, fmt.Errorf("rate limit %s: trusted proxy %q: %w", rl.Policy.Name, c, err)
		}
		s.ip.trusted = append(s.ip.trusted, p.Masked())
	}
	ns, svc := pr.svc.ns, pr.svc.name
	keys := make([]string, 0, len(rl.Limits))
	for _, l := range rl.Limits {
		e, err := g.newLimitEntry(l, prev, reg)
		if err != nil {
			return nil, fmt.Errorf("rate limit %s: limit %q: %w", rl.Policy.Name, l.Name, err)
		}
		e.msg = fmt.Sprintf("rate limit %q of RateLimit %s exceeded", l.Name, rl.Policy.Name)
		e.storeMsg = fmt.Sprintf("rate limit %q of RateLimit %s: the store of Global limits is unavailable (onStoreError: Deny)", l.Name, rl.Policy.Name)
		e.rejected = g.m.rejections.WithLabelValues(ns, svc, rl.Policy.Name, l.Name, reasonRateLimited)
		e.dry = g.m.dryRun.WithLabelValues(ns, svc, rl.Policy.Name, l.Name, reasonRateLimited)
		s.limits = append(s.limits, e)
		keys = append(keys, l.StateKey)
	}
	if rl.Delay && slices.ContainsFunc(s.limits, func(e *limitEntry) bool { return e.global != nil }) {
		return nil, fmt.Errorf("rate limit %s: onExceeded Delay cannot be combined with Global limits", rl.Policy.Name)
	}
	if rl.Delay && !rl.DryRun {
		capacity := g.opts.DelayQueueCapacity
		key := fmt.Sprintf("%s|%v|%d", strings.Join(keys, ","), rl.MaxDelay.D(), capacity)
		q, err := reuse(prev.queues(), reg.queueMap, key, func() (*waitqueue.Queue, error) {
			return waitqueue.New(g.clk, capacity, rl.MaxDelay.D())
		})
		if err != nil {
			return nil, fmt.Errorf("rate limit %s: %w", rl.Policy.Name, err)
		}
		s.queue = q
		s.queueFull = g.m.rejections.WithLabelValues(ns, svc, rl.Policy.Name, "", reasonDelayQueue)
	}
	return s, nil
}

func (g *Gateway) newLimitEntry(l snapshot.Limit, prev, reg *registry) (*limitEntry, error) {
	if l.Burst > math.MaxInt32 || l.Replicas < 1 {
		return nil, fmt.Errorf("burst %d or replicas %d out of range", l.Burst, l.Replicas)
	}
	rl := ratelimit.Limit{Requests: l.Requests, Period: l.Period.D() * time.Duration(l.Replicas), Burst: int(l.Burst)}
	e := &limitEntry{name: l.Name, methods: l.Methods, pathPrefix: l.PathPrefix}
	for _, p := range l.Key {
		e.parts = append(e.parts, keyPart{clientIP: p.ClientIP, header: http.CanonicalHeaderKey(p.Header)})
	}
	// The registry key adds the parameters this gateway builds the buckets from to the compiler's
	// StateKey, so state is never reused under parameters it was not made for.
	key := fmt.Sprintf("%s|%d/%v/%d|%d|%t", l.StateKey, rl.Requests, rl.Period, rl.Burst, l.MaxKeys, len(l.Key) > 0)
	lim, err := reuse(prev.limits(), reg.limitMap, key, func() (*limitState, error) {
		if len(l.Key) > 0 {
			k, err := ratelimit.NewKeyed(rl, l.MaxKeys)
			return &limitState{keyed: k}, err
		}
		b, err := ratelimit.NewBucket(rl)
		return &limitState{bucket: b}, err
	})
	if err != nil {
		return nil, err
	}
	e.bucket, e.keyed = lim.bucket, lim.keyed
	if l.Global != nil {
		gkey := fmt.Sprintf("global|%s|%d/%v/%d|%d|%d|%t", l.Global.Bucket, l.Requests, l.Period.D(), l.Global.Burst,
			l.Replicas, l.MaxKeys, len(l.Key) > 0)
		gs, err := reuse(prev.limits(), reg.limitMap, gkey, func() (*limitState, error) {
			gs, err := g.newGlobalState(l)
			return &limitState{global: gs}, err
		})
		if err != nil {
			return nil, err
		}
		e.global, e.onStoreError = gs.global, l.Global.OnStoreError
	}
	e.quotedName = strconv.Quote(l.Name)
	e.limitValue = []string{strconv.FormatInt(l.Requests, 10)}
	w := int64(math.Ceil(l.Period.D().Seconds()))
	e.policyValue = []string{fmt.Sprintf("%s;q=%d;w=%d", e.quotedName, l.Requests, max(w, 1))}
	return e, nil
}

// matched is the limits that apply to one request: the local ones as refs for TakeAll, the Global
// ones with their key values.
type matched struct {
	refs   [maxLimits]ratelimit.Ref
	local  [maxLimits]*limitEntry
	global [maxLimits]*limitEntry
	gkeys  [maxLimits][]byte
	nl, ng int
	ip     netip.Addr
	ipSet  bool
	spans  [maxLimits][2]int
}

// match finds the limits that apply to x and builds their key values in x's key buffer.
func (s *rateLimitStage) match(x *exchange, m *matched) {
	r := x.in
	buf := x.mem.keyBuf[:0]
	var all [maxLimits]*limitEntry
	n := 0
	for _, l := range s.limits {
		if !l.matches(r) {
			continue
		}
		all[n] = l
		start := len(buf)
		if len(l.parts) > 0 {
			buf = s.appendKey(buf, r, l, m)
		}
		m.spans[n] = [2]int{start, len(buf)}
		n++
	}
	// Slices of buf are taken once it stops growing.
	for i, l := range all[:n] {
		var key []byte
		if len(l.parts) > 0 {
			key = buf[m.spans[i][0]:m.spans[i][1]]
		}
		if l.global != nil {
			m.global[m.ng], m.gkeys[m.ng] = l, key
			m.ng++
			continue
		}
		m.local[m.nl] = l
		if l.keyed != nil {
			m.refs[m.nl] = ratelimit.Ref{Keyed: l.keyed, Key: key}
		} else {
			m.refs[m.nl] = ratelimit.Ref{Bucket: l.bucket}
		}
		m.nl++
	}
}

func (s *rateLimitStage) appendKey(buf []byte, r *http.Request, l *limitEntry, m *matched) []byte {
	for _, p := range l.parts {
		if p.clientIP {
			if !m.ipSet {
				m.ip, m.ipSet = s.ip.clientIP(r), true
			}
			buf = appendIP(buf, m.ip)
			continue
		}
		var v string
		if vs := r.Header[p.header]; len(vs) > 0 {
			v = vs[0]
		}
		buf = binary.AppendUvarint(buf, uint64(len(v)))
		buf = append(buf, v...)
	}
	return buf
}

func (s *rateLimitStage) serve(ctx context.Context, x *exchange) (*http.Response, error) {
	var m matched
	s.match(x, &m)
	if m.nl+m.ng == 0 {
		return s.next.serve(ctx, x)
	}
	if s.queue != nil { // Delay mode has no Global limits (the CRD and newRateLimitStage refuse them)
		return s.delay(ctx, x, m.refs[:m.nl], m.local[:m.nl])
	}
	// Local limits first: a refusal there costs the store nothing. Then the Global ones; a refusal
	// there gives back what the local limits took (all or nothing, contract section 7).
	var rs [maxLimits]ratelimit.Reservation
	out := ratelimit.TakeAll(x.now, m.refs[:m.nl], 1, rs[:m.nl])
	if !out.OK {
		return s.refused(ctx, x, m.local[out.Refused], out.RetryAfter, false)
	}
	var gh globalHeaders
	if m.ng > 0 {
		g := s.takeGlobal(x, m.global[:m.ng], m.gkeys[:m.ng])
		if !g.ok {
			ratelimit.CancelAll(x.now, rs[:m.nl])
			return s.refused(ctx, x, m.global[g.refused], g.after, g.storeDown)
		}
		gh = g.headers
	}
	if !s.dryRun {
		s.setHeaders(x, m.local[:m.nl], rs[:m.nl], x.now, gh)
	}
	return s.next.serve(ctx, x)
}

// refused answers a request that limit l refused: 429, or in DryRun a count and a log line and the
// request goes on.
func (s *rateLimitStage) refused(ctx context.Context, x *exchange, l *limitEntry, after time.Duration, storeDown bool) (*http.Response, error) {
	if !s.dryRun {
		return nil, s.refuse(x, l, after, storeDown)
	}
	l.dry.Inc()
	if s.logged.allow(x.now) {
		s.log.Info("dry-run rate limit would have refused a request", "service", s.route.label,
			"policy", s.policy, "limit", l.name, "retryAfter", after, "storeUnavailable", storeDown)
	}
	return s.next.serve(ctx, x)
}

// delay is the Delay mode: the request waits in FIFO order until all its limits admit it, if that is
// within maxDelay and the queue has room; otherwise it is refused at once and spends nothing.
func (s *rateLimitStage) delay(ctx context.Context, x *exchange, refs []ratelimit.Ref, which []*limitEntry) (*http.Response, error) {
	tk, err := s.queue.Enter()
	if err != nil {
		s.queueFull.Inc()
		return nil, &gwError{kind: kindReject, status: http.StatusTooManyRequests,
			retryAfter: ceilSeconds(s.queue.MaxDelay()), wait: s.queue.MaxDelay(), msg: "rate limit queue of RateLimit " + s.policy + " is full"}
	}
	rs := make([]ratelimit.Reservation, len(refs))
	out := ratelimit.ReserveAll(x.now, refs, 1, s.queue.MaxDelay(), rs)
	if !out.OK {
		tk.Leave()
		return nil, s.refuse(x, which[out.Refused], out.RetryAfter, false)
	}
	release := x.now.Add(out.Wait)
	s.setHeaders(x, which, rs, release, globalHeaders{})
	if err := tk.Wait(ctx, release, func(now time.Time) { ratelimit.CancelAll(now, rs) }); err != nil {
		return nil, &gwError{kind: kindCanceled, msg: "left the rate limit queue", err: err}
	}
	if out.Wait > 0 {
		x.now = s.clk.Now()
	}
	return s.next.serve(ctx, x)
}

func (s *rateLimitStage) refuse(x *exchange, l *limitEntry, after time.Duration, storeDown bool) error {
	l.rejected.Inc()
	ra := ceilSeconds(after)
	x.rate.limit, x.rate.remaining, x.rate.reset = l, 0, ra
	msg := l.msg
	if storeDown {
		msg = l.storeMsg
	}
	return &gwError{kind: kindReject, status: http.StatusTooManyRequests, retryAfter: ra, wait: after, msg: msg}
}

// setHeaders records the header values of the matching limit with the fewest tokens left at now:
// a local one (its bucket) or the best Global one (gh, the replica's best knowledge).
func (s *rateLimitStage) setHeaders(x *exchange, which []*limitEntry, rs []ratelimit.Reservation, now time.Time, gh globalHeaders) {
	best, tokens := -1, math.Inf(1)
	for i := range rs {
		if b := rs[i].Bucket(); b != nil {
			if t := b.Tokens(now); t < tokens {
				best, tokens = i, t
			}
		}
	}
	if gh.limit != nil && float64(gh.remaining) < tokens {
		x.rate.limit, x.rate.remaining, x.rate.reset = gh.limit, gh.remaining, gh.reset
		return
	}
	if best < 0 {
		return
	}
	x.rate.limit = which[best]
	x.rate.remaining = int64(tokens)
	x.rate.reset = 0
	if d := rs[best].Bucket().NextToken(now); d > 0 {
		x.rate.reset = int64(math.Ceil(d.Seconds()))
	}
}

// ceilSeconds rounds d up to whole seconds, at least 1: the value of Retry-After.
func ceilSeconds(d time.Duration) int64 {
	s := int64(d / time.Second)
	if d%time.Second > 0 {
		s++
	}
	return max(s, 1)
}

// logThrottle lets one log line through per second.
type logThrottle struct{ next atomic.Int64 }

func (l *logThrottle) allow(now time.Time) bool {
	n, nx := now.UnixNano(), l.next.Load()
	return n >= nx && l.next.CompareAndSwap(nx, n+int64(time.Second))
}
