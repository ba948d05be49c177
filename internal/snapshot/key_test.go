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

package snapshot

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestPolicyKeyText(t *testing.T) {
	cases := []struct {
		desc, text string
		want       PolicyKey
		wantErr    bool
	}{
		{desc: "three parts", text: "RateLimit/shop/checkout", want: PolicyKey{"RateLimit", "shop", "checkout"}},
		{desc: "two parts", text: "RateLimit/shop", wantErr: true},
		{desc: "four parts", text: "RateLimit/shop/a/b", wantErr: true},
		{desc: "an empty part", text: "RateLimit//checkout", wantErr: true},
		{desc: "empty", text: "", wantErr: true},
	}
	for _, tc := range cases {
		t.Run(tc.desc, func(t *testing.T) {
			got, err := ParsePolicyKey(tc.text)
			if (err != nil) != tc.wantErr || (!tc.wantErr && got != tc.want) {
				t.Fatalf("ParsePolicyKey(%q) = %+v, %v", tc.text, got, err)
			}
			if tc.wantErr {
				return
			}
			if got.String() != tc.text {
				t.Fatalf("String() = %q, want %q", got.String(), tc.text)
			}
		})
	}
	// As a map key and in a list, the wire form is the text.
	b, err := json.Marshal(map[PolicyKey]int64{{"RetryPolicy", "a", "b"}: 3})
	if err != nil || string(b) != `{"RetryPolicy/a/b":3}` {
		t.Fatalf("map key: %s, %v", b, err)
	}
	var back map[PolicyKey]int64
	if err := json.Unmarshal(b, &back); err != nil || back[PolicyKey{"RetryPolicy", "a", "b"}] != 3 {
		t.Fatalf("map key back: %v, %v", back, err)
	}
	if _, err := json.Marshal([]PolicyKey{{"RateLimit", "a/b", "c"}}); err == nil {
		t.Fatal("a key with a slash in a part was written")
	}
}

// Compare sorts keys exactly as their text sorts, also where one part is a prefix of another
// ("ns" and "ns-a": '-' sorts before '/').
func TestPolicyKeyCompareIsTextOrder(t *testing.T) {
	parts := []string{"a", "ab", "a-b", "a0", "b", "RateLimit", "Rate", "ns", "ns-a", "ns.a", "nz"}
	var keys []PolicyKey
	for _, k := range parts[:4] {
		for _, n := range parts {
			for _, m := range parts[3:] {
				keys = append(keys, PolicyKey{k, n, m})
			}
		}
	}
	for _, a := range keys {
		for _, b := range keys {
			if got, want := a.Compare(b), strings.Compare(a.String(), b.String()); got != want {
				t.Fatalf("Compare(%s, %s) = %d, want %d", a, b, got, want)
			}
		}
	}
}
