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
	"testing"

	"resilience.dev/operator/internal/policy"
)

// The compiler's table of kinds follows internal/policy's, kind for kind: the order of each port's
// policies (and of the inputs the cache compares) is the contract's.
func TestKindsFollowPolicyKinds(t *testing.T) {
	if len(kinds) != len(policy.Kinds) {
		t.Fatalf("compile has %d kinds, internal/policy %d", len(kinds), len(policy.Kinds))
	}
	for i, k := range kinds {
		if k.Name != policy.Kinds[i].Name {
			t.Errorf("kinds[%d] is %s, policy.Kinds[%d] is %s", i, k.Name, i, policy.Kinds[i].Name)
		}
	}
}
