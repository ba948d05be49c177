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
	"fmt"
	"strconv"
	"sync"

	"resilience.dev/operator/internal/snapshot"
)

// published is one version as the server sends it: whole, or as a delta from the version before.
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

// Publish makes e the current snapshot and pushes it to every connected gateway, unless its content
// equals the current one: then it returns the current version and changed false. It keeps e (its
// Services encoded already, as compile.Compiler and snapshot.Encode make them): the caller must not
// modify it. Gateways that take deltas get only the Services and policies that changed since the
// version they were sent last; the others, and gateways that (re)connect, get the whole snapshot,
// encoded once when first needed.
//
// It stamps the version in the frame: higher than every earlier one, and close to wall-clock
// milliseconds so versions from different manager replicas compare sensibly.
func (s *Server) Publish(e *snapshot.Encoded) (version uint64, changed bool, err error) {
	content := *e.Snapshot
	content.Version = 0
	e = &snapshot.Encoded{Snapshot: &content, Encodings: e.Encodings}
	s.mu.Lock()
	prev := s.current
	if prev != nil && e.SameContent(prev.content) {
		defer s.mu.Unlock()
		return prev.version, false, nil
	}
	version = uint64(s.clock.Now().UnixMilli())
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
	s.install(p, prev)
	return version, true, nil
}

// install makes p current, remembers its policies for the acks to come, and wakes every stream.
func (s *Server) install(p, prev *published) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.current != prev { // another Publish won the race: ours is no delta of it
		p.base, p.delta = 0, nil
	}
	s.current = p
	s.history[p.version] = p.policies
	s.order = append(s.order, p.version)
	if len(s.order) > historyLen {
		delete(s.history, s.order[0])
		s.order = s.order[1:]
	}
	for _, c := range s.conns {
		c.wake()
	}
}
