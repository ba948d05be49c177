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
	"fmt"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"resilience.dev/operator/api/v1alpha1"
)

// changes times changes of one RateLimit each (round distinguishes the values of successive calls)
// and reads the processes' memory.
func (s *stack) changes(ctx context.Context, f StackFig, changes int, applyVia string, round int) (StackFig, error) {
	f.ApplyVia = applyVia
	procs := map[string]string{"manager": "--distribution-bind-address=" + s.opts.ManagerStream, "gateway": "--listen=" + s.opts.GatewayListen,
		"kube-apiserver": "child:kube-apiserver", "etcd": "child:etcd", "benchmark": "self"}
	cpuBefore, wallStart := cpuTimes(procs), time.Now()
	var times []changeTimes
	for k := range changes {
		ct, err := s.timeChange(ctx, f.Policies, k, applyVia, round)
		if err != nil {
			return f, err
		}
		times = append(times, ct)
	}
	cpuAfter, wall := cpuTimes(procs), time.Since(wallStart)
	if s.o.tracePath != "" {
		time.Sleep(500 * time.Millisecond) // let the last log lines reach the file
		st, err := traceChanges(s.o.tracePath, times)
		if err != nil {
			return f, fmt.Errorf("trace: %w", err)
		}
		printStages(st)
		printCPU(cpuBefore, cpuAfter, len(times), wall)
		s.trace = append(s.trace, st)
	}
	var lat, calls []time.Duration
	for _, ct := range times {
		lat, calls = append(lat, ct.Enforced.Sub(ct.Start)), append(calls, ct.Called.Sub(ct.Start))
	}
	slices.Sort(lat)
	slices.Sort(calls)
	f.Changes = len(lat)
	if len(lat) > 0 {
		q := func(s []time.Duration, p float64) float64 {
			return ms(s[max(0, min(len(s)-1, int(p*float64(len(s))+0.5)-1))])
		}
		f.P50Ms, f.P99Ms, f.MaxMs, f.ApplyCallP50Ms = q(lat, 0.5), q(lat, 0.99), ms(lat[len(lat)-1]), q(calls, 0.5)
	}
	return f, s.readRSS(&f)
}

// timeChange applies change k of a different RateLimit each time and polls the gateway until it
// enforces the new value.
func (s *stack) timeChange(ctx context.Context, n, k int, applyVia string, round int) (changeTimes, error) {
	i := 3 * ((k * 7919) % (n / 3)) // a different RateLimit each time
	requests := initialRequests + n + 1000*round + k + 1
	ns, name := fmt.Sprintf("ns%d", i%namespaces), fmt.Sprintf("svc%d", i)
	t0 := time.Now()
	if err := s.apply(ctx, applyVia, ns, name, requests); err != nil {
		return changeTimes{}, err
	}
	ct := changeTimes{Namespace: ns, Name: name, Start: t0, Called: time.Now()}
	want := strconv.Itoa(requests)
	for {
		code, h, err := s.get(i)
		ct.Polls++
		if err == nil && code == 200 && h.Get("X-RateLimit-Limit") == want {
			break
		}
		if time.Since(t0) > 30*time.Second {
			return ct, fmt.Errorf("change %d of %s/%s not enforced within 30s (last: %d %v %v)", k, ns, name, code, h.Get("X-RateLimit-Limit"), err)
		}
		time.Sleep(2 * time.Millisecond)
	}
	ct.Enforced = time.Now()
	return ct, nil
}

// readRSS reads the manager's and the gateway's VmRSS and peak VmHWM into f.
func (s *stack) readRSS(f *StackFig) error {
	for _, p := range []struct {
		arg      string
		rss, hwm *float64
	}{
		{"--distribution-bind-address=" + s.opts.ManagerStream, &f.ManagerRSSMiB, &f.ManagerHWMMiB},
		{"--listen=" + s.opts.GatewayListen, &f.GatewayRSSMiB, &f.GatewayHWMMiB},
	} {
		pid, err := pidByArg(p.arg)
		if err != nil {
			return err
		}
		rss, err := procStatus(pid, "VmRSS")
		if err != nil {
			return err
		}
		hwm, _ := procStatus(pid, "VmHWM")
		*p.rss, *p.hwm = mib(rss), mib(hwm)
	}
	return nil
}

// apply changes the requests of RateLimit ns/name.
func (s *stack) apply(ctx context.Context, via, ns, name string, requests int) error {
	if via == "api" {
		patch := fmt.Sprintf(`{"spec":{"limits":[{"name":"all","requests":%d,"period":"1s","maxKeys":10000}]}}`, requests)
		return s.k8s.Patch(ctx, &v1alpha1.RateLimit{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}},
			client.RawPatch(types.MergePatchType, []byte(patch)))
	}
	manifest := fmt.Sprintf(`apiVersion: resilience.dev/v1alpha1
kind: RateLimit
metadata: {name: %s, namespace: %s}
spec:
  targetRefs: [{kind: Service, name: %s}]
  limits: [{name: all, requests: %d, period: 1s, maxKeys: 10000}]
`, name, ns, name, requests)
	cmd := exec.CommandContext(ctx, "kubectl", "--kubeconfig", s.ls.KubeconfigPath, "apply", "--server-side", "--force-conflicts",
		"--field-manager=bench-control", "-f", "-")
	cmd.Stdin = strings.NewReader(manifest)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("kubectl apply: %w: %s", err, out.String())
	}
	return nil
}
