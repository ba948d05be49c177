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
package distribution

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

// EnsureCA loads the distribution CA from its Secret, creating it when absent. Several manager replicas
// starting at once agree on one CA: the first create wins and the others read it.
func EnsureCA(ctx context.Context, reader client.Reader, writer client.Writer, namespace, name string) (*CA, error) {
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
