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

package client

import (
	"crypto/tls"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"resilience.dev/operator/internal/distribution/server"
)

// A CA rotated in the mounted file is trusted at the next connection, without a new client or a
// restart; a CA file that turns to garbage keeps the last good CA; a server under an untrusted CA is
// refused, its name checked as Go's own verification would.
func TestCAFileFollowsRotation(t *testing.T) {
	ca1, err := server.NewCA(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	ca2, err := server.NewCA(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	issue := func(ca *server.CA, host string) *tls.Certificate {
		c, err := ca.Issue(time.Now(), time.Hour, host)
		if err != nil {
			t.Fatal(err)
		}
		return &c
	}
	var served atomic.Pointer[tls.Certificate]
	served.Store(issue(ca1, "localhost"))
	l, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{MinVersion: tls.VersionTLS12,
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return served.Load(), nil }})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
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
	file := filepath.Join(t.TempDir(), "ca.crt")
	write := func(data []byte) {
		if err := os.WriteFile(file, data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(ca1.CertPEM)
	caf, err := NewCAFile(file)
	if err != nil {
		t.Fatal(err)
	}
	cfg := caf.TLSConfig()
	dial := func(name string) error {
		c := cfg.Clone()
		c.ServerName = name
		conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", l.Addr().String(), c)
		if err == nil {
			_ = conn.Close()
		}
		return err
	}
	steps := []struct {
		desc    string
		act     func()
		name    string
		wantErr string
	}{
		{desc: "the first CA", name: "localhost"},
		{desc: "another name than the certificate's", name: "manager.example", wantErr: "not manager.example"},
		{desc: "the server moves to the second CA first", act: func() { served.Store(issue(ca2, "localhost")) }, name: "localhost", wantErr: "unknown authority"},
		{desc: "the file follows", act: func() { write(append(append([]byte{}, ca1.CertPEM...), ca2.CertPEM...)) }, name: "localhost"},
		{desc: "garbage in the file keeps the last good CAs", act: func() { write([]byte("not a certificate")) }, name: "localhost"},
	}
	for _, s := range steps {
		if s.act != nil {
			s.act()
		}
		err := dial(s.name)
		if s.wantErr == "" && err != nil || s.wantErr != "" && (err == nil || !strings.Contains(err.Error(), s.wantErr)) {
			t.Fatalf("%s: dial error %v, want %q", s.desc, err, s.wantErr)
		}
	}
	if _, err := NewCAFile(filepath.Join(t.TempDir(), "missing")); err == nil {
		t.Fatal("NewCAFile of a missing file: no error")
	}
}
