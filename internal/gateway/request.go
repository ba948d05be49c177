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
	"net"
	"net/http"
	"net/url"
	"strings"
)

// outbound is the template of the request sent upstream: the client's, with the headers cleaned
// and an absolute URL whose host each try sets to its endpoint.
type outbound struct {
	req http.Request
	url url.URL
}

// prepare builds the outbound request template: the headers cleaned, X-Forwarded-For extended,
// and the body buffered when the request may be sent more than once (takeBody). A body over the
// limit is refused here when its length is known, or when it passes the limit while being buffered.
func (x *exchange) prepare(w http.ResponseWriter) error {
	r := x.in
	if x.body.limit > 0 && r.ContentLength > x.body.limit {
		return tooLargeErr(r.ContentLength, x.body.limit)
	}
	if !x.grpc { // a gRPC stream may rightly stay silent for long: its deadline bounds it
		x.guardBody(w)
	}
	h := outboundHeader(r.Header)
	if x.upgrade = isWebSocketUpgrade(r); x.upgrade {
		forwardUpgrade(h, r.Header)
	}
	if _, ok := h["User-Agent"]; !ok {
		h["User-Agent"] = noUserAgent // no Go default User-Agent
	}
	if ip, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		if prior, ok := h["X-Forwarded-For"]; ok && len(prior) > 0 {
			ip = strings.Join(prior, ", ") + ", " + ip
		}
		x.mem.hdrVals[0] = ip
		h["X-Forwarded-For"] = x.mem.hdrVals[0:1:1]
	}
	x.out.url = url.URL{Scheme: "http", Path: r.URL.Path, RawPath: r.URL.RawPath, RawQuery: r.URL.RawQuery,
		ForceQuery: r.URL.ForceQuery} // "/a?" stays "/a?": the upstream may tell it from "/a"
	x.out.req = http.Request{
		Method:     r.Method,
		URL:        &x.out.url,
		Proto:      "HTTP/1.1",
		ProtoMajor: 1,
		ProtoMinor: 1,
		Header:     h,
		Host:       r.Host,
	}
	return x.takeBody()
}

// noUserAgent is shared by every outbound request; its capacity of 1 makes any append copy it.
var noUserAgent = []string{""}[:1:1]

// hopByHop are the headers of one connection (RFC 9110 7.6.1), never forwarded. isHopByHop
// matches exactly these, by length first.
var hopByHop = []string{"Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate",
	"Proxy-Authorization", "Te", "Trailer", "Transfer-Encoding", "Upgrade"}

func isHopByHop(k string) bool {
	switch len(k) {
	case 2:
		return strings.EqualFold(k, "Te")
	case 7:
		return strings.EqualFold(k, "Trailer") || strings.EqualFold(k, "Upgrade")
	case 10:
		return strings.EqualFold(k, "Connection") || strings.EqualFold(k, "Keep-Alive")
	case 16:
		return strings.EqualFold(k, "Proxy-Connection")
	case 17:
		return strings.EqualFold(k, "Transfer-Encoding")
	case 18:
		return strings.EqualFold(k, "Proxy-Authenticate")
	case 19:
		return strings.EqualFold(k, "Proxy-Authorization")
	}
	return false
}

// isExpect matches Expect: the gateway answers "Expect: 100-continue" itself (net/http's server
// sends 100 Continue when the body is first read, and refuses any other expectation with 417), and
// the body it forwards is already there, so the upstream is not asked to wait for it.
func isExpect(k string) bool { return len(k) == 6 && strings.EqualFold(k, "Expect") }

// isResilienceHeader matches the gateway's own X-Resilience-* fields, in any case and with '_' for
// '-': servers and frameworks that map header names to variables (CGI, WSGI, nginx, PHP) read
// X_Resilience_Attempts as X-Resilience-Attempts, so a client must not pass it either.
func isResilienceHeader(k string) bool {
	const p = "x-resilience-"
	if len(k) < len(p) {
		return false
	}
	for i := 0; i < len(p); i++ {
		c := k[i]
		switch {
		case c == '_':
			c = '-'
		case 'A' <= c && c <= 'Z':
			c += 'a' - 'A'
		}
		if c != p[i] {
			return false
		}
	}
	return true
}

// teTrailers is the only TE value forwarded; its capacity of 1 makes any append copy it.
var teTrailers = []string{"trailers"}[:1:1]

// outboundHeader returns the header of the outbound request: in's fields without the hop-by-hop
// ones (those named by Connection too), without Expect and without any X-Resilience-* header a
// client sent. It
// copies the map in one pass and shares the value slices of in, which nothing modifies (their
// capacity is cut to their length, so an append copies); room is left for the gateway's own fields.
func outboundHeader(in http.Header) http.Header {
	h := make(http.Header, len(in)+2)
	for k, vv := range in {
		if isHopByHop(k) || isResilienceHeader(k) || isExpect(k) {
			continue
		}
		h[k] = vv[:len(vv):len(vv)]
	}
	te := in["Te"]
	for _, v := range in["Connection"] {
		for f := range strings.SplitSeq(v, ",") {
			if f = strings.TrimSpace(f); f != "" {
				k := http.CanonicalHeaderKey(f)
				delete(h, k)
				if k == "Te" {
					te = nil
				}
			}
		}
	}
	for _, v := range te { // "TE: trailers" says the client accepts trailers: keep it, as httputil.ReverseProxy does
		if strings.EqualFold(strings.TrimSpace(v), "trailers") {
			h["Te"] = teTrailers
		}
	}
	return h
}
