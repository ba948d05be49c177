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
	"strconv"
	"strings"
)

// ServeHTTP routes the request to its Service and runs it through the Service port's chain.
func (g *Gateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	closeIfAmbiguous(w, r)
	if r.Method == http.MethodConnect {
		g.refuse(w, r, http.StatusForbidden, "CONNECT is refused: the gateway forwards plain HTTP requests to managed Services only")
		return
	}
	host := r.Host
	if r.URL.Scheme != "" || r.URL.Host != "" {
		if !strings.EqualFold(r.URL.Scheme, "http") {
			g.refuse(w, r, http.StatusForbidden, "only http:// URLs are forwarded, not "+quote(r.URL.Scheme+"://"))
			return
		}
		host = r.URL.Host
	}
	t := g.table.Load()
	if t == nil {
		g.refuse(w, r, http.StatusServiceUnavailable, errNoConfig.Error())
		return
	}
	tg, ok := parseHost(host, g.domain)
	if !ok {
		g.refuse(w, r, http.StatusForbidden, "host "+quote(host)+" is not a Service of this cluster (svc.ns, svc.ns.svc or svc.ns.svc."+g.domain+", with an optional :port)")
		return
	}
	var pr *portRoute
	switch sr := t.services[svcKey{tg.namespace, tg.service}]; {
	case sr != nil:
		if pr = sr.port(tg.port, tg.hasPort); pr == nil {
			p := tg.port
			if !tg.hasPort {
				p = 80
			}
			g.refuse(w, r, http.StatusForbidden, fmt.Sprintf("port %d is not a port of Service %s/%s", p, tg.namespace, tg.service))
			return
		}
	case g.opts.AllowPassThrough:
		pr = g.passThrough(t, tg)
	default:
		g.refuse(w, r, http.StatusForbidden, "Service "+tg.namespace+"/"+tg.service+" is not managed by a resilience policy")
		return
	}
	g.serve(w, r, pr)
}

func (g *Gateway) serve(w http.ResponseWriter, r *http.Request, pr *portRoute) {
	x := &exchange{route: pr, in: r, now: g.clk.Now(), grpc: isGRPC(r), grpcCode: -1}
	x.body.limit, x.body.stall.timeout = g.opts.MaxRequestBodyBytes, g.opts.RequestBodyReadTimeout
	ctx, span := g.requestSpan(r, pr)
	status, err := g.exchange(ctx, w, x)
	pr.svc.counters.inc(status)
	if span != nil || g.opts.AccessLog != nil {
		var ge *gwError
		if err != nil {
			ge = asGatewayError(err)
		}
		endRequestSpan(span, x, status, ge)
		g.accessLog(x, status, span)
	}
}

// exchange runs x through its chain and writes the answer; it returns the status written and the
// gateway's own error, if it wrote one.
func (g *Gateway) exchange(ctx context.Context, w http.ResponseWriter, x *exchange) (int, error) {
	if x.grpc {
		var cancel context.CancelFunc
		var err error
		if ctx, cancel, err = x.grpcPrelude(ctx); err != nil {
			return g.writeError(w, x, err), err
		}
		if cancel != nil {
			defer cancel()
		}
	}
	if err := x.prepare(w); err != nil {
		return g.writeError(w, x, err), err
	}
	resp, err := x.route.chain.serve(ctx, x)
	if err == nil && x.body.cut.Load() {
		// The upstream answered before the body passed the limit, and nothing has been written to
		// the client yet: it gets the 413 rather than an answer to a request never sent whole.
		_ = resp.Body.Close()
		resp, err = nil, tooLargeErr(-1, x.body.limit)
	}
	if err != nil {
		if x.grpc {
			err = grpcTimedOut(ctx, x, err)
		}
		return g.writeError(w, x, err), err
	}
	if resp.StatusCode == http.StatusSwitchingProtocols { // a WebSocket upgrade the upstream accepted
		return g.tunnel(w, x, resp)
	}
	g.writeResponse(w, x, resp)
	if x.grpc {
		x.grpcCode = int16(min(finalGRPCStatus(resp), 1<<15-1))
	}
	return resp.StatusCode, nil
}

// passThrough is the route of an unmanaged in-cluster Service, when pass-through is allowed: no
// policy, one endpoint that is the Service's DNS name (resolved and checked by the dial guard).
// Its metrics use empty namespace and service labels, as the host is the client's choice.
func (g *Gateway) passThrough(t *table, tg target) *portRoute {
	port := tg.port
	if !tg.hasPort {
		port = 80
	}
	sr := &serviceRoute{ns: tg.namespace, name: tg.service, counters: g.unrouted}
	pr := &portRoute{svc: sr, port: port, label: tg.namespace + "/" + tg.service,
		latency: g.passLatency, noEndpoint: g.passNoEndpoint}
	host := tg.service + "." + tg.namespace + ".svc." + g.domain
	pr.chain = &singleStage{next: &upstream{g: g, route: pr,
		fixed: &endpoint{hostPort: net.JoinHostPort(host, strconv.Itoa(int(port))), idx: 64}}}
	return pr
}
