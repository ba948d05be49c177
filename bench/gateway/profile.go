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
	"fmt"
	"io"
	"net/http"
	"net/http/pprof"
	"os"
	"path/filepath"
	"runtime"
	runpprof "runtime/pprof"
	"strconv"
	"strings"
	"time"
)

// pprofMux serves net/http/pprof (the proxy process, with -pprof).
func pprofMux() *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	return mux
}

// profileProxy starts fetching a CPU profile and an allocation profile (the allocations made during
// d) of the proxy process, and returns a function that waits for both and writes them to
// prefix.cpu.pprof and prefix.allocs.pprof.
func profileProxy(ctx context.Context, addr, prefix string, d time.Duration) func() error {
	secs := max(1, int(d.Round(time.Second)/time.Second))
	errs := make(chan error, 2)
	fetch := func(path, file string) {
		errs <- func() error {
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("http://%s%s?seconds=%d", addr, path, secs), nil)
			if err != nil {
				return err
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				return err
			}
			defer resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				b, _ := io.ReadAll(resp.Body)
				return fmt.Errorf("%s: %d %s", path, resp.StatusCode, b)
			}
			f, err := os.Create(file)
			if err != nil {
				return err
			}
			if _, err := io.Copy(f, resp.Body); err != nil {
				_ = f.Close()
				return err
			}
			return f.Close()
		}()
	}
	go fetch("/debug/pprof/profile", prefix+".cpu.pprof")
	go fetch("/debug/pprof/allocs", prefix+".allocs.pprof")
	return func() error {
		var first error
		for range 2 {
			if err := <-errs; err != nil && first == nil {
				first = err
			}
		}
		return first
	}
}

// profileSelf profiles this process (the load generator) until the returned function is called:
// CPU to prefix.cpu.pprof, and the allocations to prefix.allocs.pprof.
func profileSelf(prefix string) (func(), error) {
	f, err := os.Create(prefix + ".cpu.pprof")
	if err != nil {
		return nil, err
	}
	if err := runpprof.StartCPUProfile(f); err != nil {
		_ = f.Close()
		return nil, err
	}
	return func() {
		runpprof.StopCPUProfile()
		_ = f.Close()
		runtime.GC()
		if af, err := os.Create(prefix + ".allocs.pprof"); err == nil {
			_ = runpprof.Lookup("allocs").WriteTo(af, 0)
			_ = af.Close()
		}
	}, nil
}

// procCPU returns the CPU time (user and system) process pid has used, from /proc (Linux); ok is
// false elsewhere. Clock ticks are taken as 100 per second (USER_HZ on every Linux architecture Go
// supports).
func procCPU(pid int) (time.Duration, bool) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, false
	}
	// The command name (field 2) is in parentheses and may hold spaces: fields count from after it.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, false
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 13 {
		return 0, false
	}
	ut, err1 := strconv.ParseInt(f[11], 10, 64) // field 14, utime
	st, err2 := strconv.ParseInt(f[12], 10, 64) // field 15, stime
	if err1 != nil || err2 != nil {
		return 0, false
	}
	return time.Duration(ut+st) * (time.Second / 100), true
}

// treeCPU is the CPU time of pid and its descendants (nginx's workers are its master's children).
func treeCPU(pid int) (time.Duration, bool) {
	total, ok := procCPU(pid)
	if !ok {
		return 0, false
	}
	for _, child := range childrenOf(pid) {
		if d, ok := treeCPU(child); ok {
			total += d
		}
	}
	return total, true
}

// childrenOf lists pid's child processes (from every thread's children file).
func childrenOf(pid int) []int {
	tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/children", pid))
	var out []int
	for _, t := range tasks {
		b, err := os.ReadFile(t)
		if err != nil {
			continue
		}
		for _, f := range strings.Fields(string(b)) {
			if n, err := strconv.Atoi(f); err == nil {
				out = append(out, n)
			}
		}
	}
	return out
}
