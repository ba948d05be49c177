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
// so that a retry can send them again. Past MaxReplayBody nothing is kept, and the call is no longer
// retried. Each try reads it through a view of its own; tries never overlap (gRPC calls are not
// hedged), but the transport of a try that ended may still be in a Read of the client's stream: the
// mutex, held across that Read, makes the next try wait for its bytes, which are recorded.
type recordBody struct {
	mu    sync.Mutex
	src   io.ReadCloser
	buf   []byte      // the bytes read so far, while they fit MaxReplayBody
	total int         // bytes read from src
	over  atomic.Bool // more than MaxReplayBody was read: buf is dropped (read without the mutex)
	err   error       // src's final error (io.EOF at the end of the stream)
}

var errStreamNotReplayable = errors.New("the request stream is longer than the gateway's retry buffer")

// fits reports whether a new try can still send the stream from its start.
func (b *recordBody) fits() bool { return !b.over.Load() }

func (b *recordBody) view() io.ReadCloser { return &recordView{b: b} }

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
	if v.closed.Load() {
		return 0, io.ErrClosedPipe
	}
	if v.off < b.total {
		if b.over.Load() {
			return 0, errStreamNotReplayable
		}
		n := copy(p, b.buf[v.off:])
		v.off += n
		return n, nil
	}
	if b.err != nil {
		return 0, b.err
	}
	n, err := b.src.Read(p)
	if n > 0 {
		if !b.over.Load() && b.total+n <= MaxReplayBody {
			b.buf = append(b.buf, p[:n]...)
		} else {
			b.over.Store(true)
			b.buf = nil
		}
		b.total += n
		v.off += n
	}
	if err != nil {
		b.err = err
	}
	return n, err
}

// Close ends the view without waiting for a Read in progress; the client's stream is closed by the
// server when the handler returns.
func (v *recordView) Close() error {
	v.closed.Store(true)
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
