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
// Package controlplane starts a local Kubernetes control plane (etcd and kube-apiserver, through
// controller-runtime's envtest) with the operator's CRDs installed. The tests and `make run-local` both
// use it, so local mode runs on exactly what the tests prove.
package controlplane

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
)

// ControlPlane is a running local control plane.
type ControlPlane struct {
	// Config reaches the API server as an administrator.
	Config *rest.Config
	// Root is the repository root the CRDs were read from.
	Root string

	env     *envtest.Environment
	certDir string
	// assets is the directory kube-apiserver was started from; kube-controller-manager sits beside it.
	assets string
}

// Start starts etcd and kube-apiserver from KUBEBUILDER_ASSETS when set, else from the repository's
// bin/k8s (which `make setup-envtest` fills), and installs the CRDs of config/crd/bases.
func Start() (*ControlPlane, error) {
	root, err := RepoRoot()
	if err != nil {
		return nil, err
	}
	assets := assetsDir(root)
	if _, err := os.Stat(filepath.Join(assets, "kube-apiserver")); err != nil {
		return nil, fmt.Errorf("no kube-apiserver in %s: run `make setup-envtest` first: %w", assets, err)
	}
	// A certificate directory of our own survives an API server restart (envtest would make a new
	// one, with new serving and ServiceAccount-signing keys), so clients and tokens stay valid.
	certDir, err := os.MkdirTemp("", "resilience-apiserver-")
	if err != nil {
		return nil, err
	}
	env := &envtest.Environment{
		BinaryAssetsDirectory: assets,
		CRDDirectoryPaths:     []string{filepath.Join(root, "config", "crd", "bases")},
		ErrorIfCRDPathMissing: true,
	}
	env.ControlPlane.APIServer = &envtest.APIServer{CertDir: certDir}
	cfg, err := env.Start()
	if err != nil {
		_ = os.RemoveAll(certDir)
		return nil, fmt.Errorf("start local control plane: %w", err)
	}
	return &ControlPlane{Config: cfg, Root: root, env: env, certDir: certDir, assets: assets}, nil
}

// Stop stops kube-apiserver and etcd and removes their data.
func (c *ControlPlane) Stop() error {
	err := c.env.Stop()
	_ = os.RemoveAll(c.certDir)
	return err
}

// StopAPIServer stops kube-apiserver alone (etcd keeps the data), as an outage of the API would.
func (c *ControlPlane) StopAPIServer() error { return c.env.ControlPlane.APIServer.Stop() }

// StartAPIServer starts kube-apiserver again after StopAPIServer, on the same address and with the
// same keys, and returns once it is healthy.
func (c *ControlPlane) StartAPIServer() error { return c.env.ControlPlane.APIServer.Start() }

// AddUser creates a user with the given groups and returns its config (for kubeconfig files, say).
func (c *ControlPlane) AddUser(name string, groups ...string) (*rest.Config, error) {
	u, err := c.env.AddUser(envtest.User{Name: name, Groups: groups}, nil)
	if err != nil {
		return nil, fmt.Errorf("add user %s: %w", name, err)
	}
	return u.Config(), nil
}

// KubeConfig returns a kubeconfig file for an administrator of the control plane.
func (c *ControlPlane) KubeConfig() ([]byte, error) {
	u, err := c.env.AddUser(envtest.User{Name: "local-admin", Groups: []string{"system:masters"}}, nil)
	if err != nil {
		return nil, fmt.Errorf("add admin user: %w", err)
	}
	return u.KubeConfig()
}

// Kubectl returns the kubectl to run: the one next to kube-apiserver (envtest ships it, and
// `make setup-envtest` builds it where kubectl is not installed), else the one on PATH.
func Kubectl() string {
	root, _ := RepoRoot()
	assets := assetsDir(root)
	if p := filepath.Join(assets, "kubectl"); assets != "" && isExecutable(p) {
		return p
	}
	return "kubectl"
}

// assetsDir is where the control plane's binaries are: KUBEBUILDER_ASSETS when set, else the
// repository's bin/k8s ("" when neither is known).
func assetsDir(root string) string {
	if assets := os.Getenv("KUBEBUILDER_ASSETS"); assets != "" {
		return assets
	}
	if root == "" {
		return ""
	}
	return filepath.Join(root, "bin", "k8s")
}

func isExecutable(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0
}

// RepoRoot finds the repository root: the nearest directory above the working directory with a go.mod.
func RepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod above the working directory")
		}
		dir = parent
	}
}
