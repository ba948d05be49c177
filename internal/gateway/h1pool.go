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
	"sync"
	"time"
)

// h1pool holds the idle connections of one endpoint, most recently used last.
type h1pool struct {
	c    *h1Client
	addr string

	mu    sync.Mutex
	idle  []*h1conn
	out   int // connections taken (or being dialled) and not yet given back
	timer *time.Timer
	dead  bool // retired from the client's map: connections given back are closed
}

// pool returns the pool of addr, making it if needed.
func (c *h1Client) pool(addr string) *h1pool {
	if m := c.pools.Load(); m != nil {
		if p := (*m)[addr]; p != nil {
			return p
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	old := c.pools.Load()
	if old != nil {
		if p := (*old)[addr]; p != nil {
			return p
		}
	}
	m := make(map[string]*h1pool, 1+lenMap(old))
	if old != nil {
		for k, v := range *old {
			m[k] = v
		}
	}
	p := &h1pool{c: c, addr: addr}
	m[addr] = p
	c.pools.Store(&m)
	return p
}

func lenMap(m *map[string]*h1pool) int {
	if m == nil {
		return 0
	}
	return len(*m)
}

// get takes the most recently used idle connection that is still open, or returns nil (the caller
// dials). Either way the caller owes the pool a put or release. ok is false when the pool has been
// retired: the caller looks the endpoint's pool up again.
func (p *h1pool) get() (pc *h1conn, ok bool) {
	now := time.Now()
	for {
		p.mu.Lock()
		if p.dead {
			p.mu.Unlock()
			return nil, false
		}
		n := len(p.idle)
		if n == 0 {
			p.out++
			p.mu.Unlock()
			return nil, true
		}
		pc = p.idle[n-1]
		p.idle[n-1] = nil
		p.idle = p.idle[:n-1]
		if now.Sub(pc.idleAt) >= p.c.idleTimeout {
			// This one and all older ones have expired.
			expired := append(p.idle[:0:0], p.idle...)
			clear(p.idle)
			p.idle = p.idle[:0]
			p.mu.Unlock()
			_ = pc.conn.Close()
			for _, e := range expired {
				_ = e.conn.Close()
			}
			continue
		}
		p.out++
		p.mu.Unlock()
		if pc.alive() {
			return pc, true
		}
		_ = pc.conn.Close()
		p.put(nil)
	}
}

// take counts a connection the caller dials itself.
func (p *h1pool) take() {
	p.mu.Lock()
	p.out++
	p.mu.Unlock()
}

// release gives pc back after a request: to the idle list when reuse holds and the connection is
// clean (the context's abort never ran, nothing failed, nothing unread), else closed. recycle
// says whether no Read can be using the connection's bufio.Reader any more (the caller is the
// reader), so that it goes back to h1Readers.
func (p *h1pool) release(pc *h1conn, stop func() bool, reuse, recycle bool) {
	if stop != nil && !stop() {
		reuse = false // the context ended: the abort ran, or is running
	}
	if reuse && (pc.broken || pc.br.Buffered() != 0) {
		reuse = false
	}
	if recycle {
		pc.br.Reset(nil)
		h1Readers.Put(pc.br)
		pc.br = nil
	}
	if !reuse {
		_ = pc.conn.Close()
		p.put(nil)
		return
	}
	p.put(pc)
}

// put ends a take: pc (if not nil) becomes idle, unless the pool is full or retired.
func (p *h1pool) put(pc *h1conn) {
	p.mu.Lock()
	p.out--
	if pc == nil {
		p.mu.Unlock()
		return
	}
	if p.dead || len(p.idle) >= p.c.maxIdle {
		p.mu.Unlock()
		_ = pc.conn.Close()
		return
	}
	pc.reused = true
	pc.idleAt = time.Now()
	p.idle = append(p.idle, pc)
	if p.timer == nil {
		p.timer = time.AfterFunc(p.c.idleTimeout, p.sweep)
	}
	p.mu.Unlock()
}

// closeIdle closes every idle connection of the pool.
func (p *h1pool) closeIdle() {
	p.mu.Lock()
	idle := append(p.idle[:0:0], p.idle...)
	clear(p.idle)
	p.idle = p.idle[:0]
	p.mu.Unlock()
	for _, pc := range idle {
		_ = pc.conn.Close()
	}
}

// sweep closes the connections idle for longer than the idle timeout; it retires a pool left with
// no connection at all, so that the pools of endpoints gone do not pile up.
func (p *h1pool) sweep() {
	c := p.c
	c.mu.Lock()
	p.mu.Lock()
	now := time.Now()
	k := 0
	for k < len(p.idle) && now.Sub(p.idle[k].idleAt) >= c.idleTimeout {
		k++
	}
	expired := append(p.idle[:0:0], p.idle[:k]...)
	n := copy(p.idle, p.idle[k:])
	clear(p.idle[n:])
	p.idle = p.idle[:n]
	switch {
	case len(p.idle) > 0:
		p.timer.Reset(p.idle[0].idleAt.Add(c.idleTimeout).Sub(now) + time.Millisecond)
	default:
		p.timer = nil
		if p.out == 0 {
			p.dead = true
			if old := c.pools.Load(); old != nil && (*old)[p.addr] == p {
				m := make(map[string]*h1pool, len(*old))
				for a, q := range *old {
					if a != p.addr {
						m[a] = q
					}
				}
				c.pools.Store(&m)
			}
		}
	}
	p.mu.Unlock()
	c.mu.Unlock()
	for _, pc := range expired {
		_ = pc.conn.Close()
	}
}
