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
	"regexp"
)

// dnsLabel is a Namespace name (RFC 1123 label). The gateway checks it itself rather than link
// apimachinery's validation, which would bring Kubernetes packages (and klog) into a binary that
// otherwise has none.
var dnsLabel = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`)

// defaultManagerURL is the manager's stream through its Service (config/manager/service.yaml) in
// the operator's namespace.
func defaultManagerURL(namespace string) string {
	return "https://resilience-manager." + namespace + ".svc:9443"
}

// resolveManagerURL fills --manager-url from the operator's namespace (--namespace, default
// POD_NAMESPACE, which the manifests set from the pod) when it is not given.
func resolveManagerURL(c *config) error {
	if c.managerURL != "" {
		return nil
	}
	if c.namespace == "" {
		return errors.New("no --manager-url, and the operator's namespace is unknown: set POD_NAMESPACE (the manifests set it from the pod, metadata.namespace), --namespace or --manager-url")
	}
	if len(c.namespace) > 63 || !dnsLabel.MatchString(c.namespace) {
		return fmt.Errorf("--namespace %q: not a Namespace name (at most 63 lower-case letters, digits and '-', starting and ending with a letter or digit)", c.namespace)
	}
	c.managerURL = defaultManagerURL(c.namespace)
	return nil
}
