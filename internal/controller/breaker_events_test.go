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
	"context"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/tools/events"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	"resilience.dev/operator/api/v1alpha1"
	"resilience.dev/operator/internal/distribution"
)

func TestBreakerEventRecorder(t *testing.T) {
	scheme := runtime.NewScheme()
	if err := v1alpha1.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	cb := &v1alpha1.CircuitBreaker{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "pay"}}
	reader := fake.NewClientBuilder().WithScheme(scheme).WithObjects(cb).Build()
	change := func(name, from, to, endpoint string) distribution.BreakerChange {
		return distribution.BreakerChange{Namespace: "shop", Name: name, Service: "payments", Port: 80,
			Endpoint: endpoint, From: from, To: to, Cause: "5 consecutive failures"}
	}
	cases := []struct {
		desc   string
		change distribution.BreakerChange
		want   string // "" for no Event
	}{
		{desc: "opened: a Warning", change: change("pay", "Closed", "Open", ""),
			want: "Warning CircuitOpened Closed -> Open on replica gw-0, Service payments port 80: 5 consecutive failures"},
		{desc: "half-open, on an endpoint", change: change("pay", "Open", "HalfOpen", "10.0.0.1:8080"),
			want: "Normal CircuitHalfOpen Open -> HalfOpen on replica gw-0, Service payments port 80, endpoint 10.0.0.1:8080: 5 consecutive failures"},
		{desc: "closed", change: change("pay", "HalfOpen", "Closed", ""),
			want: "Normal CircuitClosed HalfOpen -> Closed on replica gw-0, Service payments port 80: 5 consecutive failures"},
		{desc: "an unknown state", change: change("pay", "Closed", "Sideways", "")},
		{desc: "a CircuitBreaker that is gone", change: change("gone", "Closed", "Open", "")},
	}
	for _, tc := range cases {
		t.Run(tc.desc, func(t *testing.T) {
			rec := events.NewFakeRecorder(1)
			(&BreakerEventRecorder{Client: reader, Recorder: rec}).Record(context.Background(), "gw-0", tc.change)
			var got string
			select {
			case got = <-rec.Events:
			default:
			}
			if got != tc.want {
				t.Errorf("Event %q, want %q", got, tc.want)
			}
		})
	}
}
