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

package server

import (
	"fmt"
	"strings"

	"resilience.dev/operator/api/v1alpha1"
	"resilience.dev/operator/internal/snapshot"
)

// Programmed reports whether every connected gateway replica runs a snapshot holding the policy at
// the given generation, with the reason and message of the Programmed condition. Endpoint changes
// make new versions but keep generations, so they do not flip it.
func (s *Server) Programmed(key snapshot.PolicyKey, generation int64) (bool, string, string) {
	states := s.liveStates()
	if len(states) == 0 {
		return false, v1alpha1.ReasonNoGateways, "no gateway replica is connected to the manager"
	}
	s.mu.Lock()
	compiled := s.current != nil && s.current.policies[key] == generation
	s.mu.Unlock()
	if !compiled {
		return false, v1alpha1.ReasonPending, fmt.Sprintf("0/%d gateway replicas: generation %d is not in force (see Accepted) or not compiled yet", len(states), generation)
	}
	var lagging []string
	for _, st := range states {
		if st.Policies[key] != generation {
			lagging = append(lagging, st.Replica)
		}
	}
	ready := len(states) - len(lagging)
	if len(lagging) == 0 {
		return true, v1alpha1.ReasonProgrammed, fmt.Sprintf("%d/%d gateway replicas", ready, len(states))
	}
	return false, v1alpha1.ReasonPending, fmt.Sprintf("%d/%d gateway replicas; waiting for %s", ready, len(states), strings.Join(lagging, ", "))
}
