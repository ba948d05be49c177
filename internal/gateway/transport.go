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
	"context"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"syscall"
	"time"
)

// dialer connects to endpoints. Every dial is checked by the guard on the address actually dialled
// (after name resolution, in net.Dialer.Control); only names under ".localhost" in LocalDev mode go
// to loopback, and nowhere else.
type dialer struct {
	localDev bool
	strict   net.Dialer
	loopback net.Dialer
}

func (d *dialer) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	if d.localDev && isLocalhostName(host) {
		return d.loopback.DialContext(ctx, network, net.JoinHostPort("127.0.0.1", port))
	}
	return d.strict.DialContext(ctx, network, addr)
}

// guardControl returns a net.Dialer Control function refusing forbidden addresses; with
// loopbackOnly it accepts loopback addresses and nothing else.
func guardControl(loopbackOnly bool) func(network, address string, c syscall.RawConn) error {
	return func(_, address string, _ syscall.RawConn) error {
		ap, err := netip.ParseAddrPort(address)
		if err != nil {
			return fmt.Errorf("%w: %q is not an IP address", errForbiddenAddress, address)
		}
		a := ap.Addr().Unmap()
		if loopbackOnly {
			if !a.IsLoopback() {
				return fmt.Errorf("%w: %s is not loopback", errForbiddenAddress, a)
			}
			return nil
		}
		return checkAddr(a)
	}
}

var (
	metadataV6     = netip.MustParseAddr("fd00:ec2::254")   // AWS IMDS over IPv6
	metadataAlibab = netip.MustParseAddr("100.100.100.200") // Alibaba Cloud metadata
)

// checkAddr refuses loopback, link-local (169.254.0.0/16 with the metadata address
// 169.254.169.254, fe80::/10), the other cloud metadata addresses, unspecified and multicast.
func checkAddr(a netip.Addr) error {
	a = a.Unmap().WithZone("")
	switch {
	case !a.IsValid(), a.IsUnspecified():
		return fmt.Errorf("%w: %s is unspecified", errForbiddenAddress, a)
	case a.IsLoopback():
		return fmt.Errorf("%w: %s is loopback", errForbiddenAddress, a)
	case a.IsLinkLocalUnicast(), a.IsLinkLocalMulticast():
		return fmt.Errorf("%w: %s is link-local", errForbiddenAddress, a)
	case a == metadataV6, a == metadataAlibab:
		return fmt.Errorf("%w: %s is a cloud metadata address", errForbiddenAddress, a)
	case a.IsMulticast():
		return fmt.Errorf("%w: %s is multicast", errForbiddenAddress, a)
	}
	return nil
}

// upstreamTransport is the built-in transport: net/http's Transport, or the lean client over it.
type upstreamTransport interface {
	http.RoundTripper
	CloseIdleConnections()
}

// newTransport builds the shared transport to the endpoints: keep-alive connections reused across
// requests, sized for a proxy (many idle connections per endpoint), no proxy from the environment,
// no transparent compression (the client's Accept-Encoding passes through), and every dial checked
// by the dial guard on the resolved address. With UpstreamClientFast, the lean client (h1Client)
// sends what it can and net/http's Transport the rest, both through the same dialer.
func newTransport(o Options, d *dialer) upstreamTransport {
	tr := newNetHTTPTransport(o, d)
	if o.UpstreamClient == UpstreamClientNetHTTP {
		return tr
	}
	return newH1Client(d.DialContext, tr, o.MaxIdleConnsPerHost)
}

// newDialer returns the dialer of the built-in transports, with its dial guard.
func newDialer(o Options) *dialer {
	return &dialer{
		localDev: o.LocalDev,
		strict:   net.Dialer{Timeout: o.DialTimeout, KeepAlive: 30 * time.Second, Control: guardControl(false)},
		loopback: net.Dialer{Timeout: o.DialTimeout, KeepAlive: 30 * time.Second, Control: guardControl(true)},
	}
}

func newNetHTTPTransport(o Options, d *dialer) *http.Transport {
	return &http.Transport{
		Proxy:                  nil,
		DialContext:            d.DialContext,
		MaxIdleConns:           0, // no global cap: MaxIdleConnsPerHost bounds each endpoint
		MaxIdleConnsPerHost:    o.MaxIdleConnsPerHost,
		IdleConnTimeout:        90 * time.Second,
		ExpectContinueTimeout:  1 * time.Second,
		DisableCompression:     true,
		MaxResponseHeaderBytes: 1 << 20,
		WriteBufferSize:        32 << 10,
		ReadBufferSize:         h1ReadBufferSize, // the lean client's: the same responses pass
	}
}
