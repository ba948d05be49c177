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

package trace

import (
	"runtime"
	"testing"
	"time"
)

func TestSpanFields(t *testing.T) {
	for _, cpu := range []bool{false, true} {
		s := Begin(cpu)
		s.Stage("list")
		busy := time.Now().Add(5 * time.Millisecond)
		for time.Now().Before(busy) { // work the thread, so its CPU time moves
		}
		s.Stage("compile")
		s.CPU("compileCPU")
		s.End()
		f := s.Fields()
		if len(f) != 6 || f[0] != "list" || f[2] != "compile" || f[4] != "compileCPU" {
			t.Fatalf("cpu %v: fields %v, want list, compile, compileCPU in order", cpu, f)
		}
		compile, _ := time.ParseDuration(f[3].(string))
		used, _ := time.ParseDuration(f[5].(string))
		if compile < 5*time.Millisecond {
			t.Errorf("cpu %v: compile took %s, want at least 5ms", cpu, compile)
		}
		switch {
		case !cpu && used != 0:
			t.Errorf("CPU time %s read without cpu", used)
		case cpu && runtime.GOOS == "linux" && used <= 0:
			t.Errorf("no CPU time read on Linux after busy work")
		}
	}
}
