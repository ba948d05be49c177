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
	"io"
	"net"
	"net/http"
	"strconv"
	"testing"
	"time"

	"golang.org/x/net/http2"

	"resilience.dev/operator/internal/snapshot"
)

// serveGateway serves g on a real loopback listener (HTTPServer on WatchFraming, as cmd/gateway
// does) and returns its address.
func serveGateway(t testing.TB, g *Gateway) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := g.HTTPServer("")
	go func() { _ = srv.Serve(WatchFraming(l)) }()
	t.Cleanup(func() { _ = srv.Close() })
	return l.Addr().String()
}

// addrEndpoint is an FQDN endpoint under .localhost for the server listening at addr (LocalDev).
func addrEndpoint(t testing.TB, addr string) snapshot.Endpoint {
	t.Helper()
	_, p, _ := net.SplitHostPort(addr)
	n, err := strconv.Atoi(p)
	if err != nil {
		t.Fatal(err)
	}
	return snapshot.Endpoint{Address: "backend.localhost", Port: int32(n), Type: snapshot.AddressFQDN, HandMade: true}
}

// The listener speaks HTTP/1.1 and HTTP/2 with prior knowledge (h2c) on the same port; an HTTP/2
// request to an HTTP/1.1 port is translated.
func TestListenerSpeaksH1AndH2C(t *testing.T) {
	backend := newServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, r.Proto)
	}))
	g := newGW(t, Options{LocalDev: true}, nil, snap(1, port(addrEndpoint(t, backend[len("http://"):]))))
	addr := serveGateway(t, g)
	for _, tc := range []struct {
		name  string
		proto func(*http.Protocols)
		want  int
	}{
		{"HTTP/1.1", func(p *http.Protocols) { p.SetHTTP1(true) }, 1},
		{"h2c", func(p *http.Protocols) { p.SetUnencryptedHTTP2(true) }, 2},
	} {
		var p http.Protocols
		tc.proto(&p)
		c := &http.Client{Transport: &http.Transport{Protocols: &p}}
		req, _ := http.NewRequest(http.MethodGet, "http://"+addr+"/", nil)
		req.Host = "api.shop"
		resp, err := c.Do(req)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || resp.ProtoMajor != tc.want || string(b) != "HTTP/1.1" {
			t.Fatalf("%s: %s %s, upstream saw %q", tc.name, resp.Proto, resp.Status, b)
		}
		c.CloseIdleConnections()
	}
}

// A port with appProtocol kubernetes.io/h2c (or grpc) is reached over HTTP/2 cleartext, whatever the
// client speaks; other ports over HTTP/1.1. The dial guard still applies: loopback only by a
// .localhost name in LocalDev.
func TestUpstreamH2CByAppProtocol(t *testing.T) {
	var protos http.Protocols
	protos.SetHTTP1(true)
	protos.SetUnencryptedHTTP2(true)
	bs := &http.Server{Protocols: &protos, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, r.Proto)
	})}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = bs.Serve(l) }()
	t.Cleanup(func() { _ = bs.Close() })
	for _, ap := range []string{"", "http", snapshot.AppProtocolH2C, snapshot.AppProtocolGRPC} {
		pt := port(addrEndpoint(t, l.Addr().String()))
		pt.AppProtocol = ap
		g := newGW(t, Options{LocalDev: true}, nil, snap(1, pt))
		addr := serveGateway(t, g)
		req, _ := http.NewRequest(http.MethodGet, "http://"+addr+"/", nil)
		req.Host = "api.shop"
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		want := "HTTP/1.1"
		if pt.H2C() {
			want = "HTTP/2.0"
		}
		if resp.StatusCode != 200 || string(b) != want {
			t.Fatalf("appProtocol %q: %s, upstream saw %q, want %q", ap, resp.Status, b, want)
		}
	}
	pt := port(snapshot.Endpoint{Address: "127.0.0.1", Port: int32(l.Addr().(*net.TCPAddr).Port), Type: snapshot.AddressIPv4, HandMade: true})
	pt.AppProtocol = snapshot.AppProtocolGRPC
	g := newGW(t, Options{LocalDev: true}, nil, snap(1, pt))
	if rec := get(g, "http://api.shop/"); rec.Code != http.StatusBadGateway {
		t.Fatalf("h2c to a loopback IP: %d %s", rec.Code, rec.Body)
	}
}

// A capture port speaks h2c too: a gRPC client of a captured Service reaches it there.
func TestCapturePortSpeaksH2C(t *testing.T) {
	p := freePort(t)
	mem := newMem()
	mem.handle(epAddr(1), func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "captured") })
	pt := port(ep(1))
	pt.CapturePort = p
	g := newGW(t, Options{CaptureHost: "127.0.0.1", CaptureRange: snapshot.PortRange{First: 1024, Last: 65535}}, mem, snap(1, pt))
	t.Cleanup(func() { g.ShutdownCapture(context.Background()) })
	var protos http.Protocols
	protos.SetUnencryptedHTTP2(true)
	c := &http.Client{Transport: &http.Transport{Protocols: &protos}}
	defer c.CloseIdleConnections()
	resp, err := c.Get(fmt.Sprintf("http://127.0.0.1:%d/", p))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.ProtoMajor != 2 || resp.StatusCode != 200 || string(b) != "captured" {
		t.Fatalf("h2c on a capture port: %s %s %q", resp.Proto, resp.Status, b)
	}
}

// The listener's HTTP/2 settings bound each connection: streams, frame size, header list.
func TestListenerH2Settings(t *testing.T) {
	g := newGW(t, Options{}, newMem(), snap(1, port(ep(1))))
	c, err := net.Dial("tcp", serveGateway(t, g))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(c, http2.ClientPreface); err != nil {
		t.Fatal(err)
	}
	fr := http2.NewFramer(c, c)
	if err := fr.WriteSettings(); err != nil {
		t.Fatal(err)
	}
	f, err := fr.ReadFrame()
	if err != nil {
		t.Fatal(err)
	}
	sf, ok := f.(*http2.SettingsFrame)
	if !ok {
		t.Fatalf("first frame %v", f)
	}
	for id, want := range map[http2.SettingID]uint32{
		http2.SettingMaxConcurrentStreams: h2MaxConcurrentStreams,
		http2.SettingMaxFrameSize:         h2MaxReadFrameSize,
	} {
		if v, ok := sf.Value(id); !ok || v != want {
			t.Errorf("%v = %d (%v), want %d", id, v, ok, want)
		}
	}
	if v, ok := sf.Value(http2.SettingMaxHeaderListSize); !ok || v < DefaultMaxRequestHeaderBytes || v > 2*DefaultMaxRequestHeaderBytes {
		t.Errorf("max header list size %d (%v)", v, ok)
	}
}
