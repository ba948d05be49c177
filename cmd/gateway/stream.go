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

package main

import (
	"fmt"
	"log/slog"

	"github.com/go-logr/logr"

	"resilience.dev/operator/internal/distribution"
	distclient "resilience.dev/operator/internal/distribution/client"
	"resilience.dev/operator/internal/gateway"
	"resilience.dev/operator/internal/snapshot"
)

// newStreamClient is the client of the manager's snapshot stream, trusting the CA of c.caFile.
func newStreamClient(c config, log *slog.Logger) (*distclient.Client, error) {
	// The CA file is read again at each connection: a rotated CA is trusted without a restart.
	ca, err := distclient.NewCAFile(c.caFile)
	if err != nil {
		return nil, fmt.Errorf("the manager's CA: %w", err)
	}
	return &distclient.Client{
		URL: c.managerURL, TLS: ca.TLSConfig(),
		Token: distclient.TokenFile(c.tokenFile), Replica: c.replica,
		Log: logr.FromSlogHandler(log.Handler()).WithName("stream"),
	}, nil
}

// connect hands the stream's snapshots to gw and gw's live state (breakers, store health) back to the
// manager. The client decodes and validates each snapshot (whole, or a delta against the one before)
// and hands it over with each Service's encoding, so the gateway rebuilds only the Services that
// changed. The gateway logs "snapshot applied", and the client "received snapshot" with decode and
// apply times.
func connect(client *distclient.Client, gw *gateway.Gateway) {
	client.Apply = func(_ uint64, snap *snapshot.Encoded) error { return gw.Apply(snap) }
	client.StoreHealth = func() distribution.StoreHealth {
		ok, err := gw.StoreAvailable()
		if ok {
			return distribution.StoreHealth{Available: true}
		}
		return distribution.StoreHealth{Error: err.Error()}
	}
	client.Resync = func() []distribution.BreakerChange {
		states := gw.BreakerStates()
		out := make([]distribution.BreakerChange, len(states))
		for i, s := range states {
			out[i] = toChange(s)
		}
		return out
	}
}
