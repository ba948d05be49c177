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

package snapshot

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"

	"resilience.dev/operator/internal/patterns/codes"
)

// Validate checks that a snapshot can be enforced as it is. A gateway runs it on every snapshot it
// receives and keeps its last good one when it fails, so a bad snapshot never reaches the data plane.
func (s *Snapshot) Validate() error {
	return s.ValidateServices(nil)
}

// ValidateServices is Validate checking the content of only the Services for which check returns true
// (all when check is nil); the rules across Services (each listed once) always cover them all. A
// consumer that already validated a Service of identical content (its encoding is the same) skips it.
func (s *Snapshot) ValidateServices(check func(i int) bool) error {
	if s == nil {
		return errors.New("snapshot is nil")
	}
	var errs []error
	seen := make(map[serviceKey]bool, len(s.Services))
	var captured map[int32]bool // made at the first capture port
	for i := range s.Services {
		svc := &s.Services[i]
		k := serviceKey{svc.Namespace, svc.Name}
		if seen[k] {
			errs = append(errs, fmt.Errorf("%s: listed twice", serviceWhere(i, svc)))
		}
		seen[k] = true
		for j, p := range svc.Ports {
			if p.CapturePort == 0 {
				continue
			}
			if captured == nil {
				captured = map[int32]bool{}
			}
			if captured[p.CapturePort] {
				errs = append(errs, fmt.Errorf("%s.ports[%d]: capture port %d is given twice", serviceWhere(i, svc), j, p.CapturePort))
			}
			captured[p.CapturePort] = true
		}
		if check == nil || check(i) {
			errs = append(errs, validateService(i, svc)...)
		}
	}
	errs = append(errs, validatePolicies(s.Policies)...)
	return errors.Join(errs...)
}

// validatePolicies checks that each policy in force has a well-formed key and is listed once.
func validatePolicies(refs []PolicyRef) []error {
	var errs []error
	seen := make(map[PolicyKey]bool, len(refs))
	for i, r := range refs {
		k := r.Key()
		if err := k.validate(); err != nil {
			errs = append(errs, fmt.Errorf("policies[%d]: %w", i, err))
		}
		if seen[k] {
			errs = append(errs, fmt.Errorf("policies[%d]: %s listed twice", i, k))
		}
		seen[k] = true
	}
	return errs
}

type serviceKey struct{ namespace, name string }

func serviceWhere(i int, svc *Service) string {
	return fmt.Sprintf("services[%d] (%s/%s)", i, svc.Namespace, svc.Name)
}

// validateService checks one Service's content; the error strings are made only for errors.
func validateService(i int, svc *Service) []error {
	var errs []error
	if svc.Namespace == "" || svc.Name == "" {
		errs = append(errs, fmt.Errorf("%s: namespace and name are required", serviceWhere(i, svc)))
	}
	if len(svc.Ports) == 0 {
		errs = append(errs, fmt.Errorf("%s: no ports", serviceWhere(i, svc)))
	}
	var ports [4]int32 // most Services have few ports: no map
	seen := ports[:0]
	for j, p := range svc.Ports {
		pw := func() string { return fmt.Sprintf("%s.ports[%d]", serviceWhere(i, svc), j) }
		if p.Port < 1 || p.Port > 65535 || slices.Contains(seen, p.Port) {
			errs = append(errs, fmt.Errorf("%s: port %d is out of range or listed twice", pw(), p.Port))
		}
		seen = append(seen, p.Port)
		if p.CapturePort < 0 || p.CapturePort > 65535 {
			errs = append(errs, fmt.Errorf("%s: capture port %d is out of range", pw(), p.CapturePort))
		}
		for k, e := range p.Endpoints {
			if err := e.validate(); err != nil {
				errs = append(errs, fmt.Errorf("%s.endpoints[%d]: %w", pw(), k, err))
			}
		}
		if p.RateLimit != nil {
			errs = appendPrefixed(errs, pw, ".rateLimit", p.RateLimit.validate())
		}
		if p.CircuitBreaker != nil {
			errs = appendPrefixed(errs, pw, ".circuitBreaker", p.CircuitBreaker.validate())
		}
		if p.Retry != nil {
			errs = appendPrefixed(errs, pw, ".retry", p.Retry.validate())
		}
	}
	return errs
}

func appendPrefixed(errs []error, where func() string, what string, more []error) []error {
	for _, e := range more {
		errs = append(errs, fmt.Errorf("%s%s: %w", where(), what, e))
	}
	return errs
}

func (e Endpoint) validate() error {
	if e.Port < 1 || e.Port > 65535 {
		return fmt.Errorf("port %d out of range", e.Port)
	}
	switch e.Type {
	case AddressIPv4, AddressIPv6:
		a, err := netip.ParseAddr(e.Address)
		if err != nil || (e.Type == AddressIPv4) != a.Is4() {
			return fmt.Errorf("%q is not an %s address", e.Address, e.Type)
		}
	case AddressFQDN:
		if e.Address == "" || len(e.Address) > 253 || strings.ContainsAny(e.Address, "/:@ ") {
			return fmt.Errorf("%q is not a host name", e.Address)
		}
	default:
		return fmt.Errorf("unknown address type %q", e.Type)
	}
	return nil
}

func (r *RateLimit) validate() []error {
	var errs []error
	if len(r.Limits) == 0 {
		errs = append(errs, errors.New("no limits"))
	}
	for i, l := range r.Limits {
		switch {
		case l.Name == "":
			errs = append(errs, fmt.Errorf("limits[%d]: no name", i))
		case l.Requests < 1 || l.Burst < 1 || l.Replicas < 1:
			errs = append(errs, fmt.Errorf("limits[%d]: requests, burst and replicas must be at least 1", i))
		case l.Period <= 0 || l.Period.D()*time.Duration(l.Replicas)/time.Duration(l.Requests) < 1: // tokens are timed in ns
			errs = append(errs, fmt.Errorf("limits[%d]: period %s cannot hold %d tokens", i, l.Period.D(), l.Requests))
		case l.MaxKeys < 1:
			errs = append(errs, fmt.Errorf("limits[%d]: maxKeys must be at least 1", i))
		case l.StateKey == "":
			errs = append(errs, fmt.Errorf("limits[%d]: no state key", i))
		}
		if g := l.Global; g != nil {
			switch {
			case g.Bucket == "" || g.Burst < 1:
				errs = append(errs, fmt.Errorf("limits[%d].global: needs a bucket name and a burst of at least 1", i))
			case g.OnStoreError != OnStoreErrorLocal && g.OnStoreError != OnStoreErrorAllow && g.OnStoreError != OnStoreErrorDeny:
				errs = append(errs, fmt.Errorf("limits[%d].global: onStoreError %q, want Local, Allow or Deny", i, g.OnStoreError))
			}
		}
		for j, k := range l.Key {
			if k.ClientIP == (k.Header != "") {
				errs = append(errs, fmt.Errorf("limits[%d].key[%d]: exactly one of clientIP and header", i, j))
			}
		}
	}
	for i, c := range r.TrustedProxies {
		if _, err := netip.ParsePrefix(c); err != nil {
			errs = append(errs, fmt.Errorf("trustedProxies[%d]: %w", i, err))
		}
	}
	if r.IPv6PrefixLength < 1 || r.IPv6PrefixLength > 128 {
		errs = append(errs, fmt.Errorf("ipv6PrefixLength %d out of 1..128", r.IPv6PrefixLength))
	}
	if r.Delay && r.MaxDelay <= 0 {
		errs = append(errs, errors.New("delay without a positive maxDelay"))
	}
	return errs
}

func (c *CircuitBreaker) validate() []error {
	var errs []error
	if _, err := codes.Parse(c.FailureStatusCodes); err != nil {
		errs = append(errs, fmt.Errorf("failureStatusCodes: %w", err))
	}
	if err := validGRPCCodes(c.FailureGRPCCodes); err != nil {
		errs = append(errs, fmt.Errorf("failureGRPCCodes: %w", err))
	}
	if (c.ConsecutiveFailures > 0) == (c.FailureRatio != nil) {
		errs = append(errs, errors.New("exactly one of consecutiveFailures and failureRatio"))
	}
	if r := c.FailureRatio; r != nil && (r.Percent < 1 || r.Percent > 100 || r.MinimumRequests < 1 || r.Window <= 0) {
		errs = append(errs, errors.New("failureRatio needs percent 1..100, minimumRequests >= 1 and a positive window"))
	}
	if c.OpenDuration <= 0 || (c.MaxOpenDuration > 0 && c.MaxOpenDuration < c.OpenDuration) {
		errs = append(errs, errors.New("openDuration must be positive and maxOpenDuration 0 or at least openDuration"))
	}
	if c.HalfOpenRequests < 1 || c.SuccessThreshold < 1 {
		errs = append(errs, errors.New("halfOpen maxRequests and successThreshold must be at least 1"))
	}
	if c.MaxOpenPercent < 1 || c.MaxOpenPercent > 100 {
		errs = append(errs, fmt.Errorf("maxOpenPercent %d out of 1..100", c.MaxOpenPercent))
	}
	if c.FallbackStatus != 429 && (c.FallbackStatus < 500 || c.FallbackStatus > 599) {
		errs = append(errs, fmt.Errorf("fallback status %d is not 429 or 5xx", c.FallbackStatus))
	}
	if cc := c.Concurrency; cc != nil && (cc.MaxRequests < 1 || cc.MaxQueued < 0 || cc.QueueTimeout < 0) {
		errs = append(errs, errors.New("concurrency needs maxRequests >= 1, maxQueued >= 0, queueTimeout >= 0"))
	}
	if c.SlowCallDuration < 0 || c.ServeStale < 0 {
		errs = append(errs, errors.New("negative duration"))
	}
	if c.StateKey == "" {
		errs = append(errs, errors.New("no state key"))
	}
	return errs
}

func (r *Retry) validate() []error {
	var errs []error
	if r.MaxAttempts < 1 || r.MaxAttempts > 10 {
		errs = append(errs, fmt.Errorf("maxAttempts %d out of 1..10", r.MaxAttempts))
	}
	if _, err := codes.Parse(r.RetryStatusCodes); err != nil {
		errs = append(errs, fmt.Errorf("retryStatusCodes: %w", err))
	}
	if err := validGRPCCodes(r.RetryGRPCCodes); err != nil {
		errs = append(errs, fmt.Errorf("retryGRPCCodes: %w", err))
	}
	switch r.BackoffStrategy {
	case "Exponential", "Linear", "Fixed":
	default:
		errs = append(errs, fmt.Errorf("unknown backoff strategy %q", r.BackoffStrategy))
	}
	switch r.Jitter {
	case "Full", "Equal", "Decorrelated", "None":
	default:
		errs = append(errs, fmt.Errorf("unknown jitter %q", r.Jitter))
	}
	if r.BackoffBase < 0 || r.BackoffMax < r.BackoffBase {
		errs = append(errs, errors.New("backoff base must be >= 0 and <= max"))
	}
	if r.PerTryTimeout < 0 || r.Timeout < 0 || (r.PerTryTimeout > 0 && r.Timeout > 0 && r.PerTryTimeout > r.Timeout) {
		errs = append(errs, errors.New("timeouts must be >= 0 and perTryTimeout <= timeout"))
	}
	if r.BudgetPercent < 0 || r.BudgetPercent > 100 || r.BudgetMinPerSecond < 0 || r.BudgetWindow <= 0 {
		errs = append(errs, errors.New("budget needs percent 0..100, minRetriesPerSecond >= 0 and a positive window"))
	}
	if r.MaxHedges < 0 || (r.MaxHedges > 0 && (r.HedgeDelay <= 0 || r.MaxHedges >= r.MaxAttempts)) {
		errs = append(errs, errors.New("hedges need a positive delay and fewer hedges than maxAttempts"))
	}
	if r.StateKey == "" {
		errs = append(errs, errors.New("no state key"))
	}
	return errs
}
