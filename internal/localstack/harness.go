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

package localstack

import (
	"os"
	"path/filepath"

	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"resilience.dev/operator/api/v1alpha1"
	"resilience.dev/operator/internal/controlplane"
)

// Harness is what a test binary of the real processes needs: the binaries built into a temporary
// directory, a local control plane, a Stack on free ports whose processes log to a file there, and an
// administrator's client. It starts no process: the tests do.
type Harness struct {
	Stack  *Stack
	CP     *controlplane.ControlPlane
	Opts   Options
	Client client.Client
	// Log holds the manager's and gateways' output.
	Log *os.File
	dir string
}

// NewHarness builds and starts all that; Close undoes it.
func NewHarness(prefix string) (*Harness, error) {
	root, err := controlplane.RepoRoot()
	if err != nil {
		return nil, err
	}
	h := &Harness{}
	if h.dir, err = os.MkdirTemp("", prefix); err != nil {
		return nil, err
	}
	if err := h.start(root); err != nil {
		h.Close()
		return nil, err
	}
	return h, nil
}

func (h *Harness) start(root string) (err error) {
	if err := Build(root, h.dir); err != nil {
		return err
	}
	if h.CP, err = controlplane.Start(); err != nil {
		return err
	}
	if h.Log, err = os.Create(filepath.Join(h.dir, "processes.log")); err != nil {
		return err
	}
	h.Opts = FreeOptions(h.dir, h.Log)
	if h.Stack, err = Start(h.Opts, h.CP); err != nil {
		return err
	}
	scheme := runtime.NewScheme()
	utilruntime.Must(clientgoscheme.AddToScheme(scheme))
	utilruntime.Must(v1alpha1.AddToScheme(scheme))
	h.Client, err = client.New(h.CP.Config, client.Options{Scheme: scheme})
	return err
}

// TailLog returns the last n lines of the processes' output.
func (h *Harness) TailLog(n int) string { return Tail(h.Log.Name(), n) }

// Close stops the processes and the control plane and removes the directory.
func (h *Harness) Close() {
	if h.Stack != nil {
		h.Stack.Close()
	}
	if h.CP != nil {
		_ = h.CP.Stop()
	}
	if h.Log != nil {
		_ = h.Log.Close()
	}
	_ = os.RemoveAll(h.dir)
}
