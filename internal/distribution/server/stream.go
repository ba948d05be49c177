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

package server

import (
	"context"
	"net/http"
	"strings"
	"time"

	"resilience.dev/operator/internal/distribution"
	"resilience.dev/operator/internal/snapshot"
)

// conn is one gateway replica's stream to this manager replica, and what it last told us.
type conn struct {
	replica  string
	deltas   bool // the gateway takes deltas (it said so with DeltaHeader)
	notify   chan struct{}
	cancel   context.CancelFunc
	acked    uint64
	ackErr   string
	policies map[snapshot.PolicyKey]int64 // of the acked version
	breakers breakerStates                // not closed
	dirty    bool                         // state not yet written to the store
	needFull bool                         // the gateway lacks the base of our deltas: send the whole snapshot
	store    *distribution.StoreHealth    // as the gateway last said; nil before it said
}

// wake tells the stream's writer to look at the current version; it never blocks.
func (c *conn) wake() {
	select {
	case c.notify <- struct{}{}:
	default:
	}
}

// ServeHTTP serves the stream endpoint.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	replica, ok := s.admit(w, r)
	if !ok {
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
	c := s.register(replica, r.Header.Get(distribution.DeltaHeader) == distribution.DeltaVersion, cancel)
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

// admit checks the path, the method and the gateway's token, answering the request itself when it
// refuses it, and returns the replica's name.
func (s *Server) admit(w http.ResponseWriter, r *http.Request) (string, bool) {
	if r.URL.Path != distribution.StreamPath {
		http.Error(w, "not found", http.StatusNotFound)
		return "", false
	}
	if r.Method != http.MethodPost {
		http.Error(w, "the stream takes POST", http.StatusMethodNotAllowed)
		return "", false
	}
	token, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok || token == "" {
		http.Error(w, "a gateway ServiceAccount token is required", http.StatusUnauthorized)
		return "", false
	}
	replica, err := s.auth.Authenticate(r.Context(), token, r.Header.Get(distribution.ReplicaHeader))
	if err != nil {
		metricStreamsRefused.Inc()
		s.log.Info("refused a stream", "remote", r.RemoteAddr, "reason", err.Error())
		http.Error(w, "unauthenticated: "+err.Error(), http.StatusUnauthorized)
		return "", false
	}
	return replica, true
}

func (s *Server) register(replica string, deltas bool, cancel context.CancelFunc) *conn {
	c := &conn{replica: replica, deltas: deltas, notify: make(chan struct{}, 1), cancel: cancel,
		policies: map[snapshot.PolicyKey]int64{}, breakers: breakerStates{}, dirty: true}
	c.wake() // send the current snapshot at once
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

// writeFrames sends the gateway each new version (as a delta when it can take one) and heartbeats.
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
			frame, version, err := s.nextFrame(c, sent)
			if err != nil {
				s.log.Error(err, "encode the whole snapshot", "version", version)
				return
			}
			if frame == nil {
				continue
			}
			if _, err := w.Write(frame); err != nil || rc.Flush() != nil {
				return
			}
			sent = version
		}
	}
}

// nextFrame is the frame that brings a gateway sent version sent to the current one: nil when it is
// there already, the delta when it takes deltas and holds its base, else the whole snapshot.
func (s *Server) nextFrame(c *conn, sent uint64) ([]byte, uint64, error) {
	s.mu.Lock()
	cur := s.current
	full := c.needFull
	c.needFull = false
	s.mu.Unlock()
	if cur == nil || (cur.version == sent && !full) {
		return nil, sent, nil
	}
	if !full && c.deltas && cur.delta != nil && cur.base == sent {
		return cur.delta, cur.version, nil
	}
	frame, err := cur.fullFrame()
	return frame, cur.version, err
}
