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

func TestResolveNamespace(t *testing.T) {
	for _, tc := range []struct {
		desc                       string
		c                          config
		saNS, saName, caNS, caName string
		hosts, err                 string
	}{
		{desc: "bare names resolve in the namespace", c: config{namespace: "team-ops", gatewaySA: "resilience-gateway", caSecret: "resilience-distribution-ca"},
			saNS: "team-ops", saName: "resilience-gateway", caNS: "team-ops", caName: "resilience-distribution-ca",
			hosts: "resilience-manager.team-ops.svc,resilience-manager.team-ops.svc.cluster.local,localhost,127.0.0.1"},
		{desc: "namespace/name stays", c: config{namespace: "team-ops", gatewaySA: "gw/sa", caSecret: "pki/ca", certHosts: "a.example"},
			saNS: "gw", saName: "sa", caNS: "pki", caName: "ca", hosts: "a.example"},
		{desc: "no namespace", c: config{gatewaySA: "a", caSecret: "b"}, err: "POD_NAMESPACE"},
		{desc: "bad namespace", c: config{namespace: "Team_Ops", gatewaySA: "a", caSecret: "b"}, err: `--namespace "Team_Ops"`},
		{desc: "empty name", c: config{namespace: "x", gatewaySA: "ns/", caSecret: "b"}, err: "--gateway-service-account"},
		{desc: "two slashes", c: config{namespace: "x", gatewaySA: "a", caSecret: "a/b/c"}, err: "--ca-secret"},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			saNS, saName, caNS, caName, err := resolveNamespace(&tc.c)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error %v, want one mentioning %s", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if saNS != tc.saNS || saName != tc.saName || caNS != tc.caNS || caName != tc.caName || tc.c.certHosts != tc.hosts {
				t.Errorf("got %s/%s, %s/%s, hosts %s", saNS, saName, caNS, caName, tc.c.certHosts)
			}
		})
	}
}
