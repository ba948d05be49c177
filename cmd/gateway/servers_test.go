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
	"log/slog"
	"sync/atomic"
	"testing"
	"time"
)

// TestDrainClosesTunnels: on a signal, the WebSocket tunnels are closed after the drain delay,
// with the capture listeners, under the shutdown deadline.
func TestDrainClosesTunnels(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // the signal
	const delay = 100 * time.Millisecond
	start := time.Now()
	var draining atomic.Bool
	var captureAt, tunnelsAt time.Duration
	var tunnelsDeadline bool
	err := drain(ctx, delay, slog.New(slog.DiscardHandler), nil,
		func(context.Context) { captureAt = time.Since(start) },
		func(c context.Context) { tunnelsAt = time.Since(start); _, tunnelsDeadline = c.Deadline() },
		&draining, make(chan error))
	if err != nil {
		t.Fatal(err)
	}
	if !draining.Load() {
		t.Error("not marked draining")
	}
	if tunnelsAt < delay || captureAt < delay {
		t.Errorf("tunnels closed at %v and capture at %v, want both after the delay of %v", tunnelsAt, captureAt, delay)
	}
	if !tunnelsDeadline {
		t.Error("CloseTunnels got a context without the shutdown deadline")
	}
}
