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
	"encoding/json"
	"errors"
	"io"
	"maps"

	"github.com/go-logr/logr"

	"resilience.dev/operator/internal/distribution"
)

// maxGatewayFrame bounds one frame from a gateway (a resync of many open endpoints is the largest).
const maxGatewayFrame = 4 << 20

// readFrames reads a gateway's acks, breaker transitions and resyncs until its stream ends.
func (s *Server) readFrames(c *conn, body io.Reader, log logr.Logger) {
	dec := json.NewDecoder(&limitedReader{r: body, n: maxGatewayFrame})
	for {
		var f distribution.GatewayFrame
		if err := dec.Decode(&f); err != nil {
			return
		}
		switch {
		case f.Ack != nil && f.Ack.NeedFull:
			s.needFull(c, f.Ack, log)
		case f.Ack != nil:
			s.ack(c, f.Ack, log)
		case f.Breaker != nil:
			s.breakerChanged(c, *f.Breaker)
		case f.Store != nil:
			s.mu.Lock()
			h := *f.Store
			c.store, c.dirty = &h, true
			s.mu.Unlock()
		case f.Resync != nil:
			s.mu.Lock()
			c.breakers = breakerStates{}
			for _, b := range f.Resync.Open {
				c.breakers.record(b)
			}
			c.dirty = true
			s.mu.Unlock()
		}
	}
}

// needFull answers a gateway that could not apply a delta (it lacks its base) with the whole snapshot.
func (s *Server) needFull(c *conn, a *distribution.Ack, log logr.Logger) {
	s.mu.Lock()
	c.needFull = true
	s.mu.Unlock()
	log.Info("gateway asked for the whole snapshot", "version", a.Version, "reason", a.Error)
	c.wake()
}

// ack records the version a gateway applied, or its refusal; the policies it runs change only when
// their generations did (endpoint churn keeps them: nothing to write).
func (s *Server) ack(c *conn, a *distribution.Ack, log logr.Logger) {
	s.mu.Lock()
	c.acked, c.ackErr = a.Version, a.Error
	if a.Error == "" {
		if p, ok := s.history[a.Version]; ok && !maps.Equal(p, c.policies) {
			c.policies, c.dirty = p, true
		}
	}
	s.mu.Unlock()
	if a.Error != "" {
		metricRefused.Inc()
		log.Info("gateway refused a snapshot", "version", a.Version, "error", a.Error)
	}
}

// breakerChanged records one breaker transition and passes it on to OnBreaker.
func (s *Server) breakerChanged(c *conn, b distribution.BreakerChange) {
	metricBreakerChanges.WithLabelValues(b.To).Inc()
	s.mu.Lock()
	c.breakers.record(b)
	c.dirty = true
	s.mu.Unlock()
	if s.OnBreaker != nil {
		s.OnBreaker(c.replica, b)
	}
}

// limitedReader fails once more than maxGatewayFrame bytes arrive without a newline, so a peer cannot
// make the decoder buffer an unbounded frame; every newline (a frame boundary) renews the allowance.
type limitedReader struct {
	r io.Reader
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
