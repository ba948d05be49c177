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
// tests use) with the CRDs installed, and the operator's own binaries started against it as separate
// processes, exactly as they run in a cluster. It stays in the foreground until Ctrl-C, then stops
// everything it started.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"resilience.dev/operator/internal/controlplane"
)

func main() {
	binDir := flag.String("bin", "bin", "directory holding the built manager binary")
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

	kubeconfig, err := cp.KubeConfig()
	if err != nil {
		return err
	}
	dir := filepath.Join(cp.Root, "bin", "local")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	kubeconfigPath := filepath.Join(dir, "kubeconfig")
	if err := os.WriteFile(kubeconfigPath, kubeconfig, 0o600); err != nil {
		return fmt.Errorf("write kubeconfig: %w", err)
	}

	manager := exec.CommandContext(ctx, filepath.Join(binDir, "manager"),
		"--metrics-bind-address=127.0.0.1:8082", "--health-probe-bind-address=127.0.0.1:8083")
	manager.Env = append(os.Environ(), "KUBECONFIG="+kubeconfigPath)
	manager.Stdout, manager.Stderr = os.Stdout, os.Stderr
	manager.Cancel = func() error { return manager.Process.Signal(syscall.SIGTERM) }
	manager.WaitDelay = 10 * time.Second
	if err := manager.Start(); err != nil {
		return fmt.Errorf("start manager: %w", err)
	}
	done := make(chan error, 1)
	go func() { done <- manager.Wait() }()

	fmt.Printf(`
The resilience operator runs locally.

  export KUBECONFIG=%s
  kubectl apply -f config/samples/
  kubectl get resilience -A

Manager metrics: http://127.0.0.1:8082/metrics   Press Ctrl-C to stop everything.

`, kubeconfigPath)

	select {
	case <-ctx.Done():
		say("stopping the manager")
		// Wait reports the cancellation itself (or the exit status of a stopped process): both are the
		// shutdown we asked for.
		if err := <-done; err != nil && !errors.Is(err, context.Canceled) && !isExit(err) {
			return err
		}
		return nil
	case err := <-done:
		if ctx.Err() != nil { // Ctrl-C reached the manager too (same process group) and it stopped first
			return nil
		}
		return fmt.Errorf("manager exited: %v", err)
	}
}

func isExit(err error) bool {
	var exit *exec.ExitError
	return errors.As(err, &exit)
}

func say(msg string) { fmt.Fprintln(os.Stderr, "run-local:", msg) }
