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
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"time"

	"resilience.dev/operator/internal/localstack"
)

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

// headers renders the named headers that are present, as "Name: value, ...".
func headers(h http.Header, names ...string) string {
	var parts []string
	for _, n := range names {
		if v := h.Get(n); v != "" {
			parts = append(parts, n+": "+v)
		}
	}
	if len(parts) == 0 {
		return "(none of " + strings.Join(names, ", ") + ")"
	}
	return strings.Join(parts, ", ")
}

// summarize counts equal strings: "503 after 3 tries x 14, ...".
func summarize(items []string) string {
	counts := map[string]int{}
	var order []string
	for _, it := range items {
		if counts[it] == 0 {
			order = append(order, it)
		}
		counts[it]++
	}
	parts := make([]string, len(order))
	for i, it := range order {
		parts[i] = fmt.Sprintf("%s x %d", it, counts[it])
	}
	return strings.Join(parts, ", ")
}

func pct(a, b int) float64 { return 100 * float64(a) / float64(b) }
