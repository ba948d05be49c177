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
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"sync/atomic"
	"syscall"
	"time"
)

// h1conn is one connection to an endpoint.
type h1conn struct {
	conn   net.Conn
	raw    syscall.RawConn // for the liveness check; nil if the connection has none
	br     *bufio.Reader   // borrowed from h1Readers while the connection carries a request
	idleAt time.Time       // when it went idle
	reused bool            // it carried a request before
	broken bool            // a read failed or saw EOF: never reuse
	nread  int64           // bytes read for the current request
	limit  int64           // bytes that may still be read before the response head is too large

	abortFn func() // pc.abort, made once

	// For alive (the liveness check), made once.
	peek      func(fd uintptr) bool
	peekBuf   [1]byte
	peekAlive bool
}

func newH1Conn(conn net.Conn) *h1conn {
	pc := &h1conn{conn: conn}
	pc.abortFn = pc.abort
	if sc, ok := conn.(syscall.Conn); ok {
		if raw, err := sc.SyscallConn(); err == nil {
			pc.raw = raw
		}
	}
	return pc
}

func (pc *h1conn) Read(b []byte) (int, error) {
	if pc.limit <= 0 {
		return 0, errors.New("gateway: response header read limit exhausted")
	}
	if int64(len(b)) > pc.limit {
		b = b[:pc.limit]
	}
	n, err := pc.conn.Read(b)
	pc.nread += int64(n)
	pc.limit -= int64(n)
	if err != nil {
		pc.broken = true
	}
	return n, err
}

// abort unblocks a write or read of the connection; it is never reused after.
func (pc *h1conn) abort() { _ = pc.conn.SetDeadline(aLongTimeAgo) }

// h1Body is the body of a response of the lean client: it reads off the connection, and gives the
// connection back to its pool at the end of the body, or closes it.
type h1Body struct {
	p     *h1pool
	pc    *h1conn
	rc    io.ReadCloser
	stop  func() bool
	ctx   context.Context
	reuse bool
	err   error         // the error of the last Read, returned again (Read only)
	state atomic.Uint32 // h1Open, h1Done
}

const (
	h1Open uint32 = iota
	h1Done
)

func (b *h1Body) Read(p []byte) (int, error) {
	if b.err != nil {
		return 0, b.err
	}
	if b.state.Load() != h1Open {
		return 0, errH1ReadOnClosedBody
	}
	n, err := b.rc.Read(p)
	if err == nil {
		return n, nil
	}
	if err != io.EOF && b.ctx.Err() != nil {
		err = context.Cause(b.ctx)
	}
	b.err = err
	if b.state.CompareAndSwap(h1Open, h1Done) {
		b.p.release(b.pc, b.stop, err == io.EOF && b.reuse, true)
	}
	return n, err
}

// Close ends the body; before its end, it closes the connection (as net/http's Transport does),
// which also ends a Read running at the same time. The connection's bufio.Reader is then left to
// that Read, not recycled.
func (b *h1Body) Close() error {
	if b.state.CompareAndSwap(h1Open, h1Done) {
		b.p.release(b.pc, b.stop, false, false)
	}
	return nil
}
