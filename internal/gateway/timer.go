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

package gateway

import (
	"sync/atomic"
	"time"

	"resilience.dev/operator/internal/patterns/clock"
)

// stopper is a timer that runs a function once unless stopped first.
type stopper interface {
	// Stop prevents the function from running; it reports false when it has run or is running.
	Stop() bool
}

// afterFunc runs f after d on clk, like time.AfterFunc. On the real clock it is time.AfterFunc (no
// goroutine waits); on another clock (the fake one of tests) a goroutine waits on the clock's timer.
func afterFunc(clk clock.Clock, d time.Duration, f func()) stopper {
	switch clk.(type) {
	case clock.Real, *clock.Real:
		return time.AfterFunc(d, f)
	}
	t := &clockAfter{stop: make(chan struct{})}
	tm := clk.NewTimer(d)
	go func() {
		select {
		case <-tm.C():
			if t.state.CompareAndSwap(0, 1) {
				f()
			}
		case <-t.stop:
			tm.Stop()
		}
	}()
	return t
}

type clockAfter struct {
	state atomic.Int32 // 0 pending, 1 fired, 2 stopped
	stop  chan struct{}
}

func (t *clockAfter) Stop() bool {
	if t.state.CompareAndSwap(0, 2) {
		close(t.stop)
		return true
	}
	return false
}
