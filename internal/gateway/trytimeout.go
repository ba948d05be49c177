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
	"net/http"
	"time"

	"resilience.dev/operator/internal/patterns/clock"
	"resilience.dev/operator/internal/snapshot"
)

// perTryStage bounds each try until its response headers.
type perTryStage struct {
	next tryStage
	d    time.Duration
	clk  clock.Clock
}

func (g *Gateway) newPerTryStage(next tryStage, pr *portRoute, r *snapshot.Retry) *perTryStage {
	pr.tryTimeoutMsg = "no response within the per-try timeout of " + r.PerTryTimeout.D().String()
	return &perTryStage{next: next, d: r.PerTryTimeout.D(), clk: g.clk}
}

func (s *perTryStage) try(ctx context.Context, x *exchange, t *try) (*http.Response, error) {
	tctx, cancel := context.WithCancelCause(ctx)
	t.cancel = cancel
	tm := afterFunc(s.clk, s.d, func() { cancel(errPerTryTimeout) })
	resp, err := s.next.try(tctx, x, t)
	if !tm.Stop() && err == nil {
		// The timeout fired as the headers arrived: the try is late all the same.
		_ = resp.Body.Close()
		return nil, x.route.tryTimeoutErr()
	}
	return resp, err
}
