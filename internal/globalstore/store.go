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

// Package globalstore is the Redis-protocol store of Global rate limits (Redis 7 or Valkey 8,
// standalone): one Lua script per call runs globallimit.Take atomically on the store's clock.
//
// The client is go-redis: each call is a plain request and answer on a pooled connection, so a reply
// that makes no sense is an error on that call (valkey-go, tried first, pipelines automatically but
// panics in its background reader on a reply out of order, which would take the gateway down with a
// misbehaving store); it reconnects on its own when the store is back, and speaks to Redis and Valkey.
package globalstore

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	_ "embed"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"resilience.dev/operator/internal/patterns/globallimit"
)

//go:embed take.lua
var takeSource string

// Options locate the store, as the gateway's flags give them (contract, section 7).
type Options struct {
	// URL is redis://[user@]host:port[/db] or rediss:// for TLS.
	URL string
	// PasswordFile, when set, holds the password (a mounted Secret; trailing newlines are ignored).
	PasswordFile string
	// CAFile, when set, holds the PEM CAs that sign the store's certificate (rediss:// only).
	CAFile string
	// ClientName is shown by CLIENT LIST, to tell the replicas apart.
	ClientName string
}

// Store is a globallimit.Store on a Redis-protocol server.
type Store struct {
	client *redis.Client
	take   *redis.Script
	now    string // the script's "now" argument: empty (the store's clock) except in tests
}

// Open parses the options and returns a store. It does not wait for the server: a store that is down
// at start is reported by the first calls, and reached once it is up, without a restart.
func Open(o Options) (*Store, error) {
	opt, err := clientOptions(o)
	if err != nil {
		return nil, err
	}
	s := &Store{client: redis.NewClient(opt), take: redis.NewScript(takeSource)}
	go s.warm()
	return s, nil
}

func clientOptions(o Options) (*redis.Options, error) {
	opt, err := redis.ParseURL(o.URL)
	if err != nil {
		return opt, fmt.Errorf("--store-url %s: %w", Redact(o.URL), err)
	}
	if o.PasswordFile != "" {
		b, err := os.ReadFile(o.PasswordFile)
		if err != nil {
			return opt, fmt.Errorf("--store-password-file: %w", err)
		}
		opt.Password = strings.TrimRight(string(b), "\r\n")
	}
	if o.CAFile != "" {
		if opt.TLSConfig == nil {
			return opt, errors.New("--store-ca-file needs a rediss:// --store-url")
		}
		pem, err := os.ReadFile(o.CAFile)
		if err != nil {
			return opt, fmt.Errorf("--store-ca-file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return opt, fmt.Errorf("--store-ca-file %s: no PEM certificate in it", o.CAFile)
		}
		opt.TLSConfig = &tls.Config{RootCAs: pool, ServerName: opt.TLSConfig.ServerName, MinVersion: tls.VersionTLS12}
	}
	opt.ClientName = o.ClientName
	opt.MaxRetries = -1              // the Guard's budget decides; a retried script could take tokens twice
	opt.ContextTimeoutEnabled = true // the per-call budget bounds reads and writes too
	opt.DisableIdentity = true       // no CLIENT SETINFO: one round trip less per connection
	return opt, nil
}

// Redact hides a password written into the URL.
func Redact(raw string) string {
	if i := strings.Index(raw, "@"); i > 0 {
		if j := strings.Index(raw, "://"); j > 0 && j < i {
			return raw[:j+3] + "…@" + raw[i+1:]
		}
	}
	return raw
}

// warm opens the first connection and loads the script before the first request needs them, so that
// the first call is not the one to pay the handshake within its budget. Failures are left to the
// calls, which report them.
func (s *Store) warm() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = s.take.Load(ctx, s.client).Err()
}

// Take implements globallimit.Store.
func (s *Store) Take(ctx context.Context, key string, r globallimit.Rate, want, giveBack int64) (globallimit.Grant, error) {
	args := []any{
		strconv.FormatInt(r.Requests, 10), strconv.FormatInt(r.PeriodMicros, 10), strconv.FormatInt(r.Burst, 10),
		strconv.FormatInt(want, 10), strconv.FormatInt(giveBack, 10), s.now,
	}
	reply, err := s.take.Run(ctx, s.client, []string{key}, args...).Int64Slice()
	if err != nil {
		return globallimit.Grant{}, err
	}
	return parseReply(reply, r, want)
}

// Ping checks that the store answers.
func (s *Store) Ping(ctx context.Context) error { return s.client.Ping(ctx).Err() }

// Close closes the connections.
func (s *Store) Close() { _ = s.client.Close() }
