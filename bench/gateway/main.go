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

// Command benchgateway measures the data path of the gateway (`make bench-gateway`, issue #6).
//
// Four processes share the machine: the project's backend (cmd/demo-backend); the gateway process
// (this binary re-run with -serve gateway), which holds the gateway IN-PROCESS (gateway.New, Apply of
// a snapshot compiled by compile.Compiler from synthetic objects, HTTPServer on 127.0.0.1:0) with the
// garbage-collector settings cmd/gateway applies by default (-gc-percent, -memory-limit); the bare
// proxy process (-serve proxy), an httputil.ReverseProxy with a tuned Transport and Go's default
// runtime settings; and this process as the load generator (bench/loadgen, a raw HTTP/1.1 client that
// costs far less CPU than net/http's). No manager runs: the gateway gets its snapshot from Apply
// instead of the stream. -profile writes CPU and allocation profiles of the proxy processes (last
// round, closed loop) and of the load generator.
//
// Four configurations are measured in alternating rounds (each round runs all four, the order
// rotating), so drift on the machine hits them alike: the backend directly, the bare proxy, the
// gateway with a managed Service and no policy, and the gateway with a RateLimit that never rejects,
// a CircuitBreaker that never opens and a RetryPolicy that never retries on the same Service. Each
// round runs a closed loop (throughput at fixed concurrency) and an open loop (latency at a fixed
// rate, measured from each request's scheduled send time).
//
// With redis-server installed, the parent starts one and two more configurations join: the same
// never-refusing limit with distribution Global (tokens from the store, in batches) and PerReplica
// (local only), to price the store; the report gives their p99 difference, their req/s ratio and the
// store calls per request that the gateway process counted.
//
// With nginx and haproxy installed (Debian's packages), both join the HTTP/1.1 rows as anchors, each
// tuned as a user would tune it (anchors.go), and nginx's grpc_pass joins the gRPC row: grpc_testing
// UnaryCalls made by grpc-go clients (over -grpc-conns connections) to a grpc-go backend process,
// directly, through the gateway (a Service of appProtocol grpc with the three policies) and through
// nginx. Every goal is a ratio within one run; CPU is counted over a process and its children.
//
// -compare-bin DIR adds a second build to the same run: DIR holds that build's benchgateway, whose
// gateway process then serves two more configurations (compare-gateway-no-policy and
// compare-gateway-3-policies) in the same alternating rounds; a ratio table (this build over that one)
// follows the main table and goes into the JSON as "compare". Both gateway processes get the same
// flags (-serve, -backend, -pprof and the GC and upstream-client flags), so the other build must
// accept them: any build of this command since -serve had them.
package main

import (
	"flag"
	"log"
	"strconv"
	"time"

	"resilience.dev/operator/cmd/gateway/gctune"
)

// options are the flags of a benchmark run (the parent process).
type options struct {
	bin        string // directory holding demo-backend
	compareBin string // directory holding another build's benchgateway, or empty
	rounds     int
	closedDur  time.Duration
	conc       int
	rate       float64
	openDur    time.Duration
	openConns  int
	warmup     time.Duration
	jsonPath   string
	profileDir string
	// gatewayArgs are passed to the gateway processes: cmd/gateway's GC defaults and upstream client.
	gatewayArgs []string
	// storeURL is the redis-server the parent started for the Global configurations, or empty.
	storeURL string
	grpc     bool // measure the gRPC configurations
	// grpcConns is how many connections each gRPC configuration's calls share (in both loops).
	grpcConns int
	anchors   bool   // measure nginx and haproxy, when installed
	workDir   string // the anchors' configurations and logs (a temporary directory)
}

// serveOptions are the flags of a proxy process (-serve).
type serveOptions struct {
	which          string // gateway or proxy
	backendAddr    string
	pprof          bool
	gcPercent      int
	memoryLimit    string
	upstreamClient string
	storeURL       string // the store of Global limits; empty: none
	// grpcBackendAddr is the gRPC backend the gateway's Service grpc goes to; empty: none.
	grpcBackendAddr string
}

func main() {
	var o options
	var so serveOptions
	flag.StringVar(&so.which, "serve", "", "internal: run a proxy process (gateway or proxy) for the backend at -backend")
	flag.StringVar(&so.backendAddr, "backend", "", "internal: the backend address for -serve")
	flag.StringVar(&so.grpcBackendAddr, "grpc-backend", "", "internal: the gRPC backend address for -serve gateway")
	flag.StringVar(&o.bin, "bin", "bin", "directory holding demo-backend")
	flag.StringVar(&o.compareBin, "compare-bin", "", "directory holding another build's benchgateway: its gateway runs beside this one's in the same rounds, and a ratio table (this/that) is printed")
	flag.IntVar(&o.rounds, "rounds", 3, "alternating rounds (each runs every configuration once)")
	flag.DurationVar(&o.closedDur, "duration", 3*time.Second, "closed-loop run per configuration per round")
	flag.IntVar(&o.conc, "c", 32, "connections of the closed loop")
	flag.Float64Var(&o.rate, "rate", 1600, "requests per second of the open loop")
	flag.DurationVar(&o.openDur, "open-duration", 3*time.Second, "open-loop run per configuration per round")
	flag.IntVar(&o.openConns, "open-c", 32, "connections of the open loop")
	flag.DurationVar(&o.warmup, "warmup", time.Second, "closed-loop warm-up of each configuration before the rounds")
	flag.BoolVar(&o.grpc, "grpc", true, "measure gRPC unary calls: directly, through the gateway with the three policies, and through nginx's grpc_pass when installed")
	flag.IntVar(&o.grpcConns, "grpc-conns", 4, "connections the calls of each gRPC configuration share (in both loops)")
	flag.BoolVar(&o.anchors, "anchors", true, "measure nginx and haproxy (Debian's packages) beside the gateway when installed")
	flag.StringVar(&o.jsonPath, "json", "bin/bench-gateway.json", "write the results here as JSON")
	flag.StringVar(&o.profileDir, "profile", "", "write CPU and allocation profiles here: of the proxy process during the last round's closed loop of each gateway configuration, and of the load generator over the whole run")
	flag.BoolVar(&so.pprof, "pprof", false, "internal: serve net/http/pprof in the proxy process (with -serve)")
	flag.IntVar(&so.gcPercent, "gc-percent", gctune.DefaultPercent, "the gateway process's -gc-percent, as cmd/gateway's (0: Go's default)")
	flag.StringVar(&so.memoryLimit, "memory-limit", "auto", "the gateway process's -memory-limit, as cmd/gateway's")
	flag.StringVar(&so.storeURL, "store-url", "", "internal: the gateway process's store of Global limits (the parent starts redis-server when installed)")
	flag.StringVar(&so.upstreamClient, "upstream-client", "", "the gateway's upstream client, as cmd/gateway's --upstream-client (fast or net/http; empty: the gateway's default)")
	flag.Parse()
	log.SetFlags(0)
	if so.which != "" {
		if err := runServe(so); err != nil {
			log.Fatal(err)
		}
		return
	}
	o.gatewayArgs = []string{"-gc-percent", strconv.Itoa(so.gcPercent), "-memory-limit", so.memoryLimit}
	if so.upstreamClient != "" {
		o.gatewayArgs = append(o.gatewayArgs, "-upstream-client", so.upstreamClient)
	}
	if err := run(o); err != nil {
		log.Fatal(err)
	}
}
