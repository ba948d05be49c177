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

package loadgen

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"sync"
	"time"
)

// Client is the load generator's HTTP/1.1 client: keep-alive connections, each used by one worker
// at a time, that write a request serialised once per run and parse the response with no
// allocation (as wrk does). It costs a fraction of net/http's client (no goroutine handoff per
// request, no per-request context, timer, header map or Response), so that the generator takes
// less of the CPU it shares with the system under test, and its own scheduling delays (which the
// open loop's latencies include) stay small. Idle connections are kept between runs.
type Client struct {
	mu   sync.Mutex
	idle map[string][]*conn // by host:port
}

// NewClient returns a client. c, the number of connections it is meant for, is kept for the
// callers of the previous API; connections are opened on demand.
func NewClient(c int) *Client {
	_ = c
	return &Client{idle: map[string][]*conn{}}
}

// conn is one keep-alive connection with its read buffer.
type conn struct {
	nc   net.Conn
	br   *bufio.Reader
	addr string
}

func (c *Client) get(addr string) (*conn, error) {
	c.mu.Lock()
	if l := c.idle[addr]; len(l) > 0 {
		cn := l[len(l)-1]
		c.idle[addr] = l[:len(l)-1]
		c.mu.Unlock()
		return cn, nil
	}
	c.mu.Unlock()
	nc, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return nil, err
	}
	if tc, ok := nc.(*net.TCPConn); ok {
		_ = tc.SetNoDelay(true)
	}
	return &conn{nc: nc, br: bufio.NewReaderSize(nc, 32<<10), addr: addr}, nil
}

func (c *Client) put(cn *conn) {
	if cn == nil {
		return
	}
	_ = cn.nc.SetDeadline(time.Time{})
	c.mu.Lock()
	c.idle[cn.addr] = append(c.idle[cn.addr], cn)
	c.mu.Unlock()
}

// CloseIdle closes the idle connections.
func (c *Client) CloseIdle() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for k, l := range c.idle {
		for _, cn := range l {
			_ = cn.nc.Close()
		}
		delete(c.idle, k)
	}
}

// rawRequest is a GET of t serialised as HTTP/1.1, and the address to send it to.
func rawRequest(t Target) (addr string, req []byte, err error) {
	u, err := url.Parse(t.URL)
	if err != nil {
		return "", nil, err
	}
	if u.Scheme != "http" || u.Host == "" {
		return "", nil, fmt.Errorf("loadgen: %q: want an http:// URL with a host", t.URL)
	}
	addr = u.Host
	if u.Port() == "" {
		addr = net.JoinHostPort(u.Hostname(), "80")
	}
	host := t.Host
	if host == "" {
		host = u.Host
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, "GET %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: loadgen\r\n", u.RequestURI(), host)
	keys := make([]string, 0, len(t.Header))
	for k := range t.Header {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		for _, v := range t.Header[k] {
			fmt.Fprintf(&b, "%s: %s\r\n", http.CanonicalHeaderKey(k), v)
		}
	}
	b.WriteString("\r\n")
	return addr, b.Bytes(), nil
}

var errMalformed = errors.New("loadgen: malformed response")

// roundTrip writes req and reads the whole response; keep is false when the connection cannot be
// used again (the response said so, or ended with the connection).
func (cn *conn) roundTrip(req []byte) (status int, keep bool, err error) {
	if _, err := cn.nc.Write(req); err != nil {
		return 0, false, err
	}
	for {
		status, keep, err = cn.readResponse()
		if err != nil || status >= 200 || status == 101 {
			return status, keep, err
		}
		// 1xx: the final response follows.
	}
}

func (cn *conn) readResponse() (status int, keep bool, err error) {
	line, err := cn.br.ReadSlice('\n')
	if err != nil {
		return 0, false, err
	}
	// "HTTP/1.1 200 OK"
	if len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/1.")) {
		return 0, false, errMalformed
	}
	status, ok := atoi(line[9:12])
	if !ok {
		return 0, false, errMalformed
	}
	keep = line[7] == '1'
	length, chunked := int64(-1), false
	for {
		h, err := cn.br.ReadSlice('\n')
		if err != nil {
			return 0, false, err
		}
		h = bytes.TrimRight(h, "\r\n")
		if len(h) == 0 {
			break
		}
		name, value, ok := bytes.Cut(h, []byte(":"))
		if !ok {
			return 0, false, errMalformed
		}
		value = bytes.TrimSpace(value)
		switch {
		case asciiEqualFold(name, "content-length"):
			n, ok := atoi(value)
			if !ok {
				return 0, false, errMalformed
			}
			length = int64(n)
		case asciiEqualFold(name, "transfer-encoding"):
			chunked = asciiEqualFold(value, "chunked")
		case asciiEqualFold(name, "connection"):
			if asciiEqualFold(value, "close") {
				keep = false
			} else if asciiEqualFold(value, "keep-alive") {
				keep = true
			}
		}
	}
	switch {
	case status < 200 || status == http.StatusNoContent || status == http.StatusNotModified:
	case chunked:
		err = cn.discardChunked()
	case length >= 0:
		_, err = cn.br.Discard(int(length))
	default: // the body runs to the end of the connection
		_, err = io.Copy(io.Discard, cn.br)
		keep = false
	}
	if err != nil {
		return 0, false, err
	}
	return status, keep, nil
}

func (cn *conn) discardChunked() error {
	for {
		line, err := cn.br.ReadSlice('\n')
		if err != nil {
			return err
		}
		line = bytes.TrimRight(line, "\r\n")
		if i := bytes.IndexByte(line, ';'); i >= 0 {
			line = line[:i]
		}
		n, err := strconv.ParseInt(string(bytes.TrimSpace(line)), 16, 64)
		if err != nil || n < 0 {
			return errMalformed
		}
		if n == 0 {
			for { // trailers, then the empty line
				t, err := cn.br.ReadSlice('\n')
				if err != nil {
					return err
				}
				if len(bytes.TrimRight(t, "\r\n")) == 0 {
					return nil
				}
			}
		}
		if _, err := cn.br.Discard(int(n) + 2); err != nil {
			return err
		}
	}
}

func atoi(b []byte) (int, bool) {
	if len(b) == 0 || len(b) > 18 {
		return 0, false
	}
	n := 0
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, true
}

// asciiEqualFold reports whether b equals the lower-case ASCII s, ignoring case.
func asciiEqualFold(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := range b {
		c := b[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != s[i] {
			return false
		}
	}
	return true
}
