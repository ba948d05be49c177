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
	"net/http"
	"net/netip"
	"strings"
)

// ipResolver finds the client address a request is keyed by.
type ipResolver struct {
	trusted []netip.Prefix
	v6bits  int
}

// clientIP returns the client of r: the peer, or, when the peer is a trusted proxy, the rightmost
// address of X-Forwarded-For that is not a trusted proxy (the leftmost when all are). An IPv6
// client is reduced to its v6bits prefix. A missing or malformed address yields the zero Addr (one
// shared key), and a malformed X-Forwarded-For hop stops the walk at the last good address.
func (c *ipResolver) clientIP(r *http.Request) netip.Addr {
	peer := parseHop(r.RemoteAddr)
	if !peer.IsValid() || !c.isTrusted(peer) {
		return c.mask(peer)
	}
	addr := peer
	vals := r.Header["X-Forwarded-For"]
	for i := len(vals) - 1; i >= 0; i-- {
		v := vals[i]
		for v != "" {
			hop := v
			if j := strings.LastIndexByte(v, ','); j >= 0 {
				hop, v = v[j+1:], v[:j]
			} else {
				v = ""
			}
			hop = strings.TrimSpace(hop)
			if hop == "" {
				continue
			}
			a := parseHop(hop)
			if !a.IsValid() {
				return c.mask(addr)
			}
			if !c.isTrusted(a) {
				return c.mask(a)
			}
			addr = a
		}
	}
	return c.mask(addr)
}

// parseHop reads "ip", "ip:port" or "[ipv6]:port".
func parseHop(s string) netip.Addr {
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap.Addr().Unmap().WithZone("")
	}
	if a, err := netip.ParseAddr(s); err == nil {
		return a.Unmap().WithZone("")
	}
	return netip.Addr{}
}

func (c *ipResolver) isTrusted(a netip.Addr) bool {
	for _, p := range c.trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

func (c *ipResolver) mask(a netip.Addr) netip.Addr {
	if a.Is6() && c.v6bits > 0 && c.v6bits < 128 {
		if p, err := a.Prefix(c.v6bits); err == nil {
			return p.Addr()
		}
	}
	return a
}

// appendIP appends an address as a key part: a tag byte then 0, 4 or 16 bytes.
func appendIP(b []byte, a netip.Addr) []byte {
	switch {
	case a.Is4():
		v := a.As4()
		return append(append(b, 4), v[:]...)
	case a.Is6():
		v := a.As16()
		return append(append(b, 6), v[:]...)
	}
	return append(b, 0)
}
