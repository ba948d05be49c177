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

package main

import (
	"errors"
	"fmt"
	"strings"

	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/validation"

	"resilience.dev/operator/internal/capture"
	"resilience.dev/operator/internal/controller"
)

// managerService is the name of the manager's Service (config/manager/service.yaml): the default
// serving certificate names it in the operator's namespace.
const managerService = "resilience-manager"

// resolveNamespace completes the flags that name objects of the operator's own namespace: the
// namespace comes from --namespace, which defaults to POD_NAMESPACE (the downward API in the
// manifests); a name without "namespace/" is resolved in it, and the serving certificate's default
// names are the manager's Service in it. It returns the ServiceAccount and Secret references split.
func resolveNamespace(c *config) (saNS, saName, caNS, caName string, err error) {
	if c.namespace == "" {
		return "", "", "", "", errors.New("the operator's namespace is unknown: set POD_NAMESPACE (the manifests set it from the pod, metadata.namespace) or pass --namespace")
	}
	if errs := validation.IsDNS1123Label(c.namespace); len(errs) > 0 {
		return "", "", "", "", fmt.Errorf("--namespace %q: %s", c.namespace, strings.Join(errs, "; "))
	}
	if saNS, saName, err = inNamespace("--gateway-service-account", c.gatewaySA, c.namespace); err != nil {
		return "", "", "", "", err
	}
	if caNS, caName, err = inNamespace("--ca-secret", c.caSecret, c.namespace); err != nil {
		return "", "", "", "", err
	}
	if c.certHosts == "" {
		c.certHosts = defaultHosts(c.namespace)
	}
	return saNS, saName, caNS, caName, nil
}

// inNamespace splits "namespace/name", or resolves a bare "name" in ns.
func inNamespace(flagName, ref, ns string) (string, string, error) {
	refNS, name, qualified := strings.Cut(ref, "/")
	if !qualified {
		refNS, name = ns, ref
	}
	if refNS == "" || name == "" || strings.Contains(name, "/") {
		return "", "", fmt.Errorf("%s %q: want name or namespace/name", flagName, ref)
	}
	return refNS, name, nil
}

// defaultHosts are the names a gateway may dial the stream by: the manager's Service in ns (short
// and fully qualified in the default cluster domain) and loopback for local mode.
func defaultHosts(ns string) string {
	svc := managerService + "." + ns + ".svc"
	return strings.Join([]string{svc, svc + ".cluster.local", "localhost", "127.0.0.1"}, ",")
}

// captureConfig reads the capture flags: the gateway's Service and the capture range.
func captureConfig(c config) (*controller.CaptureReconciler, error) {
	ns, name, err := inNamespace("--gateway-service", c.gatewayService, c.namespace)
	if err != nil {
		return nil, err
	}
	r, err := capture.ParseRange(c.captureRange)
	if err != nil {
		return nil, fmt.Errorf("--capture-range: %w", err)
	}
	return &controller.CaptureReconciler{Gateway: types.NamespacedName{Namespace: ns, Name: name}, Range: r}, nil
}
