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
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// A user-provided serving certificate with an RSA key (cert-manager's default) is served, and a
// renewed one written over it is served next, without a restart.
func TestFileCertReloads(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	write := func(serial int64) {
		key, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			t.Fatal(err)
		}
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: "resilience-manager"},
			DNSNames: []string{"resilience-manager.resilience-system.svc"}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
		if err != nil {
			t.Fatal(err)
		}
		// Key first, then certificate: a reader between the two writes sees a mismatched pair and
		// keeps the previous one.
		if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)}), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	served := func(w interface {
		GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error)
	}) int64 {
		c, err := w.GetCertificate(nil)
		if err != nil || c == nil {
			t.Fatalf("GetCertificate: %v", err)
		}
		leaf, err := x509.ParseCertificate(c.Certificate[0])
		if err != nil {
			t.Fatal(err)
		}
		return leaf.SerialNumber.Int64()
	}
	write(1)
	w, err := fileCert(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = w.Start(t.Context()) }()
	if s := served(w); s != 1 {
		t.Fatalf("serving serial %d, want 1", s)
	}
	write(2)
	deadline := time.Now().Add(15 * time.Second)
	for served(w) != 2 {
		if time.Now().After(deadline) {
			t.Fatal("the renewed certificate was not served within 15 s")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if _, err := fileCert(filepath.Join(dir, "missing.crt"), keyFile); err == nil {
		t.Fatal("a missing certificate file: no error")
	}
}
