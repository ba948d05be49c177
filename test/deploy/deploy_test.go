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
// Package deploy tests the deployable manifests: config/default as `kubectl kustomize` renders it.
// It checks the rendered objects (replicas, leader election, restricted security contexts, probes,
// resources, the gateway's credentials), checks that the manifests agree with the real binaries'
// flags and defaults (ports, the CA and token paths, the manager's Service and ServiceAccounts),
// then asks a real kube-apiserver: a server-side dry run of the whole render, Pod Security
// admission of each pod template in the "restricted" namespace, and what each ServiceAccount may do
// once the RBAC is applied.
package deploy

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.uber.org/zap/zapcore"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"k8s.io/apimachinery/pkg/util/intstr"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"resilience.dev/operator/internal/controlplane"
	"resilience.dev/operator/internal/distribution"
	"resilience.dev/operator/internal/distribution/server"
)

const (
	systemNS   = "resilience-system"
	managerSA  = "resilience-manager"
	gatewaySA  = "resilience-gateway"
	managerApp = "resilience-manager"
	gatewayApp = "resilience-gateway"
)

// The local control plane logs through controller-runtime: errors only.
func init() { ctrllog.SetLogger(zap.New(zap.WriteTo(os.Stderr), zap.Level(zapcore.ErrorLevel))) }

// doc is one rendered object: its YAML and its typed form (strictly decoded).
type doc struct {
	raw []byte
	obj runtime.Object
	gvk string // Kind, for messages and filters
}

type rendering struct {
	docs []doc
	err  error
}

var (
	renderOnce sync.Once
	rendered   rendering
)

// kubectlPath finds kubectl (next to the envtest binaries, else on PATH): these tests need the real
// kustomize and apply of kubectl, and fail rather than skip without it.
func kubectlPath(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath(controlplane.Kubectl())
	if err != nil {
		t.Fatalf("no kubectl: install it, or let `make setup-envtest` build it into bin/k8s: %v", err)
	}
	return p
}

func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := controlplane.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	return root
}

// render runs `kubectl kustomize config/default` once and decodes every object strictly (unknown or
// duplicate fields fail), so a typo in a manifest fails here rather than being dropped by the server.
func render(t *testing.T) []doc {
	t.Helper()
	kubectl := kubectlPath(t)
	root := repoRoot(t)
	renderOnce.Do(func() {
		cmd := exec.Command(kubectl, "kustomize", filepath.Join(root, "config", "default"))
		var out, errOut bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errOut
		if err := cmd.Run(); err != nil {
			rendered.err = fmt.Errorf("kubectl kustomize config/default: %w\n%s", err, errOut.String())
			return
		}
		if s := strings.TrimSpace(errOut.String()); s != "" {
			rendered.err = fmt.Errorf("kubectl kustomize config/default is not clean, it printed:\n%s", s)
			return
		}
		rendered.docs, rendered.err = decodeAll(out.Bytes())
	})
	if rendered.err != nil {
		t.Fatal(rendered.err)
	}
	return rendered.docs
}

var codecs = func() serializer.CodecFactory {
	s := runtime.NewScheme()
	utilruntime.Must(clientgoscheme.AddToScheme(s))
	utilruntime.Must(apiextensionsv1.AddToScheme(s))
	return serializer.NewCodecFactory(s, serializer.EnableStrict)
}()

func decodeAll(data []byte) ([]doc, error) {
	reader := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
	var docs []doc
	for {
		raw, err := reader.Read()
		if errors.Is(err, io.EOF) {
			return docs, nil
		}
		if err != nil {
			return nil, err
		}
		if len(bytes.TrimSpace(raw)) == 0 {
			continue
		}
		obj, gvk, err := codecs.UniversalDeserializer().Decode(raw, nil, nil)
		if runtime.IsNotRegisteredError(err) { // another project's kind (cert-manager's): kept as it is
			u := &unstructured.Unstructured{}
			if err := u.UnmarshalJSON(mustJSON(raw)); err != nil {
				return nil, fmt.Errorf("decode rendered object: %w\n%s", err, raw)
			}
			docs = append(docs, doc{raw: raw, obj: u, gvk: u.GetKind()})
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("decode rendered object: %w\n%s", err, raw)
		}
		docs = append(docs, doc{raw: raw, obj: obj, gvk: gvk.Kind})
	}
}

func mustJSON(y []byte) []byte {
	j, err := utilyaml.ToJSON(y)
	if err != nil {
		return nil
	}
	return j
}

// all returns the rendered objects of one Go type.
func all[T runtime.Object](docs []doc) []T {
	var out []T
	for _, d := range docs {
		if o, ok := d.obj.(T); ok {
			out = append(out, o)
		}
	}
	return out
}

func deployment(t *testing.T, docs []doc, name string) *appsv1.Deployment {
	t.Helper()
	for _, d := range all[*appsv1.Deployment](docs) {
		if d.Name == name {
			return d
		}
	}
	t.Fatalf("no Deployment %s in config/default", name)
	return nil
}

func service(t *testing.T, docs []doc, namespace, name string) *corev1.Service {
	t.Helper()
	for _, s := range all[*corev1.Service](docs) {
		if s.Namespace == namespace && s.Name == name {
			return s
		}
	}
	t.Fatalf("no Service %s/%s in config/default", namespace, name)
	return nil
}

// TestRenderedObjects checks what config/default holds and where.
func TestRenderedObjects(t *testing.T) {
	docs := render(t)

	namespaces := all[*corev1.Namespace](docs)
	if len(namespaces) != 1 || namespaces[0].Name != systemNS {
		t.Fatalf("want exactly the Namespace %s, got %d Namespaces", systemNS, len(namespaces))
	}
	if got := namespaces[0].Labels["pod-security.kubernetes.io/enforce"]; got != "restricted" {
		t.Errorf("Namespace %s: pod-security.kubernetes.io/enforce = %q, want restricted", systemNS, got)
	}

	clusterScoped := map[string]bool{"Namespace": true, "CustomResourceDefinition": true, "ClusterRole": true, "ClusterRoleBinding": true}
	for _, d := range docs {
		m, ok := d.obj.(metav1.Object)
		if !ok {
			t.Fatalf("%s has no object metadata", d.gvk)
		}
		if clusterScoped[d.gvk] {
			if m.GetNamespace() != "" {
				t.Errorf("%s %s is cluster-scoped but names namespace %q", d.gvk, m.GetName(), m.GetNamespace())
			}
		} else if m.GetNamespace() != systemNS {
			t.Errorf("%s %s is in namespace %q, want %s", d.gvk, m.GetName(), m.GetNamespace(), systemNS)
		}
	}

	// The CRDs are exactly the generated bases.
	bases, err := filepath.Glob(filepath.Join(repoRoot(t), "config", "crd", "bases", "*.yaml"))
	if err != nil || len(bases) == 0 {
		t.Fatalf("no generated CRDs in config/crd/bases: %v", err)
	}
	var want, got []string
	for _, b := range bases {
		want = append(want, strings.TrimPrefix(strings.TrimSuffix(filepath.Base(b), ".yaml"), "resilience.dev_")+".resilience.dev")
	}
	for _, crd := range all[*apiextensionsv1.CustomResourceDefinition](docs) {
		got = append(got, crd.Name)
	}
	slices.Sort(want)
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Errorf("CRDs in config/default = %v, want the generated bases %v", got, want)
	}

	for _, tc := range []struct {
		desc, name, sa string
		replicas       int32
		args           []string
	}{
		{desc: "manager: 2 replicas electing a leader", name: managerApp, sa: managerSA, replicas: 2, args: []string{"--leader-elect"}},
		{desc: "gateway: 2 replicas", name: gatewayApp, sa: gatewaySA, replicas: 2},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			d := deployment(t, docs, tc.name)
			if d.Spec.Replicas == nil || *d.Spec.Replicas != tc.replicas {
				t.Errorf("replicas = %s, want %d", orUnset(d.Spec.Replicas), tc.replicas)
			}
			if got := d.Spec.Template.Spec.ServiceAccountName; got != tc.sa {
				t.Errorf("serviceAccountName = %q, want %q", got, tc.sa)
			}
			if len(d.Spec.Template.Spec.Containers) != 1 {
				t.Fatalf("want one container, got %d", len(d.Spec.Template.Spec.Containers))
			}
			for _, a := range tc.args {
				if !slices.Contains(d.Spec.Template.Spec.Containers[0].Args, a) {
					t.Errorf("args %v lack %s", d.Spec.Template.Spec.Containers[0].Args, a)
				}
			}
			sel, err := metav1.LabelSelectorAsSelector(d.Spec.Selector)
			if err != nil || !sel.Matches(labels.Set(d.Spec.Template.Labels)) {
				t.Errorf("selector %v does not match the pod template's labels %v", d.Spec.Selector, d.Spec.Template.Labels)
			}
		})
	}
	for _, pdb := range []string{managerApp, gatewayApp} {
		found := false
		for _, d := range docs {
			if m := d.obj.(metav1.Object); d.gvk == "PodDisruptionBudget" && m.GetName() == pdb {
				found = true
			}
		}
		if !found {
			t.Errorf("no PodDisruptionBudget %s", pdb)
		}
	}
}

// TestRestrictedPods checks every container of every pod template against the "restricted" Pod
// Security Standard (and a read-only root filesystem), and that it has probes and resources.
func TestRestrictedPods(t *testing.T) {
	docs := render(t)
	deployments := all[*appsv1.Deployment](docs)
	if len(deployments) != 2 {
		t.Fatalf("want 2 Deployments (manager, gateway), got %d", len(deployments))
	}
	for _, d := range deployments {
		spec := &d.Spec.Template.Spec
		t.Run(d.Name, func(t *testing.T) {
			if spec.HostNetwork || spec.HostPID || spec.HostIPC {
				t.Error("uses a host namespace")
			}
			for _, v := range spec.Volumes {
				if v.HostPath != nil {
					t.Errorf("volume %s is a hostPath", v.Name)
				}
			}
			containers := append(slices.Clone(spec.InitContainers), spec.Containers...)
			for _, c := range containers {
				for _, p := range restrictedProblems(spec, &c) {
					t.Errorf("container %s: %s", c.Name, p)
				}
			}
			for _, c := range spec.Containers {
				for name, p := range map[string]*corev1.Probe{"liveness": c.LivenessProbe, "readiness": c.ReadinessProbe} {
					if p == nil || p.HTTPGet == nil {
						t.Errorf("container %s: no HTTP %s probe", c.Name, name)
						continue
					}
					if _, ok := containerPort(&c, p.HTTPGet.Port); !ok {
						t.Errorf("container %s: %s probe port %s is none of its ports", c.Name, name, p.HTTPGet.Port.String())
					}
				}
				for _, r := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
					req, lim := c.Resources.Requests[r], c.Resources.Limits[r]
					if req.IsZero() || lim.IsZero() {
						t.Errorf("container %s: %s request %s, limit %s: want both", c.Name, r, req.String(), lim.String())
					} else if req.Cmp(lim) > 0 {
						t.Errorf("container %s: %s request %s exceeds its limit %s", c.Name, r, req.String(), lim.String())
					}
				}
			}
		})
	}
}

// restrictedProblems lists where a container (with its pod's defaults) falls short of the
// restricted profile.
func restrictedProblems(pod *corev1.PodSpec, c *corev1.Container) []string {
	psc := pod.SecurityContext
	if psc == nil {
		psc = &corev1.PodSecurityContext{}
	}
	sc := c.SecurityContext
	if sc == nil {
		sc = &corev1.SecurityContext{}
	}
	var problems []string
	nonRoot := psc.RunAsNonRoot
	if sc.RunAsNonRoot != nil {
		nonRoot = sc.RunAsNonRoot
	}
	if nonRoot == nil || !*nonRoot {
		problems = append(problems, "runAsNonRoot is not true")
	}
	for _, uid := range []*int64{psc.RunAsUser, sc.RunAsUser} {
		if uid != nil && *uid == 0 {
			problems = append(problems, "runs as UID 0")
		}
	}
	seccomp := psc.SeccompProfile
	if sc.SeccompProfile != nil {
		seccomp = sc.SeccompProfile
	}
	if seccomp == nil || (seccomp.Type != corev1.SeccompProfileTypeRuntimeDefault && seccomp.Type != corev1.SeccompProfileTypeLocalhost) {
		problems = append(problems, "seccompProfile is not RuntimeDefault")
	}
	if sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
		problems = append(problems, "allowPrivilegeEscalation is not false")
	}
	if sc.Privileged != nil && *sc.Privileged {
		problems = append(problems, "privileged")
	}
	if sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
		problems = append(problems, "readOnlyRootFilesystem is not true")
	}
	if sc.Capabilities == nil || !slices.Contains(sc.Capabilities.Drop, "ALL") {
		problems = append(problems, "capabilities do not drop ALL")
	} else if len(sc.Capabilities.Add) > 0 {
		problems = append(problems, fmt.Sprintf("adds capabilities %v", sc.Capabilities.Add))
	}
	return problems
}

// TestGatewayCredentials checks what the gateway holds: the CA certificate from the ConfigMap (never
// the CA Secret, which holds the key), a projected token for the stream's audience, no API token.
func TestGatewayCredentials(t *testing.T) {
	docs := render(t)
	gw := deployment(t, docs, gatewayApp)
	spec := &gw.Spec.Template.Spec
	c := &spec.Containers[0]

	if spec.AutomountServiceAccountToken == nil || *spec.AutomountServiceAccountToken {
		t.Error("gateway pods: automountServiceAccountToken is not false")
	}
	for _, sa := range all[*corev1.ServiceAccount](docs) {
		if sa.Name == gatewaySA && (sa.AutomountServiceAccountToken == nil || *sa.AutomountServiceAccountToken) {
			t.Error("ServiceAccount resilience-gateway: automountServiceAccountToken is not false")
		}
	}
	// No pod of the operator mounts a Secret: the manager reads its CA through the API, the gateway
	// gets the certificate alone.
	for _, d := range all[*appsv1.Deployment](docs) {
		for _, v := range d.Spec.Template.Spec.Volumes {
			if v.Secret != nil {
				t.Errorf("%s mounts Secret %s", d.Name, v.Secret.SecretName)
			}
			if v.Projected != nil {
				for _, s := range v.Projected.Sources {
					if s.Secret != nil {
						t.Errorf("%s projects Secret %s", d.Name, s.Secret.Name)
					}
				}
			}
		}
		for _, ctr := range d.Spec.Template.Spec.Containers {
			for _, e := range ctr.Env {
				if e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil {
					t.Errorf("%s reads Secret %s into $%s", d.Name, e.ValueFrom.SecretKeyRef.Name, e.Name)
				}
			}
			for _, e := range ctr.EnvFrom {
				if e.SecretRef != nil {
					t.Errorf("%s reads Secret %s into its environment", d.Name, e.SecretRef.Name)
				}
			}
		}
	}

	ca := mountedVolume(t, spec, c, "/etc/resilience/ca")
	if ca.ConfigMap == nil || ca.ConfigMap.Name != "resilience-distribution-ca" {
		t.Errorf("/etc/resilience/ca is not the ConfigMap resilience-distribution-ca: %+v", ca.VolumeSource)
	} else if !slices.ContainsFunc(ca.ConfigMap.Items, func(k corev1.KeyToPath) bool {
		return k.Key == server.CACertKey && k.Path == "ca.crt"
	}) {
		t.Errorf("the CA ConfigMap volume does not project %s to ca.crt: %+v", server.CACertKey, ca.ConfigMap.Items)
	}

	tok := mountedVolume(t, spec, c, "/var/run/secrets/resilience")
	if tok.Projected == nil || len(tok.Projected.Sources) != 1 || tok.Projected.Sources[0].ServiceAccountToken == nil {
		t.Fatalf("/var/run/secrets/resilience is not a projected ServiceAccount token: %+v", tok.VolumeSource)
	}
	sat := tok.Projected.Sources[0].ServiceAccountToken
	if sat.Audience != distribution.Audience || sat.Path != "token" || sat.ExpirationSeconds == nil || *sat.ExpirationSeconds != 3600 {
		t.Errorf("projected token: audience %q path %q expiration %s, want %q, token, 3600",
			sat.Audience, sat.Path, orUnset(sat.ExpirationSeconds), distribution.Audience)
	}

	if !slices.ContainsFunc(c.Env, func(e corev1.EnvVar) bool {
		return e.Name == "POD_NAME" && e.ValueFrom != nil && e.ValueFrom.FieldRef != nil && e.ValueFrom.FieldRef.FieldPath == "metadata.name"
	}) {
		t.Error("gateway: no POD_NAME from metadata.name (its --replica)")
	}
}

func orUnset[T any](p *T) string {
	if p == nil {
		return "unset"
	}
	return fmt.Sprint(*p)
}

// mountedVolume returns the volume a container mounts at dir.
func mountedVolume(t *testing.T, spec *corev1.PodSpec, c *corev1.Container, dir string) *corev1.Volume {
	t.Helper()
	for _, m := range c.VolumeMounts {
		if path.Clean(m.MountPath) != path.Clean(dir) {
			continue
		}
		if !m.ReadOnly || m.SubPath != "" {
			t.Errorf("mount %s: readOnly %v subPath %q, want read-only and no subPath", dir, m.ReadOnly, m.SubPath)
		}
		for i := range spec.Volumes {
			if spec.Volumes[i].Name == m.Name {
				return &spec.Volumes[i]
			}
		}
		t.Fatalf("mount %s names no volume %s", dir, m.Name)
	}
	t.Fatalf("container %s mounts nothing at %s", c.Name, dir)
	return nil
}

// TestServicesReachPods checks that every Service selects the pods of exactly one Deployment and
// that its target ports are ports of their container.
func TestServicesReachPods(t *testing.T) {
	docs := render(t)
	deployments := all[*appsv1.Deployment](docs)
	for _, svc := range all[*corev1.Service](docs) {
		t.Run(svc.Name, func(t *testing.T) {
			var target *appsv1.Deployment
			for _, d := range deployments {
				if len(svc.Spec.Selector) > 0 && labels.SelectorFromSet(svc.Spec.Selector).Matches(labels.Set(d.Spec.Template.Labels)) {
					if target != nil {
						t.Fatalf("selects the pods of both %s and %s", target.Name, d.Name)
					}
					target = d
				}
			}
			if target == nil {
				t.Fatalf("selector %v selects no pods of config/default", svc.Spec.Selector)
			}
			for _, p := range svc.Spec.Ports {
				if _, ok := containerPort(&target.Spec.Template.Spec.Containers[0], p.TargetPort); !ok {
					t.Errorf("port %d: targetPort %s is no port of %s", p.Port, p.TargetPort.String(), target.Name)
				}
			}
		})
	}
	gw := service(t, docs, systemNS, "resilience-gateway")
	if !slices.ContainsFunc(gw.Spec.Ports, func(p corev1.ServicePort) bool {
		n, _ := containerPort(&deployment(t, docs, gatewayApp).Spec.Template.Spec.Containers[0], p.TargetPort)
		return p.Port == 80 && n == 8080
	}) {
		t.Errorf("Service resilience-gateway does not map 80 to the gateway's 8080: %+v", gw.Spec.Ports)
	}
}

// containerPort resolves a (named or numbered) port against a container's ports.
func containerPort(c *corev1.Container, p intstr.IntOrString) (int32, bool) {
	for _, cp := range c.Ports {
		if (p.Type == intstr.String && cp.Name == p.StrVal) || (p.Type == intstr.Int && cp.ContainerPort == p.IntVal) {
			return cp.ContainerPort, true
		}
	}
	return 0, false
}

// TestRBAC checks the bindings: the manager gets the generated roles and the leader election Role;
// the gateway gets nothing.
func TestRBAC(t *testing.T) {
	docs := render(t)
	roles := map[string]*rbacv1.Role{}
	for _, r := range all[*rbacv1.Role](docs) {
		roles[r.Name] = r
	}
	clusterRoles := map[string]*rbacv1.ClusterRole{}
	for _, r := range all[*rbacv1.ClusterRole](docs) {
		clusterRoles[r.Name] = r
	}
	// The manager's rules: every role bound to its ServiceAccount.
	var managerRules, clusterRules []rbacv1.PolicyRule
	check := func(kind, name string, ref rbacv1.RoleRef, subjects []rbacv1.Subject) {
		for _, s := range subjects {
			if s.Kind != rbacv1.ServiceAccountKind || s.Namespace != systemNS || s.Name != managerSA {
				t.Errorf("%s %s binds %s %s/%s: only the manager's ServiceAccount may be bound", kind, name, s.Kind, s.Namespace, s.Name)
				continue
			}
			switch ref.Kind {
			case "Role":
				if kind == "ClusterRoleBinding" || roles[ref.Name] == nil {
					t.Errorf("%s %s: roleRef Role %s is not in config/default", kind, name, ref.Name)
					continue
				}
				managerRules = append(managerRules, roles[ref.Name].Rules...)
			case "ClusterRole":
				if clusterRoles[ref.Name] == nil {
					t.Errorf("%s %s: roleRef ClusterRole %s is not in config/default", kind, name, ref.Name)
					continue
				}
				if kind == "ClusterRoleBinding" {
					clusterRules = append(clusterRules, clusterRoles[ref.Name].Rules...)
				}
				managerRules = append(managerRules, clusterRoles[ref.Name].Rules...)
			}
		}
	}
	for _, b := range all[*rbacv1.ClusterRoleBinding](docs) {
		check("ClusterRoleBinding", b.Name, b.RoleRef, b.Subjects)
	}
	for _, b := range all[*rbacv1.RoleBinding](docs) {
		if b.Namespace != systemNS {
			t.Errorf("RoleBinding %s is in %s", b.Name, b.Namespace)
		}
		check("RoleBinding", b.Name, b.RoleRef, b.Subjects)
	}

	// The generated roles are bound as generated: the ClusterRole cluster-wide, the Role in place.
	generated, err := os.ReadFile(filepath.Join(repoRoot(t), "config", "rbac", "role.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	gen, err := decodeAll(generated)
	if err != nil {
		t.Fatal(err)
	}
	for _, g := range all[*rbacv1.ClusterRole](gen) {
		if !containsRules(clusterRules, g.Rules) {
			t.Errorf("the generated ClusterRole %s is not bound cluster-wide to the manager", g.Name)
		}
	}
	for _, g := range all[*rbacv1.Role](gen) {
		if !containsRules(managerRules, g.Rules) {
			t.Errorf("the generated Role %s is not bound to the manager", g.Name)
		}
	}
	// Leader election: leases in the manager's namespace.
	if !slices.ContainsFunc(managerRules, func(r rbacv1.PolicyRule) bool {
		return slices.Contains(r.APIGroups, "coordination.k8s.io") && slices.Contains(r.Resources, "leases") &&
			slices.Contains(r.Verbs, "create") && slices.Contains(r.Verbs, "update") && slices.Contains(r.Verbs, "get")
	}) {
		t.Error("the manager may not hold a leader-election Lease")
	}
}

func containsRules(have, want []rbacv1.PolicyRule) bool {
	for _, w := range want {
		if !slices.ContainsFunc(have, func(h rbacv1.PolicyRule) bool { return reflect.DeepEqual(h, w) }) {
			return false
		}
	}
	return true
}

// TestManifestsMatchBinaries builds the manager and the gateway, reads their flags and defaults
// from -h, and checks the manifests against them: every argument is a real flag, and the ports,
// paths and names the binaries use are those the manifests provide.
func TestManifestsMatchBinaries(t *testing.T) {
	docs := render(t)
	mgrDep, gwDep := deployment(t, docs, managerApp), deployment(t, docs, gatewayApp)
	mgrC, gwC := &mgrDep.Spec.Template.Spec.Containers[0], &gwDep.Spec.Template.Spec.Containers[0]
	mgr := inPod(t, mgrDep, effectiveFlags(t, "manager", mgrC.Args))
	gw := inPod(t, gwDep, effectiveFlags(t, "gateway", gwC.Args))

	if mgr["leader-elect"] != "true" {
		t.Errorf("manager: --leader-elect is %q", mgr["leader-elect"])
	}
	// Listening ports against container ports and probes.
	for _, tc := range []struct {
		desc, addr, port string
		c                *corev1.Container
	}{
		{desc: "manager metrics", addr: mgr["metrics-bind-address"], port: "metrics", c: mgrC},
		{desc: "manager health", addr: mgr["health-probe-bind-address"], port: "health", c: mgrC},
		{desc: "manager stream", addr: mgr["distribution-bind-address"], port: "stream", c: mgrC},
		{desc: "gateway traffic", addr: gw["listen"], port: "http", c: gwC},
		{desc: "gateway health", addr: gw["health-listen"], port: "health", c: gwC},
		{desc: "gateway metrics", addr: gw["metrics-listen"], port: "metrics", c: gwC},
	} {
		n, ok := containerPort(tc.c, intstr.FromString(tc.port))
		if !ok {
			t.Errorf("%s: the container has no port named %s", tc.desc, tc.port)
			continue
		}
		if got := portOf(t, tc.addr); got != n {
			t.Errorf("%s: the binary listens on %q, the manifest declares port %d", tc.desc, tc.addr, n)
		}
	}
	for _, c := range []*corev1.Container{mgrC, gwC} {
		for _, p := range []*corev1.Probe{c.LivenessProbe, c.ReadinessProbe} {
			if p != nil && p.HTTPGet != nil && p.HTTPGet.Port.String() != "health" {
				t.Errorf("%s: a probe targets port %s, not the health port", c.Name, p.HTTPGet.Port.String())
			}
		}
	}

	// The gateway finds the manager's stream through the manager's Service.
	u, err := url.Parse(gw["manager-url"])
	if err != nil {
		t.Fatalf("gateway --manager-url %q: %v", gw["manager-url"], err)
	}
	host, port, err := net.SplitHostPort(u.Host)
	if err != nil {
		t.Fatalf("gateway --manager-url %q: %v", gw["manager-url"], err)
	}
	if !slices.Contains(strings.Split(mgr["distribution-hosts"], ","), host) {
		t.Errorf("the manager's serving certificate (--distribution-hosts %s) does not name %s", mgr["distribution-hosts"], host)
	}
	labelsOf := strings.Split(host, ".")
	if len(labelsOf) < 3 || labelsOf[2] != "svc" {
		t.Fatalf("gateway --manager-url host %s is not a Service name", host)
	}
	svc := service(t, docs, labelsOf[1], labelsOf[0])
	portNum, _ := strconv.Atoi(port)
	if !slices.ContainsFunc(svc.Spec.Ports, func(p corev1.ServicePort) bool {
		n, ok := containerPort(mgrC, p.TargetPort)
		return int(p.Port) == portNum && ok && n == portOf(t, mgr["distribution-bind-address"])
	}) {
		t.Errorf("Service %s/%s has no port %s leading to the manager's stream", svc.Namespace, svc.Name, port)
	}

	// The gateway's CA file and token file are where the manifests mount them.
	caFile := gw["manager-ca-file"]
	ca := mountedVolume(t, &gwDep.Spec.Template.Spec, gwC, path.Dir(caFile))
	_, caSecret, _ := strings.Cut(mgr["ca-secret"], "/")
	if ca.ConfigMap == nil || ca.ConfigMap.Name != caSecret {
		t.Errorf("gateway --manager-ca-file %s is not in the ConfigMap %s the manager publishes", caFile, caSecret)
	} else if !slices.ContainsFunc(ca.ConfigMap.Items, func(k corev1.KeyToPath) bool { return k.Path == path.Base(caFile) }) {
		t.Errorf("gateway --manager-ca-file %s: the ConfigMap volume has no %s", caFile, path.Base(caFile))
	}
	tokenFile := gw["token-file"]
	tok := mountedVolume(t, &gwDep.Spec.Template.Spec, gwC, path.Dir(tokenFile))
	if tok.Projected == nil || !slices.ContainsFunc(tok.Projected.Sources, func(s corev1.VolumeProjection) bool {
		return s.ServiceAccountToken != nil && s.ServiceAccountToken.Path == path.Base(tokenFile)
	}) {
		t.Errorf("gateway --token-file %s is not a projected ServiceAccount token", tokenFile)
	}

	// The manager accepts the ServiceAccount the gateway runs as.
	if want := systemNS + "/" + gwDep.Spec.Template.Spec.ServiceAccountName; mgr["gateway-service-account"] != want ||
		gwDep.Namespace != systemNS {
		t.Errorf("manager --gateway-service-account %s, but the gateway runs as %s", mgr["gateway-service-account"], want)
	}
	if ns, _, _ := strings.Cut(mgr["ca-secret"], "/"); ns != systemNS {
		t.Errorf("manager --ca-secret %s is outside %s, where its Role allows Secrets", mgr["ca-secret"], systemNS)
	}
}

var (
	buildOnce sync.Once
	binDir    string
	buildErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		_ = os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// binaries builds the manager and the gateway once and returns the directory holding them.
func binaries(t *testing.T) string {
	t.Helper()
	root := repoRoot(t)
	buildOnce.Do(func() {
		if binDir, buildErr = os.MkdirTemp("", "resilience-deploy-"); buildErr != nil {
			return
		}
		for _, name := range []string{"manager", "gateway"} {
			build := exec.Command("go", "build", "-o", filepath.Join(binDir, name), "./cmd/"+name)
			build.Dir = root
			if out, err := build.CombinedOutput(); err != nil {
				buildErr = fmt.Errorf("build %s: %w\n%s", name, err, out)
				return
			}
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binDir
}

// effectiveFlags reads the flags and defaults of a built command from -h and applies args to them.
func effectiveFlags(t *testing.T, name string, args []string) map[string]string {
	t.Helper()
	bin := filepath.Join(binaries(t), name)
	out, err := exec.Command(bin, "-h").CombinedOutput()
	if err != nil {
		t.Fatalf("%s -h: %v\n%s", name, err, out)
	}
	flags := parseHelp(string(out))
	if len(flags) == 0 {
		t.Fatalf("%s -h listed no flags:\n%s", name, out)
	}
	for _, a := range args {
		k, v, hasValue := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if !strings.HasPrefix(a, "-") {
			t.Errorf("%s: argument %q is not a flag", name, a)
			continue
		}
		if _, ok := flags[k]; !ok {
			t.Errorf("%s: the manifest passes %s, which is no flag of the binary", name, a)
			continue
		}
		if !hasValue {
			v = "true" // only booleans may go without =value here
		}
		flags[k] = v
	}
	return flags
}

var (
	helpFlag    = regexp.MustCompile(`^\s+-([A-Za-z0-9][-A-Za-z0-9_.]*)`)
	helpDefault = regexp.MustCompile(`\(default (?:"((?:[^"\\]|\\.)*)"|([^)]*))\)`)
)

// parseHelp reads the flag package's usage output: name -> default ("" when it has none).
func parseHelp(help string) map[string]string {
	flags := map[string]string{}
	current := ""
	for _, line := range strings.Split(help, "\n") {
		if m := helpFlag.FindStringSubmatch(line); m != nil && !strings.HasPrefix(line, "    \t") {
			current = m[1]
			flags[current] = ""
		}
		if current == "" {
			continue
		}
		if m := helpDefault.FindStringSubmatch(line); m != nil {
			if m[1] != "" {
				flags[current], _ = strconv.Unquote(`"` + m[1] + `"`)
			} else {
				flags[current] = m[2]
			}
		}
	}
	return flags
}

func portOf(t *testing.T, addr string) int32 {
	t.Helper()
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatalf("address %q: %v", addr, err)
	}
	n, err := strconv.Atoi(p)
	if err != nil {
		t.Fatalf("address %q: %v", addr, err)
	}
	return int32(n)
}

// TestServerAccepts hands the render to a real kube-apiserver: a server-side dry run of the whole
// of config/default (schemas, defaulting, admission), Pod Security admission of every pod template
// in the restricted namespace, and, with the RBAC applied for real, what each ServiceAccount may do.
func TestServerAccepts(t *testing.T) {
	docs := render(t)
	kubectl := kubectlPath(t)
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
		cmd := exec.Command(kubectl, append([]string{"--kubeconfig", kubeconfigPath}, args...)...)
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

	// A namespaced dry run needs its namespace: create it (with its Pod Security labels) for real.
	if out, errOut, err := run(join(func(d doc) bool { return d.gvk == "Namespace" }), "apply", "--server-side", "-f", "-"); err != nil {
		t.Fatalf("apply the Namespace: %v\n%s%s", err, out, errOut)
	}

	t.Run("server-side dry run of config/default", func(t *testing.T) {
		out, errOut, err := run(join(func(doc) bool { return true }), "apply", "--server-side", "--dry-run=server", "-f", "-")
		if err != nil {
			t.Fatalf("kubectl apply --server-side --dry-run=server: %v\n%s%s", err, out, errOut)
		}
		// Warnings include Pod Security violations of the Deployments' pod templates.
		if strings.TrimSpace(errOut) != "" {
			t.Errorf("the API server warned:\n%s", errOut)
		}
		if n := strings.Count(out, "(server dry run)"); n != len(docs) {
			t.Errorf("%d of %d objects accepted:\n%s", n, len(docs), out)
		}
	})

	t.Run("server-side dry run of the Helm chart", func(t *testing.T) {
		withValues := map[string]any{"gateway": map[string]any{"accessLog": true, "autoscaling": map[string]any{"enabled": true}},
			"store": map[string]any{"url": "redis://valkey:6379/0", "passwordSecret": "valkey-auth"}}
		for _, values := range []map[string]any{nil, withValues} {
			chartDocs, manifest := renderChart(t, systemNS, values)
			out, errOut, err := run(manifest, "apply", "--server-side", "--dry-run=server", "-f", "-")
			if err != nil || strings.TrimSpace(errOut) != "" {
				t.Fatalf("kubectl apply --server-side --dry-run=server of the chart (values %v): %v\n%s%s", values, err, out, errOut)
			}
			if n := strings.Count(out, "(server dry run)"); n != len(chartDocs) {
				t.Errorf("%d of %d objects accepted (values %v):\n%s", n, len(chartDocs), values, out)
			}
		}
	})

	pod := func(d *appsv1.Deployment) *corev1.Pod {
		return &corev1.Pod{
			TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"},
			ObjectMeta: metav1.ObjectMeta{Name: d.Name + "-dry-run", Namespace: d.Namespace, Labels: d.Spec.Template.Labels},
			Spec:       *d.Spec.Template.Spec.DeepCopy(),
		}
	}
	createPod := func(p *corev1.Pod) (string, error) {
		data, err := json.Marshal(p)
		if err != nil {
			t.Fatal(err)
		}
		out, errOut, err := run(data, "create", "--dry-run=server", "-f", "-")
		return out + errOut, err
	}
	for _, d := range all[*appsv1.Deployment](docs) {
		t.Run("Pod Security admits the "+d.Name+" pods", func(t *testing.T) {
			if out, err := createPod(pod(d)); err != nil {
				t.Errorf("a pod of %s is refused in %s: %v\n%s", d.Name, systemNS, err, out)
			}
		})
	}
	t.Run("Pod Security refuses a pod that is not restricted", func(t *testing.T) {
		// The control: the same gateway pod, less its container security context, must be refused,
		// or the admissions above prove nothing.
		p := pod(deployment(t, docs, gatewayApp))
		p.Spec.Containers[0].SecurityContext = nil
		out, err := createPod(p)
		if err == nil || !strings.Contains(out, "violates PodSecurity") {
			t.Errorf("an unrestricted pod was not refused by Pod Security (err %v):\n%s", err, out)
		}
	})

	// Apply the RBAC for real and ask the authorizer what each ServiceAccount may do.
	rbacKinds := map[string]bool{"ServiceAccount": true, "Role": true, "ClusterRole": true, "RoleBinding": true, "ClusterRoleBinding": true}
	if out, errOut, err := run(join(func(d doc) bool { return rbacKinds[d.gvk] }), "apply", "--server-side", "-f", "-"); err != nil {
		t.Fatalf("apply the RBAC: %v\n%s%s", err, out, errOut)
	}
	for _, tc := range []struct {
		desc, sa string
		args     []string
		want     bool
	}{
		{desc: "manager reviews gateway tokens", sa: managerSA, args: []string{"create", "tokenreviews.authentication.k8s.io"}, want: true},
		{desc: "manager watches Services everywhere", sa: managerSA, args: []string{"watch", "services", "-A"}, want: true},
		{desc: "manager lists EndpointSlices everywhere", sa: managerSA, args: []string{"list", "endpointslices.discovery.k8s.io", "-A"}, want: true},
		{desc: "manager reads policies everywhere", sa: managerSA, args: []string{"list", "ratelimits.resilience.dev", "-A"}, want: true},
		{desc: "manager writes policy status", sa: managerSA, args: []string{"patch", "circuitbreakers.resilience.dev", "--subresource=status", "-n", "shop"}, want: true},
		{desc: "manager records events", sa: managerSA, args: []string{"create", "events.events.k8s.io", "-n", "shop"}, want: true},
		{desc: "manager reads its CA Secret", sa: managerSA, args: []string{"get", "secrets/resilience-distribution-ca", "-n", systemNS}, want: true},
		{desc: "manager publishes the CA ConfigMap", sa: managerSA, args: []string{"update", "configmaps", "-n", systemNS}, want: true},
		{desc: "manager holds its leader Lease", sa: managerSA, args: []string{"update", "leases.coordination.k8s.io", "-n", systemNS}, want: true},
		{desc: "manager changes no policy spec", sa: managerSA, args: []string{"update", "ratelimits.resilience.dev", "-n", "shop"}, want: false},
		{desc: "manager lists no Secrets", sa: managerSA, args: []string{"list", "secrets", "-n", systemNS}, want: false},
		{desc: "manager reads no Secret elsewhere", sa: managerSA, args: []string{"get", "secrets", "-n", "default"}, want: false},
		{desc: "manager writes no ConfigMap elsewhere", sa: managerSA, args: []string{"create", "configmaps", "-n", "default"}, want: false},
		{desc: "manager changes no Service", sa: managerSA, args: []string{"update", "services", "-n", "shop"}, want: false},
		{desc: "manager creates no pods", sa: managerSA, args: []string{"create", "pods", "-n", systemNS}, want: false},
		{desc: "gateway reads no Secret", sa: gatewaySA, args: []string{"get", "secrets/resilience-distribution-ca", "-n", systemNS}, want: false},
		{desc: "gateway reads no ConfigMap", sa: gatewaySA, args: []string{"get", "configmaps", "-n", systemNS}, want: false},
		{desc: "gateway lists no Services", sa: gatewaySA, args: []string{"list", "services", "-A"}, want: false},
		{desc: "gateway lists no EndpointSlices", sa: gatewaySA, args: []string{"list", "endpointslices.discovery.k8s.io", "-A"}, want: false},
		{desc: "gateway reviews no tokens", sa: gatewaySA, args: []string{"create", "tokenreviews.authentication.k8s.io"}, want: false},
		{desc: "gateway reads no policies", sa: gatewaySA, args: []string{"get", "ratelimits.resilience.dev", "-A"}, want: false},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			args := append([]string{"auth", "can-i"}, tc.args...)
			args = append(args, "--as=system:serviceaccount:"+systemNS+":"+tc.sa,
				"--as-group=system:serviceaccounts", "--as-group=system:serviceaccounts:"+systemNS, "--as-group=system:authenticated")
			out, errOut, err := run(nil, args...)
			got := strings.TrimSpace(out) == "yes"
			var exit *exec.ExitError
			if err != nil && !(errors.As(err, &exit) && exit.ExitCode() == 1 && strings.TrimSpace(out) == "no") {
				t.Fatalf("kubectl auth can-i: %v\n%s%s", err, out, errOut)
			}
			if got != tc.want {
				t.Errorf("kubectl %s: %q, want %v", strings.Join(tc.args, " "), strings.TrimSpace(out), tc.want)
			}
		})
	}

	t.Run("the manager and a gateway work on these permissions alone", func(t *testing.T) {
		runOnOwnRBAC(t, kubeconfig, run, systemNS)
	})
}

// runOnOwnRBAC runs the real manager as its ServiceAccount and a real gateway with a token of its
// own ServiceAccount for the stream's audience, then applies the samples and waits until every
// policy is Accepted and Programmed: the roles are not only small, they are enough. No process may
// log a "forbidden" error.
func runOnOwnRBAC(t *testing.T, adminKubeconfig []byte, kubectl func([]byte, ...string) (string, string, error), systemNS string) {
	bin := binaries(t)
	dir := t.TempDir()
	must := func(stdin []byte, args ...string) string {
		t.Helper()
		out, errOut, err := kubectl(stdin, args...)
		if err != nil {
			t.Fatalf("kubectl %s: %v\n%s%s", strings.Join(args, " "), err, out, errOut)
		}
		return out
	}
	write := func(name string, data []byte) string {
		t.Helper()
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}

	// The manager's kubeconfig: the control plane's, with the ServiceAccount's token as the only
	// credential, as in its pod.
	cfg, err := clientcmd.Load(adminKubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	token := strings.TrimSpace(must(nil, "create", "token", managerSA, "-n", systemNS, "--duration=1h"))
	for name := range cfg.AuthInfos {
		cfg.AuthInfos[name] = &clientcmdapi.AuthInfo{Token: token}
	}
	saKubeconfig, err := clientcmd.Write(*cfg)
	if err != nil {
		t.Fatal(err)
	}
	mgrMetrics, mgrHealth, mgrStream := freeAddr(t), freeAddr(t), freeAddr(t)
	// Without --leader-elect: outside a pod, controller-runtime cannot tell the Lease's namespace
	// (it reads it from the pod's ServiceAccount mount). The Lease permissions are asked above.
	// POD_NAMESPACE as the manifests set it: the manager finds its CA and the gateways'
	// ServiceAccount there.
	mgrLog := start(t, filepath.Join(bin, "manager"), []string{"KUBECONFIG=" + write("manager.kubeconfig", saKubeconfig), "POD_NAMESPACE=" + systemNS},
		"--metrics-bind-address="+mgrMetrics, "--health-probe-bind-address="+mgrHealth,
		"--distribution-bind-address="+mgrStream, "--replica=deploy-test-manager")
	until(t, "the manager ready", 60*time.Second, mgrLog, func() bool { return httpOK("http://" + mgrHealth + "/readyz") })

	// What the kubelet would mount in a gateway pod: the CA certificate from the ConfigMap, and a
	// token for the stream's audience.
	var caPEM string
	until(t, "the CA ConfigMap", 30*time.Second, mgrLog, func() bool {
		out, _, err := kubectl(nil, "get", "configmap", "resilience-distribution-ca", "-n", systemNS, "-o", `jsonpath={.data.ca\.crt}`)
		caPEM = out
		return err == nil && strings.Contains(out, "BEGIN CERTIFICATE")
	})
	checkServingName(t, mgrStream, "resilience-manager."+systemNS+".svc", caPEM)
	gwToken := strings.TrimSpace(must(nil, "create", "token", gatewaySA, "-n", systemNS, "--audience", distribution.Audience, "--duration=1h"))
	gwListen, gwHealth, gwMetrics := freeAddr(t), freeAddr(t), freeAddr(t)
	gwLog := start(t, filepath.Join(bin, "gateway"), nil,
		"--listen="+gwListen, "--health-listen="+gwHealth, "--metrics-listen="+gwMetrics,
		"--manager-url=https://"+mgrStream, "--manager-ca-file="+write("ca.crt", []byte(caPEM)),
		"--token-file="+write("token", []byte(gwToken)), "--replica=deploy-test-gateway")
	logs := func() string { return mgrLog() + gwLog() }
	until(t, "the gateway ready (authenticated, first snapshot applied)", 30*time.Second, logs, func() bool {
		return httpOK("http://" + gwHealth + "/readyz")
	})

	// The samples: the manager reconciles them, writes status, and the gateway acknowledges them.
	must(nil, "apply", "--server-side", "-f", filepath.Join(repoRoot(t), "config", "samples"))
	until(t, "every sample policy Accepted and Programmed", 30*time.Second, logs, func() bool {
		out, _, err := kubectl(nil, "get", "resilience", "-A", "-o",
			`jsonpath={range .items[*]}{.metadata.name}{range .status.conditions[*]} {.type}={.status}{end}{"\n"}{end}`)
		if err != nil {
			return false
		}
		lines := strings.Split(strings.TrimSpace(out), "\n")
		for _, l := range lines {
			if !strings.Contains(l, "Accepted=True") || !strings.Contains(l, "Programmed=True") {
				return false
			}
		}
		return len(lines) == 3
	})
	for _, l := range strings.Split(logs(), "\n") {
		if strings.Contains(strings.ToLower(l), "forbidden") {
			t.Errorf("a permission is missing: %s", l)
		}
	}
}

// start runs a binary until the test ends and returns a function that reads its output so far.
func start(t *testing.T, bin string, env []string, args ...string) func() string {
	t.Helper()
	out := &syncBuffer{}
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	})
	return out.String
}

type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// until polls cond until it holds, or fails the test with the processes' output.
func until(t *testing.T, what string, timeout time.Duration, logs func() string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s; output so far:\n%s", what, timeout, logs())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func httpOK(u string) bool {
	c := http.Client{Timeout: 2 * time.Second}
	resp, err := c.Get(u)
	if err != nil {
		return false
	}
	_ = resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// TestGitOps checks config/gitops: Argo CD and Flux both deploy config/default, server-side, and
// override exactly the images its Deployments use.
func TestGitOps(t *testing.T) {
	docs := render(t)
	root := repoRoot(t)
	var images []string
	for _, d := range all[*appsv1.Deployment](docs) {
		for _, c := range d.Spec.Template.Spec.Containers {
			images = append(images, imageName(c.Image))
		}
	}
	slices.Sort(images)

	type object struct {
		Kind     string `json:"kind"`
		Metadata struct {
			Name        string            `json:"name"`
			Annotations map[string]string `json:"annotations"`
		} `json:"metadata"`
		Spec struct {
			// Argo CD Application
			Source struct {
				Path      string `json:"path"`
				Kustomize struct {
					Images []string `json:"images"`
				} `json:"kustomize"`
			} `json:"source"`
			SyncPolicy struct {
				SyncOptions []string `json:"syncOptions"`
			} `json:"syncPolicy"`
			// Flux Kustomization
			Path      string `json:"path"`
			SourceRef struct {
				Kind string `json:"kind"`
				Name string `json:"name"`
			} `json:"sourceRef"`
			Images []struct {
				Name string `json:"name"`
			} `json:"images"`
		} `json:"spec"`
	}
	read := func(file string) []object {
		data, err := os.ReadFile(filepath.Join(root, "config", "gitops", file))
		if err != nil {
			t.Fatal(err)
		}
		reader := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
		var objs []object
		for {
			raw, err := reader.Read()
			if errors.Is(err, io.EOF) {
				return objs
			}
			if err != nil {
				t.Fatalf("%s: %v", file, err)
			}
			var o object
			if err := utilyaml.Unmarshal(raw, &o); err != nil {
				t.Fatalf("%s: %v", file, err)
			}
			if o.Kind != "" {
				objs = append(objs, o)
			}
		}
	}
	find := func(objs []object, kind, name string) *object {
		for i := range objs {
			if objs[i].Kind == kind && objs[i].Metadata.Name == name {
				return &objs[i]
			}
		}
		t.Fatalf("no %s %s in config/gitops", kind, name)
		return nil
	}

	argo := find(read("argocd-application.yaml"), "Application", "resilience-operator")
	if argo.Spec.Source.Path != "config/default" {
		t.Errorf("Argo CD Application: path %q, want config/default", argo.Spec.Source.Path)
	}
	var argoImages []string
	for _, i := range argo.Spec.Source.Kustomize.Images {
		name, _, _ := strings.Cut(i, "=")
		argoImages = append(argoImages, name)
	}
	slices.Sort(argoImages)
	if !slices.Equal(argoImages, images) {
		t.Errorf("Argo CD Application overrides images %v, config/default uses %v", argoImages, images)
	}
	if !slices.Contains(argo.Spec.SyncPolicy.SyncOptions, "ServerSideApply=true") ||
		!strings.Contains(argo.Metadata.Annotations["argocd.argoproj.io/compare-options"], "ServerSideDiff=true") {
		t.Error("Argo CD Application: not server-side (ServerSideApply sync option, ServerSideDiff compare option)")
	}

	flux := read("flux.yaml")
	ks := find(flux, "Kustomization", "resilience-operator")
	if ks.Spec.Path != "./config/default" {
		t.Errorf("Flux Kustomization: path %q, want ./config/default", ks.Spec.Path)
	}
	find(flux, ks.Spec.SourceRef.Kind, ks.Spec.SourceRef.Name)
	var fluxImages []string
	for _, i := range ks.Spec.Images {
		fluxImages = append(fluxImages, i.Name)
	}
	slices.Sort(fluxImages)
	if !slices.Equal(fluxImages, images) {
		t.Errorf("Flux Kustomization overrides images %v, config/default uses %v", fluxImages, images)
	}
}

// imageName is an image reference without its tag or digest.
func imageName(ref string) string {
	ref, _, _ = strings.Cut(ref, "@")
	if i := strings.LastIndex(ref, ":"); i > strings.LastIndex(ref, "/") {
		return ref[:i]
	}
	return ref
}
