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
	"bytes"
	"encoding/json"
	"fmt"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"

	"resilience.dev/operator/api/v1alpha1"
	"resilience.dev/operator/internal/snapshot"
)

// versioned is scaleInput with UIDs and resourceVersions on every object, as a cache holds them.
func versioned(n int) Input {
	in := scaleInput(n)
	for i := range in.Services {
		in.Services[i].UID = types.UID(fmt.Sprintf("svc-uid-%d", i))
		in.Services[i].ResourceVersion = "1"
	}
	for i := range in.EndpointSlices {
		in.EndpointSlices[i].UID = types.UID(fmt.Sprintf("slice-uid-%d", i))
		in.EndpointSlices[i].ResourceVersion = "1"
	}
	return in
}

// A Compiler that reuses its last compiles gives exactly what a new Compiler gives, change after
// change, and each delta between consecutive snapshots, applied by a Decoder, gives the next snapshot
// exactly.
func TestIncrementalMatchesOneShot(t *testing.T) {
	in := versioned(60)
	var c Compiler
	var dec snapshot.Decoder
	var prev *snapshot.Encoded
	steps := []struct {
		desc   string
		change func(in *Input)
	}{
		{"first", func(*Input) {}},
		{"nothing changed", func(*Input) {}},
		{"a snapshot.RateLimit's new generation", func(in *Input) {
			in.RateLimits[3].Spec.Limits[0].Requests = 7
			in.RateLimits[3].Generation++
		}},
		{"an endpoint moved", func(in *Input) {
			in.EndpointSlices[4].Endpoints[0].Addresses = []string{"10.9.9.9"}
			in.EndpointSlices[4].ResourceVersion = "2"
		}},
		{"a breaker deleted", func(in *Input) {
			now := metav1.Now()
			in.CircuitBreakers[2].DeletionTimestamp = &now
		}},
		{"a snapshot.Service's new port", func(in *Input) {
			in.Services[5].Spec.Ports[0].Port = 8080
			in.Services[5].ResourceVersion = "2"
		}},
		{"more gateway replicas", func(in *Input) { in.GatewayReplicas = 3 }},
		{"a retry policy for a second Service", func(in *Input) {
			in.RetryPolicies[1].Spec.TargetRefs = append(in.RetryPolicies[1].Spec.TargetRefs, v1alpha1.PolicyTargetReference{Kind: "Service", Name: "svc0"})
			in.RetryPolicies[1].Namespace = "ns0"
			in.RetryPolicies[1].Generation++
		}},
		{"a breaker comes back", func(in *Input) {
			in.CircuitBreakers[2].DeletionTimestamp = nil
			in.CircuitBreakers[2].Spec.Trip = &v1alpha1.Trip{ConsecutiveFailures: ptr.To[int32](9)}
			in.CircuitBreakers[2].Generation++
		}},
	}
	for _, st := range steps {
		st.change(&in)
		want, err := new(Compiler).Compile(in)
		if err != nil {
			t.Fatalf("%s: %v", st.desc, err)
		}
		wantJSON, _ := json.Marshal(want.Snapshot)
		got, err := c.Compile(in)
		if err != nil {
			t.Fatalf("%s: %v", st.desc, err)
		}
		gotJSON, _ := json.Marshal(got.Snapshot)
		if !bytes.Equal(gotJSON, wantJSON) {
			t.Fatalf("%s: the incremental snapshot differs from the one-shot one", st.desc)
		}
		body, err := got.Body()
		if err != nil || !bytes.Equal(body, wantJSON) {
			t.Fatalf("%s: Body() differs from json.Marshal (%v)", st.desc, err)
		}
		for i := range got.Services {
			enc, _ := json.Marshal(&got.Services[i])
			if string(enc) != got.Encodings[i] {
				t.Fatalf("%s: encoding of %s/%s is stale", st.desc, got.Services[i].Namespace, got.Services[i].Name)
			}
		}
		var applied *snapshot.Encoded
		if prev == nil {
			applied, err = dec.Decode(body)
		} else {
			delta, derr := snapshot.Diff(prev, got)
			if derr != nil {
				t.Fatal(derr)
			}
			applied, err = dec.DecodeDelta(delta)
		}
		if err != nil {
			t.Fatalf("%s: decode: %v", st.desc, err)
		}
		appliedBody, _ := applied.Body()
		if !bytes.Equal(appliedBody, wantJSON) {
			t.Fatalf("%s: the delta applied gives another snapshot:\n%s\nwant\n%s", st.desc, appliedBody, wantJSON)
		}
		prev = got
	}
}
