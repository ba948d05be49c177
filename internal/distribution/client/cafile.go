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
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"sync"
)

// CAFile trusts the certificates of a PEM file as it is at each connection, so that a rotated CA (the
// kubelet updates a mounted ConfigMap or Secret in place) is trusted without a restart. A file that
// cannot be read or holds no certificate keeps the last good one in force.
type CAFile struct {
	path string
	mu   sync.Mutex
	last *x509.CertPool
}

// NewCAFile reads path once, so that a missing or empty file fails at start.
func NewCAFile(path string) (*CAFile, error) {
	c := &CAFile{path: path}
	if _, err := c.Pool(); err != nil {
		return nil, err
	}
	return c, nil
}

// Pool reads the file and returns its certificates, or the last good ones with the error.
func (c *CAFile) Pool() (*x509.CertPool, error) {
	pem, err := os.ReadFile(c.path)
	if err == nil {
		pool := x509.NewCertPool()
		if pool.AppendCertsFromPEM(pem) {
			c.mu.Lock()
			c.last = pool
			c.mu.Unlock()
			return pool, nil
		}
		err = fmt.Errorf("%s holds no PEM certificate", c.path)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.last, err
}

// TLSConfig verifies the server against the file's certificates at each handshake. Go's own check
// is replaced (InsecureSkipVerify) only to choose the roots per connection: VerifyConnection does
// the same verification, name included.
func (c *CAFile) TLSConfig() *tls.Config {
	return &tls.Config{
		MinVersion:         tls.VersionTLS12,
		InsecureSkipVerify: true, //nolint:gosec // verified in VerifyConnection, with the current roots
		VerifyConnection: func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 {
				return errors.New("the server sent no certificate")
			}
			roots, _ := c.Pool()
			if roots == nil {
				return fmt.Errorf("no CA to trust in %s", c.path)
			}
			inter := x509.NewCertPool()
			for _, ic := range cs.PeerCertificates[1:] {
				inter.AddCert(ic)
			}
			_, err := cs.PeerCertificates[0].Verify(x509.VerifyOptions{DNSName: cs.ServerName, Roots: roots, Intermediates: inter})
			return err
		},
	}
}
