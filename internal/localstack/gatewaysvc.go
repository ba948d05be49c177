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

package localstack

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

// The gateway's Service and its hand-made slice in local mode. Front Services' slices point at the
// gateway endpoints listed there (contract, section 5): in a cluster the EndpointSlice controller
// lists the gateway pods; here one FQDN endpoint, gateway.localhost, stands for the local replicas,
// which serve capture ports on their own loopback addresses.
const (
	GatewayService      = "resilience-gateway"
	GatewaySlice        = "resilience-gateway-local"
	GatewayEndpointFQDN = "gateway.localhost"
)

func (s *Stack) gatewayService(ctx context.Context) error {
	svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: GatewayService, Namespace: SystemNamespace},
		Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{{Name: "http", Port: 80, Protocol: corev1.ProtocolTCP}}}}
	if _, err := s.cs.CoreV1().Services(SystemNamespace).Create(ctx, svc, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("create the gateway's Service: %w", err)
	}
	slice := &discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Name: GatewaySlice, Namespace: SystemNamespace, Labels: map[string]string{discoveryv1.LabelServiceName: GatewayService}},
		AddressType: discoveryv1.AddressTypeFQDN,
		Ports:       []discoveryv1.EndpointPort{{Name: ptr.To("http"), Port: ptr.To[int32](8080)}},
		Endpoints: []discoveryv1.Endpoint{{Addresses: []string{GatewayEndpointFQDN},
			Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(true)}}},
	}
	if _, err := s.cs.DiscoveryV1().EndpointSlices(SystemNamespace).Create(ctx, slice, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("create the gateway's EndpointSlice: %w", err)
	}
	return nil
}

// SetGatewayReady sets the ready condition of the gateway's local endpoint, as the EndpointSlice
// controller does in a cluster when the gateway pods' readiness changes.
func (s *Stack) SetGatewayReady(ctx context.Context, ready bool) error {
	slices := s.cs.DiscoveryV1().EndpointSlices(SystemNamespace)
	sl, err := slices.Get(ctx, GatewaySlice, metav1.GetOptions{})
	if err != nil {
		return err
	}
	for i := range sl.Endpoints {
		sl.Endpoints[i].Conditions.Ready = ptr.To(ready)
	}
	_, err = slices.Update(ctx, sl, metav1.UpdateOptions{})
	return err
}
