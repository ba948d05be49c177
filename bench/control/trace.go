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
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"
)

// changeTimes is what the benchmark itself saw of one change.
type changeTimes struct {
	Namespace, Name string
	Start           time.Time // just before the apply
	Called          time.Time // the apply call returned
	Enforced        time.Time // the poll that saw the new value returned
	Polls           int
}

// Stages is one change's path, in milliseconds from the start of the apply (-1: not found in the logs).
type Stages struct {
	Change       string  `json:"change"`
	ApplyCall    float64 `json:"applyCallMs"`
	Informer     float64 `json:"informerEventMs"`  // the manager's informer saw the new generation
	Triggered    float64 `json:"builderTriggerMs"` // the first trigger of the build that published it
	BuildStart   float64 `json:"buildStartMs"`
	List         float64 `json:"listMs"`
	Compile      float64 `json:"compileMs"`
	CompileCPU   float64 `json:"compileCpuMs"` // the builder thread's CPU time while compiling
	Published    float64 `json:"publishedMs"`
	Received     float64 `json:"gatewayReceivedMs"`
	Decode       float64 `json:"gatewayDecodeMs"`
	Applied      float64 `json:"gatewayAppliedMs"`
	Enforced     float64 `json:"enforcedSeenMs"`
	Polls        int     `json:"polls"`
	Version      uint64  `json:"version"`
	OtherBuilds  int     `json:"buildsInBetween"` // snapshots published between the apply and the one that carried it
	SnapshotSize int     `json:"frameBytes"`
}

// logLine is the union of the fields the trace reads from the manager's (zap) and gateway's (slog) JSON logs.
type logLine struct {
	TS         string  `json:"ts"`
	Time       string  `json:"time"`
	Msg        string  `json:"msg"`
	Namespace  string  `json:"namespace"`
	Name       string  `json:"name"`
	Version    uint64  `json:"version"`
	Took       string  `json:"took"`
	Triggered  string  `json:"triggered"`
	Waited     string  `json:"waited"`
	List       string  `json:"list"`
	Compile    string  `json:"compile"`
	CompileCPU string  `json:"compileCPU"`
	Publish    string  `json:"publish"`
	Decode     string  `json:"decode"`
	Apply      string  `json:"apply"`
	Bytes      int     `json:"bytes"`
	Gen        float64 `json:"generation"`
}

type event struct {
	at time.Time
	l  logLine
}

func (l logLine) at() time.Time {
	s := l.TS
	if s == "" {
		s = l.Time
	}
	t, _ := time.Parse(time.RFC3339Nano, s)
	return t
}

func dur(s string) time.Duration {
	d, _ := time.ParseDuration(s)
	return d
}

// traceEvents are the log lines the trace reads, by message, in the order logged.
type traceEvents struct{ informer, published, received, applied []event }

// readTrace reads the processes' JSON log lines that mark the stages of a change.
func readTrace(logPath string) (*traceEvents, error) {
	f, err := os.Open(logPath)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	ev := &traceEvents{}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	for sc.Scan() {
		line := sc.Bytes()
		if len(line) == 0 || line[0] != '{' {
			continue
		}
		var l logLine
		if json.Unmarshal(line, &l) != nil {
			continue
		}
		e := event{at: l.at(), l: l}
		switch l.Msg {
		case "policy changed":
			ev.informer = append(ev.informer, e)
		case "published snapshot":
			ev.published = append(ev.published, e)
		case "received snapshot":
			ev.received = append(ev.received, e)
		case "snapshot applied":
			ev.applied = append(ev.applied, e)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	return ev, nil
}

// traceChanges lines the processes' logs up with the benchmark's own times, change by change.
func traceChanges(logPath string, cs []changeTimes) ([]Stages, error) {
	ev, err := readTrace(logPath)
	if err != nil {
		return nil, err
	}
	var out []Stages
	for k, c := range cs {
		end := c.Enforced.Add(time.Second)
		if k+1 < len(cs) {
			end = cs[k+1].Start
		}
		out = append(out, ev.stages(c, end))
	}
	return out, nil
}

// sinceStart is t in milliseconds from the start of change c, or -1 for a zero t (not found).
func sinceStart(c changeTimes, t time.Time) float64 {
	if t.IsZero() {
		return -1
	}
	return ms(t.Sub(c.Start))
}

// stages finds change c's path in the logs: its informer event (before end, the next change's
// start), the snapshot that carried it, and that snapshot's receipt and apply at the gateway.
func (ev *traceEvents) stages(c changeTimes, end time.Time) Stages {
	st := Stages{Change: c.Namespace + "/" + c.Name, ApplyCall: sinceStart(c, c.Called), Enforced: sinceStart(c, c.Enforced), Polls: c.Polls,
		Informer: -1, Triggered: -1, BuildStart: -1, Published: -1, Received: -1, Applied: -1}
	var inf time.Time
	for _, e := range ev.informer {
		if e.at.After(c.Start) && e.at.Before(end) && e.l.Namespace == c.Namespace && e.l.Name == c.Name {
			inf = e.at
			break
		}
	}
	st.Informer = sinceStart(c, inf)
	// The snapshot that carried the change: the first published after the informer saw it.
	for _, e := range ev.published {
		if !e.at.After(c.Start) {
			continue
		}
		if inf.IsZero() || e.at.Before(inf) {
			st.OtherBuilds++
			continue
		}
		trig, _ := time.Parse(time.RFC3339Nano, e.l.Triggered)
		start := e.at.Add(-dur(e.l.Took))
		st.Triggered, st.BuildStart, st.Published = sinceStart(c, trig), sinceStart(c, start), sinceStart(c, e.at)
		st.List, st.Compile, st.Version = ms(dur(e.l.List)), ms(dur(e.l.Compile)), e.l.Version
		st.CompileCPU = ms(dur(e.l.CompileCPU))
		break
	}
	for _, e := range ev.received {
		if e.l.Version == st.Version && st.Version != 0 {
			// Logged after the decode and apply: the frame arrived that much earlier.
			arrived := e.at.Add(-dur(e.l.Decode) - dur(e.l.Apply))
			st.Received, st.Decode, st.SnapshotSize = sinceStart(c, arrived), ms(dur(e.l.Decode)), e.l.Bytes
			break
		}
	}
	for _, e := range ev.applied {
		if e.l.Version == st.Version && st.Version != 0 {
			st.Applied = sinceStart(c, e.at)
			break
		}
	}
	return st
}

// printStages prints, per stage, the median, p90 and max of the time spent in it (from the end of the
// stage before), and the slowest changes whole.
func printStages(st []Stages) {
	type stage struct {
		name     string
		from, to func(Stages) float64
	}
	zero := func(Stages) float64 { return 0 }
	stages := []stage{
		{"apply call (API write)", zero, func(s Stages) float64 { return s.ApplyCall }},
		{"start -> manager informer event", zero, func(s Stages) float64 { return s.Informer }},
		{"informer -> builder trigger", func(s Stages) float64 { return s.Informer }, func(s Stages) float64 { return max(s.Triggered, s.Informer) }},
		{"trigger -> build start (wait)", func(s Stages) float64 { return max(s.Triggered, s.Informer) }, func(s Stages) float64 { return s.BuildStart }},
		{"list", zero, func(s Stages) float64 { return s.List }},
		{"compile", zero, func(s Stages) float64 { return s.Compile }},
		{"  of which the builder's CPU", zero, func(s Stages) float64 { return s.CompileCPU }},
		{"build start -> published", func(s Stages) float64 { return s.BuildStart }, func(s Stages) float64 { return s.Published }},
		{"published -> gateway received", func(s Stages) float64 { return s.Published }, func(s Stages) float64 { return s.Received }},
		{"gateway decode", zero, func(s Stages) float64 { return s.Decode }},
		{"received -> applied", func(s Stages) float64 { return s.Received }, func(s Stages) float64 { return s.Applied }},
		{"applied -> benchmark saw it", func(s Stages) float64 { return s.Applied }, func(s Stages) float64 { return s.Enforced }},
		{"total (start -> enforced seen)", zero, func(s Stages) float64 { return s.Enforced }},
	}
	fmt.Printf("\n  trace of %d changes (ms; each stage from the end of the one before):\n", len(st))
	fmt.Printf("    %-34s %8s %8s %8s %8s %6s\n", "stage", "p50", "p90", "max", "mean", "found")
	for _, sg := range stages {
		var v []float64
		for _, s := range st {
			a, b := sg.from(s), sg.to(s)
			if a < 0 || b < 0 {
				continue
			}
			v = append(v, b-a)
		}
		if len(v) == 0 {
			fmt.Printf("    %-34s %8s\n", sg.name, "-")
			continue
		}
		slices.Sort(v)
		var sum float64
		for _, x := range v {
			sum += x
		}
		fmt.Printf("    %-34s %8.1f %8.1f %8.1f %8.1f %6d\n", sg.name, v[len(v)/2], v[min(len(v)-1, len(v)*9/10)], v[len(v)-1], sum/float64(len(v)), len(v))
	}
	worst := slices.Clone(st)
	slices.SortFunc(worst, func(a, b Stages) int { return int(b.Enforced - a.Enforced) })
	fmt.Printf("    slowest changes: %s\n", strings.Repeat("-", 40))
	fmt.Printf("    %-14s %7s %7s %7s %7s %7s %7s %7s %7s %7s %5s %6s\n", "change", "call", "inform", "trigger", "build", "publ", "recv", "applied", "seen", "compile", "polls", "builds")
	for _, s := range worst[:min(8, len(worst))] {
		fmt.Printf("    %-14s %7.1f %7.1f %7.1f %7.1f %7.1f %7.1f %7.1f %7.1f %7.1f %5d %6d\n", s.Change, s.ApplyCall, s.Informer, s.Triggered,
			s.BuildStart, s.Published, s.Received, s.Applied, s.Enforced, s.Compile, s.Polls, s.OtherBuilds)
	}
}

// cpuTimes reads the CPU time (user + system) of the named processes: the manager and gateway (by a
// unique argument), kube-apiserver and etcd (by name, among this process's children: other stacks may
// run on the machine), and this process.
func cpuTimes(procs map[string]string) map[string]time.Duration {
	out := map[string]time.Duration{}
	dirs, _ := os.ReadDir("/proc")
	for _, d := range dirs {
		pid, err := strconv.Atoi(d.Name())
		if err != nil {
			continue
		}
		cmdline, err := os.ReadFile(filepath.Join("/proc", d.Name(), "cmdline"))
		if err != nil {
			continue
		}
		args := strings.Split(string(cmdline), "\x00")
		for name, match := range procs {
			hit := false
			switch {
			case match == "self":
				hit = pid == os.Getpid()
			case strings.HasPrefix(match, "child:"):
				hit = filepath.Base(args[0]) == strings.TrimPrefix(match, "child:") && parentOf(pid) == os.Getpid()
			default:
				hit = slices.Contains(args, match)
			}
			if hit {
				out[name] += procCPU(pid)
			}
		}
	}
	return out
}

// parentOf is the parent's pid of a process, from /proc/<pid>/stat.
func parentOf(pid int) int {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	i := bytes.LastIndexByte(data, ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(string(data[i+1:]))
	if len(f) < 2 {
		return 0
	}
	ppid, _ := strconv.Atoi(f[1])
	return ppid
}

// procCPU is utime + stime of a process from /proc/<pid>/stat.
func procCPU(pid int) time.Duration {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	i := bytes.LastIndexByte(data, ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(string(data[i+1:]))
	if len(f) < 13 {
		return 0
	}
	u, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(u+st) * (time.Second / 100) // USER_HZ
}

// printCPU prints each process's CPU time per change between two readings.
func printCPU(before, after map[string]time.Duration, changes int, wall time.Duration) {
	names := make([]string, 0, len(after))
	for n := range after {
		names = append(names, n)
	}
	slices.Sort(names)
	fmt.Printf("    CPU per change (ms; %d changes over %.1fs wall, 2 cores = %.0f ms of CPU per change available):", changes, wall.Seconds(),
		float64(runtime.NumCPU())*ms(wall)/float64(max(changes, 1)))
	for _, n := range names {
		fmt.Printf(" %s %.1f", n, ms(after[n]-before[n])/float64(max(changes, 1)))
	}
	fmt.Println()
}
