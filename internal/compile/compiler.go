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
	"fmt"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/types"

	"resilience.dev/operator/api/v1alpha1"
	"resilience.dev/operator/internal/capture"
	"resilience.dev/operator/internal/snapshot"
)

// Input is the slice of cluster state a snapshot is compiled from.
type Input struct {
	RateLimits      []v1alpha1.RateLimit
	CircuitBreakers []v1alpha1.CircuitBreaker
	RetryPolicies   []v1alpha1.RetryPolicy
	Services        []corev1.Service
	EndpointSlices  []discoveryv1.EndpointSlice
	// CaptureRange is the gateway's capture range (capture.DefaultRange when zero).
	CaptureRange capture.Range
	// GatewayReplicas is the number of ready gateway replicas that Split limits are divided across;
	// values below 1 count as 1.
	GatewayReplicas int
}

// Compiler compiles one snapshot after another (the manager's snapshot builder); its zero value is
// ready, and new(Compiler).Compile(in) is a one-shot compile. It keeps each Service's compiled and
// encoded form: a Service whose inputs are unchanged since the last compile (the Service and its
// EndpointSlices at the same resourceVersion, the same policies at the same generation governing its
// ports, the same number of gateway replicas) is taken as it was, neither compiled, validated nor
// encoded again. Objects without a resourceVersion (or policies without a UID and generation) are
// compiled every time, so what the cache holds never changes the result. Not safe for concurrent use.
type Compiler struct {
	cache map[serviceKey]*compiledService
	// valid remembers whether each policy (by UID and generation: its spec) passed validation.
	valid map[policyGen]bool
	// resolved remembers the winners of each namespace's policies of one kind, by the inputs of the
	// resolution (the policies' UIDs and generations, the targeted Services' UIDs and resourceVersions).
	resolved map[resolveKey]*resolution
}

type serviceKey struct{ namespace, name string }

type policyGen struct {
	uid        types.UID
	generation int64
}

// Compile builds the snapshot of in, with each Service encoded (reusing what it can, see Compiler).
// The caches are replaced only by a compile that succeeds.
func (c *Compiler) Compile(in Input) (*snapshot.Encoded, error) {
	if c.resolved == nil {
		c.resolved = map[resolveKey]*resolution{}
	}
	idx := c.index(&in)
	ports, refs := c.resolve(idx)
	services, cache, err := c.compileServices(idx, ports)
	if err != nil {
		return nil, err
	}
	enc, err := assemble(services, refs)
	if err != nil {
		return nil, fmt.Errorf("compiled snapshot is invalid: %w", err)
	}
	c.cache = cache
	return enc, nil
}
