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

// Package trace times the stages of one pass of work for its log line: the wall time of each stage
// and, on Linux, the CPU time of the pass's own OS thread, which tells the work itself from time
// spent waiting for a CPU (on a busy node the two differ by the queueing).
package trace

import (
	"runtime"
	"time"
)

// Span is one pass being timed. Its fields are the stages' durations, as logr key/value pairs.
type Span struct {
	cpu    bool // the goroutine is locked to its thread, whose CPU time is read
	cpu0   time.Duration
	start  time.Time
	last   time.Time
	fields []any
}

// Begin starts a span. With cpu, the calling goroutine is locked to its OS thread until End, so
// the thread's CPU time is the pass's own; without it, CPU fields read 0 and nothing is locked.
func Begin(cpu bool) *Span {
	s := &Span{cpu: cpu}
	if cpu {
		runtime.LockOSThread()
		s.cpu0 = threadCPU()
	}
	s.start = time.Now()
	s.last = s.start
	return s
}

// Start is when the span began.
func (s *Span) Start() time.Time { return s.start }

// Took is the wall time since the span began.
func (s *Span) Took() time.Duration { return time.Since(s.start) }

// Stage ends a stage: name takes the wall time since the stage before it ended (or the span began).
func (s *Span) Stage(name string) {
	now := time.Now()
	s.fields = append(s.fields, name, now.Sub(s.last).String())
	s.last = now
}

// CPU records under name the thread's CPU time since the span began (0 without cpu).
func (s *Span) CPU(name string) {
	var d time.Duration
	if s.cpu {
		d = threadCPU() - s.cpu0
	}
	s.fields = append(s.fields, name, d.String())
}

// Fields are the recorded stages, in order, as key/value pairs for a log line.
func (s *Span) Fields() []any { return s.fields }

// End releases the thread Begin locked.
func (s *Span) End() {
	if s.cpu {
		runtime.UnlockOSThread()
	}
}
