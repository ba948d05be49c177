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
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"strings"
	"time"
)

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
