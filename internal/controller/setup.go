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
package controller

import (
	"fmt"

	ctrl "sigs.k8s.io/controller-runtime"
)

// SetupAll registers the reconcilers of all three kinds with the manager.
func SetupAll(mgr ctrl.Manager) error {
	c := mgr.GetClient()
	if err := (&RateLimitReconciler{Client: c}).SetupWithManager(mgr); err != nil {
		return fmt.Errorf("set up RateLimit reconciler: %w", err)
	}
	if err := (&CircuitBreakerReconciler{Client: c}).SetupWithManager(mgr); err != nil {
		return fmt.Errorf("set up CircuitBreaker reconciler: %w", err)
	}
	if err := (&RetryPolicyReconciler{Client: c}).SetupWithManager(mgr); err != nil {
		return fmt.Errorf("set up RetryPolicy reconciler: %w", err)
	}
	return nil
}
