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
	"bytes"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"resilience.dev/operator/internal/controlplane"
)

// Build compiles the manager and gateway binaries of the repository at root into dir.
func Build(root, dir string) error {
	for _, cmd := range []string{"manager", "gateway"} {
		build := exec.Command("go", "build", "-o", filepath.Join(dir, cmd), "./cmd/"+cmd)
		build.Dir, build.Stdout, build.Stderr = root, os.Stderr, os.Stderr
		if err := build.Run(); err != nil {
			return fmt.Errorf("build %s: %w", cmd, err)
		}
	}
	return nil
}

// FreeAddr returns a loopback address with a port that was free a moment ago.
func FreeAddr() string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(fmt.Sprintf("no free loopback port: %v", err))
	}
	defer l.Close()
	return l.Addr().String()
}

// FreeOptions are Options with binaries and files in dir and every address a free loopback port, so
// several stacks (and tests) can run side by side.
func FreeOptions(dir string, out io.Writer) Options {
	return Options{BinDir: dir, Dir: dir, Output: out,
		GatewayListen: FreeAddr(), GatewayHealth: FreeAddr(), GatewayMetrics: FreeAddr(),
		ManagerMetrics: FreeAddr(), ManagerHealth: FreeAddr(), ManagerStream: FreeAddr()}
}

// Kubectl runs the real kubectl against the stack's control plane, with stdin, and returns its
// combined output.
func (s *Stack) Kubectl(stdin string, args ...string) (string, error) {
	cmd := exec.Command(controlplane.Kubectl(), append([]string{"--kubeconfig", s.KubeconfigPath}, args...)...)
	cmd.Stdin = strings.NewReader(stdin)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.String(), err
}

// Tail returns the last n lines of the file at path ("" when it cannot be read).
func Tail(path string, n int) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// LocalEndpointSlice is the manifest of an EndpointSlice giving Service ns/name one endpoint: the
// local port, under the FQDN <name>.localhost, which a gateway in local-development mode dials on
// loopback (the API server refuses loopback IPs as endpoint addresses). Its port is named "http".
func LocalEndpointSlice(ns, name string, port int) string {
	return fmt.Sprintf(`apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: %[1]s-local
  namespace: %[2]s
  labels: {kubernetes.io/service-name: %[1]s}
addressType: FQDN
ports: [{name: http, port: %[3]d}]
endpoints:
- addresses: [%[1]s.localhost]
`, name, ns, port)
}

// LocalService is the manifest of Service ns/name, port 80 named "http", with LocalEndpointSlice.
func LocalService(ns, name string, port int) string {
	return fmt.Sprintf(`apiVersion: v1
kind: Service
metadata: {name: %[1]s, namespace: %[2]s}
spec:
  ports: [{name: http, port: 80, targetPort: %[3]d}]
---
`, name, ns, port) + LocalEndpointSlice(ns, name, port)
}
