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
// Package snapshot is the intermediate representation between the manager and the gateways: the
// Snapshot of everything a gateway enforces (the managed Service ports, their endpoints and the
// policies in force on each, with every default applied), its validation, and its wire codec (the
// encoding of each Service, strict decoding, and deltas between consecutive snapshots).
//
// The compiler (internal/compile) produces snapshots and the gateway (internal/gateway) enforces them;
// both import this package, which imports no Kubernetes code, so the data plane links none.
package snapshot

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// Snapshot is everything a gateway enforces: the managed Service ports with their endpoints and the
// policies in force on each. The distribution server stamps Version; Compile leaves it 0.
type Snapshot struct {
	Version uint64 `json:"version"`
	// Services are the managed Services, sorted by namespace and name.
	Services []Service `json:"services"`
	// Policies lists every policy in force with the generation compiled, sorted, so that a gateway's
	// acknowledgement of a version tells which generation of each policy it enforces.
	Policies []PolicyRef `json:"policies"`
}

// PolicyRef identifies one policy at one generation.
type PolicyRef struct {
	Kind       string `json:"kind"`
	Namespace  string `json:"namespace"`
	Name       string `json:"name"`
	UID        string `json:"uid"`
	Generation int64  `json:"generation"`
}

// Key is the policy's identity without its generation.
func (p PolicyRef) Key() PolicyKey {
	return PolicyKey{Kind: p.Kind, Namespace: p.Namespace, Name: p.Name}
}

// PolicyKey names a policy across its generations: its kind, namespace and name. Written as text (in
// JSON strings and map keys, on the stream and in the gateway states the managers share) it reads
// kind/namespace/name, which no part can be confused in: none of the three contains a slash.
type PolicyKey struct {
	Kind      string
	Namespace string
	Name      string
}

// String renders the key as kind/namespace/name.
func (k PolicyKey) String() string { return k.Kind + "/" + k.Namespace + "/" + k.Name }

// Compare orders keys as their text sorts (the order of Snapshot.Policies), without making the text.
func (k PolicyKey) Compare(o PolicyKey) int {
	if c, decided := comparePart(k.Kind, o.Kind); decided {
		return c
	}
	if c, decided := comparePart(k.Namespace, o.Namespace); decided {
		return c
	}
	return strings.Compare(k.Name, o.Name)
}

// comparePart compares two parts of keys followed by a slash; decided is false when they are equal.
func comparePart(a, b string) (c int, decided bool) {
	if a == b {
		return 0, false
	}
	n := min(len(a), len(b))
	if c := strings.Compare(a[:n], b[:n]); c != 0 {
		return c, true
	}
	// One is a prefix of the other: the shorter goes on with the slash that follows it.
	if len(a) < len(b) {
		return cmpByte('/', b[n]), true
	}
	return cmpByte(a[n], '/'), true
}

func cmpByte(a, b byte) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// MarshalText writes the key as kind/namespace/name.
func (k PolicyKey) MarshalText() ([]byte, error) {
	if err := k.validate(); err != nil {
		return nil, err
	}
	return []byte(k.String()), nil
}

// UnmarshalText reads kind/namespace/name.
func (k *PolicyKey) UnmarshalText(b []byte) error {
	p, err := ParsePolicyKey(string(b))
	if err != nil {
		return err
	}
	*k = p
	return nil
}

// ParsePolicyKey reads a key written as kind/namespace/name.
func ParsePolicyKey(s string) (PolicyKey, error) {
	parts := strings.Split(s, "/")
	if len(parts) != 3 {
		return PolicyKey{}, fmt.Errorf("policy key %q is not kind/namespace/name", s)
	}
	k := PolicyKey{Kind: parts[0], Namespace: parts[1], Name: parts[2]}
	return k, k.validate()
}

func (k PolicyKey) validate() error {
	for _, part := range [3]string{k.Kind, k.Namespace, k.Name} {
		if part == "" || strings.Contains(part, "/") {
			return fmt.Errorf("policy key %q is not kind/namespace/name", k.String())
		}
	}
	return nil
}

// Service is a managed Service: one with at least one policy in force on one of its ports.
type Service struct {
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
	// Ports are all the Service's ports, sorted by port number; a port without a policy is still routed.
	Ports []Port `json:"ports"`
}

// Port is one Service port, its endpoints and the policies in force on it (each optional).
type Port struct {
	Name      string     `json:"name,omitempty"`
	Port      int32      `json:"port"`
	Endpoints []Endpoint `json:"endpoints"`
	// CapturePort, when set, is the gateway port where this port's captured traffic arrives (a front
	// Service's port, contract section 5): everything on it is for this port, whatever its Host.
	// The endpoints are then the backend Service's.
	CapturePort int32 `json:"capturePort,omitempty"`
	// AppProtocol is the Service port's appProtocol (GEP-1911): the gateway speaks HTTP/2 cleartext
	// to the endpoints of a port whose appProtocol is AppProtocolH2C or AppProtocolGRPC, HTTP/1.1 to
	// any other.
	AppProtocol string `json:"appProtocol,omitempty"`

	RateLimit      *RateLimit      `json:"rateLimit,omitempty"`
	CircuitBreaker *CircuitBreaker `json:"circuitBreaker,omitempty"`
	Retry          *Retry          `json:"retry,omitempty"`
}

// Values of Port.AppProtocol that mean HTTP/2 cleartext to the endpoints.
const (
	AppProtocolH2C  = "kubernetes.io/h2c"
	AppProtocolGRPC = "grpc"
)

// H2C reports whether the gateway speaks HTTP/2 cleartext to the port's endpoints.
func (p *Port) H2C() bool { return p.AppProtocol == AppProtocolH2C || p.AppProtocol == AppProtocolGRPC }

// Address types of endpoints, as discovery.k8s.io names them.
const (
	AddressIPv4 = "IPv4"
	AddressIPv6 = "IPv6"
	AddressFQDN = "FQDN"
)

// Endpoint is one ready backend address of a Service port.
type Endpoint struct {
	Address string `json:"address"`
	Port    int32  `json:"port"`
	Type    string `json:"type"`
	// HandMade is true when the EndpointSlice was not made by the EndpointSlice controller; the gateway
	// follows such endpoints only when a flag allows it.
	HandMade bool `json:"handMade,omitempty"`
}

// HostPort renders the endpoint as a dial address.
func (e Endpoint) HostPort() string {
	if e.Type == AddressIPv6 {
		return fmt.Sprintf("[%s]:%d", e.Address, e.Port)
	}
	return fmt.Sprintf("%s:%d", e.Address, e.Port)
}

// RateLimit is a RateLimit in force on one port, with every default applied.
type RateLimit struct {
	Policy PolicyRef `json:"policy"`
	Limits []Limit   `json:"limits"`
	// TrustedProxies are CIDRs whose X-Forwarded-For is believed.
	TrustedProxies   []string `json:"trustedProxies,omitempty"`
	IPv6PrefixLength int      `json:"ipv6PrefixLength"`
	// Delay queues requests over the limit for up to MaxDelay instead of rejecting them.
	Delay    bool     `json:"delay,omitempty"`
	MaxDelay Duration `json:"maxDelay,omitempty"`
	DryRun   bool     `json:"dryRun,omitempty"`
}

// Limit is one token bucket (or one per key) of a RateLimit, as one gateway replica enforces it.
type Limit struct {
	Name string `json:"name"`
	// Requests and Period are as the user wrote them (headers show them).
	Requests int64    `json:"requests"`
	Period   Duration `json:"period"`
	// Replicas divides the rate (distribution Split across that many ready gateway replicas): each
	// replica adds Requests tokens per Period*Replicas. 1 for PerReplica.
	Replicas int `json:"replicas"`
	// Burst is the bucket size on one replica, after the default (requests) and the Split share.
	Burst int64     `json:"burst"`
	Key   []KeyPart `json:"key,omitempty"`
	// Methods and PathPrefix restrict the requests the limit applies to; empty matches all.
	Methods    []string `json:"methods,omitempty"`
	PathPrefix string   `json:"pathPrefix,omitempty"`
	MaxKeys    int      `json:"maxKeys"`
	// StateKey identifies the limit's buckets across snapshots: the policy UID, the limit name and a
	// hash of every parameter that shapes them, so unchanged limits keep their buckets.
	StateKey string `json:"stateKey"`
	// Global, when set, makes the limit one bucket in the shared store (distribution Global); Replicas
	// and Burst then describe the Local fallback's share (as Split).
	Global *GlobalLimit `json:"global,omitempty"`
}

// What a Global limit does while the store cannot be reached (RateLimit onStoreError).
const (
	OnStoreErrorLocal = "Local"
	OnStoreErrorAllow = "Allow"
	OnStoreErrorDeny  = "Deny"
)

// GlobalLimit is what a Global limit adds to a Limit.
type GlobalLimit struct {
	// Bucket names the limit's bucket in the store: the same on every replica, and unchanged by the
	// replica count, so scaling the gateway does not refill it.
	Bucket string `json:"bucket"`
	// Burst is the size of the whole bucket.
	Burst int64 `json:"burst"`
	// OnStoreError is Local, Allow or Deny.
	OnStoreError string `json:"onStoreError"`
}

// KeyPart is one part of a limit key: the client address, or a header's value.
type KeyPart struct {
	ClientIP bool   `json:"clientIP,omitempty"`
	Header   string `json:"header,omitempty"`
}

// CircuitBreaker is a CircuitBreaker in force on one port, with every default applied.
type CircuitBreaker struct {
	Policy PolicyRef `json:"policy"`
	// Concurrency is the bulkhead, when set.
	Concurrency *Concurrency `json:"concurrency,omitempty"`

	FailureStatusCodes []string `json:"failureStatusCodes"`
	FailOnConnectError bool     `json:"failOnConnectError"`
	FailOnTimeout      bool     `json:"failOnTimeout"`
	// FailureGRPCCodes are the final grpc-status names (as codes.Code prints them) that count as failures.
	FailureGRPCCodes []string `json:"failureGRPCCodes,omitempty"`
	SlowCallDuration Duration `json:"slowCallDuration,omitempty"`

	// Exactly one of ConsecutiveFailures (> 0) and FailureRatio.
	ConsecutiveFailures int           `json:"consecutiveFailures,omitempty"`
	FailureRatio        *FailureRatio `json:"failureRatio,omitempty"`

	OpenDuration     Duration `json:"openDuration"`
	MaxOpenDuration  Duration `json:"maxOpenDuration,omitempty"`
	HalfOpenRequests int      `json:"halfOpenRequests"`
	SuccessThreshold int      `json:"successThreshold"`
	// PerEndpoint keeps one breaker per endpoint (scope Endpoint); MaxOpenPercent bounds how many open.
	PerEndpoint    bool     `json:"perEndpoint,omitempty"`
	MaxOpenPercent int      `json:"maxOpenPercent"`
	FallbackStatus int      `json:"fallbackStatus"`
	ServeStale     Duration `json:"serveStale,omitempty"`
	DryRun         bool     `json:"dryRun,omitempty"`
	// StateKey identifies the breaker (and bulkhead and stale store) across snapshots.
	StateKey string `json:"stateKey"`
}

// Concurrency is a bulkhead.
type Concurrency struct {
	MaxRequests  int      `json:"maxRequests"`
	MaxQueued    int      `json:"maxQueued"`
	QueueTimeout Duration `json:"queueTimeout"`
}

// FailureRatio trips a breaker on a share of failures over a sliding window.
type FailureRatio struct {
	Percent         int      `json:"percent"`
	MinimumRequests int      `json:"minimumRequests"`
	Window          Duration `json:"window"`
}

// Retry is a RetryPolicy in force on one port, with every default applied.
type Retry struct {
	Policy      PolicyRef `json:"policy"`
	MaxAttempts int       `json:"maxAttempts"`

	RetryStatusCodes []string `json:"retryStatusCodes"`
	RetryConnect     bool     `json:"retryConnect"`
	RetryResets      bool     `json:"retryResets"`
	RetryTimeouts    bool     `json:"retryTimeouts"`
	// RetryGRPCCodes are the grpc-status names (as codes.Code prints them) a gRPC try may be retried on.
	RetryGRPCCodes []string `json:"retryGRPCCodes,omitempty"`
	Methods        []string `json:"methods"`

	BackoffStrategy string   `json:"backoffStrategy"`
	BackoffBase     Duration `json:"backoffBase"`
	BackoffMax      Duration `json:"backoffMax"`
	Jitter          string   `json:"jitter"`

	PerTryTimeout Duration `json:"perTryTimeout,omitempty"`
	Timeout       Duration `json:"timeout,omitempty"`

	BudgetPercent      int      `json:"budgetPercent"`
	BudgetMinPerSecond int      `json:"budgetMinPerSecond"`
	BudgetWindow       Duration `json:"budgetWindow"`
	RespectRetryAfter  bool     `json:"respectRetryAfter"`
	HedgeDelay         Duration `json:"hedgeDelay,omitempty"`
	MaxHedges          int      `json:"maxHedges,omitempty"`
	// StateKey identifies the retry budget across snapshots.
	StateKey string `json:"stateKey"`
}

// Duration is a time.Duration written in JSON as Go writes durations ("1.5s"), so golden files and
// debug dumps read naturally.
type Duration time.Duration

// D returns the time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// MarshalJSON writes the duration as a string.
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

// UnmarshalJSON reads a duration string.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("duration must be a string: %w", err)
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}
