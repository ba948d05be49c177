//go:build reliability

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

package reliability

import (
	"fmt"
	"io"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Where an answer came from.
const (
	fromUpstream = "upstream"    // the backend answered (X-Backend is set)
	fromGateway  = "gateway"     // a gateway code with a one-line plain-text reason
	unanswered   = "unanswered"  // no HTTP answer at all: a transport error or a timeout
	unexplained  = "unexplained" // an answer from neither: a defect
)

// answer is what became of one request.
type answer struct {
	at       time.Time // when it was due to be sent (open loop)
	code     int
	from     string
	via      string // the gateway it was sent to
	reason   string // the gateway's reason line, or the error
	attempts int    // X-Resilience-Attempts, 0 when absent
}

// gatewayCodes are the codes the gateway answers with itself (contract: Gateway behaviour).
var gatewayCodes = map[int]bool{400: true, 403: true, 413: true, 429: true, 431: true, 500: true, 502: true, 503: true, 504: true}

var trafficClient = &http.Client{Timeout: 15 * time.Second,
	Transport: &http.Transport{MaxIdleConns: 512, MaxIdleConnsPerHost: 256, IdleConnTimeout: 30 * time.Second}}

// get sends one GET to the gateway at addr for Service host and classifies the answer.
func get(addr, host, path string) answer {
	a := answer{at: time.Now(), via: addr}
	req, err := http.NewRequest(http.MethodGet, "http://"+addr+path, nil)
	if err != nil {
		a.from, a.reason = unanswered, err.Error()
		return a
	}
	req.Host = host
	resp, err := trafficClient.Do(req)
	if err != nil {
		a.from, a.reason = unanswered, err.Error()
		return a
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	a.code = resp.StatusCode
	a.attempts, _ = strconv.Atoi(resp.Header.Get("X-Resilience-Attempts"))
	switch {
	case err != nil:
		a.from, a.reason = unanswered, "body: "+err.Error()
	case resp.Header.Get("X-Backend") != "":
		a.from = fromUpstream
	case gatewayCodes[resp.StatusCode] && strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain") &&
		strings.Count(strings.TrimSuffix(string(body), "\n"), "\n") == 0 && strings.TrimSpace(string(body)) != "":
		a.from, a.reason = fromGateway, strings.TrimSpace(string(body))
	default:
		a.from, a.reason = unexplained, fmt.Sprintf("%d %q", resp.StatusCode, body)
	}
	return a
}

// traffic sends requests at a fixed rate (open loop: a slow answer does not delay the next request)
// and keeps every answer.
type traffic struct {
	stop     chan struct{}
	done     chan struct{}
	inflight sync.WaitGroup

	mu      sync.Mutex
	answers []answer
	skipped atomic.Int64 // ticks not sent because too many requests were outstanding
}

const maxOutstanding = 1024

// startTraffic sends rate requests per second with send until Stop.
func startTraffic(rate int, send func() answer) *traffic {
	tr := &traffic{stop: make(chan struct{}), done: make(chan struct{})}
	sem := make(chan struct{}, maxOutstanding)
	go func() {
		defer close(tr.done)
		interval := time.Second / time.Duration(rate)
		next := time.Now()
		for {
			select {
			case <-tr.stop:
				return
			case <-time.After(time.Until(next)):
			}
			due := next
			next = next.Add(interval)
			select {
			case sem <- struct{}{}:
			default:
				tr.skipped.Add(1)
				continue
			}
			tr.inflight.Add(1)
			go func() {
				defer tr.inflight.Done()
				defer func() { <-sem }()
				a := send()
				a.at = due
				tr.mu.Lock()
				tr.answers = append(tr.answers, a)
				tr.mu.Unlock()
			}()
		}
	}()
	return tr
}

// Stop stops sending, waits for every outstanding answer and returns them all, in send order.
func (tr *traffic) Stop() []answer {
	close(tr.stop)
	<-tr.done
	tr.inflight.Wait()
	trafficClient.CloseIdleConnections()
	tr.mu.Lock()
	defer tr.mu.Unlock()
	sort.Slice(tr.answers, func(i, j int) bool { return tr.answers[i].at.Before(tr.answers[j].at) })
	return tr.answers
}

// tally counts answers.
type tally struct {
	total, upstream, gateway, unanswered, unexplained int
	codes                                             map[int]int
	reasons                                           map[string]int // gateway reasons
	problems                                          []string       // unanswered and unexplained, the first few
}

// count tallies the answers sent in [from, to) (zero times: no bound).
func count(answers []answer, from, to time.Time) tally {
	t := tally{codes: map[int]int{}, reasons: map[string]int{}}
	for _, a := range answers {
		if (!from.IsZero() && a.at.Before(from)) || (!to.IsZero() && !a.at.Before(to)) {
			continue
		}
		t.total++
		t.codes[a.code]++
		switch a.from {
		case fromUpstream:
			t.upstream++
		case fromGateway:
			t.gateway++
			t.reasons[fmt.Sprintf("%d %s", a.code, a.reason)]++
		case unanswered:
			t.unanswered++
		default:
			t.unexplained++
		}
		if a.from == unanswered || a.from == unexplained {
			if len(t.problems) < 10 {
				t.problems = append(t.problems, fmt.Sprintf("%s via %s at %s: %s", a.from, a.via, a.at.Format("15:04:05.000"), a.reason))
			}
		}
	}
	return t
}

// String is a one-paragraph summary for logs.
func (t tally) String() string {
	codes := make([]string, 0, len(t.codes))
	for c, n := range t.codes {
		codes = append(codes, fmt.Sprintf("%d:%d", c, n))
	}
	sort.Strings(codes)
	reasons := make([]string, 0, len(t.reasons))
	for r, n := range t.reasons {
		reasons = append(reasons, fmt.Sprintf("%dx %q", n, r))
	}
	sort.Strings(reasons)
	return fmt.Sprintf("%d requests: %d answered by the upstream, %d by the gateway, %d unanswered, %d unexplained; codes %s; gateway reasons %s",
		t.total, t.upstream, t.gateway, t.unanswered, t.unexplained, strings.Join(codes, " "), strings.Join(reasons, ", "))
}

// allAnswered fails the test if any request went unanswered or got an answer that is neither the
// upstream's nor a gateway code with a reason, or if the generator could not keep its rate.
func allAnswered(t *testing.T, what string, tr *traffic, tl tally) {
	t.Helper()
	t.Logf("%s: %s", what, tl)
	if tl.unanswered > 0 || tl.unexplained > 0 {
		t.Errorf("%s: %d unanswered and %d unexplained answers, first: %s", what, tl.unanswered, tl.unexplained, strings.Join(tl.problems, "; "))
	}
	if n := tr.skipped.Load(); n > 0 {
		t.Errorf("%s: the generator skipped %d requests (more than %d outstanding)", what, n, maxOutstanding)
	}
	if tl.total == 0 {
		t.Errorf("%s: no requests were sent", what)
	}
}

// onlyReasons fails the test if the gateway answered with a reason containing none of allowed.
func onlyReasons(t *testing.T, what string, tl tally, allowed ...string) {
	t.Helper()
	for r := range tl.reasons {
		ok := false
		for _, a := range allowed {
			ok = ok || strings.Contains(r, a)
		}
		if !ok {
			t.Errorf("%s: unexpected gateway answer %q (allowed: %q)", what, r, allowed)
		}
	}
}

// readyBalancer sends each request to one of several gateways, round robin among those whose
// /readyz answers 200, as a Service with readiness probes does. It polls every 50 ms.
type readyBalancer struct {
	gws  []*balancedGateway
	next atomic.Uint64
	stop chan struct{}
	done chan struct{}
}

type balancedGateway struct {
	listen, health string
	ready          atomic.Bool
	sent           atomic.Int64
}

func newReadyBalancer(gws ...*balancedGateway) *readyBalancer {
	b := &readyBalancer{gws: gws, stop: make(chan struct{}), done: make(chan struct{})}
	for _, g := range gws {
		g.ready.Store(ready(g.health))
	}
	go func() {
		defer close(b.done)
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-b.stop:
				return
			case <-tick.C:
				for _, g := range b.gws {
					g.ready.Store(ready(g.health))
				}
			}
		}
	}()
	return b
}

func (b *readyBalancer) Close() { close(b.stop); <-b.done }

// get sends one request to the next ready gateway.
func (b *readyBalancer) get(host, path string) answer {
	n := uint64(len(b.gws))
	start := b.next.Add(1)
	for i := range n {
		g := b.gws[(start+i)%n]
		if g.ready.Load() {
			g.sent.Add(1)
			return get(g.listen, host, path)
		}
	}
	return answer{at: time.Now(), from: unanswered, reason: "no gateway is ready"}
}
