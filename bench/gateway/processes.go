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
	"bufio"
	"context"
	"fmt"
	"io"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// processes are the backend and the proxy processes of a run, and where they listen.
type processes struct {
	backendAddr string
	// pids by process: direct (the backend), grpc-direct (the gRPC backend), proxy, gateway, nginx,
	// haproxy and, with -compare-bin, compare-gateway.
	pids map[string]int
	// addrs by process and listener, as "gateway-gateway", "proxy-proxy" or "gateway-pprof".
	addrs map[string]string
	cmds  []*exec.Cmd
	// storeURL is the store of the Global configurations, or empty (no redis-server).
	storeURL string
	// anchors are nginx and haproxy, when they run; versions are their own words on their versions.
	anchors  []*anchorProc
	versions []string
}

// wait waits for every process to exit; the caller has cancelled their context.
func (p *processes) wait() {
	for _, c := range p.cmds {
		_ = c.Wait()
	}
	for _, a := range p.anchors {
		<-a.exited
	}
}

// startProcesses starts the backends (HTTP, and gRPC unless -grpc=false), then the gateway and the
// bare proxy, each in a process of its own so that each has the runtime settings it ships with: the
// gateway cmd/gateway's GC defaults (o.gatewayArgs), the bare proxy Go's. With -compare-bin the other
// build's gateway joins them, and the anchors (nginx, haproxy) when installed and -anchors is on.
// The processes stop when ctx is cancelled; the caller then calls wait.
func startProcesses(ctx context.Context, o options) (*processes, error) {
	backend, l, err := startChild(ctx, "listening on ", filepath.Join(o.bin, "demo-backend"), "-listen", "127.0.0.1:0", "-name", "bench")
	if err != nil {
		return nil, fmt.Errorf("start the backend: %w", err)
	}
	p := &processes{backendAddr: l[0], pids: map[string]int{"direct": backend.Process.Pid}, addrs: map[string]string{},
		cmds: []*exec.Cmd{backend}, storeURL: o.storeURL}
	self, err := os.Executable()
	if err != nil {
		return p, err
	}
	if o.grpc {
		if err := p.startProxy(ctx, "grpc-backend", self, []string{"-serve", "grpc-backend"}); err != nil {
			return p, err
		}
		p.pids["grpc-direct"] = p.pids["grpc-backend"]
	}
	// label names the process in pids and addrs; which is its -serve; binary is the build serving it.
	type child struct{ label, which, binary string }
	children := []child{{"gateway", "gateway", self}, {"proxy", "proxy", self}}
	if o.compareBin != "" {
		children = append(children, child{"compare-gateway", "gateway", filepath.Join(o.compareBin, "benchgateway")})
	}
	for _, c := range children {
		args := []string{"-serve", c.which, "-backend", p.backendAddr}
		if o.profileDir != "" {
			args = append(args, "-pprof")
		}
		if c.which == "gateway" {
			args = append(args, o.gatewayArgs...)
		}
		if c.label == "gateway" { // another build may not know these flags
			if o.storeURL != "" {
				args = append(args, "-store-url", o.storeURL)
			}
			if a := p.addrs["grpc-backend-grpc"]; a != "" {
				args = append(args, "-grpc-backend", a)
			}
		}
		if err := p.startProxy(ctx, c.label, c.binary, args); err != nil {
			return p, err
		}
	}
	if o.anchors {
		return p, p.startAnchors(ctx, o.workDir)
	}
	return p, nil
}

// startAnchors starts nginx and haproxy, each if installed (saying so when not).
func (p *processes) startAnchors(ctx context.Context, dir string) error {
	starts := []struct {
		name  string
		start func(bin string) (*anchorProc, map[string]string, error)
	}{
		{"nginx", func(bin string) (*anchorProc, map[string]string, error) {
			return startNginx(ctx, bin, dir, p.backendAddr, p.addrs["grpc-backend-grpc"])
		}},
		{"haproxy", func(bin string) (*anchorProc, map[string]string, error) {
			a, addr, err := startHAProxy(ctx, bin, dir, p.backendAddr)
			return a, map[string]string{"haproxy-http": addr}, err
		}},
	}
	for _, s := range starts {
		bin := anchorBinary(s.name)
		if bin == "" {
			fmt.Printf("bench-gateway: %s is not installed (apt-get install %s); its rows are left out\n", s.name, s.name)
			continue
		}
		a, addrs, err := s.start(bin)
		if a != nil {
			p.anchors = append(p.anchors, a)
		}
		if err != nil {
			return err
		}
		p.pids[s.name] = a.cmd.Process.Pid
		maps.Copy(p.addrs, addrs)
		p.versions = append(p.versions, anchorVersion(bin, "-v"))
	}
	return nil
}

// startProxy starts one proxy process and records its pid and listeners under label.
func (p *processes) startProxy(ctx context.Context, label, binary string, args []string) error {
	child, l, err := startChild(ctx, "serving ", binary, args...)
	if err != nil {
		return fmt.Errorf("start the %s process: %w", label, err)
	}
	p.cmds = append(p.cmds, child)
	p.pids[label] = child.Process.Pid
	for _, s := range l {
		k, v, _ := strings.Cut(s, " ")
		p.addrs[label+"-"+k] = v
	}
	return nil
}

// startChild starts a process and returns the first line of its standard output that starts with
// prefix, after the prefix; for a proxy process (prefix "serving "), every such line up to
// "serving done".
func startChild(ctx context.Context, prefix, name string, args ...string) (*exec.Cmd, []string, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, nil, err
	}
	lines := make(chan []string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		var got []string
		for sc.Scan() {
			if prefix != "listening on " && sc.Text() == "serving done" {
				lines <- got
				break
			}
			if rest, ok := strings.CutPrefix(sc.Text(), prefix); ok {
				got = append(got, rest)
				if prefix != "listening on " {
					continue
				}
				lines <- got
				break
			}
		}
		_, _ = io.Copy(io.Discard, out)
	}()
	select {
	case l := <-lines:
		return cmd, l, nil
	case <-time.After(30 * time.Second):
		_ = cmd.Process.Kill()
		return nil, nil, fmt.Errorf("%s printed no %q line within 30s", name, prefix)
	}
}
