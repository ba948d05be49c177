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
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"

	"resilience.dev/operator/internal/patterns/clock"
)

// The serving certificate is renewed at two thirds of its life, and the next handshake gets the new
// one from the same server, which keeps running.
func TestServingCertRenewsBeforeExpiry(t *testing.T) {
	start := time.Now().Truncate(time.Second)
	clk := clock.NewFake(start)
	ca, err := NewCA(start)
	if err != nil {
		t.Fatal(err)
	}
	sc, err := NewServingCert(ca, []string{"127.0.0.1"}, 3*time.Hour, clk, logr.Discard())
	if err != nil {
		t.Fatal(err)
	}
	first := sc.Current().Leaf
	addr := serveTLS(t, sc.GetCertificate)
	if got := handshake(t, addr, ca.Pool(), clk.Now); got.SerialNumber.Cmp(first.SerialNumber) != 0 {
		t.Fatalf("served serial %v, want the first certificate's", got.SerialNumber)
	}
	// Issued an hour back-dated: two thirds of its 4 h span are passed at start + 1h40m.
	if renewed, err := sc.RenewIfDue(start.Add(100*time.Minute - time.Second)); err != nil || renewed {
		t.Fatalf("renewed %v (%v) before two thirds of the life", renewed, err)
	}
	clk.Advance(100 * time.Minute)
	now := clk.Now()
	if renewed, err := sc.RenewIfDue(now); err != nil || !renewed {
		t.Fatalf("not renewed at two thirds of the life: %v", err)
	}
	second := sc.Current().Leaf
	if !second.NotAfter.Equal(now.Add(3*time.Hour).Truncate(time.Second)) || second.SerialNumber.Cmp(first.SerialNumber) == 0 {
		t.Fatalf("renewed certificate: serial %v, not after %v", second.SerialNumber, second.NotAfter)
	}
	if got := handshake(t, addr, ca.Pool(), clk.Now); got.SerialNumber.Cmp(second.SerialNumber) != 0 {
		t.Fatalf("after renewal the server still serves serial %v", got.SerialNumber)
	}
}

func serveTLS(t *testing.T, get func(*tls.ClientHelloInfo) (*tls.Certificate, error)) string {
	t.Helper()
	l, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{GetCertificate: get, MinVersion: tls.VersionTLS12})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			_ = c.(*tls.Conn).Handshake()
			_ = c.Close()
		}
	}()
	return l.Addr().String()
}

func handshake(t *testing.T, addr string, roots *x509.CertPool, now func() time.Time) *x509.Certificate {
	t.Helper()
	c, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12, Time: now})
	if err != nil {
		t.Fatalf("handshake: %v", err)
	}
	defer c.Close()
	return c.ConnectionState().PeerCertificates[0]
}

// A user's CA (cert-manager's, openssl's) may have an RSA, ECDSA or Ed25519 key in any of the usual
// PEM forms; what it issues verifies against it. Keys that do not fit are refused with the reason.
func TestLoadCAKeyForms(t *testing.T) {
	rsaKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	ecKey, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	_, edKey, _ := ed25519.GenerateKey(rand.Reader)
	pkcs8 := func(k any) []byte {
		der, err := x509.MarshalPKCS8PrivateKey(k)
		if err != nil {
			t.Fatal(err)
		}
		return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
	}
	ecDER, _ := x509.MarshalECPrivateKey(ecKey)
	cases := []struct {
		desc    string
		signer  crypto.Signer
		keyPEM  []byte
		isCA    bool
		wantErr string
	}{
		{desc: "RSA, PKCS #1", signer: rsaKey, keyPEM: pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(rsaKey)}), isCA: true},
		{desc: "RSA, PKCS #8 (cert-manager's default encoding)", signer: rsaKey, keyPEM: pkcs8(rsaKey), isCA: true},
		{desc: "ECDSA P-384, SEC 1", signer: ecKey, keyPEM: pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: ecDER}), isCA: true},
		{desc: "ECDSA, PKCS #8", signer: ecKey, keyPEM: pkcs8(ecKey), isCA: true},
		{desc: "Ed25519, PKCS #8", signer: edKey, keyPEM: pkcs8(edKey), isCA: true},
		{desc: "a key of another certificate", signer: rsaKey, keyPEM: pkcs8(ecKey), isCA: true, wantErr: "does not belong"},
		{desc: "not a CA", signer: rsaKey, keyPEM: pkcs8(rsaKey), wantErr: "not a CA"},
		{desc: "a certificate where the key should be", signer: rsaKey, keyPEM: []byte("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"), isCA: true, wantErr: "is not a private key"},
	}
	for _, tc := range cases {
		t.Run(tc.desc, func(t *testing.T) {
			ca, err := LoadCA(selfSigned(t, tc.signer, tc.isCA), tc.keyPEM)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("LoadCA: %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("LoadCA: %v", err)
			}
			cert, err := ca.Issue(time.Now(), time.Hour, "localhost")
			if err != nil {
				t.Fatal(err)
			}
			if _, err := cert.Leaf.Verify(x509.VerifyOptions{Roots: ca.Pool(), DNSName: "localhost"}); err != nil {
				t.Fatalf("issued certificate does not verify against the CA: %v", err)
			}
		})
	}
}

func selfSigned(t *testing.T, key crypto.Signer, isCA bool) []byte {
	t.Helper()
	tmpl := &x509.Certificate{SerialNumber: serial(), Subject: pkix.Name{CommonName: "test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature, BasicConstraintsValid: true, IsCA: isCA}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}
