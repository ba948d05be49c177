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

package client

import (
	"sync"

	"github.com/go-logr/logr"
)

// logEntry is one line a logger under test wrote: its message and key/value pairs.
type logEntry struct {
	msg string
	kv  map[string]any
}

// logs records what a logr.Logger writes, so a test can observe a process's behaviour through the
// lines it logs (their keys are a contract: bench/control parses them) instead of its internals.
type logs struct {
	mu      sync.Mutex
	entries []logEntry
}

// logger returns a logger that records into l.
func (l *logs) logger() logr.Logger { return logr.New(&logSink{logs: l}) }

// has reports whether a line with message msg and the given key/value pairs was logged.
func (l *logs) has(msg string, kv ...any) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, e := range l.entries {
		if e.msg == msg && matches(e.kv, kv) {
			return true
		}
	}
	return false
}

func matches(got map[string]any, want []any) bool {
	for i := 0; i+1 < len(want); i += 2 {
		if v, ok := got[want[i].(string)]; !ok || v != want[i+1] {
			return false
		}
	}
	return true
}

type logSink struct {
	logs   *logs
	values []any
}

func (s *logSink) Init(logr.RuntimeInfo) {}
func (s *logSink) Enabled(int) bool      { return true }
func (s *logSink) WithName(string) logr.LogSink {
	return s
}

func (s *logSink) WithValues(kv ...any) logr.LogSink {
	return &logSink{logs: s.logs, values: append(append([]any{}, s.values...), kv...)}
}

func (s *logSink) Info(_ int, msg string, kv ...any) { s.record(msg, kv) }

func (s *logSink) Error(err error, msg string, kv ...any) {
	s.record(msg, append([]any{"error", err.Error()}, kv...))
}

func (s *logSink) record(msg string, kv []any) {
	m := map[string]any{}
	for _, pairs := range [][]any{s.values, kv} {
		for i := 0; i+1 < len(pairs); i += 2 {
			if k, ok := pairs[i].(string); ok {
				m[k] = pairs[i+1]
			}
		}
	}
	s.logs.mu.Lock()
	s.logs.entries = append(s.logs.entries, logEntry{msg: msg, kv: m})
	s.logs.mu.Unlock()
}
