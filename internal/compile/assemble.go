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
	"cmp"
	"slices"
	"strings"

	"resilience.dev/operator/internal/snapshot"
)

// assemble puts the compiled Services in order, lists the policies in force, and validates what was
// compiled now (Services taken from the cache were validated when they were compiled).
func assemble(services []managedService, refs []snapshot.PolicyRef) (*snapshot.Encoded, error) {
	slices.SortFunc(services, func(a, b managedService) int {
		return cmp.Or(strings.Compare(a.key.namespace, b.key.namespace), strings.Compare(a.key.name, b.key.name))
	})
	snap := &snapshot.Snapshot{Services: make([]snapshot.Service, 0, len(services))}
	encodings := make([]string, 0, len(services))
	for _, ms := range services {
		snap.Services = append(snap.Services, ms.svc)
		encodings = append(encodings, ms.enc)
	}
	snap.Policies = inForce(snap, refs)
	if err := snap.ValidateServices(func(i int) bool { return !services[i].cached }); err != nil {
		return nil, err
	}
	return &snapshot.Encoded{Snapshot: snap, Encodings: encodings}, nil
}

// inForce keeps the policies that govern at least one port, sorted.
func inForce(snap *snapshot.Snapshot, refs []snapshot.PolicyRef) []snapshot.PolicyRef {
	used := map[snapshot.PolicyKey]bool{}
	for _, s := range snap.Services {
		for i := range s.Ports {
			for _, k := range kinds {
				if ref := k.inForce(&s.Ports[i]); ref != nil {
					used[ref.Key()] = true
				}
			}
		}
	}
	out := make([]snapshot.PolicyRef, 0, len(used))
	for _, r := range refs {
		if used[r.Key()] {
			out = append(out, r)
		}
	}
	slices.SortFunc(out, func(a, b snapshot.PolicyRef) int { return a.Key().Compare(b.Key()) })
	return out
}
