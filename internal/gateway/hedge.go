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

	"resilience.dev/operator/internal/patterns/hedge"
)

// safeMethod reports whether hedging may send copies of a request with this method.
func safeMethod(m string) bool {
	return m == http.MethodGet || m == http.MethodHead || m == http.MethodOptions
}

// hedged runs one round of tries with hedging: a copy goes to another endpoint each hedge delay
// without a good response, within maxHedges, the attempts left and the retry budget. It returns the
// response picked, the number of tries started and the error.
func (s *retryStage) hedged(ctx context.Context, x *exchange, tries int, now time.Time) (*http.Response, int, error) {
	p := hedge.Policy{
		Delay:     s.hedgeDelay,
		MaxHedges: min(s.maxHedges, s.maxAttempts-tries-1),
		MayHedge: func() bool {
			if x.upgrade { // one upstream per WebSocket tunnel
				return false
			}
			if !s.budget.AllowRetry(s.clk.Now()) {
				s.skipHedge.Inc()
				return false
			}
			s.hedgesTotal.Inc()
			traceEvent(ctx, "hedge")
			return true
		},
	}
	call := func(cctx context.Context, attempt int) (*http.Response, error) {
		at := now
		if attempt > 0 {
			at = s.clk.Now()
		}
		return x.runTry(cctx, s.next, at)
	}
	return hedge.Do(ctx, s.clk, p, call, s.good, discardResponse)
}
