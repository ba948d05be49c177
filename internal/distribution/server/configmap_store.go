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
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"resilience.dev/operator/api/v1alpha1"
	"resilience.dev/operator/internal/snapshot"
)

// Labels and keys of the ConfigMaps that hold gateway states.
const (
	StateLabel      = "resilience.dev/gateway-state"
	keyReplica      = "replica"
	keyManager      = "manager"
	keyPolicies     = "policies"
	keyBreakers     = "breakers"
	heartbeatAnnot  = "resilience.dev/heartbeat"
	stateFieldOwner = "resilience-manager"
)

// ConfigMapStore keeps each gateway replica's state in a ConfigMap of the manager's namespace. Writes
// go to the API server directly; reads come from Reader, the manager's cache, which watches only
// these ConfigMaps (label StateLabel), so the leader is told of every change.
type ConfigMapStore struct {
	Client    client.Client
	Reader    client.Reader
	Namespace string
}

// StateConfigMapName names a replica's ConfigMap: a hash, so any replica name makes a valid object name.
func StateConfigMapName(replica string) string {
	sum := sha256.Sum256([]byte(replica))
	return "resilience-gateway-state-" + hex.EncodeToString(sum[:8])
}

// Put implements StateStore with a server-side apply: create or update, no read first.
func (s *ConfigMapStore) Put(ctx context.Context, st GatewayState) error {
	cm := &corev1.ConfigMap{
		TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "ConfigMap"},
		ObjectMeta: metav1.ObjectMeta{Namespace: s.Namespace, Name: StateConfigMapName(st.Replica),
			Labels:      map[string]string{StateLabel: "true", "app.kubernetes.io/part-of": "resilience-operator"},
			Annotations: map[string]string{heartbeatAnnot: st.Heartbeat.UTC().Format(time.RFC3339Nano)}},
		Data: map[string]string{keyReplica: st.Replica, keyManager: st.Manager,
			keyPolicies: encodeLines(policyLines(st.Policies), func(g int64) string { return strconv.FormatInt(g, 10) }),
			keyBreakers: encodeLines(breakerLines(st.Breakers), func(s v1alpha1.CircuitState) string { return string(s) })},
	}
	storeData(st.Store, cm.Data)
	if err := s.Client.Patch(ctx, cm, client.Apply, client.FieldOwner(stateFieldOwner), client.ForceOwnership); err != nil {
		return fmt.Errorf("write gateway state %s: %w", st.Replica, err)
	}
	return nil
}

// Delete implements StateStore, with a precondition so a takeover by another manager is kept.
func (s *ConfigMapStore) Delete(ctx context.Context, replica, manager string) error {
	var cm corev1.ConfigMap
	key := client.ObjectKey{Namespace: s.Namespace, Name: StateConfigMapName(replica)}
	if err := s.Client.Get(ctx, key, &cm); err != nil {
		return client.IgnoreNotFound(err)
	}
	if cm.Data[keyManager] != manager {
		return nil
	}
	err := s.Client.Delete(ctx, &cm, client.Preconditions{ResourceVersion: &cm.ResourceVersion})
	if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
		return fmt.Errorf("delete gateway state %s: %w", replica, err)
	}
	return nil
}

// List implements StateStore.
func (s *ConfigMapStore) List(ctx context.Context) ([]GatewayState, error) {
	var list corev1.ConfigMapList
	if err := s.Reader.List(ctx, &list, client.InNamespace(s.Namespace), client.MatchingLabels{StateLabel: "true"}); err != nil {
		return nil, fmt.Errorf("list gateway states: %w", err)
	}
	out := make([]GatewayState, 0, len(list.Items))
	for _, cm := range list.Items {
		hb, _ := time.Parse(time.RFC3339Nano, cm.Annotations[heartbeatAnnot])
		out = append(out, GatewayState{
			Replica: cm.Data[keyReplica], Manager: cm.Data[keyManager], Heartbeat: hb,
			Policies: policiesOf(decodeLines(cm.Data[keyPolicies], func(v string) (int64, bool) {
				g, err := strconv.ParseInt(v, 10, 64)
				return g, err == nil
			})),
			Breakers: breakersOf(decodeLines(cm.Data[keyBreakers], func(v string) (v1alpha1.CircuitState, bool) {
				return v1alpha1.CircuitState(v), v != ""
			})),
			Store: healthOf(cm.Data),
		})
	}
	return out, nil
}

// encodeLines writes a map as sorted "key=value" lines (keys never hold "=" or newlines: policy keys
// are kind/namespace/name, breaker keys are built from DNS names and numbers).
func encodeLines[V any](m map[string]V, format func(V) string) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		b.WriteString(k)
		b.WriteByte('=')
		b.WriteString(format(m[k]))
		b.WriteByte('\n')
	}
	return b.String()
}

func decodeLines[V any](s string, parse func(string) (V, bool)) map[string]V {
	out := map[string]V{}
	for _, line := range strings.Split(s, "\n") {
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			continue
		}
		if val, ok := parse(v); ok {
			out[k] = val
		}
	}
	return out
}

// policyLines keys the generations by the policies' text, as encodeLines writes them.
func policyLines(m map[snapshot.PolicyKey]int64) map[string]int64 {
	out := make(map[string]int64, len(m))
	for k, g := range m {
		out[k.String()] = g
	}
	return out
}

// policiesOf reads what policyLines wrote, leaving out lines that are not a policy key.
func policiesOf(m map[string]int64) map[snapshot.PolicyKey]int64 {
	out := make(map[snapshot.PolicyKey]int64, len(m))
	for text, g := range m {
		if k, err := snapshot.ParsePolicyKey(text); err == nil {
			out[k] = g
		}
	}
	return out
}

// breakerLines keys the breaker states by the breakers' text, as encodeLines writes them.
func breakerLines(m map[BreakerKey]v1alpha1.CircuitState) map[string]v1alpha1.CircuitState {
	out := make(map[string]v1alpha1.CircuitState, len(m))
	for k, st := range m {
		out[k.String()] = st
	}
	return out
}

// breakersOf reads what breakerLines wrote, leaving out lines that are not a breaker key.
func breakersOf(m map[string]v1alpha1.CircuitState) map[BreakerKey]v1alpha1.CircuitState {
	out := make(map[BreakerKey]v1alpha1.CircuitState, len(m))
	for text, st := range m {
		if k, err := ParseBreakerKey(text); err == nil {
			out[k] = st
		}
	}
	return out
}
