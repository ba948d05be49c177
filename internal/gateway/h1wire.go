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
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"strconv"
	"strings"

	"golang.org/x/net/http/httpguts"
)

// h1Eligible reports whether the lean client may send req, and the address to dial.
func h1Eligible(req *http.Request) (string, bool) {
	u := req.URL
	if u == nil || u.Scheme != "http" || u.Host == "" || u.Opaque != "" || req.Header == nil ||
		req.Close || len(req.TransferEncoding) != 0 || len(req.Trailer) != 0 {
		return "", false
	}
	switch {
	case req.Body == nil:
		if req.ContentLength != 0 {
			return "", false // net/http refuses it: let it say so
		}
	case req.Body == http.NoBody:
	default:
		// A buffered body: replayable, of known length.
		if req.GetBody == nil || req.ContentLength <= 0 || req.ContentLength > h1MaxRequestBytes {
			return "", false
		}
	}
	h := req.Header
	if _, ok := h["Expect"]; ok {
		return "", false
	}
	if _, ok := h["Connection"]; ok {
		return "", false
	}
	if _, ok := h["Upgrade"]; ok {
		return "", false
	}
	if httptrace.ContextClientTrace(req.Context()) != nil {
		return "", false
	}
	host := u.Host
	colon, bracket := strings.LastIndexByte(host, ':'), strings.LastIndexByte(host, ']')
	if colon > bracket && colon < len(host)-1 {
		return host, true
	}
	if colon == len(host)-1 {
		return "", false
	}
	return net.JoinHostPort(u.Hostname(), "80"), true
}

// appendRequestHead appends the request line and header of req as net/http's Request.Write does
// (Host, User-Agent, Content-Length, then the other fields), or reports false when net/http would
// refuse or rewrite something (an invalid method, field, value or host, control characters in the
// URL, non-ASCII), or the head passes h1MaxRequestBytes: then net/http's Transport sends it.
func appendRequestHead(b []byte, req *http.Request) ([]byte, bool) {
	method := req.Method
	if method == "" {
		method = http.MethodGet
	} else if !httpguts.ValidHeaderFieldName(method) {
		return b, false
	}
	host := req.Host
	if host == "" {
		host = req.URL.Host
	}
	if !h1PlainHost(host) {
		return b, false
	}
	path := req.URL.EscapedPath()
	if path == "" {
		path = "/"
	}
	if hasCTL(path) || hasCTL(req.URL.RawQuery) {
		return b, false
	}
	b = append(b, method...)
	b = append(b, ' ')
	b = append(b, path...)
	if req.URL.ForceQuery || req.URL.RawQuery != "" {
		b = append(b, '?')
		b = append(b, req.URL.RawQuery...)
	}
	b = append(b, " HTTP/1.1\r\nHost: "...)
	b = append(b, host...)
	b = append(b, "\r\n"...)
	ua := "Go-http-client/1.1"
	if _, ok := req.Header["User-Agent"]; ok {
		ua = req.Header.Get("User-Agent")
	}
	if ua != "" {
		if !httpguts.ValidHeaderFieldValue(ua) {
			return b, false
		}
		b = append(b, "User-Agent: "...)
		b = append(b, textTrim(ua)...)
		b = append(b, "\r\n"...)
	}
	// Content-Length as net/http's transferWriter: the body's length, or 0 for POST, PUT and PATCH
	// without a body.
	if req.Body != nil && req.Body != http.NoBody {
		b = append(b, "Content-Length: "...)
		b = strconv.AppendInt(b, req.ContentLength, 10)
		b = append(b, "\r\n"...)
	} else if method == http.MethodPost || method == http.MethodPut || method == http.MethodPatch {
		b = append(b, "Content-Length: 0\r\n"...)
	}
	for k, vv := range req.Header {
		switch k {
		case "Host", "User-Agent", "Content-Length", "Transfer-Encoding", "Trailer":
			// As net/http's reqWriteExcludeHeader: written above, or never from the map.
			continue
		}
		if !httpguts.ValidHeaderFieldName(k) {
			return b, false
		}
		for _, v := range vv {
			if !httpguts.ValidHeaderFieldValue(v) {
				return b, false
			}
			b = append(b, k...)
			b = append(b, ": "...)
			b = append(b, textTrim(v)...)
			b = append(b, "\r\n"...)
		}
		if len(b) > h1MaxRequestBytes {
			return b, false
		}
	}
	b = append(b, "\r\n"...)
	return b, len(b) <= h1MaxRequestBytes
}

// h1PlainHost reports whether host goes out unchanged by net/http: printable ASCII that
// httpguts.ValidHostHeader accepts, without an IPv6 zone.
func h1PlainHost(host string) bool {
	for i := 0; i < len(host); i++ {
		if c := host[i]; c <= ' ' || c >= 0x7f || c == '%' {
			return false
		}
	}
	return httpguts.ValidHostHeader(host)
}

func hasCTL(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < ' ' || c == 0x7f {
			return true
		}
	}
	return false
}

// textTrim is textproto.TrimString: without leading and trailing ASCII white space.
func textTrim(s string) string {
	for len(s) > 0 && isASCIISpace(s[0]) {
		s = s[1:]
	}
	for len(s) > 0 && isASCIISpace(s[len(s)-1]) {
		s = s[:len(s)-1]
	}
	return s
}

func isASCIISpace(b byte) bool { return b == ' ' || b == '\t' || b == '\n' || b == '\r' }

// appendBody appends exactly n bytes of body, failing as net/http does when it has another length.
func appendBody(b []byte, body io.Reader, n int64) ([]byte, error) {
	start := len(b)
	b = append(b, make([]byte, n)...)
	got, err := io.ReadFull(body, b[start:])
	if err == nil {
		var one [1]byte
		var extra int
		extra, err = body.Read(one[:])
		if extra > 0 {
			return b[:start], fmt.Errorf("http: ContentLength=%d with Body length %d", n, n+int64(extra))
		}
		if err == io.EOF {
			err = nil
		}
	}
	if err == io.EOF || err == io.ErrUnexpectedEOF {
		return b[:start], fmt.Errorf("http: ContentLength=%d with Body length %d", n, got)
	}
	if err != nil {
		return b[:start], err
	}
	return b, nil
}

// isReplayable is net/http's Request.isReplayable: whether net/http's Transport would send req
// again after it was written whole on a reused connection that then failed before any response byte.
func isReplayable(req *http.Request) bool {
	switch req.Method {
	case "", http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace:
		return true
	}
	_, a := req.Header["Idempotency-Key"]
	_, b := req.Header["X-Idempotency-Key"]
	return a || b
}
