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
// Package distribution is the protocol between the manager and every gateway replica: snapshots flow
// from the manager to the gateways, acknowledgements and live breaker state flow back, over one
// authenticated, long-lived HTTP/2 stream per gateway replica. It holds only the frames and the
// constants both sides share; the manager's side is package server (TokenReview, the CA, the shared
// gateway states), the gateway's side package client, so a gateway links no Kubernetes client.
//
// The gateway opens POST /v1/stream over TLS with its ServiceAccount token as a bearer token. The
// response body is a stream of newline-delimited JSON frames from the manager (the current snapshot at
// once, then each new version, whole or, to gateways that ask with DeltaHeader, as a delta); the
// request body is a stream of frames from the gateway (an ack of each version it applied, and breaker
// transitions). The manager checks the token with TokenReview against the gateway's own
// ServiceAccount; an unauthenticated client gets 401 and nothing else.
package distribution

import (
	"encoding/json"
	"time"
)

// StreamPath is the path of the stream endpoint.
const StreamPath = "/v1/stream"

// Audience is the token audience gateways request, so a token minted for anything else is refused.
const Audience = "resilience.dev/gateway"

// ReplicaHeader carries the gateway replica's name (its pod name in a cluster).
const ReplicaHeader = "X-Resilience-Gateway-Replica"

// DeltaHeader on the stream request, with the value DeltaVersion, says the gateway takes deltas:
// frames that carry only what changed since the version it was sent before. Without it the manager
// sends every version whole.
const (
	DeltaHeader  = "X-Resilience-Snapshot-Deltas"
	DeltaVersion = "v1"
)

// ServerFrame is one frame from the manager to a gateway: a heartbeat (no field set), a whole
// snapshot, or (to gateways that take them) a delta.
type ServerFrame struct {
	// Version stamps Snapshot or Delta. The snapshot's own version field is left 0, so its encoding
	// depends on its content alone.
	Version uint64 `json:"version,omitempty"`
	// Snapshot is the whole snapshot, as JSON, so the gateway decodes and validates it strictly itself.
	Snapshot json.RawMessage `json:"snapshot,omitempty"`
	// Base is the version Delta applies to: always the version the manager sent this gateway last.
	Base uint64 `json:"base,omitempty"`
	// Delta (a compile.Delta) is what changed since Base; the gateway applies it to the snapshot it
	// was sent last, then decodes and validates the result strictly as it would a whole one. A
	// gateway that cannot (it does not hold Base) acks with NeedFull and gets the whole snapshot.
	Delta json.RawMessage `json:"delta,omitempty"`
}

// GatewayFrame is one frame from a gateway to the manager: exactly one field is set.
type GatewayFrame struct {
	Ack     *Ack           `json:"ack,omitempty"`
	Breaker *BreakerChange `json:"breaker,omitempty"`
	// Resync lists the gateway's breakers that are not closed, sent after (re)connecting so that status
	// never keeps a stale state from before a gap.
	Resync *Resync `json:"resync,omitempty"`
	// Store is the replica's view of the store of Global rate limits, sent after (re)connecting and
	// whenever it flips.
	Store *StoreHealth `json:"store,omitempty"`
}

// StoreHealth is whether a gateway replica reaches the store of Global rate limits.
type StoreHealth struct {
	Available bool `json:"available"`
	// Error says why not (no --store-url, refused, over budget, ...).
	Error string `json:"error,omitempty"`
}

// Ack says which snapshot version a gateway applied, or why it refused it.
type Ack struct {
	Version uint64 `json:"version"`
	// Error is set when the gateway refused the version (it keeps enforcing its last good one).
	Error string `json:"error,omitempty"`
	// NeedFull says the gateway could not apply the delta of Version for want of its base: the
	// manager then sends the whole snapshot.
	NeedFull bool `json:"needFull,omitempty"`
}

// BreakerChange is one breaker transition on a gateway replica.
type BreakerChange struct {
	Kind      string `json:"kind,omitempty"` // always CircuitBreaker
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
	UID       string `json:"uid,omitempty"`
	Service   string `json:"service"`
	Port      int32  `json:"port"`
	Endpoint  string `json:"endpoint,omitempty"` // "" for scope Service
	// From and To are the breaker's states, as v1alpha1.CircuitState spells them (Closed, Open,
	// HalfOpen); plain strings so that the gateway need not link the API types.
	From  string    `json:"from"`
	To    string    `json:"to"`
	Cause string    `json:"cause,omitempty"`
	At    time.Time `json:"at"`
}

// Resync is the full set of a replica's breakers that are not closed.
type Resync struct {
	Open []BreakerChange `json:"open"`
}
