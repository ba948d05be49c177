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

// Package compile turns cluster state (policies, Services, EndpointSlices) into the snapshot that the
// gateways enforce (internal/snapshot). It applies exactly the reconcilers' rules (internal/policy) to
// decide which policy governs each port, so status and enforcement never disagree; policies that fail
// validation are left out, as their Accepted=False status says.
//
// One entry point, (*Compiler).Compile, runs the stages in order, each in its own file:
//
//   - index (index.go): arrange the input for lookups, and keep the valid, live policies of each kind
//     by namespace;
//   - resolve (resolve.go): settle, per kind and namespace, which policy governs each Service port;
//   - compile each governed Service (service.go): its ports with their policies (policies.go, with the
//     contract's defaults of defaults.go) and ready endpoints (endpoints.go), encoded at once;
//   - assemble (assemble.go): sort the Services, list the policies in force, validate.
//
// The kinds are one table (kinds.go), so each stage handles the three kinds alike. The Compiler keeps
// what it can reuse from one compile to the next (compiler.go): a Service whose inputs are unchanged is
// taken as it was, neither compiled, validated nor encoded again.
package compile
