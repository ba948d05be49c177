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
	"bytes"
	"encoding/json"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"resilience.dev/operator/internal/patterns/clock"
)

// A traced request continues the caller's trace: the gateway's span is the child of its traceparent,
// each try a child of that span carrying its own traceparent upstream, and a retry is an event.
func TestTracingSpansPerRequestAndTry(t *testing.T) {
	t.Parallel()
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	t.Cleanup(func() { _ = tp.Shutdown(t.Context()) })
	mem := newMem()
	var mu sync.Mutex
	var upstreamParents []string
	h, _ := failFirst(1, 503)
	mem.handle(epAddr(1), func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		upstreamParents = append(upstreamParents, r.Header.Get("Traceparent"))
		mu.Unlock()
		h(w, r)
	})
	r := retry(3)
	g := newGW(t, Options{Clock: clock.NewFake(t0), Tracer: tp.Tracer("test")}, mem, withRetry(r, ep(1)))
	const callerTrace, callerSpan = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
	rsp := get(g, "http://api.shop/", "Traceparent: 00-"+callerTrace+"-"+callerSpan+"-01", "X-Req: a")
	if rsp.Code != 200 {
		t.Fatalf("got %d, want 200 after a retry", rsp.Code)
	}
	spans := rec.Ended()
	if len(spans) != 3 {
		t.Fatalf("%d spans ended, want the request's and two tries'", len(spans))
	}
	req := spans[2] // ends last
	if req.Name() != "gateway shop/api" || req.SpanKind() != trace.SpanKindServer ||
		req.Parent().TraceID().String() != callerTrace || req.Parent().SpanID().String() != callerSpan {
		t.Fatalf("request span %q kind %v parent %v, want the caller's span as parent", req.Name(), req.SpanKind(), req.Parent())
	}
	if evs := req.Events(); len(evs) != 1 || evs[0].Name != "retry" {
		t.Errorf("request span events %v, want one retry", evs)
	}
	for i, try := range spans[:2] {
		if try.Name() != "try" || try.Parent().SpanID() != req.SpanContext().SpanID() {
			t.Errorf("try %d: %q with parent %v, want a child of the request span", i, try.Name(), try.Parent().SpanID())
		}
		want := "00-" + callerTrace + "-" + try.SpanContext().SpanID().String() + "-01"
		if upstreamParents[i] != want {
			t.Errorf("try %d sent traceparent %q, want %q (its own span)", i, upstreamParents[i], want)
		}
	}
	if attrs := attrMap(req); attrs["http.response.status_code"] != "200" || attrs["resilience.attempts"] != "2" {
		t.Errorf("request span attributes %v", attrs)
	}
}

// The gateway's own refusal is an event on the request's span, and the access log has a line per
// request with its trace id.
func TestTracingRefusalAndAccessLog(t *testing.T) {
	t.Parallel()
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	t.Cleanup(func() { _ = tp.Shutdown(t.Context()) })
	var logBuf bytes.Buffer
	var logMu sync.Mutex
	logger := slog.New(slog.NewJSONHandler(&lockedBuffer{b: &logBuf, mu: &logMu}, nil))
	g := newGW(t, Options{Clock: clock.NewFake(t0), Tracer: tp.Tracer("test"), AccessLog: logger}, okMem(),
		rateLimited(rateLimit(limit("total", 1, time.Minute, 1))))
	codes := statusCodes(g, 2)
	if codes[0] != 200 || codes[1] != 429 {
		t.Fatalf("codes %v, want 200 then 429", codes)
	}
	spans := rec.Ended()
	refused := spans[len(spans)-1]
	if evs := refused.Events(); len(evs) != 1 || evs[0].Name != "gateway.rejected" || !strings.Contains(attrMap(refused)["http.response.status_code"], "429") {
		t.Fatalf("refused request: events %v attributes %v, want a gateway.rejected event and 429", evs, attrMap(refused))
	}
	logMu.Lock()
	lines := strings.Split(strings.TrimSpace(logBuf.String()), "\n")
	logMu.Unlock()
	if len(lines) != 2 {
		t.Fatalf("%d access log lines, want 2: %q", len(lines), lines)
	}
	var line map[string]any
	if err := json.Unmarshal([]byte(lines[1]), &line); err != nil {
		t.Fatal(err)
	}
	if line["status"] != 429.0 || line["service"] != "shop/api" || line["trace_id"] != refused.SpanContext().TraceID().String() {
		t.Errorf("access log line %v", line)
	}
}

// Without a tracer nothing is traced and the caller's traceparent passes to the upstream unchanged.
func TestTracingOffPassesTraceparent(t *testing.T) {
	t.Parallel()
	mem := newMem()
	var got string
	mem.handle(epAddr(1), func(w http.ResponseWriter, r *http.Request) { got = r.Header.Get("Traceparent"); ok200(w, r) })
	g := newGW(t, Options{Clock: clock.NewFake(t0)}, mem, rateLimited(rateLimit(limit("total", 10, time.Second, 10))))
	const tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	if rsp := get(g, "http://api.shop/", "Traceparent: "+tp); rsp.Code != 200 || got != tp {
		t.Fatalf("code %d, upstream traceparent %q, want %q", rsp.Code, got, tp)
	}
}

func attrMap(s sdktrace.ReadOnlySpan) map[string]string {
	m := map[string]string{}
	for _, kv := range s.Attributes() {
		m[string(kv.Key)] = kv.Value.Emit()
	}
	return m
}

type lockedBuffer struct {
	b  *bytes.Buffer
	mu *sync.Mutex
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}
