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
	"time"
)

// newH2CTransport builds the transport to the endpoints of ports whose appProtocol is
// kubernetes.io/h2c or grpc: HTTP/2 over cleartext with prior knowledge (no HTTP/1.1, no upgrade),
// through the same dialer, and so the same dial guard, as the other transports. Many streams share
// one connection per endpoint; a connection at its peer's stream limit makes the transport open
// another.
func newH2CTransport(o Options, d *dialer) *http.Transport {
	var protos http.Protocols
	protos.SetUnencryptedHTTP2(true)
	return &http.Transport{
		Proxy:                  nil,
		DialContext:            d.DialContext,
		Protocols:              &protos,
		MaxIdleConnsPerHost:    o.MaxIdleConnsPerHost,
		IdleConnTimeout:        90 * time.Second,
		DisableCompression:     true,
		MaxResponseHeaderBytes: 1 << 20,
		HTTP2: &http.HTTP2Config{
			MaxReadFrameSize: h2MaxReadFrameSize,
			SendPingTimeout:  30 * time.Second, // a silent connection is pinged, and dropped without an answer
			PingTimeout:      15 * time.Second,
		},
	}
}
