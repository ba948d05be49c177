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
	"context"
	"flag"
	"fmt"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	"resilience.dev/operator/internal/localstack"
	"resilience.dev/operator/internal/redisserver"
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
	store          *redisserver.Server // of the Global step; nil without redis-server
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
	if err := d.prepare(); err != nil {
		return err
	}
	fmt.Println("Resilience operator demo: the real manager and gateway against a local control plane.")
	fmt.Printf("Process logs: %s\n\n", d.log.Name())
	opts, err := d.startControlPlane()
	if err != nil {
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
	if err := d.startManagerAndGateway(ctx, opts); err != nil {
		return err
	}
	if err := d.startBackends(ctx); err != nil {
		return err
	}
	if err := d.applySamples(ctx); err != nil {
		return err
	}
	return d.runSteps(ctx)
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
	if d.store != nil {
		d.store.Stop()
	}
	if d.cpStop != nil {
		d.cpStop()
	}
	if d.log != nil {
		_ = d.log.Close()
	}
}
