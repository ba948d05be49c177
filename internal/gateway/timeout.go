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

package gateway

import (
	"context"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"resilience.dev/operator/internal/patterns/clock"
	"resilience.dev/operator/internal/snapshot"
)

// timeoutStage is the RetryPolicy's overall timeout: from the moment the request passes the rate
// limit until its response headers. When it passes first, every try still running is cancelled and
// the client gets 504 at once. After the headers, a body that stalls (no byte for the same
// duration while the gateway waits for one) is cut, resetting the client's stream.
type timeoutStage struct {
	next stage
	d    time.Duration
	clk  clock.Clock
	msg  string
}

func (g *Gateway) newTimeoutStage(next stage, r *snapshot.Retry) *timeoutStage {
	return &timeoutStage{next: next, d: r.Timeout.D(), clk: g.clk,
		msg: "no response within the timeout of " + r.Timeout.D().String()}
}

func (s *timeoutStage) serve(ctx context.Context, x *exchange) (*http.Response, error) {
	tctx, cancel := context.WithCancelCause(ctx)
	x.deadline = x.now.Add(s.d)
	tm := afterFunc(s.clk, s.d, func() { cancel(errOverallTimeout) })
	resp, err := s.next.serve(tctx, x)
	if !tm.Stop() {
		if resp != nil {
			_ = resp.Body.Close()
		}
		cancel(nil)
		return nil, &gwError{kind: kindTimeout, msg: s.msg}
	}
	if err != nil {
		cancel(nil)
		return nil, err
	}
	sb := &x.mem.stall
	sb.rc, sb.cancel, sb.clk, sb.d = resp.Body, cancel, s.clk, s.d
	sb.mu.Lock()
	sb.timer = afterFunc(s.clk, s.d, sb.check)
	sb.mu.Unlock()
	resp.Body = sb
	return resp, nil
}

// stallBody cuts a response body that makes no progress for d while it is being read.
type stallBody struct {
	rc     io.ReadCloser
	reads  atomic.Uint64
	inRead atomic.Bool
	cancel context.CancelCauseFunc
	clk    clock.Clock
	d      time.Duration

	mu     sync.Mutex
	seen   uint64
	timer  stopper
	closed bool
}

func (b *stallBody) Read(p []byte) (int, error) {
	b.inRead.Store(true)
	n, err := b.rc.Read(p)
	b.reads.Add(1)
	b.inRead.Store(false)
	return n, err
}

func (b *stallBody) check() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return
	}
	r := b.reads.Load()
	if r == b.seen && b.inRead.Load() {
		b.cancel(errStalled)
		return
	}
	b.seen = r
	b.timer = afterFunc(b.clk, b.d, b.check)
}

func (b *stallBody) Close() error {
	b.mu.Lock()
	b.closed = true
	if b.timer != nil {
		b.timer.Stop()
	}
	b.mu.Unlock()
	err := b.rc.Close()
	b.cancel(nil)
	return err
}
