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
	"log/slog"
	"net/http"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// W3C trace context: the gateway continues the caller's trace and hands its own span to the upstream.
var traceContext = propagation.TraceContext{}

// requestSpan starts the span of one request, a child of the caller's traceparent if it sent one.
// Without a tracer it returns r's context and no span: the hot path then pays one nil check.
func (g *Gateway) requestSpan(r *http.Request, pr *portRoute) (context.Context, trace.Span) {
	if g.opts.Tracer == nil {
		return r.Context(), nil
	}
	ctx := traceContext.Extract(r.Context(), propagation.HeaderCarrier(r.Header))
	return g.opts.Tracer.Start(ctx, "gateway "+pr.label, trace.WithSpanKind(trace.SpanKindServer),
		trace.WithAttributes(
			attribute.String("http.request.method", r.Method),
			attribute.String("url.path", r.URL.Path),
			attribute.String("resilience.target.service", pr.label),
			attribute.Int("resilience.target.port", int(pr.port)),
		))
}

// endRequestSpan records the answer on the request's span: its status, and the gateway's own refusal
// or failure as an event (rate limit, breaker, bulkhead, timeout, no endpoint).
func endRequestSpan(span trace.Span, x *exchange, status int, ge *gwError) {
	if span == nil {
		return
	}
	span.SetAttributes(attribute.Int("http.response.status_code", status),
		attribute.Int64("resilience.attempts", int64(x.tries.attempts.Load())))
	if ge != nil {
		span.AddEvent("gateway."+ge.kind.String(), trace.WithAttributes(attribute.String("reason", ge.msg)))
	}
	if status >= 500 {
		span.SetStatus(codes.Error, http.StatusText(status))
	}
	span.End()
}

// trySpan starts the span of one try (a retry or a hedge is another try) under the request's span,
// and returns the request to send carrying it as traceparent. The header map is the try's own: tries
// of a hedged round run at once.
func (g *Gateway) trySpan(req *http.Request, ep *endpoint, attempt int32) (*http.Request, trace.Span) {
	parent := trace.SpanFromContext(req.Context())
	if g.opts.Tracer == nil || !parent.SpanContext().IsValid() {
		return req, nil
	}
	ctx, span := g.opts.Tracer.Start(req.Context(), "try", trace.WithSpanKind(trace.SpanKindClient),
		trace.WithAttributes(attribute.String("server.address", ep.hostPort), attribute.Int("resilience.attempt", int(attempt))))
	req = req.WithContext(ctx)
	req.Header = req.Header.Clone()
	traceContext.Inject(ctx, propagation.HeaderCarrier(req.Header))
	return req, span
}

// endTrySpan records a try's outcome: the upstream's status, or the error that ended it.
func endTrySpan(span trace.Span, resp *http.Response, err error) {
	if span == nil {
		return
	}
	switch {
	case err != nil:
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
	case resp != nil:
		span.SetAttributes(attribute.Int("http.response.status_code", resp.StatusCode))
		if resp.StatusCode >= 500 {
			span.SetStatus(codes.Error, http.StatusText(resp.StatusCode))
		}
	}
	span.End()
}

// traceEvent adds an event (retry, hedge) to the request's span, when it is traced.
func traceEvent(ctx context.Context, name string, attrs ...attribute.KeyValue) {
	if span := trace.SpanFromContext(ctx); span.IsRecording() {
		span.AddEvent(name, trace.WithAttributes(attrs...))
	}
}

// accessLog writes one JSON line per request when the access log is on.
func (g *Gateway) accessLog(x *exchange, status int, span trace.Span) {
	if g.opts.AccessLog == nil {
		return
	}
	r := x.in
	attrs := []slog.Attr{
		slog.String("method", r.Method), slog.String("host", r.Host), slog.String("path", r.URL.Path),
		slog.String("service", x.route.label), slog.Int("port", int(x.route.port)),
		slog.Int("status", status), slog.Duration("duration", g.clk.Now().Sub(x.now)),
		slog.Int("attempts", int(x.tries.attempts.Load())), slog.String("client", r.RemoteAddr),
	}
	if x.grpc && x.grpcCode >= 0 {
		attrs = append(attrs, slog.Int("grpc_status", int(x.grpcCode)))
	}
	if span != nil {
		attrs = append(attrs, slog.String("trace_id", span.SpanContext().TraceID().String()))
	}
	g.opts.AccessLog.LogAttrs(context.Background(), slog.LevelInfo, "request", attrs...)
}
