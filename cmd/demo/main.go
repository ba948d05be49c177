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

// Command demo is `make demo`: what `make run-local` starts (a local control plane, the manager and
// one gateway in local-development mode), plus one demo-backend process per Service of the shop
// samples, registered through FQDN EndpointSlices under .localhost. It applies config/samples/, then
// drives traffic pattern by pattern and prints what the gateway did, checking the numbers against
// what the contract implies. It exits 0 when every step behaved, 1 naming the steps that did not,
// and stops every process it started on the way out, Ctrl-C included.
//
// It builds nothing: the Makefile target builds bin/manager, bin/gateway, bin/demo-backend and this
// driver first. The processes' logs go to bin/local-demo/processes.log.
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"time"

	"resilience.dev/operator/internal/controlplane"
	"resilience.dev/operator/internal/localstack"
)

func main() {
	binDir := flag.String("bin", "bin", "directory holding the built manager, gateway and demo-backend binaries")
	flag.Parse()
	os.Exit(run(*binDir))
}

// demo is one run: the processes it started and what the steps need.
type demo struct {
	bin, root, dir string
	log            *os.File
	logMu          sync.Mutex
	stack          *localstack.Stack
	gateway        string // traffic address of the gateway
	backends       map[string]*backend
	client         *http.Client
	failed         []string // steps that misbehaved
	cpStop         func()
}

func run(binDir string) int {
	began := time.Now()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	d := &demo{bin: binDir, backends: map[string]*backend{}}
	err := d.main(ctx)
	d.close()
	took := time.Since(began).Round(100 * time.Millisecond)
	switch {
	case ctx.Err() != nil:
		fmt.Printf("\ndemo: interrupted after %s; everything it started is stopped\n", took)
		return 130
	case err != nil:
		fmt.Printf("\ndemo: FAILED after %s: %v\n", took, err)
		d.tailLog(40)
		return 1
	case len(d.failed) > 0:
		fmt.Printf("\ndemo: FAILED after %s: these steps misbehaved: %s\n", took, strings.Join(d.failed, "; "))
		d.tailLog(40)
		return 1
	}
	fmt.Printf("\ndemo: every step behaved (%s in all); everything it started is stopped\n", took)
	return 0
}

// main starts everything, then runs the steps. The processes it starts are recorded in d, so close
// stops them whatever happens.
func (d *demo) main(parent context.Context) error {
	var err error
	if d.root, err = controlplane.RepoRoot(); err != nil {
		return err
	}
	if d.bin, err = filepath.Abs(d.bin); err != nil {
		return err
	}
	for _, name := range []string{"manager", "gateway", "demo-backend"} {
		if _, err := os.Stat(filepath.Join(d.bin, name)); err != nil {
			return fmt.Errorf("no %s binary in %s: run `make demo`, which builds it", name, d.bin)
		}
	}
	if _, err := exec.LookPath("kubectl"); err != nil {
		return errors.New("kubectl is not on PATH; the demo applies the samples with it")
	}
	d.dir = filepath.Join(d.root, "bin", "local-demo")
	if err := os.MkdirAll(d.dir, 0o755); err != nil {
		return err
	}
	if d.log, err = os.Create(filepath.Join(d.dir, "processes.log")); err != nil {
		return err
	}
	d.client = &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		MaxIdleConns: 512, MaxIdleConnsPerHost: 512, IdleConnTimeout: 30 * time.Second}}

	fmt.Println("Resilience operator demo: the real manager and gateway against a local control plane.")
	fmt.Printf("Process logs: %s\n\n", d.log.Name())

	t := time.Now()
	fmt.Print("Starting a local control plane (etcd, kube-apiserver) with the CRDs ... ")
	cp, err := controlplane.Start()
	if err != nil {
		fmt.Println()
		return err
	}
	d.cpStop = func() {
		if err := cp.Stop(); err != nil {
			fmt.Println("demo: stop the control plane:", err)
		}
	}
	fmt.Printf("%s\n", since(t))

	// Free ports, so the demo runs beside a `make run-local` or a test run.
	opts := localstack.FreeOptions(d.dir, d.syncLog())
	opts.BinDir = d.bin
	d.gateway = opts.GatewayListen
	if d.stack, err = localstack.Start(opts, cp); err != nil {
		return err
	}
	// A manager or gateway that exits on its own ends the demo.
	ctx, cancel := context.WithCancelCause(parent)
	defer cancel(nil)
	go func() {
		select {
		case err := <-d.stack.Exited:
			cancel(fmt.Errorf("%v (see %s)", err, d.log.Name()))
		case <-ctx.Done():
		}
	}()
	t = time.Now()
	fmt.Print("Starting the manager and one gateway (local-development mode) ... ")
	if err := d.stack.StartManager(ctx); err != nil {
		fmt.Println()
		return cause(ctx, err)
	}
	if err := d.stack.StartGateway(); err != nil {
		fmt.Println()
		return err
	}
	if err := waitFor(ctx, 30*time.Second, func() bool { return httpOK("http://" + opts.GatewayHealth + "/readyz") }); err != nil {
		fmt.Println()
		return fmt.Errorf("the gateway did not become ready: %w", cause(ctx, err))
	}
	fmt.Printf("ready in %s\n", since(t))
	fmt.Printf("  gateway traffic on %s, KUBECONFIG=%s\n", d.gateway, d.stack.KubeconfigPath)

	// One demo-backend per Service of the samples. catalog is flaky: half its answers are 503.
	for _, b := range []struct {
		svc  string
		args []string
		what string
	}{
		{"checkout", nil, "healthy"},
		{"payments", nil, "healthy, for now"},
		{"catalog", []string{"-fail-rate=0.5", "-fail-code=503"}, "flaky: answers 503 to half the requests"},
	} {
		be, err := d.startBackend(ctx, b.svc, "127.0.0.1:0", b.args...)
		if err != nil {
			return cause(ctx, err)
		}
		fmt.Printf("Started demo-backend %-8s on %s (%s)\n", b.svc, be.addr, b.what)
	}

	t = time.Now()
	fmt.Println("\n$ kubectl apply --server-side -f config/samples/")
	out, err := d.kubectl(ctx, "", "apply", "--server-side", "-f", filepath.Join(d.root, "config", "samples"))
	if err != nil {
		return cause(ctx, err)
	}
	fmt.Print(indent(out))
	var slices strings.Builder
	for _, svc := range []string{"checkout", "payments", "catalog"} {
		slices.WriteString(localstack.LocalEndpointSlice("shop", svc, d.backends[svc].port()) + "---\n")
	}
	if _, err := d.kubectl(ctx, slices.String(), "apply", "--server-side", "-f", "-"); err != nil {
		return cause(ctx, err)
	}
	fmt.Println("  (and an FQDN EndpointSlice per Service: <service>.localhost at its demo-backend's port)")
	if err := waitFor(ctx, 30*time.Second, func() bool { return d.programmed(ctx, 3) }); err != nil {
		return fmt.Errorf("the samples did not become Accepted and Programmed: %w", cause(ctx, err))
	}
	// Programmed says the policies are in force; the endpoints follow in the same or the next snapshot.
	for _, svc := range []string{"checkout", "payments", "catalog"} {
		if err := waitFor(ctx, 10*time.Second, func() bool {
			r, err := d.send(ctx, http.MethodGet, svc+".shop", "/", nil)
			return err == nil && r.header.Get("X-Backend") == svc
		}); err != nil {
			return fmt.Errorf("the gateway does not reach the %s backend: %w", svc, cause(ctx, err))
		}
	}
	fmt.Printf("Accepted and Programmed, traffic reaches every backend, %s after the apply:\n", since(t))
	fmt.Println("$ kubectl get resilience -n shop")
	if out, err = d.kubectl(ctx, "", "get", "resilience", "-n", "shop"); err != nil {
		return cause(ctx, err)
	}
	fmt.Print(indent(out))

	for _, s := range []struct {
		name string
		run  func(context.Context, *step) error
	}{
		{"1. Rate limit (checkout)", d.rateLimit},
		{"2. Circuit breaker (payments)", d.circuitBreaker},
		{"3. Retries (catalog)", d.retries},
		{"4. Timeouts (catalog)", d.timeouts},
	} {
		fmt.Printf("\n%s\n%s\n", s.name, strings.Repeat("-", len(s.name)))
		st := &step{}
		t := time.Now()
		if err := s.run(ctx, st); err != nil {
			return fmt.Errorf("%s: %w", s.name, cause(ctx, err))
		}
		if len(st.bad) > 0 {
			d.failed = append(d.failed, s.name+" ("+strings.Join(st.bad, ", ")+")")
			fmt.Printf("   => MISBEHAVED (%s)\n", since(t))
		} else {
			fmt.Printf("   => behaved (%s)\n", since(t))
		}
	}
	return nil
}

// programmed reports whether n policies in shop are Accepted and Programmed at their generation.
func (d *demo) programmed(ctx context.Context, n int) bool {
	out, err := d.kubectl(ctx, "", "get", "resilience", "-n", "shop", "-o", "jsonpath="+
		`{range .items[*]}{.metadata.generation} {.status.conditions[?(@.type=="Accepted")].status} `+
		`{.status.conditions[?(@.type=="Programmed")].status} {.status.conditions[?(@.type=="Programmed")].observedGeneration}{"\n"}{end}`)
	if err != nil {
		return false
	}
	lines := strings.Fields(strings.ReplaceAll(out, " ", "/"))
	if len(lines) != n {
		return false
	}
	for _, l := range lines {
		f := strings.Split(l, "/")
		if len(f) != 4 || f[1] != "True" || f[2] != "True" || f[3] != f[0] {
			return false
		}
	}
	return true
}

// close stops every process the demo started: the backends, the gateway and the manager, the
// control plane.
func (d *demo) close() {
	for _, b := range d.backends {
		b.stop()
	}
	if d.stack != nil {
		d.stack.Close()
	}
	if d.cpStop != nil {
		d.cpStop()
	}
	if d.log != nil {
		_ = d.log.Close()
	}
}

// step collects what a step found wrong.
type step struct{ bad []string }

// check prints one expectation and whether it held.
func (s *step) check(ok bool, short, format string, args ...any) {
	mark := "ok  "
	if !ok {
		mark = "FAIL"
		s.bad = append(s.bad, short)
	}
	fmt.Printf("   [%s] %s\n", mark, fmt.Sprintf(format, args...))
}

// response is what the steps need of one answer.
type response struct {
	code   int
	header http.Header
	body   string
	took   time.Duration
}

// send makes one request through the gateway, naming the Service by Host.
func (d *demo) send(ctx context.Context, method, host, path string, header http.Header) (response, error) {
	return d.do(ctx, method, "http://"+d.gateway+path, host, header)
}

func (d *demo) do(ctx context.Context, method, url, host string, header http.Header) (response, error) {
	req, err := http.NewRequestWithContext(ctx, method, url, nil)
	if err != nil {
		return response{}, err
	}
	if host != "" {
		req.Host = host
	}
	for k, v := range header {
		req.Header[k] = v
	}
	start := time.Now()
	resp, err := d.client.Do(req)
	if err != nil {
		return response{}, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return response{}, err
	}
	return response{code: resp.StatusCode, header: resp.Header, body: strings.TrimSpace(string(body)), took: time.Since(start)}, nil
}

// kubectl runs the real kubectl against the local control plane.
func (d *demo) kubectl(ctx context.Context, stdin string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, "kubectl", append([]string{"--kubeconfig", d.stack.KubeconfigPath}, args...)...)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("kubectl %s: %v\n%s%s", strings.Join(args, " "), err, out.String(), errOut.String())
	}
	return out.String(), nil
}

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

// stats reads a backend's counters directly (not through the gateway).
func (d *demo) stats(ctx context.Context, name string) (requests, failures int64, err error) {
	r, err := d.do(ctx, http.MethodGet, "http://"+d.backends[name].addr+"/stats", "", nil)
	if err != nil {
		return 0, 0, err
	}
	var s struct{ Requests, Failures int64 }
	if err := json.Unmarshal([]byte(r.body), &s); err != nil {
		return 0, 0, fmt.Errorf("stats of %s: %w", name, err)
	}
	return s.Requests, s.Failures, nil
}

// syncLog is the processes' log, safe to share between their output copiers.
func (d *demo) syncLog() io.Writer { return lockedWriter{&d.logMu, d.log} }

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func (d *demo) tailLog(n int) {
	if d.log == nil {
		return
	}
	if tail := localstack.Tail(d.log.Name(), n); tail != "" {
		fmt.Printf("--- last %d lines of %s ---\n%s\n", n, d.log.Name(), tail)
	}
}

// waitFor polls cond every 100 ms until it holds, timeout passes or ctx ends.
func waitFor(ctx context.Context, timeout time.Duration, cond func() bool) error {
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			return fmt.Errorf("not within %s", timeout)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	return nil
}

// progress prints a line each second while a long wait runs, until the returned stop is called.
func progress(line func(elapsed time.Duration) string) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	start := time.Now()
	go func() {
		defer wg.Done()
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		for {
			select {
			case <-done:
				return
			case <-tick.C:
				fmt.Println("     ... " + line(time.Since(start)))
			}
		}
	}()
	return func() { close(done); wg.Wait() }
}

// cause prefers the reason the context ended (a process that exited, say) to the error it caused.
func cause(ctx context.Context, err error) error {
	if c := context.Cause(ctx); c != nil && !errors.Is(c, context.Canceled) {
		return c
	}
	return err
}

func httpOK(url string) bool {
	resp, err := http.Get(url)
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

func since(t time.Time) string { return time.Since(t).Round(10 * time.Millisecond).String() }

func ms(d time.Duration) string {
	if d < 10*time.Millisecond {
		return d.Round(100 * time.Microsecond).String()
	}
	return d.Round(time.Millisecond).String()
}

var lineStart = regexp.MustCompile(`(?m)^(.)`)

// indent shifts every non-empty line of s by two spaces.
func indent(s string) string {
	return lineStart.ReplaceAllString(strings.TrimRight(s, "\n"), "  $1") + "\n"
}
