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
	"net"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// backend is one demo-backend process.
type backend struct {
	name, addr string
	cmd        *exec.Cmd
	done       chan struct{}
}

func (b *backend) port() int {
	_, p, _ := net.SplitHostPort(b.addr)
	var n int
	fmt.Sscan(p, &n)
	return n
}

// startBackend starts a demo-backend named after its Service and waits until it listens. A backend
// of that name already running is stopped first (a "rollout").
func (d *demo) startBackend(ctx context.Context, name, addr string, args ...string) (*backend, error) {
	if old := d.backends[name]; old != nil {
		old.stop()
	}
	cmd := exec.Command(filepath.Join(d.bin, "demo-backend"), append([]string{"-listen=" + addr, "-name=" + name}, args...)...)
	cmd.Stderr = d.syncLog()
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start demo-backend %s: %w", name, err)
	}
	b := &backend{name: name, cmd: cmd, done: make(chan struct{})}
	d.backends[name] = b
	go func() { _ = cmd.Wait(); close(b.done) }()
	lines := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		if sc.Scan() {
			lines <- sc.Text()
		}
		_, _ = io.Copy(d.syncLog(), stdout)
	}()
	select {
	case l := <-lines:
		b.addr = strings.TrimPrefix(l, "listening on ")
		return b, nil
	case <-b.done:
		return nil, fmt.Errorf("demo-backend %s exited at start (see %s)", name, d.log.Name())
	case <-time.After(10 * time.Second):
		return nil, fmt.Errorf("demo-backend %s did not start listening within 10s", name)
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// stop ends the backend: SIGTERM, then SIGKILL after 3 s.
func (b *backend) stop() {
	select {
	case <-b.done:
		return
	default:
	}
	_ = b.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-b.done:
	case <-time.After(3 * time.Second):
		_ = b.cmd.Process.Kill()
		<-b.done
	}
}
