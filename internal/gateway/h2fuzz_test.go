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
	"errors"
	"io"
	"net"
	"runtime"
	"sync"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// h2Frames renders frames as a client writes them after its preface.
func h2Frames(write func(fr *http2.Framer, enc func(...hpack.HeaderField) []byte)) []byte {
	var out, hb bytes.Buffer
	fr := http2.NewFramer(&out, nil)
	he := hpack.NewEncoder(&hb)
	fr.AllowIllegalWrites = true
	write(fr, func(extra ...hpack.HeaderField) []byte {
		hb.Reset()
		for _, f := range append([]hpack.HeaderField{
			{Name: ":method", Value: "GET"}, {Name: ":scheme", Value: "http"},
			{Name: ":authority", Value: "api.shop"}, {Name: ":path", Value: "/"},
		}, extra...) {
			_ = he.WriteField(f)
		}
		return bytes.Clone(hb.Bytes())
	})
	return out.Bytes()
}

// h2Get is a client's SETTINGS and a GET for / on stream 1.
func h2Get(fr *http2.Framer, enc func(...hpack.HeaderField) []byte) {
	_ = fr.WriteSettings()
	_ = fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: enc(), EndStream: true, EndHeaders: true})
}

// h2Malformed are frame sequences a server must end the connection for, after the client preface,
// with the GOAWAY error code net/http's server sends (serverConn.processFrame and the Framer's
// parsers: "frame_headers_zero_stream", "data_on_idle", "frame_headers_pad_too_big",
// "frame_settings_mod_6", goAwayFlowError, "frame_windowupdate_zero_inc_conn", ErrFrameTooLarge,
// "ping_on_stream", "frame_settings_has_stream", an unexpected CONTINUATION (checkFrameOrder),
// "stream_went_down", "headers_even", "reset_idle_stream", "first_settings").
var h2Malformed = []struct {
	name   string
	frames func(*http2.Framer, func(...hpack.HeaderField) []byte)
	want   http2.ErrCode
}{
	{"HEADERS on stream 0", func(fr *http2.Framer, enc func(...hpack.HeaderField) []byte) {
		_ = fr.WriteSettings()
		_ = fr.WriteRawFrame(http2.FrameHeaders, http2.FlagHeadersEndHeaders|http2.FlagHeadersEndStream, 0, enc())
	}, http2.ErrCodeProtocol},
	{"DATA on an idle stream", func(fr *http2.Framer, _ func(...hpack.HeaderField) []byte) {
		_ = fr.WriteSettings()
		_ = fr.WriteData(1, true, []byte("hello"))
	}, http2.ErrCodeProtocol},
	{"DATA with padding longer than the frame", func(fr *http2.Framer, enc func(...hpack.HeaderField) []byte) {
		_ = fr.WriteSettings()
		_ = fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: enc(), EndHeaders: true})
		_ = fr.WriteRawFrame(http2.FrameData, http2.FlagDataPadded, 1, append([]byte{200}, "hello"...))
	}, http2.ErrCodeProtocol},
	{"SETTINGS of 7 bytes", func(fr *http2.Framer, _ func(...hpack.HeaderField) []byte) {
		_ = fr.WriteRawFrame(http2.FrameSettings, 0, 0, []byte{0, 3, 0, 0, 0, 100, 0})
	}, http2.ErrCodeFrameSize},
	{"WINDOW_UPDATE past 2^31-1", func(fr *http2.Framer, _ func(...hpack.HeaderField) []byte) {
		_ = fr.WriteSettings()
		_ = fr.WriteWindowUpdate(0, 1<<31-1)
	}, http2.ErrCodeFlowControl},
	{"WINDOW_UPDATE of 0 on the connection", func(fr *http2.Framer, _ func(...hpack.HeaderField) []byte) {
		_ = fr.WriteSettings()
		_ = fr.WriteWindowUpdate(0, 0)
	}, http2.ErrCodeProtocol},
	{"a frame over SETTINGS_MAX_FRAME_SIZE", func(fr *http2.Framer, _ func(...hpack.HeaderField) []byte) {
		_ = fr.WriteSettings()
		_ = fr.WriteRawFrame(http2.FrameData, 0, 1, make([]byte, h2MaxReadFrameSize+1))
	}, http2.ErrCodeFrameSize},
	{"PING on a stream", func(fr *http2.Framer, _ func(...hpack.HeaderField) []byte) {
		_ = fr.WriteSettings()
		_ = fr.WriteRawFrame(http2.FramePing, 0, 1, make([]byte, 8))
	}, http2.ErrCodeProtocol},
	{"SETTINGS on a stream", func(fr *http2.Framer, _ func(...hpack.HeaderField) []byte) {
		_ = fr.WriteSettings()
		_ = fr.WriteRawFrame(http2.FrameSettings, 0, 1, nil)
	}, http2.ErrCodeProtocol},
	{"CONTINUATION without HEADERS", func(fr *http2.Framer, enc func(...hpack.HeaderField) []byte) {
		_ = fr.WriteSettings()
		_ = fr.WriteContinuation(1, true, enc())
	}, http2.ErrCodeProtocol},
	{"stream ids going down", func(fr *http2.Framer, enc func(...hpack.HeaderField) []byte) {
		_ = fr.WriteSettings()
		_ = fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 5, BlockFragment: enc(), EndStream: true, EndHeaders: true})
		_ = fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 3, BlockFragment: enc(), EndStream: true, EndHeaders: true})
	}, http2.ErrCodeProtocol},
	{"a client stream with an even id", func(fr *http2.Framer, enc func(...hpack.HeaderField) []byte) {
		_ = fr.WriteSettings()
		_ = fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 2, BlockFragment: enc(), EndStream: true, EndHeaders: true})
	}, http2.ErrCodeProtocol},
	{"RST_STREAM on an idle stream", func(fr *http2.Framer, _ func(...hpack.HeaderField) []byte) {
		_ = fr.WriteSettings()
		_ = fr.WriteRSTStream(7, http2.ErrCodeCancel)
	}, http2.ErrCodeProtocol},
	{"PING before SETTINGS", func(fr *http2.Framer, _ func(...hpack.HeaderField) []byte) {
		_ = fr.WritePing(false, [8]byte{})
	}, http2.ErrCodeProtocol},
}

// h2Exchange dials addr, writes preface then raw, and reads what comes back until the connection
// ends or d passes (GOAWAY, RST_STREAM, statuses). A reply that is not HTTP/2 (to a bad preface)
// is read to its end.
func h2Exchange(addr, preface string, raw []byte, d time.Duration) (h2End, error) {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		return h2End{}, err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(d))
	go func() { _, _ = c.Write(append([]byte(preface), raw...)) }()
	h := &h2Raw{c: c, fr: http2.NewFramer(io.Discard, c)}
	h.fr.ReadMetaHeaders = hpack.NewDecoder(64<<10, nil)
	end := h.readH2(d, nil)
	if end.closed() && end.err != io.EOF && !isReset(end.err) {
		_ = c.SetReadDeadline(time.Now().Add(d))
		_, end.err = io.Copy(io.Discard, c)
		if end.err == nil {
			end.err = io.EOF
		}
	}
	return end, nil
}

func isReset(err error) bool {
	var oe *net.OpError
	return errors.As(err, &oe)
}

// Each malformed sequence ends its connection, with GOAWAY and the error code RFC 9113 asks for,
// then EOF (net/http's server closes the connection 1 s after a GOAWAY for an error: goAwayTimeout);
// a bad preface (read as an HTTP/1.1 request "PRI * HTTP/2.0", or a request line of binary) is
// answered 4xx/5xx and closed. The gateway serves on after each.
func TestH2MalformedFramesCloseTheConnection(t *testing.T) {
	e := newH2Env(t, Options{})
	baseG, _ := baseline()
	// The cases run at once, each on its own connection: each waits out the 1 s of goAwayTimeout
	// (t.Parallel would run only GOMAXPROCS of them at a time).
	ends, took := make([]h2End, len(h2Malformed)), make([]time.Duration, len(h2Malformed))
	var wg sync.WaitGroup
	for i, tc := range h2Malformed {
		wg.Go(func() {
			start := time.Now()
			ends[i], _ = h2Exchange(e.addr, http2.ClientPreface, h2Frames(tc.frames), 10*time.Second)
			took[i] = time.Since(start).Round(time.Millisecond)
		})
	}
	wg.Wait()
	for i, tc := range h2Malformed {
		t.Logf("%s: %s in %v", tc.name, ends[i], took[i])
		if end := ends[i]; !end.goAway || end.code != tc.want || !end.closed() {
			t.Errorf("%s: %s, want GOAWAY %v and the connection closed", tc.name, end, tc.want)
		}
	}
	for _, preface := range []string{"PRI * HTTP/2.0\r\n\r\nXX\r\n\r\n", string(h2Frames(h2Get)) + "\r\n\r\n"} {
		end, err := h2Exchange(e.addr, preface, nil, 10*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("preface %q: %s", preface, end)
		if !end.closed() {
			t.Errorf("preface %q: %s, want the connection closed", preface, end)
		}
	}
	e.get200(t)
	settles(t, "after the malformed connections", baseG+20)
}

// FuzzH2Frames writes its input after the client preface on a new connection to the listener
// (one gateway and backend for the whole run) and reads until the connection ends, or goes quiet
// for 20 ms (200 ms at most); then closes it. The server runs in this process: a panic of a
// connection's goroutine fails the run, and one of a handler (which net/http's server recovers and
// logs) is counted by newH2Env's wrapper and fails the input. Then the goroutines serving
// connections (h2Serving: serverConns', handlers', tries') must end within 10 s, the gateway's idle
// connections upstream closed: all of them every 5 s (back to h2ServingAtRest before the first
// input), most of them (h2FuzzServing) between: net/http's server keeps a connection it sent
// GOAWAY for an error on for goAwayTimeout (1 s) without reading on, and waiting for each would
// make the run 50 times slower.
func FuzzH2Frames(f *testing.F) {
	f.Add(h2Frames(h2Get))
	f.Add(h2Frames(func(fr *http2.Framer, _ func(...hpack.HeaderField) []byte) {
		_ = fr.WriteSettings(http2.Setting{ID: http2.SettingInitialWindowSize, Val: 1 << 20})
		_ = fr.WritePing(false, [8]byte{1, 2, 3})
		_ = fr.WriteSettingsAck()
	}))
	f.Add(h2Frames(func(fr *http2.Framer, enc func(...hpack.HeaderField) []byte) {
		h2Get(fr, enc)
		_ = fr.WriteRSTStream(1, http2.ErrCodeCancel)
		_ = fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 3, BlockFragment: enc(hpack.HeaderField{Name: "x-a", Value: "1"})})
		_ = fr.WriteContinuation(3, true, enc())
		_ = fr.WriteGoAway(0, http2.ErrCodeNo, nil)
	}))
	for _, tc := range h2Malformed {
		if tc.name != "a frame over SETTINGS_MAX_FRAME_SIZE" {
			f.Add(h2Frames(tc.frames))
		}
	}
	e := newH2Env(f, Options{})
	e.get200(f)
	base := h2ServingAtRest(e)
	var lastAll time.Time
	f.Fuzz(func(t *testing.T, raw []byte) {
		if len(raw) > 64<<10 {
			t.Skip()
		}
		panics := e.panics.Load()
		h2Fuzz(t, e, raw)
		if e.panics.Load() != panics {
			t.Fatal("the gateway's handler panicked")
		}
		// Every 5 s, all of them must end (a leak fails within 5 s); between, most.
		want := base + h2FuzzServing
		if time.Since(lastAll) > 5*time.Second {
			want, lastAll = base, time.Now()
		}
		deadline := time.Now().Add(10 * time.Second)
		for n := h2Serving(); n > want; n = h2Serving() {
			if time.Now().After(deadline) {
				t.Fatalf("%d goroutines serving connections 10 s after the client closed, want at most %d", n, want)
			}
			e.g.Close()
			time.Sleep(time.Millisecond)
		}
	})
}

// h2ServingAtRest is h2Serving once it has not moved for 100 ms (at most 5 s), with the gateway's
// idle connections upstream closed: 0, unless goroutines of other tests of the package linger.
func h2ServingAtRest(e *h2Env) int {
	prev, stable := -1, 0
	for i := 0; i < 500 && stable < 100; i++ {
		e.g.Close()
		if n := h2Serving(); n == prev {
			stable++
		} else {
			prev, stable = n, 0
		}
		time.Sleep(time.Millisecond)
	}
	return prev
}

// h2FuzzServing bounds the goroutines serving connections between inputs of FuzzH2Frames.
const h2FuzzServing = 256

// h2Serving counts the goroutines serving connections: net/http's server's (the gateway's and the
// backend's), the gateway's (handlers, tries) and its transport's, not the listeners' accepting.
func h2Serving() int {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	n := 0
	for _, g := range bytes.Split(buf, []byte("\n\n")) {
		switch {
		case bytes.Contains(g, []byte("gateway.FuzzH2Frames")), bytes.Contains(g, []byte("gateway.h2Fuzz")):
		case bytes.Contains(g, []byte("net/http.(*http2serverConn)")), bytes.Contains(g, []byte("net/http.(*conn).serve")),
			bytes.Contains(g, []byte("net/http.(*persistConn)")), bytes.Contains(g, []byte("internal/gateway.(*")):
			n++
		}
	}
	return n
}

// h2Fuzz writes raw after the preface and reads what comes back until the connection ends or
// goes quiet; it requires an answer (the server's SETTINGS, at least) or the end.
func h2Fuzz(t *testing.T, e *h2Env, raw []byte) {
	c, err := net.Dial("tcp", e.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	start := time.Now()
	_ = c.SetWriteDeadline(start.Add(200 * time.Millisecond))
	go func() { _, _ = c.Write(append([]byte(http2.ClientPreface), raw...)) }()
	fr := http2.NewFramer(io.Discard, c)
	frames := 0
	for {
		quiet := time.Now().Add(20 * time.Millisecond)
		if end := start.Add(200 * time.Millisecond); end.Before(quiet) {
			quiet = end
		}
		_ = c.SetReadDeadline(quiet)
		if _, err = fr.ReadFrame(); err != nil {
			break
		}
		frames++
	}
	if frames == 0 && isTimeout(err) {
		t.Fatalf("no answer and no end: %v", err)
	}
}
