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

// Package budget limits retries to a share of a target's recent requests (the contract's
// RetryPolicy budget), with a floor of retries per second that is always allowed.
//
// Exact rule, with W the window and now the caller's time:
//
//   - Requests and retries are counted in a sliding window of Buckets ring buckets of width W/Buckets,
//     aligned to the start time given to New. A count belongs to the bucket holding its time; the
//     window at now holds the bucket containing now and the Buckets-1 before it, so it spans between
//     W*(Buckets-1)/Buckets and W.
//   - AllowRetry first tries the percent allowance: with R requests and T percent-admitted retries
//     in the window, a retry is allowed when (T+1)*100 <= R*Percent, and then counts in T.
//   - When that is exhausted, it tries the floor: a token bucket refilled at MinRetriesPerSecond
//     with a burst of MinRetriesPerSecond tokens (full at the start). Floor retries do not count in
//     T: the floor adds to the percent allowance. Its refill interval is 1s/MinRetriesPerSecond
//     rounded down to whole nanoseconds.
//
// So with 1000 requests in the window and the contract's defaults (20%, 10/s, 10s), 200 + 10 retries
// pass at once, and with no traffic at all 10 retries per second still pass.
//
// All methods are safe for concurrent use, lock-free (atomic compare-and-swap) and allocation-free.
// Under contention a retry may be refused that a strictly serial order would have allowed, never
// the reverse: the allowance is never exceeded.
package budget

import (
	"fmt"
	"sync/atomic"
	"time"

	"resilience.dev/operator/internal/patterns/window"
)

// Config describes a retry budget. The contract's defaults are Percent 20, MinRetriesPerSecond 10,
// Window 10s.
type Config struct {
	Percent             int           // 0..maxPercent: retries allowed per 100 requests in the window
	MinRetriesPerSecond int           // 0..maxRate: floor rate, and burst, always allowed; 0 = no floor
	Window              time.Duration // > 0
	Buckets             int           // ring buckets per window, 1..1000; 0 means 10
}

const (
	defaultBuckets = 10
	maxBuckets     = 1000
	maxPercent     = 1_000_000 // keeps R*Percent within uint64
	maxRate        = 1_000_000_000
)

// Budget is a retry budget. Create it with New.
type Budget struct {
	start    time.Time
	width    time.Duration // of a bucket
	percent  uint64
	requests window.Ring
	retries  window.Ring // percent-admitted retries only

	interval  int64 // floor: ns per token; 0 when there is no floor
	tolerance int64 // floor: burst*interval
	tat       atomic.Int64
}

// New validates cfg and returns an empty budget whose buckets are aligned to start.
func New(cfg Config, start time.Time) (*Budget, error) {
	if cfg.Buckets == 0 {
		cfg.Buckets = defaultBuckets
	}
	switch {
	case cfg.Percent < 0 || cfg.Percent > maxPercent:
		return nil, fmt.Errorf("retry budget: percent %d is outside 0..%d", cfg.Percent, maxPercent)
	case cfg.MinRetriesPerSecond < 0 || cfg.MinRetriesPerSecond > maxRate:
		return nil, fmt.Errorf("retry budget: minRetriesPerSecond %d is outside 0..%d", cfg.MinRetriesPerSecond, maxRate)
	case cfg.Buckets < 1 || cfg.Buckets > maxBuckets:
		return nil, fmt.Errorf("retry budget: buckets %d is outside 1..%d", cfg.Buckets, maxBuckets)
	case cfg.Window <= 0 || cfg.Window < time.Duration(cfg.Buckets):
		return nil, fmt.Errorf("retry budget: window %v must be at least %d ns (one per bucket)", cfg.Window, cfg.Buckets)
	}
	b := &Budget{
		start:    start,
		width:    cfg.Window / time.Duration(cfg.Buckets),
		percent:  uint64(cfg.Percent),
		requests: window.New(cfg.Buckets),
		retries:  window.New(cfg.Buckets),
	}
	if cfg.MinRetriesPerSecond > 0 {
		b.interval = int64(time.Second) / int64(cfg.MinRetriesPerSecond)
		b.tolerance = b.interval * int64(cfg.MinRetriesPerSecond)
	}
	return b, nil
}

// Request records one request to the target (a client request, not a try) at now.
func (b *Budget) Request(now time.Time) {
	b.requests.Add(b.epoch(now))
}

// AllowRetry reports whether one more retry (or hedge) may be sent at now, and if so records it.
func (b *Budget) AllowRetry(now time.Time) bool {
	e := b.epoch(now)
	// Count the retry first, then check, and take it back if over: concurrent callers can then
	// never both slip under the limit.
	m := b.retries.Add(e)
	if b.retries.Sum(e)*100 <= b.requests.Sum(e)*b.percent {
		return true
	}
	window.Undo(m)
	return b.takeFloor(b.elapsed(now))
}

// Counts returns the requests and percent-admitted retries in the window at now, for metrics.
func (b *Budget) Counts(now time.Time) (requests, retries uint64) {
	e := b.epoch(now)
	return b.requests.Sum(e), b.retries.Sum(e)
}

func (b *Budget) elapsed(now time.Time) int64 { return max(int64(now.Sub(b.start)), 0) }

func (b *Budget) epoch(now time.Time) uint64 { return window.Epoch(b.start, now, b.width) }

// takeFloor takes a token from the floor bucket, kept as a GCRA theoretical arrival time (tat, in ns
// since start): a token is free when taking it leaves tat at most burst intervals ahead of now.
func (b *Budget) takeFloor(now int64) bool {
	if b.interval == 0 {
		return false
	}
	for {
		tat := b.tat.Load()
		next := max(tat, now) + b.interval
		if next-now > b.tolerance {
			return false
		}
		if b.tat.CompareAndSwap(tat, next) {
			return true
		}
	}
}
