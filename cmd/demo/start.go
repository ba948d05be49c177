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
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"resilience.dev/operator/internal/controlplane"
	"resilience.dev/operator/internal/localstack"
)

// prepare finds the repository and the binaries, and opens the processes' log.
func (d *demo) prepare() error {
	var err error
	if d.root, err = controlplane.RepoRoot(); err != nil {
		return err
	}
	if d.bin, err = filepath.Abs(d.bin); err != nil {
		return err
	}
	for _, name := range []string{"manager", "gateway", "demo-backend"} {
		if _, err := os.Stat(filepath.Join(d.bin, name)); err != nil {
			return fmt.Errorf("no %s binary in %s: run `make demo`, which builds it", name, d.bin)
		}
	}
	if _, err := exec.LookPath("kubectl"); err != nil {
		return errors.New("kubectl is not on PATH; the demo applies the samples with it")
	}
	d.dir = filepath.Join(d.root, "bin", "local-demo")
	if err := os.MkdirAll(d.dir, 0o755); err != nil {
		return err
	}
	if d.log, err = os.Create(filepath.Join(d.dir, "processes.log")); err != nil {
		return err
	}
	d.client = &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		MaxIdleConns: 512, MaxIdleConnsPerHost: 512, IdleConnTimeout: 30 * time.Second}}
	return nil
}

// startControlPlane starts etcd and kube-apiserver with the CRDs, and the local stack on free ports
// (so the demo runs beside a `make run-local` or a test run), and returns the stack's options.
func (d *demo) startControlPlane() (localstack.Options, error) {
	t := time.Now()
	fmt.Print("Starting a local control plane (etcd, kube-apiserver) with the CRDs ... ")
	cp, err := controlplane.Start()
	if err != nil {
		fmt.Println()
		return localstack.Options{}, err
	}
	d.cpStop = func() {
		if err := cp.Stop(); err != nil {
			fmt.Println("demo: stop the control plane:", err)
		}
	}
	fmt.Printf("%s\n", since(t))
	opts := localstack.FreeOptions(d.dir, d.syncLog())
	opts.BinDir = d.bin
	d.gateway = opts.GatewayListen
	if d.stack, err = localstack.Start(opts, cp); err != nil {
		return opts, err
	}
	return opts, nil
}

// startManagerAndGateway starts the manager and one gateway and waits until the gateway is ready.
func (d *demo) startManagerAndGateway(ctx context.Context, opts localstack.Options) error {
	t := time.Now()
	fmt.Print("Starting the manager and one gateway (local-development mode) ... ")
	if err := d.stack.StartManager(ctx); err != nil {
		fmt.Println()
		return cause(ctx, err)
	}
	if err := d.stack.StartGateway(d.startStore(ctx)...); err != nil {
		fmt.Println()
		return err
	}
	if err := waitFor(ctx, 30*time.Second, func() bool { return httpOK("http://" + opts.GatewayHealth + "/readyz") }); err != nil {
		fmt.Println()
		return fmt.Errorf("the gateway did not become ready: %w", cause(ctx, err))
	}
	fmt.Printf("ready in %s\n", since(t))
	fmt.Printf("  gateway traffic on %s, KUBECONFIG=%s\n", d.gateway, d.stack.KubeconfigPath)
	return nil
}

// startBackends starts one demo-backend per Service of the samples. catalog is flaky: half its
// answers are 503.
func (d *demo) startBackends(ctx context.Context) error {
	for _, b := range []struct {
		svc  string
		args []string
		what string
	}{
		{"checkout", nil, "healthy"},
		{"payments", nil, "healthy, for now"},
		{"catalog", []string{"-fail-rate=0.5", "-fail-code=503"}, "flaky: answers 503 to half the requests"},
	} {
		be, err := d.startBackend(ctx, b.svc, "127.0.0.1:0", b.args...)
		if err != nil {
			return cause(ctx, err)
		}
		fmt.Printf("Started demo-backend %-8s on %s (%s)\n", b.svc, be.addr, b.what)
	}
	return nil
}
