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
	"slices"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// TestCertManagerComponent: with config/components/cert-manager the manager serves the certificate
// cert-manager keeps in resilience-manager-tls (flags that the binary has, files where the Secret is
// mounted), the gateways trust that Secret's ca.crt where their --manager-ca-file default looks, and
// the Certificate names the manager's Service.
func TestCertManagerComponent(t *testing.T) {
	docs, _ := renderIn(t, systemNS, "config/components/cert-manager")
	var mgr, gw *appsv1.Deployment
	var cert *unstructured.Unstructured
	for _, d := range docs {
		switch o := d.obj.(type) {
		case *appsv1.Deployment:
			if o.Name == gatewayApp {
				gw = o
			} else {
				mgr = o
			}
		case *unstructured.Unstructured:
			if o.GetKind() == "Certificate" && o.GetName() == "resilience-manager-tls" {
				cert = o
			}
		}
	}
	if mgr == nil || gw == nil || cert == nil {
		t.Fatalf("manager %v, gateway %v, Certificate %v: want all three", mgr != nil, gw != nil, cert != nil)
	}
	mc := mgr.Spec.Template.Spec.Containers[0]
	for _, a := range []string{"--tls-cert-file=/etc/resilience/tls/tls.crt", "--tls-key-file=/etc/resilience/tls/tls.key"} {
		if !slices.Contains(mc.Args, a) {
			t.Errorf("manager args %q lack %s", mc.Args, a)
		}
	}
	if f := effectiveFlags(t, "manager", mc.Args); f["tls-cert-file"] != "/etc/resilience/tls/tls.crt" {
		t.Errorf("the manager binary reads --tls-cert-file %q", f["tls-cert-file"])
	}
	if f := effectiveFlags(t, "gateway", gw.Spec.Template.Spec.Containers[0].Args); f["manager-ca-file"] != "/etc/resilience/ca/ca.crt" {
		t.Errorf("the gateway reads its CA from %q, not where the component mounts ca.crt", f["manager-ca-file"])
	}
	if len(mc.VolumeMounts) != 1 || mc.VolumeMounts[0].MountPath != "/etc/resilience/tls" ||
		mgr.Spec.Template.Spec.Volumes[0].Secret == nil || mgr.Spec.Template.Spec.Volumes[0].Secret.SecretName != "resilience-manager-tls" {
		t.Errorf("manager mounts %v from %v, want resilience-manager-tls at /etc/resilience/tls", mc.VolumeMounts, mgr.Spec.Template.Spec.Volumes)
	}
	v := gw.Spec.Template.Spec.Volumes[0]
	if v.Name != "manager-ca" || v.Secret == nil || v.Secret.SecretName != "resilience-manager-tls" ||
		len(v.Secret.Items) != 1 || v.Secret.Items[0].Key != "ca.crt" || v.Secret.Items[0].Path != "ca.crt" {
		t.Errorf("gateway volume manager-ca %+v, want only ca.crt of resilience-manager-tls", v)
	}
	dns, _, _ := unstructured.NestedStringSlice(cert.Object, "spec", "dnsNames")
	if !slices.Contains(dns, "resilience-manager."+systemNS+".svc") {
		t.Errorf("Certificate dnsNames %v lack the manager's Service", dns)
	}
}
