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
	"context"
	"fmt"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"resilience.dev/operator/api/v1alpha1"
)

// objects returns Service i, its EndpointSlice and its policy.
func (s *stack) objects(i int) []client.Object {
	ns, name := fmt.Sprintf("ns%d", i%namespaces), fmt.Sprintf("svc%d", i)
	meta := metav1.ObjectMeta{Namespace: ns, Name: name}
	out := []client.Object{
		// Headless: the local API server's Service CIDR has room for only ~250 cluster IPs.
		&corev1.Service{ObjectMeta: meta, Spec: corev1.ServiceSpec{ClusterIP: corev1.ClusterIPNone,
			Ports: []corev1.ServicePort{{Name: "http", Port: 80}}}},
		&discoveryv1.EndpointSlice{
			ObjectMeta:  metav1.ObjectMeta{Namespace: ns, Name: name + "-local", Labels: map[string]string{discoveryv1.LabelServiceName: name}},
			AddressType: discoveryv1.AddressTypeFQDN,
			Ports:       []discoveryv1.EndpointPort{{Name: ptr.To("http"), Port: ptr.To(s.backendPort)}},
			Endpoints:   []discoveryv1.Endpoint{{Addresses: []string{name + ".localhost"}}},
		},
	}
	switch spec := policySpecs(i, name).(type) {
	case v1alpha1.RateLimitSpec:
		out = append(out, &v1alpha1.RateLimit{ObjectMeta: meta, Spec: spec})
	case v1alpha1.CircuitBreakerSpec:
		out = append(out, &v1alpha1.CircuitBreaker{ObjectMeta: meta, Spec: spec})
	case v1alpha1.RetryPolicySpec:
		out = append(out, &v1alpha1.RetryPolicy{ObjectMeta: meta, Spec: spec})
	}
	return out
}

// get sends GET / for Service i through the gateway.
func (s *stack) get(i int) (int, http.Header, error) {
	req, err := http.NewRequest(http.MethodGet, "http://"+s.opts.GatewayListen+"/", nil)
	if err != nil {
		return 0, nil, err
	}
	req.Host = fmt.Sprintf("svc%d.ns%d", i, i%namespaces)
	resp, err := s.http.Do(req)
	if err != nil {
		return 0, nil, err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	return resp.StatusCode, resp.Header, nil
}

// populate creates objects up to n policies and waits for them to be enforced.
func (s *stack) populate(ctx context.Context, n int) (StackFig, error) {
	f := StackFig{Policies: n}
	start := time.Now()
	if err := s.createUpTo(ctx, n); err != nil {
		return f, err
	}
	f.CreateSecs = time.Since(start).Seconds()
	deadline := time.Now().Add(10 * time.Minute)
	if err := s.waitEnforced(n, deadline); err != nil {
		return f, err
	}
	f.EnforcedSecs = time.Since(start).Seconds()
	if err := s.waitSettled(ctx, n, deadline); err != nil {
		return f, err
	}
	f.SettledSecs = time.Since(start).Seconds()
	return f, nil
}

// createUpTo creates the objects of Services s.created to n, 16 at a time.
func (s *stack) createUpTo(ctx context.Context, n int) error {
	next := atomic.Int64{}
	next.Store(int64(s.created))
	var wg sync.WaitGroup
	var firstErr error
	var errOnce sync.Once
	for range 16 {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				for _, o := range s.objects(i) {
					if err := s.k8s.Create(ctx, o); err != nil && !apierrors.IsAlreadyExists(err) {
						errOnce.Do(func() { firstErr = err })
						return
					}
				}
			}
		})
	}
	wg.Wait()
	if firstErr != nil {
		return firstErr
	}
	s.created = n
	return nil
}

// waitEnforced waits until the last policy of each kind is enforced: the manager compiled the
// whole set.
func (s *stack) waitEnforced(n int, deadline time.Time) error {
	for i := n - 3; i < n; i++ {
		for {
			code, h, err := s.get(i)
			if err == nil && code == 200 && (i%3 != 0 || h.Get("X-RateLimit-Limit") != "") {
				break
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("svc%d not enforced within 10 minutes (last: %d %v)", i, code, err)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	return nil
}

// waitSettled waits until every policy's status is written (Programmed at its generation): the
// changes are timed in that steady state. Until then the manager is still writing the status of the
// policies just created, and those writes compete with the changes for the API server and the CPU.
func (s *stack) waitSettled(ctx context.Context, n int, deadline time.Time) error {
	for {
		settled, err := s.statusSettled(ctx)
		if err != nil {
			return err
		}
		if settled == n {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("status of only %d of %d policies settled within 10 minutes", settled, n)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// statusSettled counts the policies whose Programmed condition is True at their generation.
func (s *stack) statusSettled(ctx context.Context) (int, error) {
	var rls v1alpha1.RateLimitList
	var cbs v1alpha1.CircuitBreakerList
	var rps v1alpha1.RetryPolicyList
	settled := 0
	count := func(p v1alpha1.Policy) {
		if p.GetName() == keyedName { // the memory phases' own policy, not one of the n
			return
		}
		c := meta.FindStatusCondition(p.GetPolicyStatus().Conditions, v1alpha1.ConditionProgrammed)
		if c != nil && c.Status == metav1.ConditionTrue && c.ObservedGeneration == p.GetGeneration() {
			settled++
		}
	}
	for _, l := range []client.ObjectList{&rls, &cbs, &rps} {
		if err := s.k8s.List(ctx, l); err != nil {
			return 0, err
		}
	}
	for i := range rls.Items {
		count(&rls.Items[i])
	}
	for i := range cbs.Items {
		count(&cbs.Items[i])
	}
	for i := range rps.Items {
		count(&rps.Items[i])
	}
	return settled, nil
}
