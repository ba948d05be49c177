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
	"bytes"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"resilience.dev/operator/internal/snapshot"
)

// A try that ended while its transport waits in a Read of the client's stream does not hold up the
// next try: the next reads the recorded bytes at once, then the bytes that Read brings.
func TestRecordBodyHandsOverToTheNextTry(t *testing.T) {
	pr, pw := io.Pipe()
	b := &recordBody{src: pr}
	first := b.view()
	go func() { _, _ = pw.Write([]byte("hello ")) }()
	buf := make([]byte, 64)
	if n, err := first.Read(buf); err != nil || string(buf[:n]) != "hello " {
		t.Fatalf("first read: %q %v", buf[:n], err)
	}
	stuck := make(chan error, 1)
	go func() { _, err := first.Read(make([]byte, 64)); stuck <- err }() // waits for the client
	time.Sleep(10 * time.Millisecond)
	_ = first.Close()
	second := b.view()
	if n, err := second.Read(buf); err != nil || string(buf[:n]) != "hello " {
		t.Fatalf("the next try's recorded bytes: %q %v", buf[:n], err)
	}
	go func() { _, _ = pw.Write([]byte("world")); _ = pw.Close() }()
	if err := <-stuck; err != io.ErrClosedPipe {
		t.Fatalf("the ended try's read: %v", err)
	}
	rest, err := io.ReadAll(second)
	if err != nil || string(rest) != "world" {
		t.Fatalf("the next try's rest: %q %v", rest, err)
	}
	if !b.fits() {
		t.Fatal("a short stream does not fit the buffer")
	}
}

// Past MaxReplayBody the stream is no longer replayable, and the gateway keeps only what the live
// try has not read.
func TestRecordBodyOverflow(t *testing.T) {
	data := bytes.Repeat([]byte("x"), 3*MaxReplayBody)
	b := &recordBody{src: io.NopCloser(bytes.NewReader(data))}
	v := b.view()
	got, err := io.ReadAll(v)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("read %d bytes, %v", len(got), err)
	}
	if b.fits() || len(b.buf) != 0 {
		t.Fatalf("after %d bytes: fits %v, %d bytes kept", len(data), b.fits(), len(b.buf))
	}
	if _, err := b.view().Read(make([]byte, 1)); err != errStreamNotReplayable {
		t.Fatalf("a new try of a stream past the buffer: %v", err)
	}
}

// A request's grpc-timeout shortens the overall deadline: with a 10 s policy timeout and an
// upstream that never answers, the gateway itself answers DeadlineExceeded after the 200 ms the
// client asked for, as a trailers-only gRPC response.
func TestGRPCTimeoutHeader(t *testing.T) {
	mem := newMem()
	mem.handle(epAddr(1), func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() })
	pt := port(ep(1))
	pt.AppProtocol = "grpc"
	r := retry(1)
	r.Timeout = snapshot.Duration(10 * time.Second)
	pt.Retry = r
	g := newGW(t, Options{}, mem, snap(1, pt))
	start := time.Now()
	rec := send(g, http.MethodPost, "http://api.shop/grpc.testing.TestService/UnaryCall", strings.NewReader(""),
		"Content-Type: application/grpc", "Grpc-Timeout: 200m", "Te: trailers")
	took := time.Since(start)
	if rec.Code != 200 || rec.Header().Get("Grpc-Status") != "4" || took < 190*time.Millisecond || took > time.Second {
		t.Fatalf("after %v: %d %v", took, rec.Code, rec.Header())
	}
	if msg := rec.Header().Get("Grpc-Message"); !strings.Contains(msg, "Service shop/api: no response within the request's grpc-timeout of 200ms") {
		t.Fatalf("message %q", msg)
	}
	if _, ok := parseGRPCTimeout("123456789S"); ok {
		t.Fatal("a grpc-timeout of 9 digits was read")
	}
}

// The access log line of a gRPC call carries its final grpc-status: from the upstream's trailers,
// or the gateway's own.
func TestGRPCAccessLog(t *testing.T) {
	var buf bytes.Buffer
	var mu sync.Mutex
	logger := slog.New(slog.NewJSONHandler(&lockedBuffer{b: &buf, mu: &mu}, nil))
	mem := newMem()
	mem.handle(epAddr(1), func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/grpc")
		_, _ = w.Write([]byte{0, 0, 0, 0, 0})
		w.Header().Set(http.TrailerPrefix+"Grpc-Status", "14")
	})
	pt := port(ep(1))
	pt.AppProtocol = "grpc"
	pt.RateLimit = rateLimit(limit("one", 1, time.Hour, 1))
	g := newGW(t, Options{AccessLog: logger}, mem, snap(1, pt))
	for range 2 {
		send(g, http.MethodPost, "http://api.shop/s/M", strings.NewReader("\x00\x00\x00\x00\x00"), "Content-Type: application/grpc")
	}
	mu.Lock()
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	mu.Unlock()
	if len(lines) != 2 || !strings.Contains(lines[0], `"grpc_status":14`) || !strings.Contains(lines[1], `"grpc_status":8`) {
		t.Fatalf("access log %q", lines)
	}
}
