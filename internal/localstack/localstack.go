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
// Package localstack runs the operator locally, as `make run-local` and the end-to-end tests do: a
// local control plane (internal/controlplane) and the real manager and gateway binaries as separate
// processes against it, exactly as they run in a cluster.
package localstack

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
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

// The identity the manager expects gateways to authenticate as.
const (
	SystemNamespace = "resilience-system"
	GatewaySA       = "resilience-gateway"
)

// Options says where the binaries are and which addresses to use.
type Options struct {
	// BinDir holds the built manager and gateway binaries.
	BinDir string
	// Dir receives the kubeconfig, the CA and the gateway token.
	Dir string
	// Ports of the gateway (traffic, health, metrics) and of the manager (metrics, health, stream).
	GatewayListen, GatewayHealth, GatewayMetrics string
	ManagerMetrics, ManagerHealth, ManagerStream string
	// Output receives the processes' logs (os.Stderr when nil).
	Output io.Writer
}

// Defaults are the addresses of `make run-local`.
func Defaults(root string) Options {
	return Options{
		BinDir: filepath.Join(root, "bin"), Dir: filepath.Join(root, "bin", "local"),
		GatewayListen: "127.0.0.1:8080", GatewayHealth: "127.0.0.1:8081", GatewayMetrics: "127.0.0.1:9090",
		ManagerMetrics: "127.0.0.1:8082", ManagerHealth: "127.0.0.1:8083", ManagerStream: "127.0.0.1:9443",
	}
}

// Stack is a running local operator.
type Stack struct {
	CP             *controlplane.ControlPlane
	KubeconfigPath string
	// Exited receives an error when a process exits on its own.
	Exited chan error

	opts      Options
	cs        kubernetes.Interface
	caPath    string
	tokenPath string
	procs     map[string]*proc
}

type proc struct {
	binary string
	cmd    *exec.Cmd
	done   chan struct{}
}

// Start starts the control plane and writes the kubeconfig, the gateway identity and its token. It
// does not start the binaries: StartManager and StartGateway do, so tests can stop and restart them.
func Start(opts Options, cp *controlplane.ControlPlane) (*Stack, error) {
	if opts.Output == nil {
		opts.Output = os.Stderr
	}
	if err := os.MkdirAll(opts.Dir, 0o755); err != nil {
		return nil, err
	}
	s := &Stack{CP: cp, opts: opts, Exited: make(chan error, 8), procs: map[string]*proc{},
		KubeconfigPath: filepath.Join(opts.Dir, "kubeconfig"),
		caPath:         filepath.Join(opts.Dir, "ca.crt"), tokenPath: filepath.Join(opts.Dir, "gateway-token")}
	kubeconfig, err := cp.KubeConfig()
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(s.KubeconfigPath, kubeconfig, 0o600); err != nil {
		return nil, fmt.Errorf("write kubeconfig: %w", err)
	}
	_ = os.Remove(s.caPath)
	if s.cs, err = kubernetes.NewForConfig(cp.Config); err != nil {
		return nil, err
	}
	ctx := context.Background()
	if err := s.gatewayIdentity(ctx); err != nil {
		return nil, err
	}
	if err := s.RefreshToken(ctx); err != nil {
		return nil, err
	}
	return s, nil
}

// StartManager starts the manager binary and waits until it has written the stream's CA.
func (s *Stack) StartManager(ctx context.Context, extraArgs ...string) error {
	return s.StartManagerAs(ctx, "manager", ManagerAddrs{Metrics: s.opts.ManagerMetrics, Health: s.opts.ManagerHealth,
		Stream: s.opts.ManagerStream}, extraArgs...)
}

// ManagerAddrs are the addresses of one manager replica.
type ManagerAddrs struct{ Metrics, Health, Stream string }

// StartManagerAs starts one more manager replica, named name (its process name and --replica), and
// waits until the stream's CA has been written.
func (s *Stack) StartManagerAs(ctx context.Context, name string, a ManagerAddrs, extraArgs ...string) error {
	args := append([]string{"--metrics-bind-address=" + a.Metrics, "--health-probe-bind-address=" + a.Health,
		"--distribution-bind-address=" + a.Stream, "--write-ca-file=" + s.caPath, "--replica=" + name,
		"--namespace=" + SystemNamespace}, extraArgs...)
	if err := s.start(name, "manager", true, args...); err != nil {
		return err
	}
	return waitFile(ctx, s.caPath, 60*time.Second)
}

// StartGateway starts the gateway binary in local-development mode.
func (s *Stack) StartGateway(extraArgs ...string) error {
	return s.StartGatewayAs("gateway", GatewayAddrs{Listen: s.opts.GatewayListen, Health: s.opts.GatewayHealth,
		Metrics: s.opts.GatewayMetrics}, append([]string{"--replica=local-gateway"}, extraArgs...)...)
}

// GatewayAddrs are the addresses of one gateway replica.
type GatewayAddrs struct{ Listen, Health, Metrics string }

// StartGatewayAs starts one more gateway replica, named name (its process name and --replica), in
// local-development mode, connected to the manager of Options; extraArgs may override any flag.
func (s *Stack) StartGatewayAs(name string, a GatewayAddrs, extraArgs ...string) error {
	args := append([]string{"--listen=" + a.Listen, "--health-listen=" + a.Health,
		"--metrics-listen=" + a.Metrics, "--manager-url=https://" + s.opts.ManagerStream,
		"--manager-ca-file=" + s.caPath, "--token-file=" + s.tokenPath, "--replica=" + name, "--local-dev"}, extraArgs...)
	return s.start(name, "gateway", false, args...)
}

// Running reports whether process name was started and has not exited.
func (s *Stack) Running(name string) bool {
	p := s.procs[name]
	if p == nil {
		return false
	}
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// Pid is the process ID of a running process, or 0.
func (s *Stack) Pid(name string) int {
	if p := s.procs[name]; p != nil {
		return p.cmd.Process.Pid
	}
	return 0
}

// Stop stops one process ("manager" or "gateway"): SIGTERM, then SIGKILL after 10 s.
func (s *Stack) Stop(name string) {
	p := s.procs[name]
	if p == nil {
		return
	}
	delete(s.procs, name)
	select {
	case <-p.done:
		return
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

// Kill stops one process at once (SIGKILL), as a crash would.
func (s *Stack) Kill(name string) {
	p := s.procs[name]
	if p == nil {
		return
	}
	delete(s.procs, name)
	_ = p.cmd.Process.Kill()
	<-p.done
}

// Close stops the gateways, then the managers. It leaves the control plane to its owner.
func (s *Stack) Close() {
	for _, binary := range []string{"gateway", "manager"} {
		for name, p := range s.procs {
			if p.binary == binary {
				s.Stop(name)
			}
		}
	}
}

// RefreshToken mints a gateway token with the stream's audience, as a projected volume does.
func (s *Stack) RefreshToken(ctx context.Context) error {
	tr, err := s.cs.CoreV1().ServiceAccounts(SystemNamespace).CreateToken(ctx, GatewaySA, &authenticationv1.TokenRequest{
		Spec: authenticationv1.TokenRequestSpec{Audiences: []string{distribution.Audience}, ExpirationSeconds: ptr.To[int64](2 * 3600)},
	}, metav1.CreateOptions{})
	if err != nil {
		return fmt.Errorf("request a gateway token: %w", err)
	}
	tmp := s.tokenPath + ".tmp"
	if err := os.WriteFile(tmp, []byte(tr.Status.Token), 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, s.tokenPath)
}

func (s *Stack) gatewayIdentity(ctx context.Context) error {
	_, err := s.cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: SystemNamespace}}, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("create namespace %s: %w", SystemNamespace, err)
	}
	_, err = s.cs.CoreV1().ServiceAccounts(SystemNamespace).Create(ctx,
		&corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: GatewaySA}}, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("create ServiceAccount %s/%s: %w", SystemNamespace, GatewaySA, err)
	}
	return s.gatewayService(ctx)
}

func (s *Stack) start(name, binary string, kubeconfig bool, args ...string) error {
	if s.Running(name) {
		return fmt.Errorf("%s is already running", name)
	}
	cmd := exec.Command(filepath.Join(s.opts.BinDir, binary), args...)
	cmd.Env = os.Environ()
	if kubeconfig {
		cmd.Env = append(cmd.Env, "KUBECONFIG="+s.KubeconfigPath)
	}
	cmd.Stdout, cmd.Stderr = s.opts.Output, s.opts.Output
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", name, err)
	}
	p := &proc{binary: binary, cmd: cmd, done: make(chan struct{})}
	s.procs[name] = p
	go func() {
		err := cmd.Wait()
		close(p.done)
		select {
		case s.Exited <- fmt.Errorf("%s exited: %v", name, err):
		default:
		}
	}()
	return nil
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
