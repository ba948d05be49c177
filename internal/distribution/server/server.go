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

// Package server is the manager's side of the snapshot stream: it publishes each new snapshot to the
// gateways connected to this manager replica, reads their acks and breaker transitions, shares what
// each gateway runs with the other manager replicas (a StateStore), and answers the reconcilers'
// questions (Programmed, BreakerStatus) from the states of every gateway. The gateway's side is
// package client; the frames between them are package distribution.
package server

import (
	"sync"
	"time"

	"github.com/go-logr/logr"

	"resilience.dev/operator/internal/distribution"
	"resilience.dev/operator/internal/patterns/clock"
	"resilience.dev/operator/internal/snapshot"
)

// historyLen bounds how many published versions the server remembers the policy generations of, to
// interpret acks of older versions.
const historyLen = 256

// heartbeat is how often an idle stream carries an empty frame, so dead peers are noticed.
const heartbeat = 15 * time.Second

// StaleAfter is how long a gateway state without a heartbeat still counts: its manager replica
// refreshes it every StaleAfter/3, so a state older than this belongs to a manager that died.
const StaleAfter = 30 * time.Second

// Server is the manager's side of the stream. Every manager replica runs one; any can serve gateways.
type Server struct {
	auth    Authenticator
	store   StateStore
	manager string // this manager replica's name, owner of the states it writes
	// clock stamps versions and heartbeats and judges staleness and backoff.
	clock clock.Clock
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
	OnBreaker func(replica string, change distribution.BreakerChange)
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

// Option changes how NewServer builds a Server.
type Option func(*Server)

// WithClock makes the server read time from c instead of the wall clock (tests).
func WithClock(c clock.Clock) Option { return func(s *Server) { s.clock = c } }

// NewServer returns a server that authenticates gateways with auth and shares their states through
// store under the name of this manager replica.
func NewServer(auth Authenticator, store StateStore, manager string, log logr.Logger, opts ...Option) *Server {
	s := &Server{
		auth: auth, store: store, manager: manager, log: log, clock: clock.Real{},
		history: map[uint64]map[snapshot.PolicyKey]int64{},
		conns:   map[string]*conn{},
	}
	for _, o := range opts {
		o(s)
	}
	return s
}

// NeedLeaderElection reports false: every manager replica serves gateways.
func (s *Server) NeedLeaderElection() bool { return false }

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

// since is the time elapsed since t on the server's clock.
func (s *Server) since(t time.Time) time.Duration { return s.clock.Now().Sub(t) }
