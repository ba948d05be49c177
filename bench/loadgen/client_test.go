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

package loadgen

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// The raw client reads fixed-length, chunked, empty and connection-closing responses, sends the
// target's Host and headers, and reuses its connections.
func TestClientResponses(t *testing.T) {
	var conns atomic.Int64
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Host != "svc.ns" || r.Header.Get("X-User-Id") != "u" {
			http.Error(w, "bad request "+r.Host, http.StatusBadRequest)
			return
		}
		switch r.URL.Path {
		case "/chunked":
			w.WriteHeader(http.StatusAccepted)
			for range 3 {
				_, _ = w.Write([]byte(strings.Repeat("x", 5000)))
				w.(http.Flusher).Flush()
			}
		case "/empty":
			w.WriteHeader(http.StatusNoContent)
		case "/close":
			w.Header().Set("Connection", "close")
			_, _ = w.Write([]byte("bye"))
		default:
			_, _ = w.Write([]byte("ok"))
		}
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	defer srv.Close()
	c := NewClient(2)
	defer c.CloseIdle()
	for _, tc := range []struct {
		path   string
		status int
	}{{"/", 200}, {"/chunked", 202}, {"/empty", 204}, {"/close", 200}, {"/", 200}} {
		before := conns.Load()
		res, err := Closed(context.Background(), c, Target{URL: srv.URL + tc.path, Host: "svc.ns", Header: http.Header{"X-User-Id": {"u"}}}, 2, 50*time.Millisecond)
		if err != nil {
			t.Fatal(err)
		}
		if res.Requests == 0 || res.Errors != 0 || res.Non2xx != 0 {
			t.Fatalf("%s: %+v", tc.path, res)
		}
		o, err := Open(context.Background(), c, Target{URL: srv.URL + tc.path, Host: "svc.ns", Header: http.Header{"X-User-Id": {"u"}}}, 2, 200, 50*time.Millisecond)
		if err != nil {
			t.Fatal(err)
		}
		if o.Requests != 10 || o.Errors != 0 || o.Non2xx != 0 || len(o.Latencies) != 10 || len(o.SendLag) != 10 {
			t.Fatalf("%s open: %+v", tc.path, o)
		}
		// Keep-alive: outside /close (one connection per request by design) the two workers and the
		// open-loop sender reuse their connections, however many requests the machine's speed allows.
		if n := conns.Load() - before; tc.path != "/close" && n > 8 {
			t.Errorf("%s: %d new connections for %d requests", tc.path, n, res.Requests+o.Requests)
		}
	}
}
