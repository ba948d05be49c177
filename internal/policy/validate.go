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

package policy

import (
	"fmt"
	"net/netip"
	"regexp"
	"time"

	"k8s.io/apimachinery/pkg/util/validation/field"

	"resilience.dev/operator/api/v1alpha1"
	"resilience.dev/operator/internal/patterns/codes"
	"resilience.dev/operator/internal/patterns/globallimit"
)

// gep2257 is the Gateway API duration format; the CRD schema enforces it, and Go checks it again for
// objects that reached the API server before the schema did.
var gep2257 = regexp.MustCompile(`^([0-9]{1,5}(h|m|s|ms)){1,4}$`)

// ParseDuration parses a GEP-2257 duration. The empty string is zero.
func ParseDuration(d v1alpha1.Duration) (time.Duration, error) {
	if d == "" {
		return 0, nil
	}
	if !gep2257.MatchString(string(d)) {
		return 0, fmt.Errorf("%q is not a duration such as 500ms, 1s or 1m30s", string(d))
	}
	return time.ParseDuration(string(d))
}

// ParseStatusCodes parses a list of status codes and inclusive ranges.
func ParseStatusCodes(specs []v1alpha1.StatusCodes) (codes.Set, error) {
	s := make([]string, len(specs))
	for i, c := range specs {
		s[i] = string(c)
	}
	return codes.Parse(s)
}

type checker struct{ errs field.ErrorList }

func (c *checker) duration(path *field.Path, d v1alpha1.Duration) time.Duration {
	v, err := ParseDuration(d)
	if err != nil {
		c.errs = append(c.errs, field.Invalid(path, string(d), err.Error()))
	}
	return v
}

func (c *checker) codes(path *field.Path, specs []v1alpha1.StatusCodes) {
	if _, err := ParseStatusCodes(specs); err != nil {
		c.errs = append(c.errs, field.Invalid(path, specs, err.Error()))
	}
}

func (c *checker) invalid(path *field.Path, value any, msg string) {
	c.errs = append(c.errs, field.Invalid(path, value, msg))
}

// ValidateRateLimit makes the checks of a RateLimit spec that the CRD schema cannot make, and repeats the
// schema's cross-field rules for objects stored before the schema had them.
func ValidateRateLimit(spec *v1alpha1.RateLimitSpec) field.ErrorList {
	var c checker
	root := field.NewPath("spec")
	for i, l := range spec.Limits {
		p := root.Child("limits").Index(i)
		period := c.duration(p.Child("period"), l.Period)
		if l.Requests < 1 {
			c.invalid(p.Child("requests"), l.Requests, "must be at least 1")
		} else if period > 0 && period/time.Duration(l.Requests) < 1 {
			// Tokens are timed in nanoseconds: a faster rate cannot be enforced exactly.
			c.invalid(p.Child("requests"), l.Requests,
				fmt.Sprintf("%d requests per %s is above one per nanosecond and cannot be enforced", l.Requests, l.Period))
		}
		for j, k := range l.Key {
			if (k.ClientIP != nil) == (k.Header != nil) {
				c.invalid(p.Child("key").Index(j), "", "each key part must set exactly one of clientIP or header")
			}
		}
		if IsGlobal(spec, l) && l.Requests >= 1 && period > 0 {
			// The store computes in integers exact in a float64 (Lua numbers): a limit beyond them
			// cannot be kept exactly there.
			burst := int64(l.Requests)
			if l.Burst != nil {
				burst = int64(*l.Burst)
			}
			if _, err := globallimit.RateOf(int64(l.Requests), period, burst); err != nil {
				c.invalid(p, l.Name, "distribution Global: "+err.Error())
			}
		}
	}
	if spec.MaxDelay != nil {
		c.duration(root.Child("maxDelay"), *spec.MaxDelay)
		if spec.OnExceeded != v1alpha1.OnExceededDelay {
			c.invalid(root.Child("maxDelay"), *spec.MaxDelay, "maxDelay may only be set with onExceeded: Delay")
		}
	}
	if spec.ClientIP != nil {
		for i, cidr := range spec.ClientIP.TrustedProxies {
			if _, err := netip.ParsePrefix(cidr); err != nil {
				c.invalid(root.Child("clientIP", "trustedProxies").Index(i), cidr, "must be a CIDR such as 10.0.0.0/8")
			}
		}
	}
	return c.errs
}

// ValidateCircuitBreaker makes the checks of a CircuitBreaker spec that the CRD schema cannot make, and
// repeats the schema's cross-field rules.
func ValidateCircuitBreaker(spec *v1alpha1.CircuitBreakerSpec) field.ErrorList {
	var c checker
	root := field.NewPath("spec")
	if spec.Concurrency != nil {
		c.duration(root.Child("concurrency", "queueTimeout"), spec.Concurrency.QueueTimeout)
	}
	if fc := spec.FailureCriteria; fc != nil {
		c.codes(root.Child("failureCriteria", "statusCodes"), fc.StatusCodes)
		c.duration(root.Child("failureCriteria", "slowCallDuration"), fc.SlowCallDuration)
	}
	if t := spec.Trip; t != nil {
		if (t.ConsecutiveFailures != nil) == (t.FailureRatio != nil) {
			c.invalid(root.Child("trip"), "", "trip must set exactly one of consecutiveFailures or failureRatio")
		}
		if t.FailureRatio != nil {
			c.duration(root.Child("trip", "failureRatio", "window"), t.FailureRatio.Window)
		}
	}
	open := c.duration(root.Child("openDuration"), spec.OpenDuration)
	maxOpen := c.duration(root.Child("maxOpenDuration"), spec.MaxOpenDuration)
	if maxOpen > 0 && maxOpen < open {
		c.invalid(root.Child("maxOpenDuration"), spec.MaxOpenDuration, "maxOpenDuration must be 0s or at least openDuration")
	}
	if f := spec.Fallback; f != nil {
		if f.StatusCode != 0 && f.StatusCode != 429 && (f.StatusCode < 500 || f.StatusCode > 599) {
			c.invalid(root.Child("fallback", "statusCode"), f.StatusCode, "fallback.statusCode must be 429 or within 500..599")
		}
		c.duration(root.Child("fallback", "serveStale"), f.ServeStale)
	}
	return c.errs
}

// ValidateRetryPolicy makes the checks of a RetryPolicy spec that the CRD schema cannot make, and repeats
// the schema's cross-field rules.
func ValidateRetryPolicy(spec *v1alpha1.RetryPolicySpec) field.ErrorList {
	var c checker
	root := field.NewPath("spec")
	if r := spec.RetryOn; r != nil {
		c.codes(root.Child("retryOn", "statusCodes"), r.StatusCodes)
	}
	if b := spec.Backoff; b != nil {
		base := c.duration(root.Child("backoff", "base"), b.Base)
		maxDelay := c.duration(root.Child("backoff", "max"), b.Max)
		if b.Base != "" && b.Max != "" && base > maxDelay {
			c.invalid(root.Child("backoff", "base"), b.Base, "backoff.base must not exceed backoff.max")
		}
	}
	perTry := c.duration(root.Child("perTryTimeout"), spec.PerTryTimeout)
	timeout := c.duration(root.Child("timeout"), spec.Timeout)
	if perTry > 0 && timeout > 0 && perTry > timeout {
		c.invalid(root.Child("perTryTimeout"), spec.PerTryTimeout, "perTryTimeout must not exceed timeout")
	}
	if b := spec.Budget; b != nil {
		c.duration(root.Child("budget", "window"), b.Window)
	}
	if h := spec.Hedge; h != nil {
		c.duration(root.Child("hedge", "delay"), h.Delay)
		if spec.MaxAttempts > 0 && h.MaxHedges >= spec.MaxAttempts {
			c.invalid(root.Child("hedge", "maxHedges"), h.MaxHedges, "hedge.maxHedges must be below maxAttempts: each hedge counts as a try")
		}
	}
	return c.errs
}

// IsGlobal reports whether limit l of spec has distribution Global (its own, or the spec's).
func IsGlobal(spec *v1alpha1.RateLimitSpec, l v1alpha1.Limit) bool {
	d := spec.Distribution
	if l.Distribution != nil {
		d = l.Distribution
	}
	return d != nil && *d == v1alpha1.DistributionGlobal
}
