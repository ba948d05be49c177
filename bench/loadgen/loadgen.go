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

// Package loadgen is the project's HTTP load generator for the benchmarks: a closed loop at a fixed
// number of connections (throughput) and an open loop at a fixed rate (latency). The open loop gives
// each connection its own schedule (as wrk2 does) and measures every latency from the time the
// request was scheduled, not from when it was sent, so a slow response that delays the next sends
// shows in the tail instead of hiding it (coordinated omission).
package loadgen

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Target is what to request.
type Target struct {
	// URL is the address requests are sent to (http://127.0.0.1:1234/).
	URL string
	// Host, when set, replaces the Host header (to name a Service through a gateway).
	Host string
	// Header is added to every request.
	Header http.Header
}

// Result is one run.
type Result struct {
	Requests int64         `json:"requests"`
	Errors   int64         `json:"errors"`  // transport errors
	Non2xx   int64         `json:"non2xx"`  // answers that were not 2xx
	Elapsed  time.Duration `json:"elapsed"` // wall time of the run
	// Latencies of the successful and failed answers (not of transport errors), sorted.
	Latencies []time.Duration `json:"-"`
	// SendLag is, for the open loop, how late each send started after its scheduled time, sorted
	// (the load generator's own delay, which the latencies include).
	SendLag []time.Duration `json:"-"`
}

// RPS is requests completed per second.
func (r *Result) RPS() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return float64(r.Requests) / r.Elapsed.Seconds()
}

// Quantile returns the q-quantile (0..1) of the latencies, 0 when there are none.
func (r *Result) Quantile(q float64) time.Duration { return quantile(r.Latencies, q) }

// LagQuantile returns the q-quantile of the send lag.
func (r *Result) LagQuantile(q float64) time.Duration { return quantile(r.SendLag, q) }

func quantile(s []time.Duration, q float64) time.Duration {
	if len(s) == 0 {
		return 0
	}
	i := int(q*float64(len(s))+0.5) - 1 // nearest rank
	i = max(0, min(i, len(s)-1))
	return s[i]
}

// worker sends requests on one connection of a client at a time; it keeps the serialised request.
type worker struct {
	client   *Client
	addr     string
	req      []byte
	deadline time.Time // of every read and write: the end of the run plus 30s
	cn       atomic.Pointer[conn]
}

func newWorker(client *Client, t Target, deadline time.Time) (*worker, error) {
	addr, req, err := rawRequest(t)
	if err != nil {
		return nil, err
	}
	return &worker{client: client, addr: addr, req: req, deadline: deadline}, nil
}

// do sends one request and reads and discards the response; ok is false on a transport error
// (the connection is then closed, and the next request opens another).
func (w *worker) do() (status int, ok bool) {
	cn := w.cn.Load()
	if cn == nil {
		var err error
		if cn, err = w.client.get(w.addr); err != nil {
			return 0, false
		}
		_ = cn.nc.SetDeadline(w.deadline)
		w.cn.Store(cn)
	}
	status, keep, err := cn.roundTrip(w.req)
	if err != nil || !keep {
		_ = cn.nc.Close()
		w.cn.Store(nil)
	}
	return status, err == nil
}

// release gives the worker's connection back to the client.
func (w *worker) release() {
	if cn := w.cn.Swap(nil); cn != nil {
		w.client.put(cn)
	}
}

// abort makes the worker's pending read or write fail at once (the run's context ended).
func (w *worker) abort() {
	if cn := w.cn.Load(); cn != nil {
		_ = cn.nc.SetDeadline(time.Unix(1, 0))
	}
}

// startWorkers makes n workers for a run ending at end; they are aborted when ctx ends.
func startWorkers(ctx context.Context, client *Client, t Target, n int, end time.Time) ([]*worker, func(), error) {
	workers := make([]*worker, n)
	for i := range workers {
		w, err := newWorker(client, t, end.Add(30*time.Second))
		if err != nil {
			return nil, nil, err
		}
		workers[i] = w
	}
	stop := context.AfterFunc(ctx, func() {
		for _, w := range workers {
			w.abort()
		}
	})
	return workers, func() {
		stop()
		for _, w := range workers {
			if ctx.Err() != nil {
				if cn := w.cn.Swap(nil); cn != nil {
					_ = cn.nc.Close()
				}
				continue
			}
			w.release()
		}
	}, nil
}

type tally struct {
	requests, errors, non2xx int64
	lat, lag                 []time.Duration
}

func (t *tally) record(status int, ok bool, lat time.Duration) {
	if !ok {
		t.errors++
		return
	}
	t.requests++
	if status < 200 || status > 299 {
		t.non2xx++
	}
	t.lat = append(t.lat, lat)
}

func merge(parts []*tally, elapsed time.Duration) *Result {
	r := &Result{Elapsed: elapsed}
	for _, p := range parts {
		r.Requests += p.requests
		r.Errors += p.errors
		r.Non2xx += p.non2xx
		r.Latencies = append(r.Latencies, p.lat...)
		r.SendLag = append(r.SendLag, p.lag...)
	}
	slices.Sort(r.Latencies)
	slices.Sort(r.SendLag)
	return r
}

// Call makes one request on behalf of worker (0 <= worker < concurrency; each worker makes one call
// at a time) and reports its status and whether it was answered at all (false: a transport error).
// Callers of another protocol give an HTTP status for their outcome: gRPC's OK as 200, say.
type Call func(worker int) (status int, answered bool)

// Closed runs a closed loop: concurrency workers, each sending its next request as soon as the
// previous answer is read, for d.
func Closed(ctx context.Context, client *Client, t Target, concurrency int, d time.Duration) (*Result, error) {
	workers, done, err := startWorkers(ctx, client, t, concurrency, time.Now().Add(d))
	if err != nil {
		return nil, err
	}
	defer done()
	return ClosedCalls(ctx, concurrency, d, func(i int) (int, bool) { return workers[i].do() })
}

// ClosedCalls is Closed for any protocol: concurrency workers, each making its next call as soon as
// the previous one returned, for d.
func ClosedCalls(ctx context.Context, concurrency int, d time.Duration, call Call) (*Result, error) {
	if concurrency < 1 {
		return nil, errors.New("loadgen: concurrency must be at least 1")
	}
	parts := make([]*tally, concurrency)
	for i := range parts {
		parts[i] = &tally{lat: make([]time.Duration, 0, 1<<14)}
	}
	start := time.Now()
	deadline := start.Add(d)
	var wg sync.WaitGroup
	for i := range concurrency {
		wg.Go(func() {
			p := parts[i]
			for {
				t0 := time.Now()
				if !t0.Before(deadline) {
					return
				}
				status, ok := call(i)
				p.record(status, ok, time.Since(t0))
				if ctx.Err() != nil {
					return
				}
			}
		})
	}
	wg.Wait()
	return merge(parts, time.Since(start)), ctx.Err()
}

// Open runs an open loop at rate requests per second for d, over concurrency connections: worker i
// sends the requests scheduled at start + (i + k*concurrency)/rate. A worker still waiting for an
// answer when its next request is due sends it as soon as it can, and that request's latency counts
// from its scheduled time. concurrency bounds the requests in flight, so pick it well above
// rate times the expected latency.
func Open(ctx context.Context, client *Client, t Target, concurrency int, rate float64, d time.Duration) (*Result, error) {
	workers, done, err := startWorkers(ctx, client, t, concurrency, time.Now().Add(d+5*time.Millisecond))
	if err != nil {
		return nil, err
	}
	defer done()
	return OpenCalls(ctx, concurrency, rate, d, func(i int) (int, bool) { return workers[i].do() })
}

// OpenCalls is Open for any protocol: worker i makes the calls scheduled at
// start + (i + k*concurrency)/rate, each latency counted from its scheduled time.
func OpenCalls(ctx context.Context, concurrency int, rate float64, d time.Duration, call Call) (*Result, error) {
	if concurrency < 1 || rate <= 0 {
		return nil, errors.New("loadgen: concurrency must be at least 1 and rate positive")
	}
	total := int(rate * d.Seconds())
	if total < 1 {
		return nil, fmt.Errorf("loadgen: %v at %.0f/s is no request", d, rate)
	}
	interval := time.Duration(float64(time.Second) / rate)
	parts := make([]*tally, concurrency)
	for i := range parts {
		n := total/concurrency + 1
		parts[i] = &tally{lat: make([]time.Duration, 0, n), lag: make([]time.Duration, 0, n)}
	}
	start := time.Now().Add(5 * time.Millisecond) // let every worker reach its first wait
	var wg sync.WaitGroup
	for i := range concurrency {
		wg.Go(func() {
			p := parts[i]
			tm := time.NewTimer(time.Hour)
			defer tm.Stop()
			for k := i; k < total; k += concurrency {
				due := start.Add(time.Duration(k) * interval)
				if wait := time.Until(due); wait > 0 {
					tm.Reset(wait)
					select {
					case <-tm.C:
					case <-ctx.Done():
						return
					}
				}
				p.lag = append(p.lag, time.Since(due))
				status, ok := call(i)
				p.record(status, ok, time.Since(due))
				if ctx.Err() != nil {
					return
				}
			}
		})
	}
	wg.Wait()
	return merge(parts, time.Since(start)), ctx.Err()
}

// Drain reads and discards a body (for callers with their own requests).
func Drain(r io.ReadCloser) {
	_, _ = io.Copy(io.Discard, r)
	_ = r.Close()
}
