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
	"errors"
	"fmt"
	"slices"

	"resilience.dev/operator/internal/snapshot"
)

// Apply puts snapshot e in force, with the encoding of each Service (snapshot.Decoder or
// snapshot.Encode gives them). It validates the Services whose encoding differs from the table in
// force and builds a new routing table, keeping the Service routes whose encoding is unchanged as
// they are and the state of every bucket, breaker, bulkhead and budget whose StateKey is unchanged,
// dropping the state of those that no longer appear, then swaps the table in atomically. On error the
// table in force stays. A snapshot equal to the one in force but for its version only records the
// version. e is retained (read-only).
func (g *Gateway) Apply(e *snapshot.Encoded) error {
	if e == nil || e.Snapshot == nil || len(e.Encodings) != len(e.Services) {
		g.m.applyErrors.Inc()
		return errors.New("gateway: apply snapshot: snapshot is nil or its encodings do not match it")
	}
	g.applyMu.Lock()
	defer g.applyMu.Unlock()
	old := g.table.Load()
	unchanged := func(i int) bool {
		if old == nil {
			return false
		}
		o := old.services[svcKey{e.Services[i].Namespace, e.Services[i].Name}]
		return o != nil && o.enc == e.Encodings[i]
	}
	if err := e.ValidateServices(func(i int) bool { return !unchanged(i) }); err != nil {
		g.m.applyErrors.Inc()
		return fmt.Errorf("gateway: apply snapshot: %w", err)
	}
	if old != nil && len(old.services) == len(e.Services) && slices.Equal(old.policies, e.Policies) {
		same := true
		for i := range e.Services {
			if !unchanged(i) {
				same = false
				break
			}
		}
		if same {
			g.setVersion(e.Version)
			return nil
		}
	}
	t, err := g.build(e, old)
	if err != nil {
		g.m.applyErrors.Inc()
		return fmt.Errorf("gateway: apply snapshot version %d: %w", e.Version, err)
	}
	t.state.commit()
	g.table.Store(t)
	g.setVersion(e.Version)
	if old != nil {
		old.state.dropUnused(t.state, g.m)
	}
	g.capture.set(t)
	g.ready.Store(true)
	g.log.Info("snapshot applied", "version", e.Version, "services", len(e.Services), "policies", len(e.Policies))
	return nil
}

func (g *Gateway) setVersion(v uint64) {
	g.version.Store(v)
	g.m.version.Set(float64(v))
}
