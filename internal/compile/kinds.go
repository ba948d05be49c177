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

	"resilience.dev/operator/api/v1alpha1"
	"resilience.dev/operator/internal/policy"
	"resilience.dev/operator/internal/snapshot"
)

// kind is what the compiler knows of one policy kind beyond internal/policy's table (its name and
// validation): where the input holds its policies and where a snapshot port holds its compiled form.
// Every stage loops over kinds, so a new kind is one entry here, not a new block in each stage.
type kind struct {
	policy.Kind
	// policies lists the kind's policies in the input, pointing into it.
	policies func(in *Input) []v1alpha1.Policy
	// compile writes p, a policy of the kind governing port k, into the port.
	compile func(p v1alpha1.Policy, k portKey, replicas int, port *snapshot.Port) error
	// inForce returns the policy of the kind compiled into a port, or nil.
	inForce func(port *snapshot.Port) *snapshot.PolicyRef
}

type portKey = policy.PortKey

// kinds are in the order of policy.Kinds (a test holds them to it).
var kinds = []kind{
	{
		Kind:     mustKind(v1alpha1.KindRateLimit),
		policies: func(in *Input) []v1alpha1.Policy { return pointers(in.RateLimits) },
		compile: func(p v1alpha1.Policy, k portKey, replicas int, port *snapshot.Port) (err error) {
			port.RateLimit, err = compileRateLimit(p.(*v1alpha1.RateLimit), k, replicas)
			return err
		},
		inForce: func(port *snapshot.Port) *snapshot.PolicyRef {
			if port.RateLimit == nil {
				return nil
			}
			return &port.RateLimit.Policy
		},
	},
	{
		Kind:     mustKind(v1alpha1.KindCircuitBreaker),
		policies: func(in *Input) []v1alpha1.Policy { return pointers(in.CircuitBreakers) },
		compile: func(p v1alpha1.Policy, k portKey, _ int, port *snapshot.Port) error {
			port.CircuitBreaker = compileCircuitBreaker(p.(*v1alpha1.CircuitBreaker), k)
			return nil
		},
		inForce: func(port *snapshot.Port) *snapshot.PolicyRef {
			if port.CircuitBreaker == nil {
				return nil
			}
			return &port.CircuitBreaker.Policy
		},
	},
	{
		Kind:     mustKind(v1alpha1.KindRetryPolicy),
		policies: func(in *Input) []v1alpha1.Policy { return pointers(in.RetryPolicies) },
		compile: func(p v1alpha1.Policy, k portKey, _ int, port *snapshot.Port) error {
			port.Retry = compileRetry(p.(*v1alpha1.RetryPolicy), k)
			return nil
		},
		inForce: func(port *snapshot.Port) *snapshot.PolicyRef {
			if port.Retry == nil {
				return nil
			}
			return &port.Retry.Policy
		},
	},
}

func mustKind(name string) policy.Kind {
	k, ok := policy.KindNamed(name)
	if !ok {
		panic(fmt.Sprintf("compile: %s is not in policy.Kinds", name))
	}
	return k
}

// pointers returns the policies of a typed slice as v1alpha1.Policy, pointing into it.
func pointers[T any, P interface {
	*T
	v1alpha1.Policy
}](items []T) []v1alpha1.Policy {
	out := make([]v1alpha1.Policy, len(items))
	for i := range items {
		out[i] = P(&items[i])
	}
	return out
}

func refOf(kind string, p v1alpha1.Policy) snapshot.PolicyRef {
	return snapshot.PolicyRef{Kind: kind, Namespace: p.GetNamespace(), Name: p.GetName(), UID: string(p.GetUID()), Generation: p.GetGeneration()}
}
