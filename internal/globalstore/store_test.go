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

package globalstore

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"resilience.dev/operator/internal/patterns/clock"
	"resilience.dev/operator/internal/patterns/globallimit"
	"resilience.dev/operator/internal/redisserver"
)

// server starts a real redis-server for one test.
func server(t *testing.T) *redisserver.Server {
	t.Helper()
	s, err := redisserver.Start(context.Background(), "127.0.0.1:0", io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Stop)
	return s
}

func open(t *testing.T, url string) *Store {
	t.Helper()
	s, err := Open(Options{URL: url, ClientName: "test"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

// do runs one command on the store's connection.
func do(t *testing.T, s *Store, args ...string) (string, error) {
	t.Helper()
	a := make([]any, len(args))
	for i, v := range args {
		a[i] = v
	}
	v, err := s.client.Do(context.Background(), a...).Result()
	return fmt.Sprint(v), err
}

// TestScriptIsTheReference runs the same random steps on the Lua script (with the clock pinned by the
// test argument) and on globallimit.Take, and requires the same grants and the same stored state.
func TestScriptIsTheReference(t *testing.T) {
	store := open(t, server(t).URL())
	rates := []globallimit.Rate{
		{Requests: 100, PeriodMicros: 1_000_000, Burst: 10},
		{Requests: 3, PeriodMicros: 1_000_000, Burst: 1},
		{Requests: 7, PeriodMicros: 1_000_000, Burst: 1000},
		{Requests: 1_000_000, PeriodMicros: 1_000_000, Burst: 1_000_000},
		{Requests: 1 << 20, PeriodMicros: 1 << 31, Burst: 1 << 21}, // burst*period at the 2^52 bound
		{Requests: 999_983, PeriodMicros: 3_600_000_000, Burst: 1_250_000},
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for i, r := range rates {
		key := fmt.Sprintf("{test}/%d", i)
		var ref globallimit.State
		now := int64(1_800_000_000_000_000)
		interval := max(r.PeriodMicros/r.Requests, 1)
		var last globallimit.Grant
		for step := range 600 {
			// Land on the boundaries as often as between them: exactly when the last refusal said a
			// token is back, a microsecond before, or anywhere.
			switch retry := last.RetryAfter.Microseconds(); {
			case retry > 0 && step%3 == 0:
				now += retry
			case retry > 1 && step%3 == 1:
				now += retry - 1
			default:
				now += rng.Int64N(3 * interval * min(r.Burst, 4))
			}
			want, give := rng.Int64N(r.Burst/2+3), rng.Int64N(4)
			var want0 globallimit.Grant
			var full bool
			ref, want0, full = globallimit.Take(ref, now, r, want, give)
			store.now = strconv.FormatInt(now, 10)
			got, err := store.Take(context.Background(), key, r, want, give)
			if err != nil {
				t.Fatalf("rate %+v step %d: %v", r, step, err)
			}
			last = got
			if got != want0 {
				t.Fatalf("rate %+v step %d (want %d give %d): script %+v, reference %+v", r, step, want, give, got, want0)
			}
			stored, err := do(t, store, "GET", key)
			if full {
				if !isNil(err) {
					t.Fatalf("step %d: full bucket still stored as %q (%v)", step, stored, err)
				}
				ref = globallimit.State{}
				continue
			}
			if wantState := fmt.Sprintf("%d %d", ref.Micros, ref.Frac); err != nil || stored != wantState {
				t.Fatalf("rate %+v step %d: stored %q (%v), reference %q", r, step, stored, err, wantState)
			}
		}
	}
}

func isNil(err error) bool { return errors.Is(err, redis.Nil) }

func TestStoreClock(t *testing.T) {
	store := open(t, server(t).URL())
	r := globallimit.Rate{Requests: 10, PeriodMicros: 1_000_000, Burst: 5}
	ctx := context.Background()
	g, err := store.Take(ctx, "{clock}", r, 10, 0)
	if err != nil || g.Granted != 5 || g.Remaining != 0 {
		t.Fatalf("full bucket: %+v %v", g, err)
	}
	g, err = store.Take(ctx, "{clock}", r, 1, 0)
	if err != nil || g.Granted != 0 || g.RetryAfter <= 0 || g.RetryAfter > 100*time.Millisecond {
		t.Fatalf("empty bucket: %+v %v, want a Retry-After in (0, 100ms]", g, err)
	}
	ttl, err := do(t, store, "PTTL", "{clock}")
	if n, _ := strconv.Atoi(ttl); err != nil || n <= 0 || n > 501 {
		t.Fatalf("PTTL %q %v: the key must expire when the bucket is full again (500ms)", ttl, err)
	}
	time.Sleep(time.Duration(g.RetryAfter))
	if g, err := store.Take(ctx, "{clock}", r, 1, 0); err != nil || g.Granted != 1 {
		t.Fatalf("after Retry-After: %+v %v", g, err)
	}
}

// TestBadState: a key of another type, or a value the script did not write, is an error (the
// configured onStoreError applies), never tokens.
func TestBadState(t *testing.T) {
	store := open(t, server(t).URL())
	r := globallimit.Rate{Requests: 10, PeriodMicros: 1_000_000, Burst: 5}
	for _, tc := range []struct {
		setup []string
		err   string
	}{
		{[]string{"HSET", "{bad}", "f", "v"}, "WRONGTYPE"},
		{[]string{"SET", "{bad}", "garbage"}, "corrupt bucket state"},
		{[]string{"SET", "{bad}", "12 -3"}, "corrupt bucket state"},
	} {
		_, _ = do(t, store, "DEL", "{bad}")
		if _, err := do(t, store, tc.setup...); err != nil && !isNil(err) {
			t.Fatal(err)
		}
		if _, err := store.Take(context.Background(), "{bad}", r, 1, 0); err == nil || !strings.Contains(err.Error(), tc.err) {
			t.Errorf("%v: %v, want an error with %q", tc.setup, err, tc.err)
		}
	}
}

// TestStoreDownAndBack: a killed server fails calls quickly; the same Store reaches it again when it
// is back on its address, without being reopened.
func TestStoreDownAndBack(t *testing.T) {
	srv := server(t)
	store := open(t, srv.URL())
	guard := globallimit.NewGuard(store, clock.Real{}, globallimit.GuardOptions{Budget: 100 * time.Millisecond, Probe: 50 * time.Millisecond})
	r := globallimit.Rate{Requests: 1000, PeriodMicros: 1_000_000, Burst: 1000}
	ctx := context.Background()
	if _, err := guard.Take(ctx, "{k}", r, 1, 0); err != nil {
		t.Fatal(err)
	}
	srv.Stop()
	start := time.Now()
	if _, err := guard.Take(ctx, "{k}", r, 1, 0); !errors.Is(err, globallimit.ErrUnavailable) {
		t.Fatalf("store killed: %v, want ErrUnavailable", err)
	}
	if d := time.Since(start); d > 150*time.Millisecond {
		t.Errorf("a dead store took %v to fail, beyond its 100ms budget", d)
	}
	srv2, err := redisserver.Start(ctx, srv.Addr, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv2.Stop)
	deadline := time.Now().Add(2 * time.Second)
	for {
		_, err := guard.Take(ctx, "{k}", r, 1, 0)
		if err == nil && guard.Available() {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("store back for 2s, still failing: %v", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestHostileServer: something else on the port (garbage, or silence) is a failed call within the
// budget, never a crash or a grant.
func TestHostileServer(t *testing.T) {
	for _, tc := range []struct {
		name  string
		reply func(w *bufio.Writer)
	}{
		{"garbage", func(w *bufio.Writer) { _, _ = w.WriteString("HTTP/1.1 400 Bad Request\r\n\r\n") }},
		{"integers where an array is due", func(w *bufio.Writer) { _, _ = w.WriteString(":5\r\n") }},
		{"huge grant", func(w *bufio.Writer) { _, _ = w.WriteString("*3\r\n:999999\r\n:0\r\n:0\r\n") }},
		{"silence", func(*bufio.Writer) {}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			addr := fakeServer(t, tc.reply)
			store, err := Open(Options{URL: "redis://" + addr})
			if err != nil {
				t.Fatal(err)
			}
			defer store.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
			defer cancel()
			g, err := store.Take(ctx, "{k}", globallimit.Rate{Requests: 10, PeriodMicros: 1_000_000, Burst: 5}, 1, 0)
			if err == nil {
				t.Fatalf("granted %+v", g)
			}
		})
	}
}

// fakeServer answers every line it reads with reply.
func fakeServer(t *testing.T, reply func(*bufio.Writer)) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer func() { _ = c.Close() }()
				r, w := bufio.NewReader(c), bufio.NewWriter(c)
				for {
					if _, err := r.ReadString('\n'); err != nil {
						return
					}
					reply(w)
					if w.Flush() != nil {
						return
					}
				}
			}()
		}
	}()
	return l.Addr().String()
}

func TestOptions(t *testing.T) {
	dir := t.TempDir()
	pw := dir + "/pw"
	if err := os.WriteFile(pw, []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	opt, err := clientOptions(Options{URL: "redis://127.0.0.1:6379/2", PasswordFile: pw})
	if err != nil || opt.Password != "s3cret" || opt.DB != 2 || opt.TLSConfig != nil {
		t.Fatalf("%+v %v", opt, err)
	}
	for _, tc := range []struct {
		o   Options
		err string
	}{
		{Options{URL: "http://x"}, "--store-url http://x"},
		{Options{URL: "redis://x:1", CAFile: pw}, "needs a rediss://"},
		{Options{URL: "rediss://x:1", CAFile: pw}, "no PEM certificate"},
		{Options{URL: "redis://x:1", PasswordFile: dir + "/missing"}, "--store-password-file"},
		{Options{URL: "ftp://user:pw@x"}, "ftp://…@x"},
	} {
		if _, err := clientOptions(tc.o); err == nil || !strings.Contains(err.Error(), tc.err) {
			t.Errorf("%+v: %v, want %q", tc.o, err, tc.err)
		}
	}
}

func FuzzParseReply(f *testing.F) {
	f.Add(int64(1), int64(4), int64(0), int64(1), 3)
	f.Add(int64(0), int64(0), int64(100_000), int64(1), 3)
	f.Add(int64(-1), int64(-1), int64(-1), int64(5), 2)
	r := globallimit.Rate{Requests: 10, PeriodMicros: 1_000_000, Burst: 5}
	f.Fuzz(func(t *testing.T, granted, remaining, retry, want int64, n int) {
		reply := []int64{granted, remaining, retry}
		if n >= 0 && n < 3 {
			reply = reply[:n]
		}
		g, err := parseReply(reply, r, want)
		if err != nil {
			return
		}
		if g.Granted < 0 || g.Granted > max(want, 0) || g.Remaining < 0 || g.Remaining > r.Burst || g.RetryAfter < 0 {
			t.Fatalf("accepted %v as %+v", reply, g)
		}
	})
}
