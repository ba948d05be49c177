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
	"errors"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"resilience.dev/operator/internal/patterns/breaker"
)

// recordBody is the request stream of a gRPC call on a port with retries: it is sent as it comes
// (a streaming call's messages cannot wait for the end of the stream, nor can a bidirectional one's
// client wait for anything before its first answer), and its first MaxReplayBody bytes are recorded
// so that a retry can send them again. Past MaxReplayBody the call is no longer retried, and only
// what the newest try has not read yet is kept.
//
// Each try reads it through a view of its own; tries never overlap (gRPC calls are not hedged), but
// the transport of a try that ended may still be in a Read of the client's stream, which only more
// bytes from the client end. That Read runs without the mutex, so the newest view goes on with the
// recorded bytes meanwhile, then waits for it: what it brings is kept for the newest view.
type recordBody struct {
	mu      sync.Mutex
	cond    sync.Cond // signalled when a Read of src ends, or a view closes
	src     io.ReadCloser
	buf     []byte // bytes base..total of the stream
	base    int
	total   int
	reading bool  // a Read of src is in progress
	err     error // src's final error (io.EOF at the end of the stream)
	live    *recordView
	over    atomic.Bool // more than MaxReplayBody was read: no new try may start
}

var errStreamNotReplayable = errors.New("the request stream is longer than the gateway's retry buffer")

// fits reports whether a new try can still send the stream from its start.
func (b *recordBody) fits() bool { return !b.over.Load() }

// view returns the reader of a new try, which becomes the newest.
func (b *recordBody) view() io.ReadCloser {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.cond.L == nil {
		b.cond.L = &b.mu
	}
	b.live = &recordView{b: b}
	return b.live
}

// recordView is one try's reading of a recordBody.
type recordView struct {
	b      *recordBody
	off    int
	closed atomic.Bool
}

func (v *recordView) Read(p []byte) (int, error) {
	b := v.b
	b.mu.Lock()
	defer b.mu.Unlock()
	for {
		switch {
		case v.closed.Load():
			return 0, io.ErrClosedPipe
		case v.off < b.base:
			return 0, errStreamNotReplayable
		case v.off < b.total:
			n := copy(p, b.buf[v.off-b.base:])
			v.off += n
			b.trim()
			return n, nil
		case b.err != nil:
			return 0, b.err
		}
		if !b.reading {
			break
		}
		b.cond.Wait()
	}
	b.reading = true
	b.mu.Unlock()
	n, err := b.src.Read(p)
	b.mu.Lock()
	b.reading = false
	b.cond.Broadcast()
	if err != nil {
		b.err = err
	}
	if n > 0 {
		b.buf = append(b.buf, p[:n]...)
		b.total += n
		if b.total > MaxReplayBody {
			b.over.Store(true)
		}
	}
	if v != b.live || v.closed.Load() {
		b.trim()
		return 0, io.ErrClosedPipe // an ended try's: the bytes are kept for the newest
	}
	v.off += n
	b.trim()
	return n, err
}

// trim drops, once the stream passed MaxReplayBody, the bytes the newest view has read.
func (b *recordBody) trim() {
	if !b.over.Load() || b.live == nil || b.live.off <= b.base {
		return
	}
	b.buf = b.buf[b.live.off-b.base:]
	b.base = b.live.off
	if len(b.buf) == 0 {
		b.buf = nil
	}
}

// Close ends the view; a Read in progress of the client's stream goes on, for the newest view.
func (v *recordView) Close() error {
	v.closed.Store(true)
	b := v.b
	b.mu.Lock()
	b.cond.Broadcast()
	b.mu.Unlock()
	return nil
}

// replayable reports whether another try may send the request body again.
func (x *exchange) replayable() bool {
	if !x.body.replayable {
		return false
	}
	return x.body.rec == nil || x.body.rec.fits()
}

// reportGRPC ends a gRPC try's permit on its final grpc-status: at once for a trailers-only
// response, else when its stream ends, from the trailers (grpcEndBody).
func (s *breakerStage) reportGRPC(t *try, br *breakerState, permit breaker.Permit, resp *http.Response, now time.Time) {
	if code, ok := grpcStatus(resp.Header); ok {
		s.grpcOutcome(t, br, permit, code, now)
		return
	}
	resp.Body = &grpcEndBody{rc: resp.Body, resp: resp, s: s, t: t, br: br, permit: permit, at: now}
}

func (s *breakerStage) grpcOutcome(t *try, br *breakerState, permit breaker.Permit, code int, now time.Time) {
	if s.failGRPC.has(code) {
		s.fail(t, br, permit, now)
		return
	}
	permit.Success(now)
}

// grpcEndBody reports a gRPC try to its breaker when the response stream ends: by the grpc-status of
// the trailers (none is Unknown, as gRPC clients take it); a stream cut by the gateway or the client
// counts as neither, one the upstream broke (a reset) as a failure.
type grpcEndBody struct {
	rc     io.ReadCloser
	resp   *http.Response
	s      *breakerStage
	t      *try
	br     *breakerState
	permit breaker.Permit
	at     time.Time // when the response headers came: slow calls are judged on them
	done   atomic.Bool
}

func (b *grpcEndBody) Read(p []byte) (int, error) {
	n, err := b.rc.Read(p)
	if err != nil && b.done.CompareAndSwap(false, true) {
		switch {
		case err == io.EOF:
			code, ok := grpcStatus(b.resp.Trailer)
			if !ok {
				code = grpcUnknown
			}
			b.s.grpcOutcome(b.t, b.br, b.permit, code, b.at)
		case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded), b.t.x.in.Context().Err() != nil:
			b.permit.Cancel()
		default:
			b.s.fail(b.t, b.br, b.permit, b.at)
		}
	}
	return n, err
}

func (b *grpcEndBody) Close() error {
	if b.done.CompareAndSwap(false, true) {
		b.permit.Cancel() // closed before its end: the client went away, or the gateway cut it
	}
	return b.rc.Close()
}

// cancelBody ends the context of its response when it is closed.
type cancelBody struct {
	rc     io.ReadCloser
	cancel context.CancelCauseFunc
}

func (b *cancelBody) Read(p []byte) (int, error) { return b.rc.Read(p) }

func (b *cancelBody) Close() error {
	err := b.rc.Close()
	b.cancel(nil)
	return err
}
