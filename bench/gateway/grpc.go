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

package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"

	testgrpc "google.golang.org/grpc/interop/grpc_testing"
)

// The gRPC row: unary calls of grpc_testing's TestService (a 64-byte payload echoed), made by grpc-go
// clients in this process, to a grpc-go server in a process of its own, directly, through the
// gateway (a Service with appProtocol grpc and the three policies) and through nginx's grpc_pass.

// grpcPayload is the body of every call, echoed back.
var grpcPayload = []byte(strings.Repeat("resilience", 7)[:64])

// echoServer is the bench's gRPC backend: UnaryCall echoes the payload.
type echoServer struct {
	testgrpc.UnimplementedTestServiceServer
}

func (echoServer) UnaryCall(_ context.Context, in *testgrpc.SimpleRequest) (*testgrpc.SimpleResponse, error) {
	return &testgrpc.SimpleResponse{Payload: in.GetPayload()}, nil
}

// runGRPCBackend is the -serve grpc-backend process.
func runGRPCBackend() error {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	s := grpc.NewServer()
	testgrpc.RegisterTestServiceServer(s, echoServer{})
	fmt.Printf("serving grpc %s\n", l.Addr())
	fmt.Println("serving done")
	return s.Serve(l)
}

// grpcLoad makes the calls of one configuration over a few connections, as a client pool would:
// worker i uses connection i mod len(clients), many calls in flight on each.
type grpcLoad struct {
	conns   []*grpc.ClientConn
	clients []testgrpc.TestServiceClient
	req     *testgrpc.SimpleRequest
}

// dialGRPC opens n connections to addr, naming authority (the Service, through the gateway) when set.
func dialGRPC(addr, authority string, n int) (*grpcLoad, error) {
	opts := []grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())}
	if authority != "" {
		opts = append(opts, grpc.WithAuthority(authority))
	}
	g := &grpcLoad{req: &testgrpc.SimpleRequest{Payload: &testgrpc.Payload{Body: grpcPayload}}}
	for range n {
		cc, err := grpc.NewClient(addr, opts...)
		if err != nil {
			g.close()
			return nil, err
		}
		g.conns = append(g.conns, cc)
		g.clients = append(g.clients, testgrpc.NewTestServiceClient(cc))
	}
	return g, nil
}

func (g *grpcLoad) close() {
	for _, cc := range g.conns {
		_ = cc.Close()
	}
}

// call is a loadgen.Call: an OK call with its payload echoed is a 200, any other status a 502 (the
// calls do not fail on a healthy run, so the report shows any that did).
func (g *grpcLoad) call(worker int) (int, bool) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	resp, err := g.clients[worker%len(g.clients)].UnaryCall(ctx, g.req)
	if err != nil || len(resp.GetPayload().GetBody()) != len(grpcPayload) {
		return http.StatusBadGateway, true
	}
	return http.StatusOK, true
}

// checkGRPC makes one call before anything is measured; through the gateway, the RateLimit must be
// in force (its headers in the response's metadata).
func checkGRPC(c config) error {
	g, err := dialGRPC(c.grpcAddr, c.host, 1)
	if err != nil {
		return fmt.Errorf("%s: %w", c.Name, err)
	}
	defer g.close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var md metadata.MD
	resp, err := g.clients[0].UnaryCall(ctx, g.req, grpc.Header(&md))
	if err != nil {
		return fmt.Errorf("%s: %w", c.Name, err)
	}
	if string(resp.GetPayload().GetBody()) != string(grpcPayload) {
		return fmt.Errorf("%s: the payload did not come back", c.Name)
	}
	if c.proc == "gateway" && len(md.Get("x-ratelimit-limit")) == 0 {
		return errors.New(c.Name + ": no x-ratelimit-limit in the response metadata, the RateLimit is not in force")
	}
	return nil
}
