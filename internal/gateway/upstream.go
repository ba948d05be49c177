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
	"net/http"
)

// upstream is the last stage: it picks an endpoint (unless the breaker stage did), and sends the try.
type upstream struct {
	g     *Gateway
	route *portRoute
	fixed *endpoint // pass-through: the Service's DNS name
}

func (u *upstream) try(ctx context.Context, x *exchange, t *try) (*http.Response, error) {
	ep := t.ep
	if ep == nil {
		if ep = u.fixed; ep == nil {
			i := u.route.bal.pick(t.now, x.tries.tried.Load(), 0, false)
			if i < 0 {
				u.route.noEndpoint.Inc()
				return nil, &gwError{kind: kindReject, status: http.StatusServiceUnavailable,
					msg: fmt.Sprintf("no ready endpoint for port %d", u.route.port)}
			}
			ep = u.route.eps[i]
		}
		t.ep = ep
	}
	if ep.idx < 64 {
		x.tries.tried.Or(1 << ep.idx)
	}
	x.tries.attempts.Add(1)
	ep.inflight.Add(1)
	t.inflight = true
	req, span := u.g.trySpan(x.request(ctx, t, ep), ep, x.tries.attempts.Load())
	start := u.g.clk.Now()
	rt := u.g.rt
	if u.route.h2c && !x.upgrade { // a WebSocket upgrade is HTTP/1.1 on every port
		rt = u.g.rtH2C
	}
	resp, err := rt.RoundTrip(req)
	t.end = u.g.clk.Now()
	endTrySpan(span, resp, err)
	u.route.latency.Observe(t.end.Sub(start).Seconds())
	if err != nil {
		if resp != nil && resp.Body != nil {
			_ = resp.Body.Close()
		}
		if x.body.cut.Load() { // the client's fault: neither retried nor a breaker failure
			return nil, tooLargeErr(-1, x.body.limit)
		}
		return nil, u.route.classify(ctx, err)
	}
	if x.body.cut.Load() {
		_ = resp.Body.Close()
		return nil, tooLargeErr(-1, x.body.limit)
	}
	if resp.StatusCode == http.StatusSwitchingProtocols {
		// Only a WebSocket upgrade may switch (websocket.go). Otherwise the gateway asked for no
		// upgrade (Upgrade is hop-by-hop): net/http's Transport hands the connection over as the
		// body of a 101 all the same, which must not reach the client. It fails the try as the
		// lean client does.
		if err := u.route.checkSwitch(ctx, x, resp); err != nil {
			_ = resp.Body.Close()
			return nil, err
		}
	}
	return resp, nil
}
