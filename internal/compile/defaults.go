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
	"time"

	"resilience.dev/operator/api/v1alpha1"
	"resilience.dev/operator/internal/policy"
	"resilience.dev/operator/internal/snapshot"
)

// The contract's defaults, for fields that an object stored before the CRD defaulted them may lack.
// The CRDs' `default:` values say the same (defaults_test.go fails when they drift apart).
const (
	defaultMaxDelay        = 500 * time.Millisecond
	defaultMaxKeys         = 10000
	defaultIPv6Prefix      = 64
	defaultConsecutive     = 5
	defaultOpenDuration    = 30 * time.Second
	defaultRatioPercent    = 50
	defaultRatioMinimum    = 20
	defaultRatioWindow     = 30 * time.Second
	defaultMaxOpenPercent  = 50
	defaultFallbackStatus  = 503
	defaultQueueTimeout    = time.Second
	defaultMaxAttempts     = 3
	defaultBackoffBase     = 25 * time.Millisecond
	defaultBackoffMax      = time.Second
	defaultBudgetPercent   = 20
	defaultBudgetMinPerSec = 10
	defaultBudgetWindow    = 10 * time.Second
)

var (
	defaultFailureCodes = []string{"500-599"}
	defaultRetryCodes   = []string{"502", "503", "504"}
	defaultRetryMethods = []string{"GET", "HEAD", "OPTIONS", "PUT", "DELETE"}
	defaultRetryGRPC    = []string{"Unavailable"}
	defaultFailureGRPC  = []string{"Unavailable", "Internal", "DeadlineExceeded", "Unknown"}
)

func mustDuration(d v1alpha1.Duration, dflt time.Duration) snapshot.Duration {
	if d == "" {
		return snapshot.Duration(dflt)
	}
	v, err := policy.ParseDuration(d)
	if err != nil { // validated before compiling
		return snapshot.Duration(dflt)
	}
	return snapshot.Duration(v)
}

func orDefault[T comparable](v, dflt T) T {
	var zero T
	if v == zero {
		return dflt
	}
	return v
}

func boolOr(b *bool, dflt bool) bool {
	if b == nil {
		return dflt
	}
	return *b
}

func specs(codes []v1alpha1.StatusCodes, dflt []string) []string {
	if len(codes) == 0 {
		return append([]string(nil), dflt...)
	}
	out := make([]string, len(codes))
	for i, c := range codes {
		out[i] = string(c)
	}
	return out
}

func grpcCodes(codes []v1alpha1.GRPCCode, dflt []string) []string {
	if len(codes) == 0 {
		return append([]string(nil), dflt...)
	}
	out := make([]string, len(codes))
	for i, c := range codes {
		out[i] = string(c)
	}
	return out
}

func methods(ms []v1alpha1.HTTPMethod) []string {
	out := make([]string, len(ms))
	for i, m := range ms {
		out[i] = string(m)
	}
	return out
}
