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
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	testgrpc "google.golang.org/grpc/interop/grpc_testing"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"resilience.dev/operator/internal/snapshot"
)

// A server failing the first try of each call with Unavailable: every call is OK after 2 tries
// (retryOn.grpcCodes defaults to Unavailable; gRPC's POST is retried on it), and the response
// metadata says so. A request stream of a client-streaming call is sent again whole.
func TestGRPCRetryOnUnavailable(t *testing.T) {
	ts := &testServer{fail: func(_ string, try int) error {
		if try == 1 {
			return status.Error(codes.Unavailable, "first try fails")
		}
		return nil
	}}
	pt := grpcPort(t, startBackend(t, ts))
	pt.Retry = retryPolicy(3)
	pt.Retry.RetryGRPCCodes = []string{"Unavailable"}
	c := testgrpc.NewTestServiceClient(dial(t, startGateway(t, pt), "api.shop"))
	const calls = 50
	for i := range calls {
		var hdr metadata.MD
		r, err := c.UnaryCall(callCtx(t, fmt.Sprint("u", i)), &testgrpc.SimpleRequest{Payload: &testgrpc.Payload{Body: []byte("x")}}, grpc.Header(&hdr))
		if err != nil || string(r.GetPayload().GetBody()) != "x" {
			t.Fatalf("call %d: %v %v", i, r, err)
		}
		if a := hdr.Get("x-resilience-attempts"); len(a) != 1 || a[0] != "2" {
			t.Fatalf("call %d: attempts %v", i, a)
		}
	}
	if n := ts.totalTries(); n != 2*calls {
		t.Fatalf("%d tries for %d calls", n, calls)
	}
	si, err := c.StreamingInputCall(callCtx(t, "stream"))
	if err != nil {
		t.Fatal(err)
	}
	for range 4 {
		if err := si.Send(&testgrpc.StreamingInputCallRequest{Payload: &testgrpc.Payload{Body: make([]byte, 1000)}}); err != nil {
			t.Fatal(err)
		}
	}
	if r, err := si.CloseAndRecv(); err != nil || r.GetAggregatedPayloadSize() != 4000 {
		t.Fatalf("client streaming after a retry: %v %v", r, err)
	}
	t.Logf("%d unary calls, each OK after 2 tries (%d tries in all)", calls, ts.totalTries())
}

// The first try of a 1 MiB bidirectional stream fails; its retry streams both ways, message by
// message, past the 64 KiB the gateway records; a client stream of 200 KB whose try fails only after
// the whole stream was read is not retried, as the gateway no longer holds its start.
func TestGRPCRetryStreams(t *testing.T) {
	ts := &testServer{fail: func(_ string, try int) error {
		if try == 1 {
			return status.Error(codes.Unavailable, "first try fails")
		}
		return nil
	}}
	pt := grpcPort(t, startBackend(t, ts))
	pt.Retry = retryPolicy(3)
	pt.Retry.RetryGRPCCodes = []string{"Unavailable"}
	c := testgrpc.NewTestServiceClient(dial(t, startGateway(t, pt), "api.shop"))
	bidiEcho(t, callCtx(t, "bidi"), c, 1<<20, 16<<10)
	if n := ts.seenTries("bidi"); n != 2 {
		t.Fatalf("the bidi stream took %d tries, want 2", n)
	}

	si, err := c.StreamingInputCall(callCtx(t, "late"))
	if err != nil {
		t.Fatal(err)
	}
	for range 20 {
		if err := si.Send(&testgrpc.StreamingInputCallRequest{Payload: &testgrpc.Payload{Body: make([]byte, 10000)}}); err != nil {
			t.Fatal(err)
		}
	}
	_, err = si.CloseAndRecv()
	wantCode(t, err, codes.Unavailable)
	if n := ts.seenTries("late"); n != 1 {
		t.Fatalf("a 200 KB stream failed after it was read was tried %d times", n)
	}
}

// PermissionDenied is not in retryOn.grpcCodes: it reaches the client after one try.
func TestGRPCPermissionDeniedNotRetried(t *testing.T) {
	ts := &testServer{fail: func(string, int) error { return status.Error(codes.PermissionDenied, "no") }}
	pt := grpcPort(t, startBackend(t, ts))
	pt.Retry = retryPolicy(3)
	pt.Retry.RetryGRPCCodes = []string{"Unavailable"}
	c := testgrpc.NewTestServiceClient(dial(t, startGateway(t, pt), "api.shop"))
	var hdr metadata.MD
	st := wantCode(t, ignoreResp(c.UnaryCall(callCtx(t, "p"), &testgrpc.SimpleRequest{}, grpc.Header(&hdr))), codes.PermissionDenied)
	if st.Message() != "no" || ts.totalTries() != 1 {
		t.Fatalf("%q after %d tries", st.Message(), ts.totalTries())
	}
}

// A breaker counts the final grpc-status: Unavailable in the trailers after a stream of messages
// (and trailers-only) opens it, and callers then get Unavailable from the gateway with its message,
// without reaching the server.
func TestGRPCBreakerOpensOnUnavailable(t *testing.T) {
	ts := &testServer{fail: func(string, int) error { return status.Error(codes.Unavailable, "down") }}
	pt := grpcPort(t, startBackend(t, ts))
	pt.CircuitBreaker = breakerPolicy(3)
	pt.CircuitBreaker.FailureGRPCCodes = []string{"Unavailable", "Internal", "DeadlineExceeded", "Unknown"}
	c := testgrpc.NewTestServiceClient(dial(t, startGateway(t, pt), "api.shop"))
	for range 2 { // trailers-only: counted at the headers
		wantCode(t, ignoreResp(c.UnaryCall(callCtx(t, ""), &testgrpc.SimpleRequest{})), codes.Unavailable)
	}
	for i := range 1 { // in the trailers after two messages: counted at the end of the stream
		so, err := c.StreamingOutputCall(callCtx(t, ""), &testgrpc.StreamingOutputCallRequest{
			ResponseParameters: []*testgrpc.ResponseParameters{{Size: 10}, {Size: 20}}})
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for {
			_, err = so.Recv()
			if err != nil {
				break
			}
			n++
		}
		if err == io.EOF || n != 2 {
			t.Fatalf("stream %d: %d messages, then %v", i, n, err)
		}
		wantCode(t, err, codes.Unavailable)
	}
	before := ts.totalTries()
	for range 5 {
		st := wantCode(t, ignoreResp(c.UnaryCall(callCtx(t, ""), &testgrpc.SimpleRequest{})), codes.Unavailable)
		if st.Message() != "Service shop/api: circuit breaker cb is open" || !strings.HasPrefix(st.Message(), "Service shop/api") {
			t.Fatalf("open breaker: %q", st.Message())
		}
	}
	if ts.totalTries() != before {
		t.Fatalf("the open breaker let %d calls through", ts.totalTries()-before)
	}
}

// The upstream's grpc-retry-pushback-ms is honoured like Retry-After: the retry waits that long; a
// negative one means the call must not be retried (gRPC's rule).
func TestGRPCPushback(t *testing.T) {
	var mu sync.Mutex // the tries run on the server's goroutines
	var first time.Time
	var gap time.Duration
	ts := &testServer{}
	ts.fail = func(id string, try int) error {
		mu.Lock()
		defer mu.Unlock()
		switch {
		case try == 1:
			first = time.Now()
			return status.Error(codes.Unavailable, "push back")
		case try == 2:
			gap = time.Since(first)
		}
		return nil
	}
	pt := grpcPort(t, startBackend(t, ts))
	pt.Retry = retryPolicy(3)
	pt.Retry.RetryGRPCCodes = []string{"Unavailable"}
	c := testgrpc.NewTestServiceClient(dial(t, startGateway(t, pt), "api.shop"))
	ctx := metadata.AppendToOutgoingContext(callCtx(t, "wait"), "pushback", "150")
	if _, err := c.UnaryCall(ctx, &testgrpc.SimpleRequest{}); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	waited := gap
	mu.Unlock()
	if waited < 150*time.Millisecond || waited > time.Second {
		t.Fatalf("the retry came %v after a pushback of 150 ms", waited)
	}
	ctx = metadata.AppendToOutgoingContext(callCtx(t, "never"), "pushback", "-1")
	wantCode(t, ignoreResp(c.UnaryCall(ctx, &testgrpc.SimpleRequest{})), codes.Unavailable)
	if n := ts.seenTries("never"); n != 1 {
		t.Fatalf("a pushback of -1 was retried: %d tries", n)
	}
	t.Logf("pushback 150 ms: the retry came after %v", waited)
}

// Hedging applies to unary calls only, and a gRPC call's request stream cannot be told unary before
// it ends: a gRPC call slower than the hedge delay is not hedged (gRPC's POST is not a hedged method
// either).
func TestGRPCNotHedged(t *testing.T) {
	ts := &testServer{}
	pt := grpcPort(t, startBackend(t, ts))
	pt.Retry = retryPolicy(3)
	pt.Retry.HedgeDelay = snapshot.Duration(20 * time.Millisecond)
	pt.Retry.MaxHedges = 2
	c := testgrpc.NewTestServiceClient(dial(t, startGateway(t, pt), "api.shop"))
	if _, err := c.UnaryCall(callCtx(t, "slow"), &testgrpc.SimpleRequest{ResponseSize: -150}); err != nil {
		t.Fatal(err)
	}
	if n := ts.seenTries("slow"); n != 1 {
		t.Fatalf("a slow gRPC call was sent %d times", n)
	}
}

// The snapshot's gRPC code names are grpc-go's, by number.
func TestGRPCCodeNamesAreGoNames(t *testing.T) {
	for i, name := range snapshot.GRPCCodeNames {
		if got := codes.Code(i).String(); got != name {
			t.Errorf("code %d: snapshot says %q, grpc-go %q", i, name, got)
		}
	}
	if got := codes.Code(len(snapshot.GRPCCodeNames)).String(); !strings.HasPrefix(got, "Code(") {
		t.Errorf("grpc-go names code %d %q, which the snapshot lacks", len(snapshot.GRPCCodeNames), got)
	}
}
