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

// Package grpc_test runs grpc-go clients and servers, which no one here wrote, through a real
// gateway served in-process on loopback listeners: h2c in, h2c out, the gateway's own gRPC refusals,
// retries and the breaker on grpc-status, streams both ways and deadlines.
package grpc_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	testgrpc "google.golang.org/grpc/interop/grpc_testing"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"resilience.dev/operator/internal/gateway"
	"resilience.dev/operator/internal/snapshot"
)

// testServer is grpc_testing's TestService: it echoes, and fails the tries the test asks it to.
type testServer struct {
	testgrpc.UnimplementedTestServiceServer

	mu    sync.Mutex
	seen  map[string]int // tries by call id (metadata "call-id")
	fail  func(call string, try int) error
	tries int
}

// try counts a try of the call in ctx and returns the error the test wants it to fail with.
func (s *testServer) try(ctx context.Context) error {
	md, _ := metadata.FromIncomingContext(ctx)
	id := ""
	if v := md.Get("call-id"); len(v) > 0 {
		id = v[0]
	}
	s.mu.Lock()
	if s.seen == nil {
		s.seen = map[string]int{}
	}
	s.seen[id]++
	s.tries++
	n := s.seen[id]
	fail := s.fail
	s.mu.Unlock()
	if fail == nil {
		return nil
	}
	err := fail(id, n)
	if v := md.Get("pushback"); err != nil && len(v) > 0 { // trailers-only: the header block carries it
		_ = grpc.SetTrailer(ctx, metadata.Pairs("grpc-retry-pushback-ms", v[0]))
	}
	return err
}

func (s *testServer) seenTries(id string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.seen[id]
}

func (s *testServer) totalTries() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.tries
}

func (s *testServer) UnaryCall(ctx context.Context, in *testgrpc.SimpleRequest) (*testgrpc.SimpleResponse, error) {
	if err := s.try(ctx); err != nil {
		return nil, err
	}
	if d := in.GetResponseSize(); d < 0 { // a negative size asks the server to stall for -size ms
		select {
		case <-time.After(time.Duration(-d) * time.Millisecond):
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	return &testgrpc.SimpleResponse{Payload: in.GetPayload()}, nil
}

// StreamingOutputCall sends its messages first, then fails if the test says so: the status comes
// in the trailers, after the stream.
func (s *testServer) StreamingOutputCall(in *testgrpc.StreamingOutputCallRequest, st testgrpc.TestService_StreamingOutputCallServer) error {
	for _, p := range in.GetResponseParameters() {
		time.Sleep(time.Duration(p.GetIntervalUs()) * time.Microsecond)
		if err := st.Send(&testgrpc.StreamingOutputCallResponse{Payload: &testgrpc.Payload{Body: make([]byte, p.GetSize())}}); err != nil {
			return err
		}
	}
	return s.try(st.Context())
}

// StreamingInputCall fails at once if the test says so, or, for a call id starting with "late",
// after reading the whole request stream.
func (s *testServer) StreamingInputCall(st testgrpc.TestService_StreamingInputCallServer) error {
	md, _ := metadata.FromIncomingContext(st.Context())
	late := len(md.Get("call-id")) > 0 && strings.HasPrefix(md.Get("call-id")[0], "late")
	if !late {
		if err := s.try(st.Context()); err != nil {
			return err
		}
	}
	n := 0
	for {
		m, err := st.Recv()
		if errors.Is(err, io.EOF) {
			if late {
				if err := s.try(st.Context()); err != nil {
					return err
				}
			}
			return st.SendAndClose(&testgrpc.StreamingInputCallResponse{AggregatedPayloadSize: int32(n)})
		}
		if err != nil {
			return err
		}
		n += len(m.GetPayload().GetBody())
	}
}

func (s *testServer) FullDuplexCall(st testgrpc.TestService_FullDuplexCallServer) error {
	if err := s.try(st.Context()); err != nil {
		return err
	}
	for {
		m, err := st.Recv()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		if err := st.Send(&testgrpc.StreamingOutputCallResponse{Payload: m.GetPayload()}); err != nil {
			return err
		}
	}
}

// startBackend serves ts and the health service with grpc-go on a loopback listener.
func startBackend(t *testing.T, ts *testServer) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := grpc.NewServer()
	testgrpc.RegisterTestServiceServer(s, ts)
	healthpb.RegisterHealthServer(s, health.NewServer())
	go func() { _ = s.Serve(l) }()
	t.Cleanup(s.Stop)
	return l.Addr().String()
}

// grpcPort is port 80 of Service shop/api, appProtocol grpc, whose one endpoint is the server at
// addr (by a .localhost name, which the gateway dials on loopback in LocalDev mode).
func grpcPort(t *testing.T, addr string) snapshot.Port {
	t.Helper()
	_, p, _ := net.SplitHostPort(addr)
	n, err := strconv.Atoi(p)
	if err != nil {
		t.Fatal(err)
	}
	return snapshot.Port{Name: "grpc", Port: 80, AppProtocol: snapshot.AppProtocolGRPC, Endpoints: []snapshot.Endpoint{
		{Address: "backend.localhost", Port: int32(n), Type: snapshot.AddressFQDN, HandMade: true}}}
}

// startGateway serves a gateway (LocalDev) with shop/api on pt, on a loopback listener, and returns
// its address.
func startGateway(t *testing.T, pt snapshot.Port) string {
	t.Helper()
	g, err := gateway.New(gateway.Options{LocalDev: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(g.Close)
	e, err := snapshot.Encode(&snapshot.Snapshot{Version: 1, Services: []snapshot.Service{
		{Namespace: "shop", Name: "api", Ports: []snapshot.Port{pt}}}})
	if err != nil {
		t.Fatal(err)
	}
	if err := g.Apply(e); err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := g.HTTPServer("")
	go func() { _ = srv.Serve(gateway.WatchFraming(l)) }()
	t.Cleanup(func() { _ = srv.Close() })
	return l.Addr().String()
}

// dial connects a grpc-go client to the gateway at addr, for the Service named by authority.
func dial(t *testing.T, addr, authority string) *grpc.ClientConn {
	t.Helper()
	cc, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()), grpc.WithAuthority(authority))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cc.Close() })
	return cc
}

func ref(kind, name string) snapshot.PolicyRef {
	return snapshot.PolicyRef{Kind: kind, Namespace: "shop", Name: name, UID: name + "-uid", Generation: 1}
}

// callCtx is a context with a call id for the test server and a timeout.
func callCtx(t *testing.T, id string) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return metadata.AppendToOutgoingContext(ctx, "call-id", id)
}

// wantCode fails unless err carries code.
func wantCode(t *testing.T, err error, code codes.Code) *status.Status {
	t.Helper()
	st, _ := status.FromError(err)
	if st.Code() != code {
		t.Fatalf("got %v, want code %v", err, code)
	}
	return st
}

// retryPolicy retries at once (no backoff), with a budget that never binds.
func retryPolicy(maxAttempts int) *snapshot.Retry {
	return &snapshot.Retry{
		Policy: ref("RetryPolicy", "rp"), MaxAttempts: maxAttempts,
		RetryStatusCodes: []string{"502", "503", "504"}, RetryConnect: true, RetryResets: true, RetryTimeouts: true,
		Methods:         []string{"GET", "HEAD", "OPTIONS", "PUT", "DELETE"},
		BackoffStrategy: "Exponential", Jitter: "None",
		BudgetPercent: 100, BudgetMinPerSecond: 100000, BudgetWindow: snapshot.Duration(10 * time.Second),
		RespectRetryAfter: true, StateKey: fmt.Sprintf("rp-uid/%d", maxAttempts),
	}
}

func atoi(s string) int { n, _ := strconv.Atoi(s); return n }

// breakerPolicy opens after consecutive failures, for 30 s.
func breakerPolicy(consecutive int) *snapshot.CircuitBreaker {
	return &snapshot.CircuitBreaker{
		Policy:             ref("CircuitBreaker", "cb"),
		FailureStatusCodes: []string{"500-599"}, FailOnConnectError: true, FailOnTimeout: true,
		ConsecutiveFailures: consecutive, OpenDuration: snapshot.Duration(30 * time.Second),
		HalfOpenRequests: 1, SuccessThreshold: 1, MaxOpenPercent: 50, FallbackStatus: 503,
		StateKey: fmt.Sprintf("cb-uid/%d", consecutive),
	}
}
