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
// Command runlocal is `make run-local`: a local control plane (etcd and kube-apiserver, the same one the
// tests use) with the CRDs installed, and the operator's own binaries, the manager and one gateway,
// started against it as separate processes, exactly as they run in a cluster. It stays in the
// foreground until Ctrl-C, then stops everything it started.
package main

import (
	"context"
	"flag"
	"fmt"
	"net"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"resilience.dev/operator/internal/controlplane"
	"resilience.dev/operator/internal/localstack"
	"resilience.dev/operator/internal/redisserver"
)

func main() {
	binDir := flag.String("bin", "bin", "directory holding the built manager and gateway binaries")
	gateways := flag.Int("gateways", 1, "gateway replicas to start: replica k (from 0) listens on 127.0.0.(k+1) with the usual ports")
	flag.Parse()
	if *gateways < 1 || *gateways > 16 {
		fmt.Fprintln(os.Stderr, "run-local: --gateways must be 1..16")
		os.Exit(2)
	}
	if err := run(*binDir, *gateways); err != nil {
		fmt.Fprintln(os.Stderr, "run-local:", err)
		os.Exit(1)
	}
}

func run(binDir string, gateways int) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	say("starting a local control plane (etcd, kube-apiserver) and installing the CRDs...")
	cp, err := controlplane.Start()
	if err != nil {
		return err
	}
	defer func() {
		say("stopping the local control plane")
		if err := cp.Stop(); err != nil {
			say("stop control plane: " + err.Error())
		}
	}()
	opts := localstack.Defaults(cp.Root)
	opts.BinDir = binDir
	st, err := localstack.Start(opts, cp)
	if err != nil {
		return err
	}
	defer func() {
		say("stopping the gateway and the manager")
		st.Close()
	}()
	if err := st.StartManager(ctx); err != nil {
		return err
	}
	storeURL, stopStore := startStore(ctx)
	defer stopStore()
	var extra []string
	if storeURL != "" {
		extra = append(extra, "--store-url="+storeURL)
	}
	replicas, err := startGateways(st, opts, gateways, extra)
	if err != nil {
		return err
	}

	fmt.Printf(`
The resilience operator runs locally: a manager and %[6]s (traffic on %[1]s%[7]s).

  export KUBECONFIG=%[2]s
  kubectl apply --server-side -f config/samples/
  kubectl get resilience -A
  curl -H 'Host: <service>.<namespace>' http://%[1]s/     # or: curl -x http://%[1]s http://<service>.<namespace>/

Front Services (label resilience.dev/capture: gateway) are captured on the gateway's capture ports
(20000-29999, on each replica's own address); find a front's port with
  kubectl get endpointslices -n <namespace> -l resilience.dev/front=<service>
and send to it with any Host (or none): curl http://127.0.0.1:<capture port>/

Gateway readiness: http://%[3]s/readyz   metrics: http://%[4]s/metrics
Manager metrics:   http://%[5]s/metrics
Press Ctrl-C to stop everything.

%[8]s
`, opts.GatewayListen, st.KubeconfigPath, opts.GatewayHealth, opts.GatewayMetrics, opts.ManagerMetrics,
		replicas.what, replicas.more, storeLine(storeURL))

	refresh := time.NewTicker(30 * time.Minute) // tokens expire; keep the gateway's fresh
	defer refresh.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case err := <-st.Exited:
			if ctx.Err() != nil { // Ctrl-C reached the children too (same process group)
				return nil
			}
			return err
		case <-refresh.C:
			if err := st.RefreshToken(ctx); err != nil {
				say("refresh the gateway token: " + err.Error())
			}
		}
	}
}

func say(msg string) { fmt.Fprintln(os.Stderr, "run-local:", msg) }

// gatewaySet describes the replicas started, for the banner.
type gatewaySet struct{ what, more string }

// startGateways starts n gateway replicas: replica 0 on the usual addresses, replica k on the same
// ports of 127.0.0.(k+1) (contract, section 7), each named local-gateway-k.
func startGateways(st *localstack.Stack, opts localstack.Options, n int, extra []string) (gatewaySet, error) {
	if n == 1 {
		return gatewaySet{what: "one gateway"}, st.StartGateway(extra...)
	}
	var others []string
	for k := range n {
		a := localstack.GatewayAddrs{Listen: onHost(opts.GatewayListen, k), Health: onHost(opts.GatewayHealth, k),
			Metrics: onHost(opts.GatewayMetrics, k)}
		name := fmt.Sprintf("gateway-%d", k)
		if err := st.StartGatewayAs(name, a, append([]string{"--replica=local-" + name}, extra...)...); err != nil {
			return gatewaySet{}, err
		}
		if k > 0 {
			others = append(others, a.Listen)
		}
	}
	return gatewaySet{what: fmt.Sprintf("%d gateway replicas", n), more: ", and " + strings.Join(others, ", ")}, nil
}

// onHost moves a 127.0.0.1 address to 127.0.0.(k+1), keeping its port.
func onHost(addr string, k int) string {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	return net.JoinHostPort(fmt.Sprintf("127.0.0.%d", k+1), port)
}

// startStore starts redis-server for Global limits when it is installed (on 127.0.0.1:6379, or a free
// port when that one is taken), and returns its URL ("" without one) and how to stop it.
func startStore(ctx context.Context) (string, func()) {
	if !redisserver.Installed() {
		say("redis-server is not installed: Global rate limits run as onStoreError says (StoreAvailable=False). " +
			"To get it: apt-get install redis-server")
		return "", func() {}
	}
	addr := "127.0.0.1:6379"
	if l, err := net.Listen("tcp", addr); err != nil {
		addr = "127.0.0.1:0"
	} else {
		_ = l.Close()
	}
	srv, err := redisserver.Start(ctx, addr, os.Stderr)
	if err != nil {
		say("start redis-server: " + err.Error() + "; Global rate limits run as onStoreError says")
		return "", func() {}
	}
	return srv.URL(), func() {
		say("stopping redis-server")
		srv.Stop()
	}
}

func storeLine(url string) string {
	if url == "" {
		return "Global rate limits: no store (install redis-server to have one)."
	}
	return "Global rate limits: store " + url + " (redis-server)."
}
