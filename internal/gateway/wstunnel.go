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
	"crypto/rand"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

const (
	// wsBufSize is the read buffer of each direction of a tunnel: a frame that fits goes out in one
	// write, a larger one as its head then its payload. Two per tunnel, for as long as it lasts: it
	// is kept small, as a gateway may hold many idle tunnels.
	wsBufSize = 8 << 10
	// wsLinger is how long a tunnel waits for its second direction to end once the first has (its
	// peer told with a half-close): a peer that never closes does not keep the tunnel forever.
	wsLinger = 10 * time.Second
)

// errTunnelClosing ends a direction of a tunnel that CloseTunnels is closing.
var errTunnelClosing = errors.New("the tunnel is closing")

// wsTunnel is an open WebSocket tunnel between a client and an upstream.
type wsTunnel struct {
	client     net.Conn
	upstream   io.ReadWriteCloser
	toUpstream wsPipe
	toClient   wsPipe
	done       chan struct{} // closed when both connections are closed
}

// wsPipe copies the frames of one direction, whole frames at a time, so that the gateway can put a
// close frame of its own between two of them.
type wsPipe struct {
	src  *bufio.Reader
	dst  io.Writer
	mask bool // dst is the upstream: frames the gateway makes must be masked (RFC 6455 5.3)

	mu   sync.Mutex // held while a frame is written to dst
	stop bool       // set under mu when the gateway sent its close frame: no more frames to dst
}

// run copies frames from src to dst until src ends, a write fails or the pipe is stopped.
func (p *wsPipe) run() error {
	for {
		hlen, plen, err := frameHead(p.src)
		if err != nil {
			return err
		}
		if n := int64(hlen) + plen; n <= int64(p.src.Size()) {
			b, err := p.src.Peek(int(n)) // the whole frame, read before taking the lock
			if err != nil {
				return err
			}
			if err := p.write(b); err != nil {
				return err
			}
			_, _ = p.src.Discard(int(n))
			continue
		}
		if err := p.copyLarge(hlen, plen); err != nil {
			return err
		}
	}
}

func (p *wsPipe) write(b []byte) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.stop {
		return errTunnelClosing
	}
	_, err := p.dst.Write(b)
	return err
}

// copyLarge copies a frame larger than the buffer, holding the lock for the whole frame.
func (p *wsPipe) copyLarge(hlen int, plen int64) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.stop {
		return errTunnelClosing
	}
	h, _ := p.src.Peek(hlen)
	if _, err := p.dst.Write(h); err != nil {
		return err
	}
	_, _ = p.src.Discard(hlen)
	_, err := io.CopyN(p.dst, p.src, plen)
	return err
}

// errBadFrame ends a direction whose bytes are not WebSocket frames.
var errBadFrame = errors.New("not a WebSocket frame")

// frameHead reads the head of the next frame (RFC 6455 5.2) without consuming it: its length and
// the length of the payload after it.
func frameHead(r *bufio.Reader) (int, int64, error) {
	b, err := r.Peek(2)
	if err != nil {
		return 0, 0, err
	}
	hlen, plen := 2, int64(b[1]&0x7f)
	switch plen {
	case 126:
		hlen = 4
	case 127:
		hlen = 10
	}
	if b[1]&0x80 != 0 {
		hlen += 4 // the masking key
	}
	if b, err = r.Peek(hlen); err != nil {
		return 0, 0, err
	}
	switch plen {
	case 126:
		plen = int64(binary.BigEndian.Uint16(b[2:4]))
	case 127:
		u := binary.BigEndian.Uint64(b[2:10])
		if u>>63 != 0 {
			return 0, 0, errBadFrame
		}
		plen = int64(u)
	}
	return hlen, plen, nil
}

// goingAway is the payload of the gateway's close frame: 1001 and a reason.
var goingAway = append([]byte{0x03, 0xe9}, "the gateway is shutting down"...)

// closeFrame is a close frame with the payload goingAway, masked when mask is set.
func closeFrame(mask bool) []byte {
	if !mask {
		return append([]byte{0x88, byte(len(goingAway))}, goingAway...)
	}
	f := []byte{0x88, 0x80 | byte(len(goingAway)), 0, 0, 0, 0}
	_, _ = rand.Read(f[2:6])
	for i, c := range goingAway {
		f = append(f, c^f[2+i%4])
	}
	return f
}

// goAway sends the gateway's close frame, between two frames, and lets no more frames through.
func (p *wsPipe) goAway() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.stop {
		p.stop = true
		_, _ = p.dst.Write(closeFrame(p.mask))
	}
}

// closeWrite half-closes c when it can, else closes it.
func closeWrite(c io.Closer) {
	if cw, ok := c.(interface{ CloseWrite() error }); ok && cw.CloseWrite() == nil {
		return
	}
	_ = c.Close()
}

func (tn *wsTunnel) closeBoth() {
	_ = tn.client.Close()
	_ = tn.upstream.Close()
}

// copy runs both directions. When one ends, the other's peer is told with a half-close and has
// wsLinger to finish; then both connections are closed.
func (tn *wsTunnel) copy() {
	ended := make(chan struct{}, 2)
	go func() { _ = tn.toUpstream.run(); closeWrite(tn.upstream); ended <- struct{}{} }()
	go func() { _ = tn.toClient.run(); closeWrite(tn.client); ended <- struct{}{} }()
	<-ended
	tm := time.NewTimer(wsLinger)
	select {
	case <-ended:
		tm.Stop()
		tn.closeBoth()
	case <-tm.C:
		tn.closeBoth()
		<-ended
	}
	close(tn.done)
}

// tunnels are the open tunnels of a gateway, for CloseTunnels: net/http's server forgets a
// connection once it is hijacked.
type tunnels struct {
	mu      sync.Mutex
	open    map[*wsTunnel]struct{}
	stopped bool
	ended   chan struct{} // closed, and cleared, when a tunnel ends (for CloseTunnels to wait on)
}

// gauge is the metric of the tunnels open now.
func (ts *tunnels) gauge() prometheus.GaugeFunc {
	return prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "resilience_gateway_websocket_tunnels",
		Help: "WebSocket tunnels open now (upgrades switched to 101 whose connections are still open).",
	}, func() float64 {
		ts.mu.Lock()
		defer ts.mu.Unlock()
		return float64(len(ts.open))
	})
}

// start runs tn on a goroutine of its own until it ends, counted among the open tunnels from now
// on; a tunnel opened after CloseTunnels (its upgrade was on its way) is closed at once.
func (ts *tunnels) start(tn *wsTunnel) {
	ts.mu.Lock()
	if ts.open == nil {
		ts.open = map[*wsTunnel]struct{}{}
	}
	ts.open[tn] = struct{}{}
	stopped := ts.stopped
	ts.mu.Unlock()
	if stopped {
		go tn.goAway()
	}
	go ts.run(tn)
}

func (ts *tunnels) run(tn *wsTunnel) {
	tn.copy()
	ts.mu.Lock()
	delete(ts.open, tn)
	if ts.ended != nil {
		close(ts.ended)
		ts.ended = nil
	}
	ts.mu.Unlock()
}

// goAway sends the gateway's close frame both ways; each peer answers with its own and closes.
func (tn *wsTunnel) goAway() {
	var wg sync.WaitGroup
	wg.Go(tn.toClient.goAway)
	wg.Go(tn.toUpstream.goAway)
	wg.Wait()
}

// CloseTunnels closes the open WebSocket tunnels cleanly (on shutdown, after the drain delay, with
// the listeners): both sides get a close frame with status 1001 (going away), and the tunnels end
// as the peers answer and close. It returns when none is left; those still open when ctx ends are
// cut. A tunnel opened later (its upgrade was in flight) gets the same close frames at once.
func (g *Gateway) CloseTunnels(ctx context.Context) {
	ts := &g.tunnels
	ts.mu.Lock()
	ts.stopped = true
	for tn := range ts.open {
		go tn.goAway()
	}
	ts.mu.Unlock()
	done := ctx.Done()
	for {
		ts.mu.Lock()
		if len(ts.open) == 0 {
			ts.mu.Unlock()
			return
		}
		if ts.ended == nil {
			ts.ended = make(chan struct{})
		}
		ended := ts.ended
		ts.mu.Unlock()
		select {
		case <-ended:
		case <-done:
			ts.mu.Lock()
			for tn := range ts.open {
				tn.closeBoth() // each ends at once
			}
			ts.mu.Unlock()
			done = nil
		}
	}
}
