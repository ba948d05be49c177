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

package distribution

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/go-logr/logr"

	"resilience.dev/operator/api/v1alpha1"
	"resilience.dev/operator/internal/snapshot"
)

// Authenticator decides whether a bearer token belongs to a gateway, and names the replica.
type Authenticator interface {
	// Authenticate returns the replica's name, or an error when the token is not a gateway's.
	Authenticate(ctx context.Context, token, claimedReplica string) (replica string, err error)
}

// ErrUnauthenticated is returned by authenticators for tokens that are not a gateway's.
var ErrUnauthenticated = errors.New("not a gateway's token")

// historyLen bounds how many published versions the server remembers the policy generations of, to
// interpret acks of older versions.
const historyLen = 256

// heartbeat is how often an idle stream carries an empty frame, so dead peers are noticed.
const heartbeat = 15 * time.Second

// Server is the manager's side of the stream. Every manager replica runs one; any can serve gateways.
type Server struct {
	auth    Authenticator
	store   StateStore
	manager string // this manager replica's name, owner of the states it writes
	// putFailures and retryAt back off writing states while the store (the API server) fails; only
	// Start's goroutine uses them.
	putFailures int
	retryAt     time.Time
	log         logr.Logger

	// OnChange is called (without locks held) when what gateways run changed, with the keys
	// (kind/namespace/name) of the policies whose Programmed or breaker status may differ; nil keys
	// mean every policy (a gateway came or went).
	OnChange func(keys []snapshot.PolicyKey)
	// OnBreaker is called (without locks held) for every breaker transition a gateway reports.
	OnBreaker func(replica string, change BreakerChange)
	// OnReplicas is called (without locks held) when the number of live gateway replicas, across all
	// manager replicas, changes.
	OnReplicas func(n int)

	mu       sync.Mutex
	current  *published
	history  map[uint64]map[snapshot.PolicyKey]int64 // version -> policy key -> generation
	order    []uint64
	conns    map[string]*conn        // replica -> its stream to this manager replica
	replicas int                     // live gateway replicas last counted from the store
	view     map[string]GatewayState // live states last seen, by replica, to tell what changed
}

type published struct {
	version  uint64
	content  *snapshot.Encoded
	policies map[snapshot.PolicyKey]int64

	// base is the version before this one and delta the frame that turns it into this one, for the
	// gateways that take deltas and were sent base; nil when there is no base.
	base  uint64
	delta []byte

	fullOnce sync.Once
	full     []byte // the encoded ServerFrame with the whole snapshot, newline-terminated, made once
	fullErr  error
}

// fullFrame encodes the frame with the whole snapshot the first time a gateway needs it.
func (p *published) fullFrame() ([]byte, error) {
	p.fullOnce.Do(func() {
		body, err := p.content.Body()
		if err != nil {
			p.fullErr = fmt.Errorf("encode snapshot: %w", err)
			return
		}
		metricBytes.Set(float64(len(body)))
		p.full = appendFrame(nil, p.version, 0, "snapshot", body)
	})
	return p.full, p.fullErr
}

// appendFrame writes a ServerFrame by hand: its parts are JSON already (encoding/json would check
// and copy the whole snapshot again).
func appendFrame(b []byte, version, base uint64, field string, raw []byte) []byte {
	b = append(b, `{"version":`...)
	b = strconv.AppendUint(b, version, 10)
	if base != 0 {
		b = append(b, `,"base":`...)
		b = strconv.AppendUint(b, base, 10)
	}
	b = append(b, `,"`...)
	b = append(b, field...)
	b = append(b, `":`...)
	b = append(b, raw...)
	return append(b, "}\n"...)
}

type conn struct {
	replica  string
	deltas   bool // the gateway takes deltas (it said so with DeltaHeader)
	notify   chan struct{}
	cancel   context.CancelFunc
	acked    uint64
	ackErr   string
	policies map[snapshot.PolicyKey]int64 // of the acked version
	breakers map[string]string            // breaker key -> state, not closed
	dirty    bool                         // state not yet written to the store
	needFull bool                         // the gateway lacks the base of our deltas: send the whole snapshot
}

// StaleAfter is how long a gateway state without a heartbeat still counts: its manager replica
// refreshes it every StaleAfter/3, so a state older than this belongs to a manager that died.
const StaleAfter = 30 * time.Second

// NewServer returns a server that authenticates gateways with auth and shares their states through
// store under the name of this manager replica.
func NewServer(auth Authenticator, store StateStore, manager string, log logr.Logger) *Server {
	return &Server{
		auth: auth, store: store, manager: manager, log: log,
		history: map[uint64]map[snapshot.PolicyKey]int64{},
		conns:   map[string]*conn{},
	}
}

// NeedLeaderElection reports false: every manager replica serves gateways.
func (s *Server) NeedLeaderElection() bool { return false }

// Start writes the states of this replica's gateways to the store as they change, refreshes their
// heartbeats, and removes states whose manager died, until ctx ends.
func (s *Server) Start(ctx context.Context) error {
	flush := time.NewTicker(50 * time.Millisecond)
	defer flush.Stop()
	beat := time.NewTicker(StaleAfter / 3)
	defer beat.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-beat.C:
			s.mu.Lock()
			for _, c := range s.conns {
				c.dirty = true
			}
			s.mu.Unlock()
			s.collectStale(ctx)
		case <-flush.C:
		}
		s.flush(ctx)
	}
}

func (s *Server) flush(ctx context.Context) {
	if time.Now().Before(s.retryAt) {
		return
	}
	s.mu.Lock()
	var states []GatewayState
	for _, c := range s.conns {
		if !c.dirty {
			continue
		}
		c.dirty = false
		states = append(states, GatewayState{Replica: c.replica, Manager: s.manager, Heartbeat: time.Now(),
			Policies: maps.Clone(c.policies), Breakers: maps.Clone(c.breakers)})
	}
	s.mu.Unlock()
	failed := false
	for _, st := range states {
		if err := s.store.Put(ctx, st); err != nil {
			failed = true
			if s.putFailures == 0 {
				s.log.Error(err, "share gateway state; retrying with backoff", "replica", st.Replica)
			}
			s.markDirty(st.Replica)
		}
	}
	switch {
	case failed:
		// 100 ms, doubling to at most 5 s: an API outage must not turn into a hot retry loop.
		s.putFailures++
		s.retryAt = time.Now().Add(min(100*time.Millisecond<<min(s.putFailures-1, 6), 5*time.Second))
	case s.putFailures > 0 && len(states) > 0:
		s.log.Info("sharing gateway state again", "failedAttempts", s.putFailures)
		s.putFailures = 0
	}
}

func (s *Server) markDirty(replica string) {
	s.mu.Lock()
	if c := s.conns[replica]; c != nil {
		c.dirty = true
	}
	s.mu.Unlock()
}

func (s *Server) collectStale(ctx context.Context) {
	states, err := s.store.List(ctx)
	if err != nil {
		return
	}
	for _, st := range states {
		if time.Since(st.Heartbeat) > 4*StaleAfter {
			_ = s.store.Delete(ctx, st.Replica, st.Manager)
		}
	}
}

// liveStates lists the gateway states whose heartbeat is fresh.
func (s *Server) liveStates() []GatewayState {
	states, err := s.store.List(context.Background())
	if err != nil {
		s.log.Error(err, "read gateway states")
		return nil
	}
	live := states[:0]
	for _, st := range states {
		if time.Since(st.Heartbeat) <= StaleAfter {
			live = append(live, st)
		}
	}
	sort.Slice(live, func(i, j int) bool { return live[i].Replica < live[j].Replica })
	return live
}

// StoreChanged is called when the shared gateway states changed (the manager's informer on them, or
// a MemoryStore): it recounts the live replicas and requeues the policies.
func (s *Server) StoreChanged() {
	states := s.liveStates()
	view := make(map[string]GatewayState, len(states))
	for _, st := range states {
		view[st.Replica] = st
	}
	s.mu.Lock()
	old := s.view
	s.view = view
	s.mu.Unlock()

	if len(old) != len(view) || !sameReplicas(old, view) {
		metricReplicas.Set(float64(len(view)))
		if s.OnReplicas != nil {
			s.OnReplicas(len(view))
		}
		s.changedKeys(nil) // every policy's N/M count moved
		return
	}
	if keys := changedKeys(old, view); len(keys) > 0 { // a heartbeat alone changes nothing
		s.changedKeys(keys)
	}
}

func sameReplicas(a, b map[string]GatewayState) bool {
	for r := range a {
		if _, ok := b[r]; !ok {
			return false
		}
	}
	return true
}

// changedKeys lists the policies whose generation on some replica, or whose breaker state, differs
// between two views of the same replicas.
func changedKeys(old, cur map[string]GatewayState) []snapshot.PolicyKey {
	set := map[snapshot.PolicyKey]bool{}
	for r, n := range cur {
		o := old[r]
		for k, g := range n.Policies {
			if o.Policies[k] != g {
				set[k] = true
			}
		}
		for k := range o.Policies {
			if _, ok := n.Policies[k]; !ok {
				set[k] = true
			}
		}
		for _, pair := range [2][2]map[string]string{{n.Breakers, o.Breakers}, {o.Breakers, n.Breakers}} {
			for k, st := range pair[0] {
				if pair[1][k] != st {
					ns, name, _ := strings.Cut(strings.SplitN(k, "|", 2)[0], "/")
					set[snapshot.PolicyKey{Kind: v1alpha1.KindCircuitBreaker, Namespace: ns, Name: name}] = true
				}
			}
		}
	}
	keys := make([]snapshot.PolicyKey, 0, len(set))
	for k := range set {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, snapshot.PolicyKey.Compare)
	return keys
}

// Publish makes snap the current snapshot and pushes it to every connected gateway, unless its
// content equals the current one: then it returns the current version and changed false. It stamps
// the version in the frame: higher than every earlier one, and close to wall-clock milliseconds so
// versions from different manager replicas compare sensibly.
func (s *Server) Publish(snap *snapshot.Snapshot) (version uint64, changed bool, err error) {
	e, err := snapshot.Encode(snap)
	if err != nil {
		return 0, false, fmt.Errorf("encode snapshot: %w", err)
	}
	return s.PublishEncoded(e)
}

// PublishEncoded is Publish for a snapshot whose Services are encoded already (compile.Compiler), which
// it keeps: the caller must not modify it. Gateways that take deltas get only the Services and
// policies that changed since the version they were sent last; the others, and gateways that
// (re)connect, get the whole snapshot, encoded once when first needed.
func (s *Server) PublishEncoded(e *snapshot.Encoded) (version uint64, changed bool, err error) {
	content := *e.Snapshot
	content.Version = 0
	e = &snapshot.Encoded{Snapshot: &content, Encodings: e.Encodings}
	s.mu.Lock()
	prev := s.current
	if prev != nil && e.SameContent(prev.content) {
		defer s.mu.Unlock()
		return prev.version, false, nil
	}
	version = uint64(time.Now().UnixMilli())
	if prev != nil && version <= prev.version {
		version = prev.version + 1
	}
	s.mu.Unlock()

	p := &published{version: version, content: e, policies: make(map[snapshot.PolicyKey]int64, len(e.Policies))}
	for _, r := range e.Policies {
		p.policies[r.Key()] = r.Generation
	}
	if prev != nil {
		delta, err := snapshot.Diff(prev.content, e)
		if err != nil {
			return 0, false, fmt.Errorf("encode delta: %w", err)
		}
		p.base, p.delta = prev.version, appendFrame(nil, version, prev.version, "delta", delta)
	}

	metricVersion.Set(float64(version))
	s.mu.Lock()
	if s.current != prev { // another Publish won the race: ours is no delta of it
		p.base, p.delta = 0, nil
	}
	s.current = p
	s.history[version] = p.policies
	s.order = append(s.order, version)
	if len(s.order) > historyLen {
		delete(s.history, s.order[0])
		s.order = s.order[1:]
	}
	for _, c := range s.conns {
		select {
		case c.notify <- struct{}{}:
		default:
		}
	}
	s.mu.Unlock()
	return version, true, nil
}

// Current returns the version of the current snapshot (0 before the first).
func (s *Server) Current() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.current == nil {
		return 0
	}
	return s.current.version
}

// Replicas returns the number of live gateway replicas, whichever manager replica serves them (at
// least those connected here, even before their states are shared).
func (s *Server) Replicas() int {
	n := len(s.liveStates())
	s.mu.Lock()
	defer s.mu.Unlock()
	return max(n, len(s.conns))
}

// ServeHTTP serves the stream endpoint.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != StreamPath {
		http.Error(w, "not found", http.StatusNotFound)
		return
	}
	if r.Method != http.MethodPost {
		http.Error(w, "the stream takes POST", http.StatusMethodNotAllowed)
		return
	}
	token, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok || token == "" {
		http.Error(w, "a gateway ServiceAccount token is required", http.StatusUnauthorized)
		return
	}
	replica, err := s.auth.Authenticate(r.Context(), token, r.Header.Get(ReplicaHeader))
	if err != nil {
		metricStreamsRefused.Inc()
		s.log.Info("refused a stream", "remote", r.RemoteAddr, "reason", err.Error())
		http.Error(w, "unauthenticated: "+err.Error(), http.StatusUnauthorized)
		return
	}

	// HTTP/2 is full duplex already; over HTTP/1.1 this lets us read the body while writing.
	rc := http.NewResponseController(w)
	_ = rc.EnableFullDuplex()
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.WriteHeader(http.StatusOK)
	if err := rc.Flush(); err != nil {
		return
	}

	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	c := s.register(replica, r.Header.Get(DeltaHeader) == DeltaVersion, cancel)
	defer s.unregister(c)
	log := s.log.WithValues("replica", replica)
	log.Info("gateway connected", "remote", r.RemoteAddr)
	defer log.Info("gateway disconnected")

	go func() {
		defer cancel()
		s.readFrames(c, r.Body, log)
	}()
	s.writeFrames(ctx, c, w, rc)
}

func (s *Server) register(replica string, deltas bool, cancel context.CancelFunc) *conn {
	c := &conn{replica: replica, deltas: deltas, notify: make(chan struct{}, 1), cancel: cancel,
		policies: map[snapshot.PolicyKey]int64{}, breakers: map[string]string{}, dirty: true}
	c.notify <- struct{}{} // send the current snapshot at once
	s.mu.Lock()
	old := s.conns[replica]
	s.conns[replica] = c
	s.mu.Unlock()
	if old != nil {
		old.cancel() // a replica reconnecting replaces its stale stream
	}
	return c
}

func (s *Server) unregister(c *conn) {
	s.mu.Lock()
	gone := s.conns[c.replica] == c
	if gone {
		delete(s.conns, c.replica)
	}
	s.mu.Unlock()
	if gone {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := s.store.Delete(ctx, c.replica, s.manager); err != nil {
			s.log.Error(err, "remove the state of a departed gateway", "replica", c.replica)
		}
	}
}

func (s *Server) writeFrames(ctx context.Context, c *conn, w http.ResponseWriter, rc *http.ResponseController) {
	var sent uint64
	tick := time.NewTicker(heartbeat)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			if _, err := w.Write([]byte("{}\n")); err != nil || rc.Flush() != nil {
				return
			}
		case <-c.notify:
			s.mu.Lock()
			cur := s.current
			full := c.needFull
			c.needFull = false
			s.mu.Unlock()
			if cur == nil || (cur.version == sent && !full) {
				continue
			}
			frame := cur.delta
			if full || !c.deltas || frame == nil || cur.base != sent {
				var err error
				if frame, err = cur.fullFrame(); err != nil {
					s.log.Error(err, "encode the whole snapshot", "version", cur.version)
					return
				}
			}
			if _, err := w.Write(frame); err != nil || rc.Flush() != nil {
				return
			}
			sent = cur.version
		}
	}
}

// maxGatewayFrame bounds one frame from a gateway (a resync of many open endpoints is the largest).
const maxGatewayFrame = 4 << 20

func (s *Server) readFrames(c *conn, body interface{ Read([]byte) (int, error) }, log logr.Logger) {
	dec := json.NewDecoder(&limitedReader{r: body, n: maxGatewayFrame})
	for {
		var f GatewayFrame
		if err := dec.Decode(&f); err != nil {
			return
		}
		switch {
		case f.Ack != nil && f.Ack.NeedFull:
			// The gateway could not apply a delta (it lacks its base): send it the whole snapshot.
			s.mu.Lock()
			c.needFull = true
			s.mu.Unlock()
			log.Info("gateway asked for the whole snapshot", "version", f.Ack.Version, "reason", f.Ack.Error)
			select {
			case c.notify <- struct{}{}:
			default:
			}
		case f.Ack != nil:
			s.mu.Lock()
			c.acked, c.ackErr = f.Ack.Version, f.Ack.Error
			if f.Ack.Error == "" {
				if p, ok := s.history[f.Ack.Version]; ok && !maps.Equal(p, c.policies) {
					c.policies, c.dirty = p, true // endpoint churn keeps the policies: nothing to write
				}
			}
			s.mu.Unlock()
			if f.Ack.Error != "" {
				metricRefused.Inc()
				log.Info("gateway refused a snapshot", "version", f.Ack.Version, "error", f.Ack.Error)
			}
		case f.Breaker != nil:
			metricBreakerChanges.WithLabelValues(f.Breaker.To).Inc()
			s.mu.Lock()
			recordBreaker(c.breakers, *f.Breaker)
			c.dirty = true
			s.mu.Unlock()
			if s.OnBreaker != nil {
				s.OnBreaker(c.replica, *f.Breaker)
			}
		case f.Resync != nil:
			s.mu.Lock()
			c.breakers = map[string]string{}
			for _, b := range f.Resync.Open {
				recordBreaker(c.breakers, b)
			}
			c.dirty = true
			s.mu.Unlock()
		}
	}
}

// limitedReader fails once more than maxGatewayFrame bytes arrive without a newline, so a peer cannot
// make the decoder buffer an unbounded frame; every newline (a frame boundary) renews the allowance.
type limitedReader struct {
	r interface{ Read([]byte) (int, error) }
	n int64
}

func (l *limitedReader) Read(p []byte) (int, error) {
	if int64(len(p)) > l.n {
		p = p[:l.n]
	}
	n, err := l.r.Read(p)
	// Replenish the budget at each newline: the limit is per frame, not per stream.
	for _, b := range p[:n] {
		if b == '\n' {
			l.n = maxGatewayFrame
			return n, err
		}
	}
	l.n -= int64(n)
	if l.n <= 0 && err == nil {
		err = errors.New("gateway frame too large")
	}
	return n, err
}

func breakerKey(b BreakerChange) string {
	return fmt.Sprintf("%s/%s|%s:%d|%s", b.Namespace, b.Name, b.Service, b.Port, b.Endpoint)
}

func recordBreaker(m map[string]string, b BreakerChange) {
	if b.To == "Closed" || b.To == "" {
		delete(m, breakerKey(b))
		return
	}
	m[breakerKey(b)] = b.To
}

// BreakerStatus aggregates a CircuitBreaker's live state across the connected replicas: the worst
// state (Open, then HalfOpen, then Closed), the replicas where a Service-scope breaker is open, and the
// distinct endpoints whose breaker is open on some replica.
func (s *Server) BreakerStatus(namespace, name string) (state string, openReplicas, openEndpoints int) {
	prefix := namespace + "/" + name + "|"
	state = "Closed"
	endpoints := map[string]bool{}
	for _, gs := range s.liveStates() {
		replicaOpen := false
		for k, st := range gs.Breakers {
			if !strings.HasPrefix(k, prefix) {
				continue
			}
			if st == "Open" {
				state = "Open"
				_, endpoint, _ := strings.Cut(strings.TrimPrefix(k, prefix), "|")
				if endpoint == "" {
					replicaOpen = true
				} else {
					endpoints[k] = true
				}
			} else if st == "HalfOpen" && state == "Closed" {
				state = "HalfOpen"
			}
		}
		if replicaOpen {
			openReplicas++
		}
	}
	return state, openReplicas, len(endpoints)
}

// Programmed reports whether every connected gateway replica runs a snapshot holding the policy at
// the given generation. Endpoint changes make new versions but keep generations, so they do not flip it.
func (s *Server) Programmed(key snapshot.PolicyKey, generation int64) (bool, string, string) {
	states := s.liveStates()
	if len(states) == 0 {
		return false, v1alpha1.ReasonNoGateways, "no gateway replica is connected to the manager"
	}
	s.mu.Lock()
	compiled := s.current != nil && s.current.policies[key] == generation
	s.mu.Unlock()
	if !compiled {
		return false, v1alpha1.ReasonPending, fmt.Sprintf("0/%d gateway replicas: generation %d is not in force (see Accepted) or not compiled yet", len(states), generation)
	}
	var lagging []string
	for _, st := range states {
		if st.Policies[key] != generation {
			lagging = append(lagging, st.Replica)
		}
	}
	ready := len(states) - len(lagging)
	if len(lagging) == 0 {
		return true, v1alpha1.ReasonProgrammed, fmt.Sprintf("%d/%d gateway replicas", ready, len(states))
	}
	return false, v1alpha1.ReasonPending, fmt.Sprintf("%d/%d gateway replicas; waiting for %s", ready, len(states), strings.Join(lagging, ", "))
}

func (s *Server) changedKeys(keys []snapshot.PolicyKey) {
	if s.OnChange != nil {
		s.OnChange(keys)
	}
}
