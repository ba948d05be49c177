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
	"fmt"
	"io"
	"net/http"

	"resilience.dev/operator/bench/loadgen"
)

const (
	ns        = "bench"
	plainHost = "plain." + ns // managed Service, no policy
	fullHost  = "full." + ns  // RateLimit + CircuitBreaker + RetryPolicy
	userID    = "user-42"
	// The same never-refusing limit, from the store (Global) or local (PerReplica).
	globalHost     = "global." + ns
	perReplicaHost = "perreplica." + ns
	grpcHost       = "grpc." + ns // gRPC, appProtocol grpc, the three policies
)

// config is one measured configuration: a proxy process (or the backend) and the Host to ask for.
type config struct {
	Name string
	// proc is the process serving it: direct (the backend), grpc-direct (the gRPC backend), proxy,
	// gateway, compare-gateway, nginx or haproxy.
	proc string
	pid  int // its pid, for its CPU time (with its children's: nginx's workers)
	desc string
	url  string // of an HTTP/1.1 configuration
	// grpcAddr is where a gRPC configuration's calls go; host is then their :authority.
	grpcAddr string
	host     string
}

// isGRPC reports whether c is a gRPC configuration.
func (c config) isGRPC() bool { return c.grpcAddr != "" }

// configs are the configurations of a run, in the order of the tables: the backend directly, the
// bare proxy, the anchors, the gateway without and with policies, with -compare-bin the other build's
// gateway, and the gRPC configurations.
func (p *processes) configs(compare bool) []config {
	gw := func(proc string) string { return "http://" + p.addrs[proc+"-gateway"] + "/" }
	cs := []config{
		{Name: "direct", proc: "direct", desc: "the backend directly", url: "http://" + p.backendAddr + "/"},
		{Name: "bare-proxy", proc: "proxy", desc: "httputil.ReverseProxy, tuned Transport", url: "http://" + p.addrs["proxy-proxy"] + "/"},
	}
	if a := p.addrs["nginx-http"]; a != "" {
		cs = append(cs, config{Name: "nginx", proc: "nginx", desc: "nginx proxy_pass, upstream keepalive", url: "http://" + a + "/"})
	}
	if a := p.addrs["haproxy-http"]; a != "" {
		cs = append(cs, config{Name: "haproxy", proc: "haproxy", desc: "haproxy, http-reuse always", url: "http://" + a + "/"})
	}
	cs = append(cs,
		config{Name: "gateway-no-policy", proc: "gateway", desc: "gateway, managed Service, no policy", url: gw("gateway"), host: plainHost},
		config{Name: "gateway-3-policies", proc: "gateway", desc: "gateway, RateLimit+CircuitBreaker+RetryPolicy", url: gw("gateway"), host: fullHost},
	)
	if p.storeURL != "" {
		cs = append(cs,
			config{Name: "gateway-global-limit", proc: "gateway", desc: "gateway, RateLimit distribution Global (redis)", url: gw("gateway"), host: globalHost},
			config{Name: "gateway-perreplica-limit", proc: "gateway", desc: "gateway, the same RateLimit PerReplica", url: gw("gateway"), host: perReplicaHost},
		)
	}
	if compare {
		cs = append(cs,
			config{Name: comparePrefix + "gateway-no-policy", proc: "compare-gateway", desc: "-compare-bin's gateway, no policy", url: gw("compare-gateway"), host: plainHost},
			config{Name: comparePrefix + "gateway-3-policies", proc: "compare-gateway", desc: "-compare-bin's gateway, three policies", url: gw("compare-gateway"), host: fullHost},
		)
	}
	if a := p.addrs["grpc-backend-grpc"]; a != "" {
		cs = append(cs,
			config{Name: "grpc-direct", proc: "grpc-direct", desc: "gRPC: the grpc-go backend directly", grpcAddr: a},
			config{Name: "grpc-gateway-3-policies", proc: "gateway", desc: "gRPC: gateway, h2c, the three policies", grpcAddr: p.addrs["gateway-gateway"], host: grpcHost},
		)
		if n := p.addrs["nginx-grpc"]; n != "" {
			cs = append(cs, config{Name: "grpc-nginx", proc: "nginx", desc: "gRPC: nginx grpc_pass, upstream keepalive", grpcAddr: n})
		}
	}
	for i := range cs {
		cs[i].pid = p.pids[cs[i].proc]
	}
	return cs
}

func target(c config) loadgen.Target {
	return loadgen.Target{URL: c.url, Host: c.host, Header: http.Header{"X-User-Id": {userID}}}
}

// check makes sure a configuration answers 200 before anything is measured, and that the gateway's
// policies are in force (and only where they should be).
func check(c config) error {
	if c.isGRPC() {
		return checkGRPC(c)
	}
	req, _ := http.NewRequest(http.MethodGet, c.url, nil)
	if c.host != "" {
		req.Host = c.host
	}
	req.Header.Set("X-User-ID", userID)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("%s: %w", c.Name, err)
	}
	body, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s answered %d: %s", c.Name, resp.StatusCode, body)
	}
	if (c.host == fullHost || c.host == globalHost || c.host == perReplicaHost) && resp.Header.Get("X-RateLimit-Limit") == "" {
		return fmt.Errorf("%s: no X-RateLimit-Limit, the RateLimit is not in force: %v", c.Name, resp.Header)
	}
	if c.host == plainHost && resp.Header.Get("X-RateLimit-Limit") != "" {
		return fmt.Errorf("%s: X-RateLimit-Limit on the Service without policy", c.Name)
	}
	return nil
}
