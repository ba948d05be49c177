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
	"crypto/tls"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/certwatcher"

	"resilience.dev/operator/internal/distribution/server"
	"resilience.dev/operator/internal/patterns/clock"
)

// servingCert returns how the stream's server finds its certificate. With --tls-cert-file and
// --tls-key-file (cert-manager's Secret, mounted) it serves those files, reloaded by
// controller-runtime's certificate watcher when they change. Otherwise the built-in CA (its Secret
// created when absent, its certificate published for the gateways) issues one, renewed before it
// expires; every manager replica renews its own.
func servingCert(ctx context.Context, mgr ctrl.Manager, c config, caNS, caName string) (func(*tls.ClientHelloInfo) (*tls.Certificate, error), error) {
	if c.tlsCertFile != "" || c.tlsKeyFile != "" {
		if c.tlsCertFile == "" || c.tlsKeyFile == "" {
			return nil, errors.New("--tls-cert-file and --tls-key-file go together")
		}
		w, err := fileCert(c.tlsCertFile, c.tlsKeyFile)
		if err != nil {
			return nil, err
		}
		if err := mgr.Add(everyReplica(w.Start)); err != nil {
			return nil, err
		}
		return w.GetCertificate, nil
	}
	ca, err := server.EnsureCA(ctx, mgr.GetAPIReader(), mgr.GetClient(), caNS, caName)
	if err != nil {
		return nil, err
	}
	if c.writeCAFile != "" {
		if err := os.WriteFile(c.writeCAFile, ca.CertPEM, 0o644); err != nil {
			return nil, fmt.Errorf("write CA file: %w", err)
		}
	}
	sc, err := server.NewServingCert(ca, strings.Split(c.certHosts, ","), server.ServingLifetime, clock.Real{},
		ctrl.Log.WithName("serving-certificate"))
	if err != nil {
		return nil, err
	}
	if err := mgr.Add(everyReplica(sc.Start)); err != nil {
		return nil, err
	}
	return sc.GetCertificate, nil
}

// fileCert watches a certificate and key pair (RSA or ECDSA) on disk: a kubelet-updated Secret is
// picked up within seconds (fsnotify, and a poll as a fallback).
func fileCert(certFile, keyFile string) (*certwatcher.CertWatcher, error) {
	w, err := certwatcher.New(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("serving certificate from --tls-cert-file: %w", err)
	}
	return w.WithWatchInterval(5 * time.Second), nil
}
