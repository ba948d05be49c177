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

package main

import (
	"encoding/json"
	"fmt"
	"testing"

	"github.com/go-logr/logr"
	"k8s.io/apimachinery/pkg/types"

	"resilience.dev/operator/internal/compile"
	"resilience.dev/operator/internal/distribution"
	"resilience.dev/operator/internal/distribution/server"
	"resilience.dev/operator/internal/gateway"
	"resilience.dev/operator/internal/snapshot"
)

// BenchmarkChangePath measures, in-process, the CPU work of one changed RateLimit among n policies,
// stage by stage: the manager's compile (compile.Compiler, as the snapshot builder runs it) and
// publish (the delta frame), and the gateway's decode of the delta and apply. The "whole" variants
// are the same change the way it went before deltas: a one-shot compile (which encodes every Service),
// the whole snapshot's body, decoded and applied.
func BenchmarkChangePath(b *testing.B) {
	for _, n := range []int{1000} {
		in := synthetic(n)
		for i := range in.Services {
			in.Services[i].UID, in.Services[i].ResourceVersion = types.UID(fmt.Sprintf("svc-%d", i)), "1"
			in.EndpointSlices[i].UID, in.EndpointSlices[i].ResourceVersion = types.UID(fmt.Sprintf("slice-%d", i)), "1"
		}
		// change alternates the requests of RateLimit 0, so every iteration is a real change.
		change := func(k int) compile.Input {
			in.RateLimits[0].Spec.Limits[0].Requests = int32(initialRequests + k%2 + 1)
			in.RateLimits[0].Generation = int64(2 + k%2)
			return in
		}
		b.Run(fmt.Sprintf("manager/policies=%d", n), func(b *testing.B) {
			var c compile.Compiler
			srv := server.NewServer(nil, &server.MemoryStore{}, "m", logr.Discard())
			k := 0
			for b.Loop() {
				e, err := c.Compile(change(k))
				if err != nil {
					b.Fatal(err)
				}
				if _, changed, err := srv.Publish(e); err != nil || (!changed && k > 0) {
					b.Fatal("not published", err)
				}
				k++
			}
		})
		encs := make([]*snapshot.Encoded, 2)
		deltas := make([][]byte, 2)
		for k := range encs {
			encs[k], _ = new(compile.Compiler).Compile(change(k))
		}
		for k := range deltas {
			deltas[k], _ = snapshot.Diff(encs[(k+1)%2], encs[k])
		}
		b.Run(fmt.Sprintf("gateway/policies=%d", n), func(b *testing.B) {
			g, err := gateway.New(gateway.Options{Transport: okRT{}})
			if err != nil {
				b.Fatal(err)
			}
			var d snapshot.Decoder
			body, _ := encs[1].Body()
			e, err := d.Decode(body)
			if err != nil {
				b.Fatal(err)
			}
			if err := g.Apply(e); err != nil {
				b.Fatal(err)
			}
			k := 0
			for b.Loop() {
				e, err := d.DecodeDelta(deltas[k%2])
				if err != nil {
					b.Fatal(err)
				}
				e.Version = uint64(k + 2)
				if err := g.Apply(e); err != nil {
					b.Fatal(err)
				}
				k++
			}
		})
		b.Run(fmt.Sprintf("whole-manager/policies=%d", n), func(b *testing.B) {
			k := 0
			for b.Loop() {
				s, err := new(compile.Compiler).Compile(change(k))
				if err != nil {
					b.Fatal(err)
				}
				body, _ := s.Body()
				_, _ = json.Marshal(distribution.ServerFrame{Version: 1, Snapshot: body})
				k++
			}
		})
		frames := make([][]byte, 2)
		for k := range frames {
			s, _ := new(compile.Compiler).Compile(change(k))
			body, _ := s.Body()
			frames[k], _ = json.Marshal(distribution.ServerFrame{Version: uint64(k + 1), Snapshot: body})
		}
		b.Run(fmt.Sprintf("whole-gateway/policies=%d", n), func(b *testing.B) {
			g, err := gateway.New(gateway.Options{Transport: okRT{}})
			if err != nil {
				b.Fatal(err)
			}
			k := 0
			for b.Loop() {
				var f distribution.ServerFrame
				if err := json.Unmarshal(frames[k%2], &f); err != nil {
					b.Fatal(err)
				}
				s, err := snapshot.Decode(f.Snapshot)
				if err != nil {
					b.Fatal(err)
				}
				s.Version = uint64(k + 1)
				e, err := snapshot.Encode(s)
				if err != nil {
					b.Fatal(err)
				}
				if err := g.Apply(e); err != nil {
					b.Fatal(err)
				}
				k++
			}
		})
	}
}
