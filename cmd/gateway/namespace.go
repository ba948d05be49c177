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

	"k8s.io/apimachinery/pkg/util/validation"
)

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
	if errs := validation.IsDNS1123Label(c.namespace); len(errs) > 0 {
		return fmt.Errorf("--namespace %q: %s", c.namespace, strings.Join(errs, "; "))
	}
	c.managerURL = defaultManagerURL(c.namespace)
	return nil
}
