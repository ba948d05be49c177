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

// Package client is the gateway's side of the snapshot stream: it keeps one stream open to the
// manager, decodes and validates each snapshot (whole, or a delta against the one before), hands it
// to the gateway, acknowledges the outcome, and reports breaker transitions. It links no Kubernetes
// client: the manager checks the gateway's token, the gateway only presents it.
package client

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	"golang.org/x/net/http2"

	"resilience.dev/operator/internal/distribution"
	"resilience.dev/operator/internal/patterns/backoff"
	"resilience.dev/operator/internal/snapshot"
)

// Client is the gateway's side of the stream. It keeps one stream open to the manager, hands every
// snapshot to Apply, acknowledges what Apply says, and sends breaker transitions. It reconnects with
// jittered exponential backoff, so a fleet of gateways does not stampede a restarted manager. It asks
// for deltas: after the first snapshot the manager sends only what changed, the client applies it to
// the snapshot it was sent last, and decodes and validates again only the Services that changed.
type Client struct {
	// URL of the manager's stream server, e.g. https://resilience-manager.resilience-system.svc:9443.
	URL string
	// TLS trusts the manager's CA.
	TLS *tls.Config
	// Token returns the current bearer token (re-read at each connect: projected tokens rotate).
	Token func() (string, error)
	// Replica names this gateway replica (its pod name).
	Replica string
	// Apply enforces a snapshot the client decoded and validated (snapshot.Decoder), with the encoding
	// of each Service, as the given version; or returns an error (the gateway then keeps its last good
	// snapshot and the error is reported in the ack).
	Apply func(version uint64, snap *snapshot.Encoded) error
	// Resync lists the breakers that are not closed, sent after each connect.
	Resync func() []distribution.BreakerChange
	// StoreHealth, when set, is the replica's view of the store of Global rate limits, sent after each
	// connect and after each StoreChanged.
	StoreHealth func() distribution.StoreHealth
	Log         logr.Logger

	once      sync.Once
	decoder   snapshot.Decoder // the snapshot last sent; used by one stream at a time
	held      uint64           // its version
	outbox    chan distribution.BreakerChange
	storePoke chan struct{} // StoreChanged: send StoreHealth again
	dropped   atomic.Int64
	connected atomic.Bool
}

// TokenFile reads a bearer token from a file at each call.
func TokenFile(path string) func() (string, error) {
	return func() (string, error) {
		b, err := os.ReadFile(path)
		if err != nil {
			return "", fmt.Errorf("read token: %w", err)
		}
		return strings.TrimSpace(string(b)), nil
	}
}

// Send queues a breaker transition for the manager without blocking the data plane. When the queue is
// full the change is dropped and counted; the resync after the next connect corrects the manager.
func (c *Client) Send(change distribution.BreakerChange) {
	select {
	case c.box() <- change:
	default:
		c.dropped.Add(1)
	}
}

func (c *Client) box() chan distribution.BreakerChange {
	c.once.Do(func() {
		c.outbox = make(chan distribution.BreakerChange, 4096)
		c.storePoke = make(chan struct{}, 1)
	})
	return c.outbox
}

// StoreChanged says the store's health flipped: the client sends StoreHealth's current answer (never
// blocking; flips in quick succession send the latest state once).
func (c *Client) StoreChanged() {
	c.box()
	select {
	case c.storePoke <- struct{}{}:
	default:
	}
}

// Dropped counts breaker changes dropped because the queue to the manager was full.
func (c *Client) Dropped() int64 { return c.dropped.Load() }

// Connected reports whether a stream is open now.
func (c *Client) Connected() bool { return c.connected.Load() }

// Run keeps a stream open until ctx ends.
func (c *Client) Run(ctx context.Context) error {
	c.box()
	bo, err := backoff.New(backoff.Config{Strategy: backoff.Exponential, Jitter: backoff.Full,
		Base: 200 * time.Millisecond, Max: 10 * time.Second})
	if err != nil {
		return err
	}
	transport := &http2.Transport{TLSClientConfig: c.TLS, ReadIdleTimeout: 30 * time.Second, PingTimeout: 10 * time.Second}
	httpClient := &http.Client{Transport: transport}
	defer transport.CloseIdleConnections()

	attempt := 0
	for {
		start := time.Now()
		err := c.stream(ctx, httpClient)
		c.connected.Store(false)
		if ctx.Err() != nil {
			return nil
		}
		if time.Since(start) > 30*time.Second {
			attempt = 0 // a stream that lived a while resets the backoff
		}
		attempt++
		wait := bo.Delay(attempt, 0, nil)
		c.Log.Info("stream to the manager ended; reconnecting", "error", errString(err), "in", wait.String())
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(wait):
		}
	}
}

func (c *Client) stream(ctx context.Context, hc *http.Client) error {
	token, err := c.Token()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	pr, pw := io.Pipe()
	// The HTTP/2 transport aborts a cancelled stream only once the request body stops blocking: close
	// the pipe as soon as the context ends.
	stopClose := context.AfterFunc(ctx, func() { _ = pw.CloseWithError(context.Canceled) })
	defer stopClose()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimSuffix(c.URL, "/")+distribution.StreamPath, pr)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set(distribution.ReplicaHeader, c.Replica)
	req.Header.Set("Content-Type", "application/x-ndjson")
	req.Header.Set(distribution.DeltaHeader, distribution.DeltaVersion)

	frames := make(chan distribution.GatewayFrame, 16)
	writerDone := make(chan struct{})
	go func() {
		defer close(writerDone)
		c.writeFrames(ctx, pw, frames)
	}()
	defer func() { cancel(); _ = pw.Close(); <-writerDone }()

	resp, err := hc.Do(req)
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return fmt.Errorf("manager answered %s: %s", resp.Status, bytes.TrimSpace(msg))
	}
	c.connected.Store(true)
	c.Log.Info("connected to the manager", "url", c.URL)
	if c.Resync != nil {
		frames <- distribution.GatewayFrame{Resync: &distribution.Resync{Open: c.Resync()}}
	}
	if c.StoreHealth != nil {
		h := c.StoreHealth()
		frames <- distribution.GatewayFrame{Store: &h}
	}

	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 256<<20) // snapshots of many policies are large
	for sc.Scan() {
		received := time.Now()
		var f distribution.ServerFrame
		if err := json.Unmarshal(sc.Bytes(), &f); err != nil {
			return fmt.Errorf("decode frame: %w", err)
		}
		if len(f.Snapshot) == 0 && len(f.Delta) == 0 {
			continue // heartbeat
		}
		ack := c.handle(&f, received)
		select {
		case frames <- distribution.GatewayFrame{Ack: ack}:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	if err := sc.Err(); err != nil {
		return err
	}
	return errors.New("the manager closed the stream")
}

// handle applies one snapshot or delta frame and returns the ack.
func (c *Client) handle(f *distribution.ServerFrame, received time.Time) *distribution.Ack {
	ack := &distribution.Ack{Version: f.Version}
	var e *snapshot.Encoded
	var err error
	if len(f.Snapshot) > 0 {
		e, err = c.decoder.Decode(f.Snapshot)
	} else {
		e, err = c.decodeDelta(f)
		if !c.decoder.Holds() { // the delta did not fit: ask for the whole snapshot
			c.held = 0
			ack.NeedFull, ack.Error = true, err.Error()
			c.Log.Info("cannot apply a delta; asking for the whole snapshot", "version", f.Version, "base", f.Base, "error", err.Error())
			return ack
		}
	}
	if c.held = 0; c.decoder.Holds() {
		c.held = f.Version
	}
	decoded := time.Now()
	if err == nil {
		e.Version = f.Version
		err = c.Apply(f.Version, e)
	}
	if err != nil {
		ack.Error = err.Error()
		c.Log.Error(err, "refused a snapshot; keeping the last good one", "version", f.Version)
	}
	// The version is the manager's wall-clock milliseconds at publishing: "sincePublish" is the time
	// on the wire and in the read path, when both run on one clock. bench/control reads these keys.
	c.Log.Info("received snapshot", "version", f.Version, "delta", len(f.Delta) > 0, "bytes", len(f.Snapshot)+len(f.Delta),
		"sincePublish", received.Sub(time.UnixMilli(int64(f.Version))).String(), "decode", decoded.Sub(received).String(),
		"apply", time.Since(decoded).String())
	return ack
}

// decodeDelta applies a delta to the snapshot sent last, when that is the delta's base.
func (c *Client) decodeDelta(f *distribution.ServerFrame) (*snapshot.Encoded, error) {
	if !c.decoder.Holds() || c.held != f.Base {
		c.decoder.Reset()
		return nil, snapshot.ErrNoBase
	}
	return c.decoder.DecodeDelta(f.Delta)
}

// writeFrames sends acks (from frames) and breaker changes (from the outbox) on the request body.
func (c *Client) writeFrames(ctx context.Context, w io.Writer, frames <-chan distribution.GatewayFrame) {
	enc := json.NewEncoder(w)
	for {
		var f distribution.GatewayFrame
		select {
		case <-ctx.Done():
			return
		case f = <-frames:
		case b := <-c.outbox:
			f = distribution.GatewayFrame{Breaker: &b}
		case <-c.storePoke:
			if c.StoreHealth == nil {
				continue
			}
			h := c.StoreHealth()
			f = distribution.GatewayFrame{Store: &h}
		}
		if err := enc.Encode(f); err != nil {
			return
		}
	}
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
