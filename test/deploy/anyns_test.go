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

package deploy

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net/url"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"

	"resilience.dev/operator/internal/controlplane"
)

// inPod completes a binary's effective flags as it does in the Deployment's pod: --namespace from
// POD_NAMESPACE, which must come from the pod (fieldRef metadata.namespace), then the names the
// binaries resolve in it when the manifests leave them unset (the binaries' -h states these rules;
// TestAnyNamespace runs the binaries to show they follow them).
func inPod(t *testing.T, dep *appsv1.Deployment, flags map[string]string) map[string]string {
	t.Helper()
	c := &dep.Spec.Template.Spec.Containers[0]
	fromPod := false
	for _, e := range c.Env {
		if e.Name == "POD_NAMESPACE" {
			fromPod = e.ValueFrom != nil && e.ValueFrom.FieldRef != nil && e.ValueFrom.FieldRef.FieldPath == "metadata.namespace"
		}
	}
	if !fromPod {
		t.Errorf("%s: POD_NAMESPACE is not the pod's metadata.namespace (downward API)", dep.Name)
	}
	ns := flags["namespace"]
	if ns == "" {
		ns = dep.Namespace
	}
	flags["namespace"] = ns
	for _, f := range []string{"gateway-service-account", "ca-secret"} {
		if v, ok := flags[f]; ok && v != "" && !strings.Contains(v, "/") {
			flags[f] = ns + "/" + v
		}
	}
	if v, ok := flags["distribution-hosts"]; ok && v == "" {
		flags["distribution-hosts"] = "resilience-manager." + ns + ".svc,resilience-manager." + ns + ".svc.cluster.local,localhost,127.0.0.1"
	}
	if v, ok := flags["manager-url"]; ok && v == "" {
		flags["manager-url"] = "https://resilience-manager." + ns + ".svc:9443"
	}
	return flags
}

// checkServingName dials the manager's stream as a gateway would dial name, trusting only the CA the
// manager published: the serving certificate must name it.
func checkServingName(t *testing.T, addr, name, caPEM string) {
	t.Helper()
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM([]byte(caPEM)) {
		t.Fatal("the CA ConfigMap holds no certificate")
	}
	var err error
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		var conn *tls.Conn
		conn, err = tls.Dial("tcp", addr, &tls.Config{ServerName: name, RootCAs: pool, MinVersion: tls.VersionTLS12, NextProtos: []string{"h2"}})
		if err == nil {
			_ = conn.Close()
			return
		}
		// Only a refused connection (the stream server still starting) is worth a retry.
		if !errors.Is(err, syscall.ECONNREFUSED) || time.Now().After(deadline) {
			t.Fatalf("the manager's stream as %s: %v", name, err)
		}
	}
}

// renderIn renders config/default through an overlay that sets kustomize's namespace: ns, with the
// components (paths from the repository root) added.
func renderIn(t *testing.T, ns string, components ...string) ([]doc, []byte) {
	t.Helper()
	dir := t.TempDir()
	relTo := func(p string) string {
		rel, err := filepath.Rel(dir, filepath.Join(repoRoot(t), p))
		if err != nil {
			t.Fatal(err)
		}
		return rel
	}
	k := fmt.Sprintf("apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nnamespace: %s\nresources:\n- %s\n", ns, relTo("config/default"))
	if len(components) > 0 {
		k += "components:\n"
		for _, c := range components {
			k += "- " + relTo(c) + "\n"
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "kustomization.yaml"), []byte(k), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(kubectlPath(t), "kustomize", "--load-restrictor=LoadRestrictionsNone", dir)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Run(); err != nil {
		t.Fatalf("kubectl kustomize (namespace: %s): %v\n%s", ns, err, errOut.String())
	}
	docs, err := decodeAll(out.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	return docs, out.Bytes()
}

// TestAnyNamespace deploys config/default with kustomize's `namespace: team-ops`: nothing names
// resilience-system any more, the API server accepts the render (server-side dry run), and the real
// manager and gateway, with those manifests' flags and POD_NAMESPACE, find each other: the gateway
// dials the manager's Service in team-ops, whose serving certificate names it, with the CA the
// manager publishes in team-ops, and the manager accepts the gateway's ServiceAccount of team-ops.
func TestAnyNamespace(t *testing.T) {
	const ns = "team-ops"
	docs, raw := renderIn(t, ns)
	if i := bytes.Index(raw, []byte("resilience-system")); i >= 0 {
		t.Errorf("the render for %s still names resilience-system: ...%s...", ns, raw[max(0, i-200):min(len(raw), i+100)])
	}
	for _, d := range docs {
		m := metaOf(t, d)
		if d.gvk == "Namespace" && m.Name != ns {
			t.Errorf("the render creates Namespace %s", m.Name)
		}
		if m.Namespace != "" && m.Namespace != ns {
			t.Errorf("%s %s is in %s", d.gvk, m.Name, m.Namespace)
		}
	}
	mgrDep, gwDep := deployment(t, docs, managerApp), deployment(t, docs, gatewayApp)
	mgr := inPod(t, mgrDep, effectiveFlags(t, "manager", mgrDep.Spec.Template.Spec.Containers[0].Args))
	gw := inPod(t, gwDep, effectiveFlags(t, "gateway", gwDep.Spec.Template.Spec.Containers[0].Args))
	u, err := url.Parse(gw["manager-url"])
	if err != nil || u.Hostname() != managerApp+"."+ns+".svc" {
		t.Errorf("the gateway's manager URL %q is not the manager's Service in %s (%v)", gw["manager-url"], ns, err)
	}
	service(t, docs, ns, managerApp)
	// The CA ConfigMap the gateway pods (in ns) mount is the one the manager publishes beside its Secret.
	gwSpec := &gwDep.Spec.Template.Spec
	ca := mountedVolume(t, gwSpec, &gwSpec.Containers[0], path.Dir(gw["manager-ca-file"]))
	if ca.ConfigMap == nil || mgr["ca-secret"] != ns+"/"+ca.ConfigMap.Name {
		t.Errorf("manager --ca-secret %s: the gateway pods in %s mount another ConfigMap (%+v)", mgr["ca-secret"], ns, ca.ConfigMap)
	}
	if mgr["gateway-service-account"] != ns+"/"+gwSpec.ServiceAccountName {
		t.Errorf("manager --gateway-service-account %s: the gateway runs as %s/%s", mgr["gateway-service-account"], ns, gwSpec.ServiceAccountName)
	}

	t.Run("the gateway binary dials the manager's Service in the pod's namespace", func(t *testing.T) {
		log := start(t, filepath.Join(binaries(t), "gateway"), []string{"POD_NAMESPACE=" + ns},
			append(append([]string{}, gwDep.Spec.Template.Spec.Containers[0].Args...),
				"--listen="+freeAddr(t), "--health-listen="+freeAddr(t), "--metrics-listen="+freeAddr(t),
				"--manager-ca-file="+writeTestCA(t), "--token-file="+filepath.Join(t.TempDir(), "token"))...)
		want := regexp.MustCompile(`"msg":"gateway started".*"manager":"` + regexp.QuoteMeta(gw["manager-url"]) + `"`)
		until(t, "the gateway's start line with manager "+gw["manager-url"], 10*time.Second, log, func() bool { return want.MatchString(log()) })
	})

	cp, err := controlplane.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cp.Stop() })
	kubeconfig, err := cp.KubeConfig()
	if err != nil {
		t.Fatal(err)
	}
	kubeconfigPath := filepath.Join(t.TempDir(), "kubeconfig")
	if err := os.WriteFile(kubeconfigPath, kubeconfig, 0o600); err != nil {
		t.Fatal(err)
	}
	run := func(stdin []byte, args ...string) (string, string, error) {
		cmd := exec.Command(kubectlPath(t), append([]string{"--kubeconfig", kubeconfigPath}, args...)...)
		cmd.Stdin = bytes.NewReader(stdin)
		var out, errOut bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errOut
		err := cmd.Run()
		return out.String(), errOut.String(), err
	}
	join := func(keep func(doc) bool) []byte {
		var b bytes.Buffer
		for _, d := range docs {
			if keep(d) {
				b.WriteString("---\n")
				b.Write(d.raw)
			}
		}
		return b.Bytes()
	}
	if out, errOut, err := run(join(func(d doc) bool { return d.gvk == "Namespace" }), "apply", "--server-side", "-f", "-"); err != nil {
		t.Fatalf("apply the Namespace: %v\n%s%s", err, out, errOut)
	}
	out, errOut, err := run(join(func(doc) bool { return true }), "apply", "--server-side", "--dry-run=server", "-f", "-")
	if err != nil || strings.Count(out, "(server dry run)") != len(docs) {
		t.Fatalf("server-side dry run in %s: %v\n%s%s", ns, err, out, errOut)
	}
	rbacKinds := map[string]bool{"ServiceAccount": true, "Role": true, "ClusterRole": true, "RoleBinding": true, "ClusterRoleBinding": true}
	if out, errOut, err := run(join(func(d doc) bool { return rbacKinds[d.gvk] }), "apply", "--server-side", "-f", "-"); err != nil {
		t.Fatalf("apply the RBAC: %v\n%s%s", err, out, errOut)
	}
	runOnOwnRBAC(t, kubeconfig, run, ns)
}

// metaOf reads the name and namespace of a rendered object.
func metaOf(t *testing.T, d doc) struct{ Name, Namespace string } {
	t.Helper()
	var o struct {
		Metadata struct{ Name, Namespace string }
	}
	j, err := json.Marshal(d.obj)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(j, &o); err != nil {
		t.Fatal(err)
	}
	return o.Metadata
}

// writeTestCA writes a self-signed certificate for the gateway's --manager-ca-file (it only needs to
// start here).
func writeTestCA(t *testing.T) string {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour), IsCA: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "ca.crt")
	if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}
