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

import "strings"

// target is what a request's host names: a Service, its namespace and the port, if one was given.
type target struct {
	service, namespace string
	port               int32
	hasPort            bool
}

// parseHost reads a request's host (the URL of an absolute-form request, else the Host header) as a
// Service of the cluster. It accepts, case-insensitively and with an optional trailing dot,
//
//	svc.ns   svc.ns.svc   svc.ns.svc.<domain>
//
// each with an optional ":port" (1..65535). domain is the cluster domain, lower-case and without
// dots at either end. Names must be DNS labels (RFC 1123: at most 63 of a-z, 0-9 and '-', not
// starting or ending with '-'). Anything else (IP literals, other names, user info) is refused.
// It does not allocate unless the host has upper-case letters.
func parseHost(host, domain string) (target, bool) {
	var t target
	if len(host) == 0 || len(host) > 512 {
		return t, false
	}
	if i := strings.LastIndexByte(host, ':'); i >= 0 {
		p, ok := parsePort(host[i+1:])
		if !ok {
			return t, false
		}
		t.port, t.hasPort = p, p != 0
		host = host[:i]
	}
	if hasUpper(host) {
		host = strings.ToLower(host)
	}
	host = strings.TrimSuffix(host, ".")
	svc, rest, ok := strings.Cut(host, ".")
	if !ok {
		return t, false
	}
	ns, tail, more := strings.Cut(rest, ".")
	if more {
		suffix, ok := strings.CutPrefix(tail, "svc")
		if !ok || (suffix != "" && (suffix[0] != '.' || suffix[1:] != domain)) {
			return t, false
		}
	}
	if !isLabel(svc) || !isLabel(ns) {
		return t, false
	}
	t.service, t.namespace = svc, ns
	return t, true
}

// parsePort reads a decimal port. An empty port (as in "host:") is allowed and returns 0.
func parsePort(s string) (int32, bool) {
	if len(s) > 5 {
		return 0, false
	}
	var n int32
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int32(c-'0')
	}
	if len(s) > 0 && (n < 1 || n > 65535) {
		return 0, false
	}
	return n, true
}

func hasUpper(s string) bool {
	for i := 0; i < len(s); i++ {
		if 'A' <= s[i] && s[i] <= 'Z' {
			return true
		}
	}
	return false
}

// isLabel reports whether s is an RFC 1123 DNS label in lower case.
func isLabel(s string) bool {
	if len(s) == 0 || len(s) > 63 || s[0] == '-' || s[len(s)-1] == '-' {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

// isDomain reports whether s is a lower-case DNS name of labels (the cluster domain).
func isDomain(s string) bool {
	if len(s) == 0 || len(s) > 253 {
		return false
	}
	for l := range strings.SplitSeq(s, ".") {
		if !isLabel(l) {
			return false
		}
	}
	return true
}

// isLocalhostName reports whether host is "localhost" or a name under ".localhost" (RFC 6761 6.3:
// such names resolve to loopback).
func isLocalhostName(host string) bool {
	host = strings.TrimSuffix(strings.ToLower(host), ".")
	return host == "localhost" || strings.HasSuffix(host, ".localhost")
}
