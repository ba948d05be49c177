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
	"context"
	"io"
	"net/http"
	"net/url"
	"sync/atomic"
	"time"

	"resilience.dev/operator/internal/patterns/bulkhead"
)

// tryLog is what the tries of a request have done so far.
type tryLog struct {
	tried    atomic.Uint64 // endpoints tried, by index (the first 64)
	attempts atomic.Int32  // tries that went past the breaker to the upstream stage
}

// try is one try of a request: the endpoint it went to and what it must give back when it ends.
type try struct {
	x   *exchange
	now time.Time // when the try started (the request's time for the first)
	end time.Time // when its response headers (or error) arrived; zero if it never reached the upstream

	ep       *endpoint
	inflight bool
	bulk     *bulkhead.Bulkhead
	cancel   context.CancelCauseFunc

	url      url.URL
	rb       replayBody
	body     tryBody
	finished atomic.Bool
}

// finish gives back what the try holds: its bulkhead slot, its in-flight count, its context.
func (t *try) finish() {
	if !t.finished.CompareAndSwap(false, true) {
		return
	}
	if t.inflight {
		t.ep.inflight.Add(-1)
	}
	if t.bulk != nil {
		t.bulk.Release()
	}
	if t.cancel != nil {
		t.cancel(nil)
	}
}

// tryBody ends its try when the response body is closed.
type tryBody struct {
	rc io.ReadCloser
	t  *try
}

func (b *tryBody) Read(p []byte) (int, error) { return b.rc.Read(p) }

func (b *tryBody) Close() error {
	err := b.rc.Close()
	b.t.finish()
	return err
}

// discardResponse closes a response the gateway will not forward, reading a little of it first so
// that its connection can be reused.
func discardResponse(resp *http.Response) {
	if resp == nil {
		return
	}
	if resp.StatusCode == http.StatusSwitchingProtocols { // a switched connection: reading would wait for the peer
		_ = resp.Body.Close()
		return
	}
	_, _ = io.CopyN(io.Discard, resp.Body, 4<<10)
	_ = resp.Body.Close()
}
