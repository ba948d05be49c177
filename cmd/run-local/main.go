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
	"os"
	"os/signal"
	"syscall"
	"time"

	"resilience.dev/operator/internal/controlplane"
	"resilience.dev/operator/internal/localstack"
)

func main() {
	binDir := flag.String("bin", "bin", "directory holding the built manager and gateway binaries")
	flag.Parse()
	if err := run(*binDir); err != nil {
		fmt.Fprintln(os.Stderr, "run-local:", err)
		os.Exit(1)
	}
}

func run(binDir string) error {
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
	if err := st.StartGateway(); err != nil {
		return err
	}

	fmt.Printf(`
The resilience operator runs locally: a manager and one gateway (traffic on %[1]s).

  export KUBECONFIG=%[2]s
  kubectl apply --server-side -f config/samples/
  kubectl get resilience -A
  curl -H 'Host: <service>.<namespace>' http://%[1]s/     # or: curl -x http://%[1]s http://<service>.<namespace>/

Gateway readiness: http://%[3]s/readyz   metrics: http://%[4]s/metrics
Manager metrics:   http://%[5]s/metrics
Press Ctrl-C to stop everything.

`, opts.GatewayListen, st.KubeconfigPath, opts.GatewayHealth, opts.GatewayMetrics, opts.ManagerMetrics)

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
