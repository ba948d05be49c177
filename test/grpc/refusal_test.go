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

package grpc_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	testgrpc "google.golang.org/grpc/interop/grpc_testing"
	"google.golang.org/grpc/metadata"

	"resilience.dev/operator/internal/snapshot"
)

// Unary, server-, client- and bidirectional streaming calls, and the health service, pass through
// the gateway; a 1 MiB bidirectional stream is echoed intact, message by message, which it can
// only be if neither direction waits for the end of the other.
func TestGRPCCallsPass(t *testing.T) {
	ts := &testServer{}
	cc := dial(t, startGateway(t, grpcPort(t, startBackend(t, ts))), "api.shop")
	c := testgrpc.NewTestServiceClient(cc)
	ctx := callCtx(t, "")

	hr, err := healthpb.NewHealthClient(cc).Check(ctx, &healthpb.HealthCheckRequest{})
	if err != nil || hr.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("health: %v %v", hr, err)
	}
	ur, err := c.UnaryCall(ctx, &testgrpc.SimpleRequest{Payload: &testgrpc.Payload{Body: []byte("hello")}})
	if err != nil || string(ur.GetPayload().GetBody()) != "hello" {
		t.Fatalf("unary: %v %v", ur, err)
	}
	so, err := c.StreamingOutputCall(ctx, &testgrpc.StreamingOutputCallRequest{ResponseParameters: []*testgrpc.ResponseParameters{{Size: 10}, {Size: 100000}, {Size: 3}}})
	if err != nil {
		t.Fatal(err)
	}
	var sizes []int
	for {
		m, err := so.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("server streaming: %v", err)
		}
		sizes = append(sizes, len(m.GetPayload().GetBody()))
	}
	if len(sizes) != 3 || sizes[1] != 100000 {
		t.Fatalf("server streaming got sizes %v", sizes)
	}
	si, err := c.StreamingInputCall(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for range 20 {
		if err := si.Send(&testgrpc.StreamingInputCallRequest{Payload: &testgrpc.Payload{Body: make([]byte, 10000)}}); err != nil {
			t.Fatal(err)
		}
	}
	if r, err := si.CloseAndRecv(); err != nil || r.GetAggregatedPayloadSize() != 200000 {
		t.Fatalf("client streaming: %v %v", r, err)
	}
	bidiEcho(t, ctx, c, 1<<20, 16<<10)
}

// bidiEcho sends total bytes in chunks on a FullDuplexCall, reading each echo before sending the
// next chunk, and checks what came back.
func bidiEcho(t *testing.T, ctx context.Context, c testgrpc.TestServiceClient, total, chunk int) {
	t.Helper()
	st, err := c.FullDuplexCall(ctx)
	if err != nil {
		t.Fatal(err)
	}
	sent := make([]byte, total)
	for i := range sent {
		sent[i] = byte(i * 7)
	}
	var got []byte
	for off := 0; off < total; off += chunk {
		if err := st.Send(&testgrpc.StreamingOutputCallRequest{Payload: &testgrpc.Payload{Body: sent[off:min(off+chunk, total)]}}); err != nil {
			t.Fatalf("send at %d: %v", off, err)
		}
		m, err := st.Recv() // the echo comes before the next message is sent: no buffering on the way
		if err != nil {
			t.Fatalf("recv at %d: %v", off, err)
		}
		got = append(got, m.GetPayload().GetBody()...)
	}
	if err := st.CloseSend(); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Recv(); !errors.Is(err, io.EOF) {
		t.Fatalf("end of stream: %v", err)
	}
	if !bytes.Equal(got, sent) {
		t.Fatalf("bidi echo: got %d bytes, not the %d sent", len(got), len(sent))
	}
}

// The gateway's own refusals are gRPC statuses: a foreign host PermissionDenied, a gRPC call to an
// HTTP/1.1 port Unimplemented naming the port, a rate limit ResourceExhausted with pushback.
func TestGRPCRefusals(t *testing.T) {
	backend := startBackend(t, &testServer{})
	pt := grpcPort(t, backend)
	pt.RateLimit = &snapshot.RateLimit{Policy: ref("RateLimit", "rl"), IPv6PrefixLength: 64, Limits: []snapshot.Limit{{
		Name: "slow", Requests: 1, Period: snapshot.Duration(10 * time.Second), Burst: 1, Replicas: 1, MaxKeys: 10,
		StateKey: "rl-uid/slow"}}}
	gw := startGateway(t, pt)

	c := testgrpc.NewTestServiceClient(dial(t, gw, "other.shop"))
	st := wantCode(t, ignoreResp(c.UnaryCall(callCtx(t, ""), &testgrpc.SimpleRequest{})), codes.PermissionDenied)
	if !strings.Contains(st.Message(), "other/shop") && !strings.Contains(st.Message(), "not managed") {
		t.Fatalf("foreign host message %q", st.Message())
	}

	c = testgrpc.NewTestServiceClient(dial(t, gw, "api.shop"))
	var hdr metadata.MD
	if _, err := c.UnaryCall(callCtx(t, ""), &testgrpc.SimpleRequest{}, grpc.Header(&hdr)); err != nil {
		t.Fatalf("first call: %v", err)
	}
	if got := hdr.Get("x-ratelimit-limit"); len(got) != 1 || got[0] != "1" {
		t.Fatalf("rate-limit metadata %v", hdr)
	}
	var trl metadata.MD
	start := time.Now()
	st = wantCode(t, ignoreResp(c.UnaryCall(callCtx(t, ""), &testgrpc.SimpleRequest{}, grpc.Trailer(&trl))), codes.ResourceExhausted)
	push := trl.Get("grpc-retry-pushback-ms")
	if len(push) != 1 || atoi(push[0]) < 9000 || atoi(push[0]) > 10000 || !strings.Contains(st.Message(), "Service shop/api") {
		t.Fatalf("rate limited: %q pushback %v (%v)", st.Message(), push, trl)
	}
	t.Logf("rate limited in %v: %q, grpc-retry-pushback-ms %s", time.Since(start), st.Message(), push[0])

	h1 := pt
	h1.AppProtocol, h1.RateLimit = "", nil
	c = testgrpc.NewTestServiceClient(dial(t, startGateway(t, h1), "api.shop"))
	st = wantCode(t, ignoreResp(c.UnaryCall(callCtx(t, ""), &testgrpc.SimpleRequest{})), codes.Unimplemented)
	if !strings.Contains(st.Message(), "port grpc") {
		t.Fatalf("Unimplemented message %q", st.Message())
	}
}

// A client deadline of 200 ms ends the call in about 200 ms through the gateway (its grpc-timeout
// shortens the policy's 10 s timeout), whatever the gateway or the client notices first.
func TestGRPCDeadline(t *testing.T) {
	pt := grpcPort(t, startBackend(t, &testServer{}))
	r := retryPolicy(3)
	r.Timeout = snapshot.Duration(10 * time.Second)
	pt.Retry = r
	c := testgrpc.NewTestServiceClient(dial(t, startGateway(t, pt), "api.shop"))
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := c.UnaryCall(ctx, &testgrpc.SimpleRequest{ResponseSize: -5000})
	took := time.Since(start)
	wantCode(t, err, codes.DeadlineExceeded)
	if took < 150*time.Millisecond || took > 600*time.Millisecond {
		t.Fatalf("a 200ms deadline took %v", took)
	}
	t.Logf("200ms deadline: DeadlineExceeded after %v", took)
}

// The policy's timeout ends at the response headers, and a gRPC stream that pauses longer between
// messages is not cut (for HTTP a stalled body is; a gRPC call has its own deadline).
func TestGRPCStreamPausesPastTheTimeout(t *testing.T) {
	pt := grpcPort(t, startBackend(t, &testServer{}))
	r := retryPolicy(1)
	r.Timeout = snapshot.Duration(200 * time.Millisecond)
	pt.Retry = r
	c := testgrpc.NewTestServiceClient(dial(t, startGateway(t, pt), "api.shop"))
	so, err := c.StreamingOutputCall(callCtx(t, ""), &testgrpc.StreamingOutputCallRequest{
		ResponseParameters: []*testgrpc.ResponseParameters{{Size: 1}, {Size: 2, IntervalUs: 500_000}}})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		if _, err := so.Recv(); err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
	}
	if _, err := so.Recv(); !errors.Is(err, io.EOF) {
		t.Fatalf("end: %v", err)
	}
}

func ignoreResp[T any](_ T, err error) error { return err }

// An upstream that cannot be reached is Unavailable; so is the breaker it opens, with the gateway's
// message naming the Service and the breaker.
func TestGRPCUnreachableAndOpenBreaker(t *testing.T) {
	l := startBackend(t, &testServer{})
	pt := grpcPort(t, l)
	pt.Endpoints[0].Port = 1 // nothing listens there
	pt.CircuitBreaker = breakerPolicy(1)
	c := testgrpc.NewTestServiceClient(dial(t, startGateway(t, pt), "api.shop"))
	st := wantCode(t, ignoreResp(c.UnaryCall(callCtx(t, ""), &testgrpc.SimpleRequest{})), codes.Unavailable)
	if !strings.Contains(st.Message(), "Service shop/api: could not connect") {
		t.Fatalf("unreachable: %q", st.Message())
	}
	st = wantCode(t, ignoreResp(c.UnaryCall(callCtx(t, ""), &testgrpc.SimpleRequest{})), codes.Unavailable)
	if st.Message() != "Service shop/api: circuit breaker cb is open" {
		t.Fatalf("open breaker: %q", st.Message())
	}
}
