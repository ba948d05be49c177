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
	"crypto/tls"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"

	"resilience.dev/operator/internal/patterns/clock"
)

// ServingCert is the stream's serving certificate, issued by the CA and renewed once two thirds of
// its life have passed, without a restart: the TLS server asks GetCertificate at each handshake.
type ServingCert struct {
	CA       *CA
	Hosts    []string
	Lifetime time.Duration // default ServingLifetime
	Clock    clock.Clock   // default clock.Real{}
	Log      logr.Logger

	cur atomic.Pointer[tls.Certificate]
}

// NewServingCert issues the first certificate.
func NewServingCert(ca *CA, hosts []string, lifetime time.Duration, clk clock.Clock, log logr.Logger) (*ServingCert, error) {
	if lifetime <= 0 {
		lifetime = ServingLifetime
	}
	if clk == nil {
		clk = clock.Real{}
	}
	s := &ServingCert{CA: ca, Hosts: hosts, Lifetime: lifetime, Clock: clk, Log: log}
	if err := s.issue(clk.Now()); err != nil {
		return nil, err
	}
	return s, nil
}

// GetCertificate implements tls.Config.GetCertificate.
func (s *ServingCert) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	return s.cur.Load(), nil
}

// Current is the certificate served now.
func (s *ServingCert) Current() *tls.Certificate { return s.cur.Load() }

// RenewIfDue issues a new certificate when two thirds of the current one's life have passed.
func (s *ServingCert) RenewIfDue(now time.Time) (bool, error) {
	leaf := s.cur.Load().Leaf
	due := leaf.NotBefore.Add(leaf.NotAfter.Sub(leaf.NotBefore) * 2 / 3)
	if now.Before(due) {
		return false, nil
	}
	if err := s.issue(now); err != nil {
		return false, err
	}
	s.Log.Info("renewed the stream's serving certificate", "notAfter", s.cur.Load().Leaf.NotAfter)
	return true, nil
}

func (s *ServingCert) issue(now time.Time) error {
	cert, err := s.CA.Issue(now, s.Lifetime, s.Hosts...)
	if err != nil {
		return fmt.Errorf("issue the stream's serving certificate: %w", err)
	}
	s.cur.Store(&cert)
	return nil
}

// Start checks every check interval (a hundredth of the lifetime, at most an hour) whether the
// certificate is due, until ctx ends; a failed renewal is retried at the next check.
func (s *ServingCert) Start(ctx context.Context) error {
	every := min(s.Lifetime/100, time.Hour)
	for {
		tm := s.Clock.NewTimer(every)
		select {
		case <-ctx.Done():
			tm.Stop()
			return nil
		case now := <-tm.C():
			if _, err := s.RenewIfDue(now); err != nil {
				s.Log.Error(err, "renew the stream's serving certificate; retrying")
			}
		}
	}
}
