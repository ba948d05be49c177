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
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"text/template"
	"time"
)

// The anchors are proxies no one here wrote, from their Debian packages, run beside the gateway in the
// same rounds so that every goal is a ratio measured in one run: nginx (proxy_pass for HTTP/1.1,
// grpc_pass for gRPC) and haproxy (HTTP/1.1). Each is configured as a user tuning it for this job
// would: as many workers or threads as CPUs, keep-alive connections to the backend, no access log.

// nginxConf is nginx's configuration: the HTTP/1.1 proxy and, when a gRPC backend runs, grpc_pass.
var nginxConf = template.Must(template.New("nginx").Parse(`daemon off;
master_process on;
worker_processes {{.Workers}};
{{if .Root}}user root root;
{{end}}pid {{.Dir}}/nginx.pid;
error_log {{.Dir}}/error.log warn;
events { worker_connections 8192; }
http {
  access_log off;
  client_body_temp_path {{.Dir}}/body;
  proxy_temp_path {{.Dir}}/proxy;
  fastcgi_temp_path {{.Dir}}/fastcgi;
  uwsgi_temp_path {{.Dir}}/uwsgi;
  scgi_temp_path {{.Dir}}/scgi;
  keepalive_requests 1000000;
  http2_max_requests 1000000;
  upstream backend { server {{.Backend}}; keepalive 128; keepalive_requests 1000000; }
  server {
    listen {{.HTTP}};
    location / {
      proxy_pass http://backend;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host $host;
    }
  }
{{- if .GRPCBackend}}
  upstream grpcbackend { server {{.GRPCBackend}}; keepalive 128; keepalive_requests 1000000; }
  server {
    listen {{.GRPC}} http2;
    location / { grpc_pass grpc://grpcbackend; }
  }
{{- end}}
}
`))

// haproxyConf is haproxy's configuration: HTTP/1.1, keep-alive on both sides, connections to the
// backend reused across clients.
var haproxyConf = template.Must(template.New("haproxy").Parse(`global
  nbthread {{.Workers}}
  maxconn 4096
defaults
  mode http
  timeout connect 5s
  timeout client 60s
  timeout server 60s
  option http-keep-alive
  http-reuse always
frontend bench
  bind {{.HTTP}}
  default_backend backend
backend backend
  server backend {{.Backend}}
`))

// anchorConf fills the templates.
type anchorConf struct {
	Dir, Backend, GRPCBackend, HTTP, GRPC string
	Workers                               int
	Root                                  bool
}

// anchorBinary is the path of an installed anchor, or "" (it is looked for on PATH and in /usr/sbin,
// where Debian puts both).
func anchorBinary(name string) string {
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	if p := filepath.Join("/usr/sbin", name); isExecutable(p) {
		return p
	}
	return ""
}

func isExecutable(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.Mode().IsRegular() && st.Mode()&0o111 != 0
}

// startNginx starts nginx in the foreground with its configuration in a new directory under dir, and
// returns it with its listeners ("nginx-http", and "nginx-grpc" when grpcBackend is set).
func startNginx(ctx context.Context, binary, dir, backend, grpcBackend string) (*anchorProc, map[string]string, error) {
	c := anchorConf{Backend: backend, GRPCBackend: grpcBackend, Workers: runtime.NumCPU(), Root: os.Geteuid() == 0}
	addrs := map[string]string{}
	var err error
	if c.HTTP, err = freeAddr(); err != nil {
		return nil, nil, err
	}
	addrs["nginx-http"] = c.HTTP
	if grpcBackend != "" {
		if c.GRPC, err = freeAddr(); err != nil {
			return nil, nil, err
		}
		addrs["nginx-grpc"] = c.GRPC
	}
	if c.Dir, err = os.MkdirTemp(dir, "nginx-"); err != nil {
		return nil, nil, err
	}
	conf := filepath.Join(c.Dir, "nginx.conf")
	if err := writeTemplate(conf, nginxConf, c); err != nil {
		return nil, nil, err
	}
	proc, err := startAnchor(ctx, binary, filepath.Join(c.Dir, "error.log"), "-p", c.Dir, "-e", filepath.Join(c.Dir, "error.log"), "-c", conf)
	if err != nil {
		return nil, nil, err
	}
	for _, a := range addrs {
		if err := waitListening(a, proc); err != nil {
			return proc, nil, fmt.Errorf("nginx: %w (its log: %s)", err, tail(filepath.Join(c.Dir, "error.log")))
		}
	}
	return proc, addrs, nil
}

// startHAProxy starts haproxy in the foreground and returns it with its listener.
func startHAProxy(ctx context.Context, binary, dir, backend string) (*anchorProc, string, error) {
	c := anchorConf{Backend: backend, Workers: runtime.NumCPU()}
	var err error
	if c.HTTP, err = freeAddr(); err != nil {
		return nil, "", err
	}
	if c.Dir, err = os.MkdirTemp(dir, "haproxy-"); err != nil {
		return nil, "", err
	}
	conf := filepath.Join(c.Dir, "haproxy.cfg")
	if err := writeTemplate(conf, haproxyConf, c); err != nil {
		return nil, "", err
	}
	logPath := filepath.Join(c.Dir, "haproxy.log")
	proc, err := startAnchor(ctx, binary, logPath, "-db", "-f", conf)
	if err != nil {
		return nil, "", err
	}
	if err := waitListening(c.HTTP, proc); err != nil {
		return proc, "", fmt.Errorf("haproxy: %w (its output: %s)", err, tail(logPath))
	}
	return proc, c.HTTP, nil
}

// anchorProc is a running anchor; exited is closed once it has exited (and been waited for).
type anchorProc struct {
	cmd    *exec.Cmd
	exited chan struct{}
}

// startAnchor starts an anchor in a process group of its own, so that cancelling ctx kills its
// workers with it, with its output in logPath.
func startAnchor(ctx context.Context, binary, logPath string, args ...string) (*anchorProc, error) {
	logFile, err := os.Create(logPath + ".out")
	if err != nil {
		return nil, err
	}
	cmd := exec.CommandContext(ctx, binary, args...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	if err := cmd.Start(); err != nil {
		_ = logFile.Close()
		return nil, err
	}
	a := &anchorProc{cmd: cmd, exited: make(chan struct{})}
	go func() { _ = cmd.Wait(); _ = logFile.Close(); close(a.exited) }()
	return a, nil
}

// waitListening waits up to 10 s for a listener at addr, failing early if the anchor exits.
func waitListening(addr string, a *anchorProc) error {
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if c, err := net.DialTimeout("tcp", addr, 100*time.Millisecond); err == nil {
			_ = c.Close()
			return nil
		}
		select {
		case <-a.exited:
			return errors.New("exited at start")
		case <-time.After(20 * time.Millisecond):
		}
	}
	return fmt.Errorf("not listening on %s within 10s", addr)
}

// freeAddr is a loopback address with a port free a moment ago (the anchors take their port from
// their configuration, so it is chosen here).
func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

func writeTemplate(path string, t *template.Template, data any) error {
	var b strings.Builder
	if err := t.Execute(&b, data); err != nil {
		return err
	}
	return os.WriteFile(path, []byte(b.String()), 0o644)
}

// tail is the end of a log file, for an error message.
func tail(path string) string {
	log, _ := os.ReadFile(path)
	out, _ := os.ReadFile(path + ".out")
	s := strings.TrimSpace(string(log) + string(out))
	if len(s) > 600 {
		s = "..." + s[len(s)-600:]
	}
	return s
}

// anchorVersion is the first line an anchor prints about its version, for the report.
func anchorVersion(binary string, arg string) string {
	out, _ := exec.Command(binary, arg).CombinedOutput()
	line, _, _ := strings.Cut(strings.TrimSpace(string(out)), "\n")
	return line
}
