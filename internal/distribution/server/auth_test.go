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

package server

import (
	"context"
	"errors"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"resilience.dev/operator/api/v1alpha1"
	"resilience.dev/operator/internal/controlplane"
	"resilience.dev/operator/internal/distribution"
	"resilience.dev/operator/internal/snapshot"
)

// TestTokenReviewAuthenticator runs against a real kube-apiserver: only a token of the gateway's own
// ServiceAccount, minted for the gateway audience, is accepted.
var (
	cpOnce   sync.Once
	cpErr    error
	cpShared *controlplane.ControlPlane
)

// controlPlane starts one real API server for the package's envtest tests, stopped by TestMain.
func controlPlane(t *testing.T) *controlplane.ControlPlane {
	t.Helper()
	cpOnce.Do(func() { cpShared, cpErr = controlplane.Start() })
	if cpErr != nil {
		t.Fatal(cpErr)
	}
	return cpShared
}

func TestMain(m *testing.M) {
	code := m.Run()
	if cpShared != nil {
		_ = cpShared.Stop()
	}
	os.Exit(code)
}

// clientIn returns a client of the shared API server, with the namespace ns created.
func clientIn(t *testing.T, ns string) (client.Client, *controlplane.ControlPlane) {
	t.Helper()
	cp := controlPlane(t)
	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	c, err := client.New(cp.Config, client.Options{Scheme: scheme})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Create(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
		t.Fatal(err)
	}
	return c, cp
}

func TestEnsureCA(t *testing.T) {
	c, _ := clientIn(t, "ca-test")
	ctx := context.Background()
	first, err := EnsureCA(ctx, c, c, "ca-test", "dist-ca")
	if err != nil {
		t.Fatal(err)
	}
	second, err := EnsureCA(ctx, c, c, "ca-test", "dist-ca")
	if err != nil {
		t.Fatal(err)
	}
	if string(first.CertPEM) != string(second.CertPEM) {
		t.Fatal("a second manager replica made its own CA instead of reading the stored one")
	}
	var cm corev1.ConfigMap
	if err := c.Get(ctx, client.ObjectKey{Namespace: "ca-test", Name: "dist-ca"}, &cm); err != nil {
		t.Fatal(err)
	}
	if cm.Data[CACertKey] != string(first.CertPEM) || len(cm.Data) != 1 || len(cm.BinaryData) != 0 {
		t.Fatalf("the ConfigMap must hold the CA certificate alone, got keys %v", cm.Data)
	}
	cm.Data[CACertKey] = "tampered"
	if err := c.Update(ctx, &cm); err != nil {
		t.Fatal(err)
	}
	if _, err := EnsureCA(ctx, c, c, "ca-test", "dist-ca"); err != nil {
		t.Fatal(err)
	}
	if err := c.Get(ctx, client.ObjectKey{Namespace: "ca-test", Name: "dist-ca"}, &cm); err != nil || cm.Data[CACertKey] != string(first.CertPEM) {
		t.Fatalf("a tampered ConfigMap was not restored: %v", err)
	}
}

func TestTokenReviewAuthenticator(t *testing.T) {
	c, cp := clientIn(t, "resilience-system")
	ctx := context.Background()
	cs := kubernetes.NewForConfigOrDie(cp.Config)
	for _, sa := range []string{"resilience-gateway", "intruder"} {
		if err := c.Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: "resilience-system", Name: sa}}); err != nil {
			t.Fatal(err)
		}
	}
	token := func(sa, audience string) string {
		t.Helper()
		tr, err := cs.CoreV1().ServiceAccounts("resilience-system").CreateToken(ctx, sa,
			&authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{Audiences: []string{audience}}}, metav1.CreateOptions{})
		if err != nil {
			t.Fatalf("TokenRequest for %s: %v", sa, err)
		}
		return tr.Status.Token
	}
	auth := &TokenReviewAuthenticator{Client: c, Namespace: "resilience-system", ServiceAccount: "resilience-gateway"}
	cases := []struct {
		desc    string
		token   string
		claimed string
		want    string
		refused bool
	}{
		{desc: "the gateway's token for the gateway audience", token: token("resilience-gateway", distribution.Audience), claimed: "gw-0", want: "gw-0"},
		{desc: "another ServiceAccount's token", token: token("intruder", distribution.Audience), refused: true},
		{desc: "the gateway's token for another audience", token: token("resilience-gateway", "https://kubernetes.default.svc"), refused: true},
		{desc: "garbage", token: "not-a-token", refused: true},
	}
	for _, tc := range cases {
		t.Run(tc.desc, func(t *testing.T) {
			got, err := auth.Authenticate(ctx, tc.token, tc.claimed)
			switch {
			case tc.refused && err == nil:
				t.Fatalf("accepted as %q", got)
			case tc.refused && !errors.Is(err, ErrUnauthenticated):
				t.Fatalf("refused for the wrong reason: %v", err)
			case !tc.refused && (err != nil || got != tc.want):
				t.Fatalf("got %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}

func TestConfigMapStore(t *testing.T) {
	c, _ := clientIn(t, "store-test")
	ctx := context.Background()
	store := &ConfigMapStore{Client: c, Reader: c, Namespace: "store-test"}
	now := time.Now().Truncate(time.Millisecond)
	st := GatewayState{Replica: "gw-0 (any name)", Manager: "m0", Heartbeat: now,
		Policies: map[snapshot.PolicyKey]int64{snapshot.PolicyKey{Kind: "RateLimit", Namespace: "shop", Name: "checkout"}: 3, snapshot.PolicyKey{Kind: "RetryPolicy", Namespace: "shop", Name: "catalog"}: 1},
		Breakers: map[BreakerKey]v1alpha1.CircuitState{{Namespace: "shop", Name: "payments", Service: "payments", Port: 80, Endpoint: "[fd00::1]:8080"}: v1alpha1.CircuitOpen},
		Store:    &distribution.StoreHealth{Error: "store down"}}
	if err := store.Put(ctx, st); err != nil {
		t.Fatal(err)
	}
	st.Policies[snapshot.PolicyKey{Kind: "RateLimit", Namespace: "shop", Name: "checkout"}] = 4
	st.Store = &distribution.StoreHealth{Available: true} // the error of the first put must go
	if err := store.Put(ctx, st); err != nil {            // an update, by server-side apply
		t.Fatal(err)
	}
	got, err := store.List(ctx)
	if err != nil || len(got) != 1 {
		t.Fatalf("list: %v %d", err, len(got))
	}
	if diff := cmp.Diff(st, got[0], cmpopts.EquateApproxTime(time.Millisecond)); diff != "" {
		t.Errorf("round trip (-put +list):\n%s", diff)
	}
	// Another manager took the gateway over: the old one's delete must keep the state.
	st.Manager = "m1"
	if err := store.Put(ctx, st); err != nil {
		t.Fatal(err)
	}
	if err := store.Delete(ctx, st.Replica, "m0"); err != nil {
		t.Fatal(err)
	}
	if got, _ := store.List(ctx); len(got) != 1 {
		t.Fatalf("a stale manager deleted a state it no longer owns")
	}
	if err := store.Delete(ctx, st.Replica, "m1"); err != nil {
		t.Fatal(err)
	}
	if got, _ := store.List(ctx); len(got) != 0 {
		t.Fatalf("the owner's delete left %d states", len(got))
	}
}
