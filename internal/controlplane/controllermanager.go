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

package controlplane

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// DefaultControllers are the controllers tests of EndpointSlice capture need: the EndpointSlice
// controllers whose slices are written beside, and the garbage collector that removes owned objects.
var DefaultControllers = []string{"endpointslice", "endpointslicemirroring", "garbagecollector"}

// ControllerManager is a kube-controller-manager running against the local control plane.
type ControllerManager struct {
	// LogPath holds its stdout and stderr, for failure messages.
	LogPath string

	dir  string
	cmd  *exec.Cmd
	done chan struct{} // closed once the process has exited
}

// ControllerManagerBinary is the kube-controller-manager the control plane would run (beside
// kube-apiserver), so tests can skip before starting anything when it was never built.
func ControllerManagerBinary() string {
	root, _ := RepoRoot()
	return filepath.Join(assetsDir(root), "kube-controller-manager")
}

// StartControllerManager runs the real kube-controller-manager with the given controllers
// (DefaultControllers when none) and returns once they have started.
func (c *ControlPlane) StartControllerManager(controllers ...string) (*ControllerManager, error) {
	bin := filepath.Join(c.assets, "kube-controller-manager")
	if !isExecutable(bin) {
		return nil, fmt.Errorf("no kube-controller-manager in %s: run `make setup-envtest` (it builds it once per machine)", c.assets)
	}
	if len(controllers) == 0 {
		controllers = DefaultControllers
	}
	dir, err := os.MkdirTemp("", "resilience-kcm-")
	if err != nil {
		return nil, err
	}
	kubeconfig := filepath.Join(dir, "kubeconfig")
	if err := writeKubeconfig(c.Config, kubeconfig); err != nil {
		_ = os.RemoveAll(dir)
		return nil, err
	}
	m := &ControllerManager{LogPath: filepath.Join(dir, "kube-controller-manager.log"), dir: dir, done: make(chan struct{})}
	logFile, err := os.Create(m.LogPath)
	if err != nil {
		_ = os.RemoveAll(dir)
		return nil, err
	}
	defer logFile.Close() // the child holds its own descriptor
	m.cmd = exec.Command(bin,
		"--kubeconfig="+kubeconfig,
		"--leader-elect=false",
		"--controllers="+strings.Join(controllers, ","),
		// No serving at all: nothing scrapes it, and serving would need delegated authentication.
		"--secure-port=0",
		// Every controller acts as the admin of the kubeconfig; no ServiceAccount tokens are minted.
		"--use-service-account-credentials=false",
		"--v=2",
	)
	m.cmd.Stdout, m.cmd.Stderr = logFile, logFile
	if err := m.cmd.Start(); err != nil {
		_ = os.RemoveAll(dir)
		return nil, fmt.Errorf("start kube-controller-manager: %w", err)
	}
	go func() { _ = m.cmd.Wait(); close(m.done) }()
	if err := m.waitStarted(30 * time.Second); err != nil {
		_ = m.Stop()
		return nil, err
	}
	return m, nil
}

// waitStarted waits for the log to say the controllers were started, failing early when the
// process exits (a bad flag, an unreachable API server).
func (m *ControllerManager) waitStarted(timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		log, _ := os.ReadFile(m.LogPath)
		if bytes.Contains(log, []byte(startedMarker)) {
			return nil
		}
		select {
		case <-m.done:
			return fmt.Errorf("kube-controller-manager exited (%v) at start; log:\n%s", m.cmd.ProcessState, tail(log))
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("kube-controller-manager did not start its controllers within %s; log:\n%s", timeout, tail(log))
		}
	}
}

// startedMarker is what kube-controller-manager logs (at --v=1 and up) as it runs each controller:
// flags were accepted, the API server answered and the controllers were built.
const startedMarker = "Controller starting..."

// Stop stops kube-controller-manager (SIGTERM, then SIGKILL after 5 s) and removes its files.
func (m *ControllerManager) Stop() error {
	var err error
	select {
	case <-m.done:
	default:
		_ = m.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-m.done:
		case <-time.After(5 * time.Second):
			if kerr := m.cmd.Process.Kill(); kerr != nil && !errors.Is(kerr, os.ErrProcessDone) {
				err = fmt.Errorf("kill kube-controller-manager: %w", kerr)
			}
			<-m.done
		}
	}
	return errors.Join(err, os.RemoveAll(m.dir))
}

// Log returns what kube-controller-manager has logged so far (its last 8 KiB), for failure messages.
func (m *ControllerManager) Log() string {
	log, err := os.ReadFile(m.LogPath)
	if err != nil {
		return fmt.Sprintf("(no log at %s: %v)", m.LogPath, err)
	}
	return tail(log)
}

func tail(log []byte) string {
	const limit = 8 << 10
	if len(log) > limit {
		log = log[len(log)-limit:]
	}
	return string(log)
}

// writeKubeconfig writes cfg (envtest's admin: client certificate data; tokens and files are
// carried too) as a kubeconfig file.
func writeKubeconfig(cfg *rest.Config, path string) error {
	server := cfg.Host
	if !strings.Contains(server, "://") {
		server = "https://" + server
	}
	kc := clientcmdapi.NewConfig()
	kc.Clusters["local"] = &clientcmdapi.Cluster{
		Server:                   server,
		TLSServerName:            cfg.ServerName,
		CertificateAuthority:     cfg.CAFile,
		CertificateAuthorityData: cfg.CAData,
		InsecureSkipTLSVerify:    cfg.Insecure,
	}
	kc.AuthInfos["admin"] = &clientcmdapi.AuthInfo{
		ClientCertificate:     cfg.CertFile,
		ClientCertificateData: cfg.CertData,
		ClientKey:             cfg.KeyFile,
		ClientKeyData:         cfg.KeyData,
		Token:                 cfg.BearerToken,
		TokenFile:             cfg.BearerTokenFile,
		Username:              cfg.Username,
		Password:              cfg.Password,
	}
	kc.Contexts["local"] = &clientcmdapi.Context{Cluster: "local", AuthInfo: "admin"}
	kc.CurrentContext = "local"
	if err := clientcmd.WriteToFile(*kc, path); err != nil {
		return fmt.Errorf("write kube-controller-manager kubeconfig: %w", err)
	}
	return nil
}
