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
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// Keys of the CA Secret.
const (
	CACertKey = "ca.crt"
	CAKeyKey  = "ca.key"
)

// EnsureCA loads the distribution CA from its Secret, creating it when absent, and publishes the CA
// certificate alone in a ConfigMap of the same name for the gateways to mount (they never see the key).
// Several manager replicas starting at once agree on one CA: the first create wins and the others read it.
func EnsureCA(ctx context.Context, reader client.Reader, writer client.Writer, namespace, name string) (*CA, error) {
	ca, err := ensureCASecret(ctx, reader, writer, namespace, name)
	if err != nil {
		return nil, err
	}
	if err := publishCACert(ctx, reader, writer, namespace, name, ca.CertPEM); err != nil {
		return nil, err
	}
	return ca, nil
}

// publishCACert makes the ConfigMap hold exactly the CA certificate.
func publishCACert(ctx context.Context, reader client.Reader, writer client.Writer, namespace, name string, certPEM []byte) error {
	var cm corev1.ConfigMap
	err := reader.Get(ctx, client.ObjectKey{Namespace: namespace, Name: name}, &cm)
	switch {
	case apierrors.IsNotFound(err):
		cm = corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name,
			Labels: map[string]string{"app.kubernetes.io/part-of": "resilience-operator"}},
			Data: map[string]string{CACertKey: string(certPEM)}}
		if err := writer.Create(ctx, &cm); err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("create CA ConfigMap %s/%s: %w", namespace, name, err)
		}
		return nil
	case err != nil:
		return fmt.Errorf("get CA ConfigMap %s/%s: %w", namespace, name, err)
	case cm.Data[CACertKey] == string(certPEM):
		return nil
	}
	if cm.Data == nil {
		cm.Data = map[string]string{}
	}
	cm.Data[CACertKey] = string(certPEM)
	if err := writer.Update(ctx, &cm); err != nil {
		return fmt.Errorf("update CA ConfigMap %s/%s: %w", namespace, name, err)
	}
	return nil
}

func ensureCASecret(ctx context.Context, reader client.Reader, writer client.Writer, namespace, name string) (*CA, error) {
	key := client.ObjectKey{Namespace: namespace, Name: name}
	for attempt := 0; attempt < 3; attempt++ {
		var s corev1.Secret
		err := reader.Get(ctx, key, &s)
		if err == nil {
			ca, err := LoadCA(s.Data[CACertKey], s.Data[CAKeyKey])
			if err != nil {
				return nil, fmt.Errorf("Secret %s holds no usable CA: %w", key, err)
			}
			return ca, nil
		}
		if !apierrors.IsNotFound(err) {
			return nil, fmt.Errorf("get CA Secret %s: %w", key, err)
		}
		ca, err := NewCA(time.Now())
		if err != nil {
			return nil, err
		}
		s = corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name,
				Labels: map[string]string{"app.kubernetes.io/part-of": "resilience-operator"}},
			Type: corev1.SecretTypeOpaque,
			Data: map[string][]byte{CACertKey: ca.CertPEM, CAKeyKey: ca.KeyPEM},
		}
		err = writer.Create(ctx, &s)
		if err == nil {
			return ca, nil
		}
		if !apierrors.IsAlreadyExists(err) {
			return nil, fmt.Errorf("create CA Secret %s: %w", key, err)
		}
	}
	return nil, fmt.Errorf("CA Secret %s: could not read or create it", key)
}
