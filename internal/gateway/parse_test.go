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
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"
)

func TestParseHost(t *testing.T) {
	t.Parallel()
	tests := []struct {
		desc, host string
		want       target
		ok         bool
	}{
		{desc: "svc.ns", host: "api.shop", want: target{service: "api", namespace: "shop"}, ok: true},
		{desc: "svc.ns.svc", host: "api.shop.svc", want: target{service: "api", namespace: "shop"}, ok: true},
		{desc: "full name", host: "api.shop.svc.cluster.local", want: target{service: "api", namespace: "shop"}, ok: true},
		{desc: "full name with trailing dot", host: "api.shop.svc.cluster.local.", want: target{service: "api", namespace: "shop"}, ok: true},
		{desc: "port", host: "api.shop:8080", want: target{service: "api", namespace: "shop", port: 8080, hasPort: true}, ok: true},
		{desc: "full name and port", host: "api.shop.svc.cluster.local:443", want: target{service: "api", namespace: "shop", port: 443, hasPort: true}, ok: true},
		{desc: "upper case", host: "API.Shop.SVC", want: target{service: "api", namespace: "shop"}, ok: true},
		{desc: "empty port", host: "api.shop:", want: target{service: "api", namespace: "shop"}, ok: true},
		{desc: "namespace named svc", host: "api.svc", want: target{service: "api", namespace: "svc"}, ok: true},
		{desc: "other domain", host: "api.shop.svc.example.com"},
		{desc: "not svc", host: "api.shop.pod"},
		{desc: "three labels", host: "a.b.c"},
		{desc: "one label", host: "api"},
		{desc: "empty", host: ""},
		{desc: "port 0", host: "api.shop:0"},
		{desc: "port too big", host: "api.shop:65536"},
		{desc: "port not a number", host: "api.shop:http"},
		{desc: "ipv4", host: "10.0.0.1:80"},
		{desc: "ipv6", host: "[::1]:80"},
		{desc: "user info", host: "u@api.shop"},
		{desc: "label too long", host: strings.Repeat("a", 64) + ".shop"},
		{desc: "leading dash", host: "-api.shop"},
		{desc: "empty label", host: ".shop"},
		{desc: "double dot", host: "api..shop"},
		{desc: "svc with suffix", host: "api.shop.svcx"},
		{desc: "domain prefix only", host: "api.shop.svc.cluster"},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			got, ok := parseHost(tt.host, "cluster.local")
			if ok != tt.ok || (ok && got != tt.want) {
				t.Errorf("parseHost(%q) = %+v, %v; want %+v, %v", tt.host, got, ok, tt.want, tt.ok)
			}
		})
	}
}

func FuzzParseHost(f *testing.F) {
	for _, s := range []string{"api.shop", "api.shop.svc", "api.shop.svc.cluster.local:80", "[::1]:8", "A.B:", "a.b.svc.cluster.local.", "x:99999"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, host string) {
		tg, ok := parseHost(host, "cluster.local")
		if !ok {
			return
		}
		if !isLabel(tg.service) || !isLabel(tg.namespace) {
			t.Fatalf("parseHost(%q) gave labels %q %q", host, tg.service, tg.namespace)
		}
		if tg.hasPort && (tg.port < 1 || tg.port > 65535) {
			t.Fatalf("parseHost(%q) gave port %d", host, tg.port)
		}
		// Every accepted form names the same Service as its canonical full name.
		canon := tg.service + "." + tg.namespace + ".svc.cluster.local"
		if again, ok := parseHost(canon, "cluster.local"); !ok || again.service != tg.service || again.namespace != tg.namespace {
			t.Fatalf("canonical %q of %q does not parse back", canon, host)
		}
	})
}

func TestParseRetryAfter(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		desc, v string
		want    time.Duration
		ok      bool
	}{
		{desc: "seconds", v: "3", want: 3 * time.Second, ok: true},
		{desc: "zero", v: "0", want: 0, ok: true},
		{desc: "spaces", v: " 7 ", want: 7 * time.Second, ok: true},
		{desc: "huge is capped", v: "99999999999999999999999", want: maxRetryAfter.Truncate(time.Second), ok: true},
		{desc: "http date", v: "Sun, 01 Mar 2026 12:00:05 GMT", want: 5 * time.Second, ok: true},
		{desc: "date in the past", v: "Sun, 01 Mar 2026 11:00:00 GMT", want: 0, ok: true},
		{desc: "negative", v: "-1"},
		{desc: "fraction", v: "1.5"},
		{desc: "garbage", v: "soon"},
		{desc: "empty", v: ""},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			got, ok := parseRetryAfter(tt.v, now)
			if ok != tt.ok || got != tt.want {
				t.Errorf("parseRetryAfter(%q) = %v, %v; want %v, %v", tt.v, got, ok, tt.want, tt.ok)
			}
		})
	}
}

func FuzzParseRetryAfter(f *testing.F) {
	for _, s := range []string{"0", "120", "Sun, 01 Mar 2026 12:00:05 GMT", "Sunday, 01-Mar-26 12:00:05 GMT", "Sun Mar  1 12:00:05 2026", "1e9", "99999999999999999999"} {
		f.Add(s)
	}
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, v string) {
		d, ok := parseRetryAfter(v, now)
		if !ok && d != 0 {
			t.Fatalf("parseRetryAfter(%q) = %v with !ok", v, d)
		}
		if d < 0 || d > maxRetryAfter {
			t.Fatalf("parseRetryAfter(%q) = %v out of [0, %v]", v, d, maxRetryAfter)
		}
	})
}

func TestCheckAddr(t *testing.T) {
	t.Parallel()
	tests := []struct {
		desc, addr string
		allowed    bool
	}{
		{desc: "pod address", addr: "10.244.1.7", allowed: true},
		{desc: "pod ipv6", addr: "fd00:10:244::7", allowed: true},
		{desc: "loopback", addr: "127.0.0.1"},
		{desc: "loopback elsewhere in 127/8", addr: "127.3.2.1"},
		{desc: "ipv6 loopback", addr: "::1"},
		{desc: "mapped loopback", addr: "::ffff:127.0.0.1"},
		{desc: "metadata", addr: "169.254.169.254"},
		{desc: "link-local", addr: "169.254.10.1"},
		{desc: "ipv6 link-local", addr: "fe80::1"},
		{desc: "aws ipv6 metadata", addr: "fd00:ec2::254"},
		{desc: "alibaba metadata", addr: "100.100.100.200"},
		{desc: "unspecified", addr: "0.0.0.0"},
		{desc: "ipv6 unspecified", addr: "::"},
		{desc: "multicast", addr: "224.0.0.1"},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			err := checkAddr(netip.MustParseAddr(tt.addr))
			if (err == nil) != tt.allowed {
				t.Errorf("checkAddr(%s) = %v, want allowed %v", tt.addr, err, tt.allowed)
			}
		})
	}
}

func TestClientIP(t *testing.T) {
	t.Parallel()
	res := ipResolver{trusted: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}, v6bits: 64}
	tests := []struct {
		desc, peer string
		xff        []string
		want       string
	}{
		{desc: "untrusted peer: its address, XFF ignored", peer: "203.0.113.9:4000", xff: []string{"198.51.100.1"}, want: "203.0.113.9"},
		{desc: "trusted peer: rightmost untrusted hop", peer: "10.1.1.1:4000", xff: []string{"6.6.6.6, 198.51.100.1, 10.2.2.2"}, want: "198.51.100.1"},
		{desc: "several XFF fields", peer: "10.1.1.1:4000", xff: []string{"6.6.6.6", "198.51.100.1", "10.2.2.2"}, want: "198.51.100.1"},
		{desc: "all trusted: leftmost", peer: "10.1.1.1:4000", xff: []string{"10.3.3.3, 10.2.2.2"}, want: "10.3.3.3"},
		{desc: "trusted peer without XFF", peer: "10.1.1.1:4000", want: "10.1.1.1"},
		{desc: "malformed hop stops the walk", peer: "10.1.1.1:4000", xff: []string{"198.51.100.1, junk, 10.2.2.2"}, want: "10.2.2.2"},
		{desc: "ipv6 keyed by /64", peer: "[2001:db8:1:2:3:4:5:6]:443", want: "2001:db8:1:2::"},
		{desc: "mapped ipv4", peer: "[::ffff:203.0.113.9]:1", want: "203.0.113.9"},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodGet, "/", nil)
			r.RemoteAddr = tt.peer
			for _, v := range tt.xff {
				r.Header.Add("X-Forwarded-For", v)
			}
			if got := res.clientIP(r); got.String() != tt.want {
				t.Errorf("clientIP = %s, want %s", got, tt.want)
			}
		})
	}
}
