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
	"strings"
	"testing"
)

func TestResolveManagerURL(t *testing.T) {
	for _, tc := range []struct {
		c        config
		want     string
		errWants string
	}{
		{c: config{namespace: "team-ops"}, want: "https://resilience-manager.team-ops.svc:9443"},
		{c: config{namespace: "team-ops", managerURL: "https://127.0.0.1:9443"}, want: "https://127.0.0.1:9443"},
		{c: config{managerURL: "https://127.0.0.1:9443"}, want: "https://127.0.0.1:9443"},
		{c: config{}, errWants: "POD_NAMESPACE"},
		{c: config{namespace: "a.b"}, errWants: `--namespace "a.b"`},
		{c: config{namespace: "-ops"}, errWants: `--namespace "-ops"`},
		{c: config{namespace: "Ops"}, errWants: `--namespace "Ops"`},
		{c: config{namespace: strings.Repeat("a", 64)}, errWants: "not a Namespace name"},
		{c: config{namespace: strings.Repeat("a", 63)}, want: "https://resilience-manager." + strings.Repeat("a", 63) + ".svc:9443"},
	} {
		err := resolveManagerURL(&tc.c)
		switch {
		case tc.errWants != "" && (err == nil || !strings.Contains(err.Error(), tc.errWants)):
			t.Errorf("%+v: error %v, want one mentioning %s", tc.c, err, tc.errWants)
		case tc.errWants == "" && (err != nil || tc.c.managerURL != tc.want):
			t.Errorf("manager URL %q (%v), want %q", tc.c.managerURL, err, tc.want)
		}
	}
}
