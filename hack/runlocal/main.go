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
	"os/exec"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"

	"resilience.dev/operator/internal/controlplane"
	"resilience.dev/operator/internal/distribution"
)

const (
	systemNamespace = "resilience-system"
	gatewaySA       = "resilience-gateway"
)

func main() {
	binDir := flag.String("bin", "bin", "directory holding the built manager and gateway binaries")
	listen := flag.String("listen", "127.0.0.1:8080", "the gateway's traffic address")
	flag.Parse()
	if err := run(*binDir, *listen); err != nil {
		fmt.Fprintln(os.Stderr, "run-local:", err)
		os.Exit(1)
	}
}

func run(binDir, listen string) error {
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

	dir := filepath.Join(cp.Root, "bin", "local")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	kubeconfig, err := cp.KubeConfig()
	if err != nil {
		return err
	}
	kubeconfigPath := filepath.Join(dir, "kubeconfig")
	if err := os.WriteFile(kubeconfigPath, kubeconfig, 0o600); err != nil {
		return fmt.Errorf("write kubeconfig: %w", err)
	}
	caPath, tokenPath := filepath.Join(dir, "ca.crt"), filepath.Join(dir, "gateway-token")
	_ = os.Remove(caPath)

	cs, err := kubernetes.NewForConfig(cp.Config)
	if err != nil {
		return err
	}
	if err := gatewayIdentity(ctx, cs); err != nil {
		return err
	}
	if err := writeToken(ctx, cs, tokenPath); err != nil {
		return err
	}

	procs := &group{}
	defer procs.stop()
	if err := procs.start(ctx, "manager", kubeconfigPath, filepath.Join(binDir, "manager"),
		"--metrics-bind-address=127.0.0.1:8082", "--health-probe-bind-address=127.0.0.1:8083",
		"--distribution-bind-address=127.0.0.1:9443", "--write-ca-file="+caPath); err != nil {
		return err
	}
	if err := waitFile(ctx, caPath, 30*time.Second); err != nil {
		return fmt.Errorf("the manager did not write its CA: %w", err)
	}
	if err := procs.start(ctx, "gateway", "", filepath.Join(binDir, "gateway"),
		"--listen="+listen, "--health-listen=127.0.0.1:8081", "--metrics-listen=127.0.0.1:9090",
		"--manager-url=https://127.0.0.1:9443", "--manager-ca-file="+caPath, "--token-file="+tokenPath,
		"--replica=local-gateway", "--local-dev"); err != nil {
		return err
	}

	fmt.Printf(`
The resilience operator runs locally: a manager and one gateway (traffic on %s).

  export KUBECONFIG=%s
  kubectl apply -f config/samples/
  kubectl get resilience -A
  curl -x http://%s http://<service>.<namespace>/   # or: curl -H 'Host: <service>.<namespace>' http://%s/

Gateway health: http://127.0.0.1:8081/readyz  metrics: http://127.0.0.1:9090/metrics
Manager metrics: http://127.0.0.1:8082/metrics.  Press Ctrl-C to stop everything.

`, listen, kubeconfigPath, listen, listen)

	refresh := time.NewTicker(30 * time.Minute) // projected tokens expire; keep the gateway's fresh
	defer refresh.Stop()
	for {
		select {
		case <-ctx.Done():
			say("stopping the gateway and the manager")
			return nil
		case err := <-procs.exited:
			if ctx.Err() != nil { // Ctrl-C reached the children too (same process group)
				return nil
			}
			return err
		case <-refresh.C:
			if err := writeToken(ctx, cs, tokenPath); err != nil {
				say("refresh the gateway token: " + err.Error())
			}
		}
	}
}

// gatewayIdentity creates the namespace and ServiceAccount the manager expects gateways to use.
func gatewayIdentity(ctx context.Context, cs kubernetes.Interface) error {
	_, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: systemNamespace}}, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("create namespace %s: %w", systemNamespace, err)
	}
	_, err = cs.CoreV1().ServiceAccounts(systemNamespace).Create(ctx,
		&corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: gatewaySA}}, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("create ServiceAccount %s/%s: %w", systemNamespace, gatewaySA, err)
	}
	return nil
}

// writeToken mints a gateway token with the stream's audience, as a projected volume does in a cluster.
func writeToken(ctx context.Context, cs kubernetes.Interface, path string) error {
	tr, err := cs.CoreV1().ServiceAccounts(systemNamespace).CreateToken(ctx, gatewaySA, &authenticationv1.TokenRequest{
		Spec: authenticationv1.TokenRequestSpec{Audiences: []string{distribution.Audience}, ExpirationSeconds: ptr.To[int64](2 * 3600)},
	}, metav1.CreateOptions{})
	if err != nil {
		return fmt.Errorf("request a gateway token: %w", err)
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(tr.Status.Token), 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

func waitFile(ctx context.Context, path string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		if _, err := os.Stat(path); err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s did not appear within %s", path, timeout)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// group runs child processes and stops them all, gracefully first, when asked.
type group struct {
	procs  []proc
	exited chan error
}

type proc struct {
	cmd  *exec.Cmd
	done chan struct{} // closed when the process has exited
}

func (g *group) start(_ context.Context, name, kubeconfig, bin string, args ...string) error {
	if g.exited == nil {
		g.exited = make(chan error, 4)
	}
	cmd := exec.Command(bin, args...)
	cmd.Env = os.Environ()
	if kubeconfig != "" {
		cmd.Env = append(cmd.Env, "KUBECONFIG="+kubeconfig)
	}
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", name, err)
	}
	p := proc{cmd: cmd, done: make(chan struct{})}
	g.procs = append(g.procs, p)
	go func() {
		err := cmd.Wait()
		close(p.done)
		g.exited <- fmt.Errorf("%s exited: %v", name, err)
	}()
	return nil
}

func (g *group) stop() {
	for i := len(g.procs) - 1; i >= 0; i-- { // the gateway first, then the manager
		p := g.procs[i]
		select {
		case <-p.done:
			continue
		default:
		}
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(10 * time.Second):
			_ = p.cmd.Process.Kill()
			<-p.done
		}
	}
}

func say(msg string) { fmt.Fprintln(os.Stderr, "run-local:", msg) }
