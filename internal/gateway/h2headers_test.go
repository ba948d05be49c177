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
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// The header list of an HTTP/2 request is bounded by MaxRequestHeaderBytes, which net/http's
// server advertises as SETTINGS_MAX_HEADER_LIST_SIZE (maxHeaderListSize: the bytes plus 320 for
// the per-field overhead of ten fields). Its Framer decodes a header block as it comes, keeping the
// fields only up to that size (readMetaFrame): a list a little too long gets 431
// (handleHeaderListTooLong), a fragment longer than twice what is left, or any CONTINUATION once
// the list is over, ends the connection with GOAWAY PROTOCOL_ERROR (the fix of CVE-2023-45288),
// and a string longer than the list with COMPRESSION_ERROR.
const h2TestHeaderBytes = 16 << 10

// bigFields returns n fields x-<from+i> of size bytes each.
func bigFields(from, n, size int) []hpack.HeaderField {
	fs := make([]hpack.HeaderField, n)
	for i := range fs {
		fs[i] = hpack.HeaderField{Name: fmt.Sprintf("x-%d", from+i), Value: strings.Repeat("v", size)}
	}
	return fs
}

// A header list over the limit, but by less than its fragment may be, gets 431 and the connection
// goes on; a block more than twice over ends it.
func TestH2HugeHeaderList(t *testing.T) {
	e := newH2Env(t, Options{MaxRequestHeaderBytes: h2TestHeaderBytes})
	h := dialH2(t, e.addr)
	// 24 fields of 1,000 bytes: 24 KiB decoded, about 21 KiB as hpack sends it (Huffman), less
	// than twice the 16.3 KiB allowed.
	block := h.block("/", bigFields(0, 24, 1000)...)
	_ = h.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: block, EndStream: true, EndHeaders: true})
	_ = h.get(3, "/")
	_ = h.bw.Flush()
	end := h.readH2(20*time.Second, func(e h2End) bool { return e.goAway || e.statuses[1] != "" && e.statuses[3] != "" })
	t.Logf("a header list of 24 KiB (%d bytes sent): %q, then %q; %s", len(block), end.statuses[1], end.statuses[3], end)
	if end.statuses[1] != "431" || end.statuses[3] != "200" || end.goAway {
		t.Errorf("a header list of 24 KiB: %q, the request after it %q, %s; want 431 then 200 on the same connection",
			end.statuses[1], end.statuses[3], end)
	}
	// 60 fields: about 52 KiB sent in one HEADERS frame, more than twice the 16.3 KiB allowed.
	h = dialH2(t, e.addr)
	block = h.block("/", bigFields(0, 60, 1000)...)
	_ = h.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: block, EndStream: true, EndHeaders: true})
	_ = h.bw.Flush()
	end = h.readH2(20*time.Second, nil)
	t.Logf("a header block of %d bytes: %s", len(block), end)
	if !end.goAway || end.code != http2.ErrCodeProtocol || !end.closed() || len(end.statuses) != 0 {
		t.Errorf("a header block of %d bytes: %s, statuses %v; want GOAWAY PROTOCOL_ERROR and the connection closed", len(block), end, end.statuses)
	}
	if n := e.reached.Load(); n != 1 {
		t.Errorf("the backend saw %d requests, want 1", n)
	}
}

// A CONTINUATION flood (CVE-2023-45288): a header block that never ends, 16 KiB CONTINUATION frames
// of new fields, up to 64 MiB. The connection ends with GOAWAY PROTOCOL_ERROR at the first
// CONTINUATION after the list is over the limit; the server never holds more of it than the limit.
func TestH2ContinuationFlood(t *testing.T) {
	e := newH2Env(t, Options{MaxRequestHeaderBytes: h2TestHeaderBytes})
	baseG, baseHeap := baseline()
	h := dialH2(t, e.addr)
	var over atomic.Bool
	ended := make(chan h2End, 1)
	go func() {
		ended <- h.readH2(60*time.Second, nil)
		over.Store(true)
	}()
	u := sampleUsage()
	_ = h.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: h.block("/"), EndStream: true})
	written := 0
	for i := 0; written < 64<<20 && !over.Load(); i += 16 {
		h.hb.Reset()
		for _, f := range bigFields(i, 16, 1000) {
			_ = h.enc.WriteField(f)
		}
		if h.fr.WriteContinuation(1, false, h.hb.Bytes()) != nil || h.bw.Flush() != nil {
			break
		}
		written += h.hb.Len()
	}
	end := <-ended
	u.stop()
	t.Logf("CONTINUATION frames of %d KiB of fields written, %d KiB read by the server: %s; goroutines %d at rest, %d at the peak; heap in use %d KiB at rest, %d KiB at the peak",
		written>>10, e.read.Load()>>10, end, baseG, u.peakG.Load(), baseHeap>>10, u.peakHeap.Load()>>10)
	if !end.goAway || end.code != http2.ErrCodeProtocol || !end.closed() {
		t.Errorf("a CONTINUATION flood: %s, want GOAWAY PROTOCOL_ERROR and the connection closed", end)
	}
	// The server reads the list up to the limit (16.3 KiB) and one CONTINUATION more (16 KiB; 27 KiB
	// in all, seen), and no more, whatever the client sent into the sockets' buffers (MiBs): 256 KiB
	// is far below the 64 MiB a server reading on would take, or the 1 MiB a default limit would.
	if n := e.read.Load(); n > 256<<10 {
		t.Errorf("the server read %d KiB of the CONTINUATION flood", n>>10)
	}
	if peak := u.peakHeap.Load(); peak > baseHeap+16<<20 {
		t.Errorf("%d KiB of heap in use at the peak, %d KiB at rest", peak>>10, baseHeap>>10)
	}
	if n := e.reached.Load(); n != 0 {
		t.Errorf("the backend saw %d requests", n)
	}
	settles(t, "after the CONTINUATION flood", baseG+20)
	e.get200(t)
}

// The other CONTINUATION flood: empty frames, which never add to the list, so net/http's server
// reads them on (readMetaFrame) until the block ends, costing reads but no memory: 500,000 of
// them (4.4 MiB) hold no more heap than a request, and the request is answered when it ends.
func TestH2EmptyContinuationFlood(t *testing.T) {
	e := newH2Env(t, Options{MaxRequestHeaderBytes: h2TestHeaderBytes})
	baseG, baseHeap := baseline()
	h := dialH2(t, e.addr)
	u := sampleUsage()
	_ = h.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: h.block("/"), EndStream: true})
	const n = 500000
	for i := range n {
		if h.fr.WriteContinuation(1, false, nil) != nil || i%1000 == 0 && h.bw.Flush() != nil {
			t.Fatalf("the server stopped reading after %d empty CONTINUATION frames", i)
		}
	}
	_ = h.fr.WriteContinuation(1, true, nil)
	_ = h.bw.Flush()
	end := h.readH2(60*time.Second, func(e h2End) bool { return e.goAway || e.statuses[1] != "" })
	u.stop()
	t.Logf("%d empty CONTINUATION frames, %d KiB read by the server: %q, %s; goroutines %d at rest, %d at the peak; heap in use %d KiB at rest, %d KiB at the peak",
		n, e.read.Load()>>10, end.statuses[1], end, baseG, u.peakG.Load(), baseHeap>>10, u.peakHeap.Load()>>10)
	if end.statuses[1] != "200" {
		t.Errorf("the request after %d empty CONTINUATION frames: %q, %s", n, end.statuses[1], end)
	}
	// Kept per frame, even 40 bytes would be 19 MiB.
	if peak := u.peakHeap.Load(); peak > baseHeap+16<<20 {
		t.Errorf("%d KiB of heap in use at the peak, %d KiB at rest", peak>>10, baseHeap>>10)
	}
}
