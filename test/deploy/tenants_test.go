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
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/kubernetes"

	"resilience.dev/operator/internal/controlplane"
)

// TestTenantRoles applies config/default's resilience-editor and resilience-viewer ClusterRoles to a
// real kube-apiserver (RBAC authorizer, with its built-in admin, edit and view roles), binds the
// built-in roles to users in namespace team-a and asks `kubectl auth can-i --as` what they may do.
//
// envtest runs no kube-controller-manager, so no clusterrole-aggregation controller: aggregate does
// that controller's work, using the aggregation rules the API server itself installed on the built-in
// roles. Our roles reach edit/admin/view only if their labels match those rules.
func TestTenantRoles(t *testing.T) {
	docs := render(t)
	kubectl := kubectlPath(t)
	cp, err := controlplane.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cp.Stop() })
	cs := kubernetes.NewForConfigOrDie(cp.Config)
	ctx := context.Background()
	kubeconfig, err := cp.KubeConfig()
	if err != nil {
		t.Fatal(err)
	}
	kubeconfigPath := filepath.Join(t.TempDir(), "kubeconfig")
	if err := os.WriteFile(kubeconfigPath, kubeconfig, 0o600); err != nil {
		t.Fatal(err)
	}
	canI := func(user string, args ...string) bool {
		t.Helper()
		cmd := exec.Command(kubectl, append([]string{"--kubeconfig", kubeconfigPath, "auth", "can-i", "--as=" + user,
			"--as-group=system:authenticated"}, args...)...)
		out, err := cmd.Output()
		var exit *exec.ExitError
		if err != nil && !(errors.As(err, &exit) && exit.ExitCode() == 1 && strings.TrimSpace(string(out)) == "no") {
			t.Fatalf("kubectl auth can-i %s as %s: %v\n%s", strings.Join(args, " "), user, err, out)
		}
		return strings.TrimSpace(string(out)) == "yes"
	}

	for _, ns := range []string{"team-a", "team-b"} {
		if _, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	for user, role := range map[string]string{"alice": "edit", "bob": "view", "carol": "admin"} {
		rb := &rbacv1.RoleBinding{
			ObjectMeta: metav1.ObjectMeta{Name: user + "-" + role, Namespace: "team-a"},
			RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: role},
			Subjects:   []rbacv1.Subject{{APIGroup: rbacv1.GroupName, Kind: rbacv1.UserKind, Name: user}},
		}
		if _, err := cs.RbacV1().RoleBindings("team-a").Create(ctx, rb, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	aggregate(ctx, t, cs)
	// The control: the built-in roles alone grant nothing on the policies.
	if canI("alice", "create", "ratelimits.resilience.dev", "-n", "team-a") || canI("bob", "get", "ratelimits.resilience.dev", "-n", "team-a") {
		t.Fatal("edit/view grant policy rights without the operator's roles: this test proves nothing")
	}

	var applied []string
	for _, r := range all[*rbacv1.ClusterRole](docs) {
		if r.Labels["app.kubernetes.io/component"] != "tenant-rbac" {
			continue
		}
		if _, err := cs.RbacV1().ClusterRoles().Create(ctx, r, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		applied = append(applied, r.Name)
	}
	slices.Sort(applied)
	if want := []string{"resilience-editor", "resilience-viewer"}; !slices.Equal(applied, want) {
		t.Fatalf("config/default has tenant ClusterRoles %v, want %v", applied, want)
	}
	aggregate(ctx, t, cs)

	for _, tc := range []struct {
		user string
		args []string
		want bool
	}{
		{"alice", []string{"create", "ratelimits.resilience.dev", "-n", "team-a"}, true},
		{"alice", []string{"delete", "circuitbreakers.resilience.dev", "-n", "team-a"}, true},
		{"alice", []string{"update", "retrypolicies.resilience.dev", "-n", "team-a"}, true},
		{"alice", []string{"get", "ratelimits.resilience.dev", "--subresource=status", "-n", "team-a"}, true},
		{"alice", []string{"patch", "ratelimits.resilience.dev", "--subresource=status", "-n", "team-a"}, false},
		{"alice", []string{"create", "ratelimits.resilience.dev", "-n", "team-b"}, false},
		{"alice", []string{"list", "ratelimits.resilience.dev", "-n", "team-b"}, false},
		{"carol", []string{"create", "retrypolicies.resilience.dev", "-n", "team-a"}, true},
		{"carol", []string{"create", "retrypolicies.resilience.dev", "-n", "team-b"}, false},
		{"bob", []string{"get", "ratelimits.resilience.dev", "-n", "team-a"}, true},
		{"bob", []string{"list", "circuitbreakers.resilience.dev", "-n", "team-a"}, true},
		{"bob", []string{"watch", "retrypolicies.resilience.dev", "-n", "team-a"}, true},
		{"bob", []string{"create", "ratelimits.resilience.dev", "-n", "team-a"}, false},
		{"bob", []string{"delete", "ratelimits.resilience.dev", "-n", "team-a"}, false},
		{"bob", []string{"get", "ratelimits.resilience.dev", "-n", "team-b"}, false},
	} {
		if got := canI(tc.user, tc.args...); got != tc.want {
			t.Errorf("kubectl auth can-i %s --as=%s: %v, want %v", strings.Join(tc.args, " "), tc.user, got, tc.want)
		}
	}
}

// aggregate does what kube-controller-manager's clusterrole-aggregation controller does: each
// ClusterRole with an aggregationRule gets the union of the rules of the ClusterRoles its selectors
// match, repeated until nothing changes (admin aggregates edit, which aggregates others).
func aggregate(ctx context.Context, t *testing.T, cs kubernetes.Interface) {
	t.Helper()
	for range 5 {
		changed := false
		roles, err := cs.RbacV1().ClusterRoles().List(ctx, metav1.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		for i := range roles.Items {
			r := &roles.Items[i]
			if r.AggregationRule == nil {
				continue
			}
			var rules []rbacv1.PolicyRule
			for _, sel := range r.AggregationRule.ClusterRoleSelectors {
				s, err := metav1.LabelSelectorAsSelector(&sel)
				if err != nil {
					t.Fatal(err)
				}
				for _, o := range roles.Items {
					if o.Name == r.Name || !s.Matches(labels.Set(o.Labels)) {
						continue
					}
					for _, rule := range o.Rules {
						if !slices.ContainsFunc(rules, func(h rbacv1.PolicyRule) bool { return reflect.DeepEqual(h, rule) }) {
							rules = append(rules, rule)
						}
					}
				}
			}
			if reflect.DeepEqual(rules, r.Rules) {
				continue
			}
			r.Rules, changed = rules, true
			if _, err := cs.RbacV1().ClusterRoles().Update(ctx, r, metav1.UpdateOptions{}); err != nil {
				t.Fatal(err)
			}
		}
		if !changed {
			return
		}
	}
	t.Fatal("the aggregated roles did not settle")
}
