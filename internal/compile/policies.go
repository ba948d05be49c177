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

package compile

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"

	"resilience.dev/operator/api/v1alpha1"
	"resilience.dev/operator/internal/snapshot"
)

func compileRateLimit(p *v1alpha1.RateLimit, k portKey, replicas int) (*snapshot.RateLimit, error) {
	s := p.Spec
	out := &snapshot.RateLimit{
		Policy:           refOf(v1alpha1.KindRateLimit, p),
		IPv6PrefixLength: defaultIPv6Prefix,
		Delay:            s.OnExceeded == v1alpha1.OnExceededDelay,
		DryRun:           s.Mode == v1alpha1.ModeDryRun,
	}
	if s.ClientIP != nil {
		out.TrustedProxies = append([]string(nil), s.ClientIP.TrustedProxies...)
		out.IPv6PrefixLength = int(orDefault(s.ClientIP.IPv6PrefixLength, defaultIPv6Prefix))
	}
	if out.Delay {
		out.MaxDelay = snapshot.Duration(defaultMaxDelay)
		if s.MaxDelay != nil {
			out.MaxDelay = mustDuration(*s.MaxDelay, defaultMaxDelay)
		}
	}
	for _, l := range s.Limits {
		lim := snapshot.Limit{
			Name:     l.Name,
			Requests: int64(l.Requests),
			Period:   mustDuration(l.Period, 0),
			Replicas: 1,
			Burst:    int64(l.Requests), // burst defaults to requests
			MaxKeys:  int(orDefault(l.MaxKeys, defaultMaxKeys)),
		}
		if l.Burst != nil {
			lim.Burst = int64(*l.Burst)
		}
		for _, kp := range l.Key {
			part := snapshot.KeyPart{ClientIP: kp.ClientIP != nil}
			if kp.Header != nil {
				part.Header = string(*kp.Header)
			}
			lim.Key = append(lim.Key, part)
		}
		if l.Match != nil {
			lim.Methods = methods(l.Match.Methods)
			if l.Match.PathPrefix != nil {
				lim.PathPrefix = *l.Match.PathPrefix
			}
		}
		// Split divides the rate by stretching the period over the replicas (exact, no rounding) and
		// the burst by integer division, never below one token.
		dist := distributionOf(s, l)
		if dist == v1alpha1.DistributionGlobal {
			lim.Global = globalOf(p, s, l, lim, k)
		}
		// A Global limit's own numbers are the Local fallback's: the Split share.
		if (dist == v1alpha1.DistributionSplit || dist == v1alpha1.DistributionGlobal) && replicas > 1 {
			lim.Replicas = replicas
			lim.Burst = max(lim.Burst/int64(replicas), 1)
		}
		lim.StateKey = stateKey(string(p.UID), "limit/"+l.Name+"/"+portLabel(k), struct {
			snapshot.Limit
			TrustedProxies []string
			IPv6Prefix     int
		}{lim, out.TrustedProxies, out.IPv6PrefixLength})
		out.Limits = append(out.Limits, lim)
	}
	return out, nil
}

// distributionOf is a limit's distribution: its own, else the spec's, else Split for limits without
// a key and PerReplica for keyed ones.
func distributionOf(s v1alpha1.RateLimitSpec, l v1alpha1.Limit) v1alpha1.Distribution {
	switch {
	case l.Distribution != nil:
		return *l.Distribution
	case s.Distribution != nil:
		return *s.Distribution
	case len(l.Key) > 0:
		return v1alpha1.DistributionPerReplica
	}
	return v1alpha1.DistributionSplit
}

// globalOf is the Global part of a limit, before the Split share is applied to lim. Its bucket name
// hashes only what shapes the shared bucket (not the replica count), so every replica names the
// same bucket and scaling the gateway keeps it.
func globalOf(p *v1alpha1.RateLimit, s v1alpha1.RateLimitSpec, l v1alpha1.Limit, lim snapshot.Limit, k portKey) *snapshot.GlobalLimit {
	onErr := v1alpha1.OnStoreErrorLocal
	if l.OnStoreError != nil {
		onErr = *l.OnStoreError
	} else if s.OnStoreError != nil {
		onErr = *s.OnStoreError
	}
	bucket := stateKey(string(p.UID), "global/"+l.Name+"/"+portLabel(k), struct {
		Requests   int64
		Period     snapshot.Duration
		Burst      int64
		Key        []snapshot.KeyPart
		Methods    []string
		PathPrefix string
	}{lim.Requests, lim.Period, lim.Burst, lim.Key, lim.Methods, lim.PathPrefix})
	return &snapshot.GlobalLimit{Bucket: bucket, Burst: lim.Burst, OnStoreError: string(onErr)}
}

func compileCircuitBreaker(p *v1alpha1.CircuitBreaker, k portKey) *snapshot.CircuitBreaker {
	s := p.Spec
	out := &snapshot.CircuitBreaker{
		Policy:             refOf(v1alpha1.KindCircuitBreaker, p),
		FailureStatusCodes: append([]string(nil), defaultFailureCodes...),
		FailOnConnectError: true,
		FailOnTimeout:      true,
		FailureGRPCCodes:   append([]string(nil), defaultFailureGRPC...),
		OpenDuration:       mustDuration(s.OpenDuration, defaultOpenDuration),
		MaxOpenDuration:    mustDuration(s.MaxOpenDuration, 0),
		HalfOpenRequests:   1,
		SuccessThreshold:   1,
		PerEndpoint:        s.Scope == v1alpha1.ScopeEndpoint,
		MaxOpenPercent:     int(orDefault(s.MaxOpenPercent, defaultMaxOpenPercent)),
		FallbackStatus:     defaultFallbackStatus,
		DryRun:             s.Mode == v1alpha1.ModeDryRun,
	}
	if c := s.Concurrency; c != nil {
		out.Concurrency = &snapshot.Concurrency{MaxRequests: int(c.MaxRequests), MaxQueued: int(c.MaxQueued),
			QueueTimeout: mustDuration(c.QueueTimeout, defaultQueueTimeout)}
	}
	if fc := s.FailureCriteria; fc != nil {
		out.FailureStatusCodes = specs(fc.StatusCodes, defaultFailureCodes)
		out.FailOnConnectError = boolOr(fc.ConnectErrors, true)
		out.FailOnTimeout = boolOr(fc.Timeouts, true)
		out.SlowCallDuration = mustDuration(fc.SlowCallDuration, 0)
		out.FailureGRPCCodes = grpcCodes(fc.GRPCCodes, defaultFailureGRPC)
	}
	switch {
	case s.Trip != nil && s.Trip.FailureRatio != nil:
		r := s.Trip.FailureRatio
		out.FailureRatio = &snapshot.FailureRatio{
			Percent:         int(orDefault(r.Percent, defaultRatioPercent)),
			MinimumRequests: int(orDefault(r.MinimumRequests, defaultRatioMinimum)),
			Window:          mustDuration(r.Window, defaultRatioWindow),
		}
	case s.Trip != nil && s.Trip.ConsecutiveFailures != nil:
		out.ConsecutiveFailures = int(*s.Trip.ConsecutiveFailures)
	default:
		out.ConsecutiveFailures = defaultConsecutive
	}
	if h := s.HalfOpen; h != nil {
		out.HalfOpenRequests = int(orDefault(h.MaxRequests, 1))
		out.SuccessThreshold = int(orDefault(h.SuccessThreshold, 1))
	}
	if f := s.Fallback; f != nil {
		out.FallbackStatus = int(orDefault(f.StatusCode, defaultFallbackStatus))
		out.ServeStale = mustDuration(f.ServeStale, 0)
	}
	params := *out
	params.Policy = snapshot.PolicyRef{} // a new generation with the same parameters keeps the breaker's state
	out.StateKey = stateKey(string(p.UID), "breaker/"+portLabel(k), params)
	return out
}

func compileRetry(p *v1alpha1.RetryPolicy, k portKey) *snapshot.Retry {
	s := p.Spec
	out := &snapshot.Retry{
		Policy:             refOf(v1alpha1.KindRetryPolicy, p),
		MaxAttempts:        int(orDefault(s.MaxAttempts, defaultMaxAttempts)),
		RetryStatusCodes:   append([]string(nil), defaultRetryCodes...),
		RetryConnect:       true,
		RetryResets:        true,
		RetryTimeouts:      true,
		RetryGRPCCodes:     append([]string(nil), defaultRetryGRPC...),
		Methods:            append([]string(nil), defaultRetryMethods...),
		BackoffStrategy:    string(v1alpha1.BackoffExponential),
		BackoffBase:        snapshot.Duration(defaultBackoffBase),
		BackoffMax:         snapshot.Duration(defaultBackoffMax),
		Jitter:             string(v1alpha1.JitterFull),
		PerTryTimeout:      mustDuration(s.PerTryTimeout, 0),
		Timeout:            mustDuration(s.Timeout, 0),
		BudgetPercent:      defaultBudgetPercent,
		BudgetMinPerSecond: defaultBudgetMinPerSec,
		BudgetWindow:       snapshot.Duration(defaultBudgetWindow),
		RespectRetryAfter:  boolOr(s.RespectRetryAfter, true),
	}
	if r := s.RetryOn; r != nil {
		out.RetryStatusCodes = specs(r.StatusCodes, defaultRetryCodes)
		out.RetryConnect = boolOr(r.ConnectErrors, true)
		out.RetryResets = boolOr(r.Resets, true)
		out.RetryTimeouts = boolOr(r.Timeouts, true)
		out.RetryGRPCCodes = grpcCodes(r.GRPCCodes, defaultRetryGRPC)
	}
	if len(s.Methods) > 0 {
		out.Methods = methods(s.Methods)
	}
	if b := s.Backoff; b != nil {
		out.BackoffStrategy = string(orDefault(b.Strategy, v1alpha1.BackoffExponential))
		out.BackoffBase = mustDuration(b.Base, defaultBackoffBase)
		out.BackoffMax = mustDuration(b.Max, defaultBackoffMax)
		out.Jitter = string(orDefault(b.Jitter, v1alpha1.JitterFull))
	}
	if b := s.Budget; b != nil {
		if b.Percent != nil {
			out.BudgetPercent = int(*b.Percent)
		}
		if b.MinRetriesPerSecond != nil {
			out.BudgetMinPerSecond = int(*b.MinRetriesPerSecond)
		}
		out.BudgetWindow = mustDuration(b.Window, defaultBudgetWindow)
	}
	if h := s.Hedge; h != nil {
		out.HedgeDelay = mustDuration(h.Delay, 0)
		out.MaxHedges = int(orDefault(h.MaxHedges, 1))
	}
	out.StateKey = stateKey(string(p.UID), "budget/"+portLabel(k), struct {
		Percent, MinPerSecond int
		Window                snapshot.Duration
	}{out.BudgetPercent, out.BudgetMinPerSecond, out.BudgetWindow})
	return out
}

// stateKey names pattern state across snapshots: policy UID, what it is, and a hash of the parameters
// that shape it, so an unchanged limit or breaker keeps its state and a changed one starts afresh.
func stateKey(uid, what string, params any) string {
	b, err := json.Marshal(params)
	if err != nil { // params are plain structs of this package; this cannot fail
		panic(fmt.Sprintf("stateKey: %v", err))
	}
	sum := sha256.Sum256(b)
	return uid + "/" + what + "/" + hex.EncodeToString(sum[:8])
}

func portLabel(k portKey) string { return fmt.Sprintf("%s:%d", k.Service, k.Port) }
