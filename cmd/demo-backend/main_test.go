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
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestBackend(t *testing.T) {
	cases := []struct {
		desc       string
		flags      flags
		random     float64 // what the random source returns
		target     string
		wantCode   int
		wantRA     string
		wantBody   string
		minElapsed time.Duration
	}{
		{desc: "plain OK", target: "/", wantCode: 200, wantBody: "ok test"},
		{desc: "any path is OK", target: "/items/42", wantCode: 200, wantBody: "ok test"},
		{desc: "/fail fails every request", target: "/fail", wantCode: 500, wantBody: "failing on purpose"},
		{desc: "/fail with a code", target: "/fail?code=503", wantCode: 503},
		{desc: "rate 0.5, draw below", target: "/fail?rate=0.5", random: 0.49, wantCode: 500},
		{desc: "rate 0.5, draw above", target: "/fail?rate=0.5", random: 0.5, wantCode: 200},
		{desc: "rate 0 never fails", target: "/fail?rate=0", random: 0, wantCode: 200},
		{desc: "/unavailable: 503 with Retry-After", target: "/unavailable", wantCode: 503, wantRA: "1"},
		{desc: "/unavailable with retry-after", target: "/unavailable?retry-after=7", wantCode: 503, wantRA: "7"},
		{desc: "/slow with d", target: "/slow?d=30ms", wantCode: 200, minElapsed: 30 * time.Millisecond},
		{desc: "d on any path", target: "/?d=20ms&rate=1&code=502", wantCode: 502, minElapsed: 20 * time.Millisecond},
		{desc: "flags set the defaults", flags: flags{failRate: 1, failCode: 504, delay: 10 * time.Millisecond},
			target: "/", wantCode: 504, minElapsed: 10 * time.Millisecond},
		{desc: "query overrides the flags", flags: flags{failRate: 1}, target: "/?rate=0", wantCode: 200},
		{desc: "healthz ignores the flags", flags: flags{failRate: 1, delay: time.Hour}, target: "/healthz", wantCode: 200},
		{desc: "bad rate", target: "/fail?rate=2", wantCode: 400},
		{desc: "bad d", target: "/slow?d=forever", wantCode: 400},
		{desc: "d too long", target: "/slow?d=1h", wantCode: 400},
		{desc: "bad code", target: "/fail?code=99", wantCode: 400},
		{desc: "bad retry-after", target: "/unavailable?retry-after=soon", wantCode: 400},
	}
	for _, tc := range cases {
		t.Run(tc.desc, func(t *testing.T) {
			b := &backend{flags: tc.flags, random: func() float64 { return tc.random }}
			b.name = "test"
			srv := httptest.NewServer(b)
			defer srv.Close()
			start := time.Now()
			resp, err := http.Get(srv.URL + tc.target)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			elapsed := time.Since(start)
			raw, _ := io.ReadAll(resp.Body)
			body := string(raw)
			if resp.StatusCode != tc.wantCode {
				t.Errorf("status %d, want %d (body %q)", resp.StatusCode, tc.wantCode, body)
			}
			if got := resp.Header.Get("Retry-After"); got != tc.wantRA {
				t.Errorf("Retry-After %q, want %q", got, tc.wantRA)
			}
			if got := resp.Header.Get("X-Backend"); got != "test" {
				t.Errorf("X-Backend %q, want test", got)
			}
			if !strings.Contains(body, tc.wantBody) {
				t.Errorf("body %q lacks %q", body, tc.wantBody)
			}
			if elapsed < tc.minElapsed {
				t.Errorf("answered after %s, want at least %s", elapsed, tc.minElapsed)
			}
		})
	}
}

func TestSlowEndsWhenTheClientLeaves(t *testing.T) {
	b := &backend{flags: flags{name: "test"}}
	srv := httptest.NewServer(b)
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+"/slow?d=1m", nil)
	start := time.Now()
	if resp, err := http.DefaultClient.Do(req); err == nil {
		resp.Body.Close()
		t.Fatal("a 1-minute request answered within 50ms")
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Fatalf("the client waited %s", took)
	}
}

func TestStatsCountRequestsAndFailures(t *testing.T) {
	b := &backend{flags: flags{name: "test"}}
	srv := httptest.NewServer(b)
	defer srv.Close()
	for _, path := range []string{"/", "/fail", "/fail", "/healthz", "/unavailable"} {
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	resp, err := http.Get(srv.URL + "/stats")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var got map[string]int64
	if err := json.NewDecoder(resp.Body).Decode(&got); err != nil {
		t.Fatal(err)
	}
	if got["requests"] != 4 || got["failures"] != 3 {
		t.Errorf("stats %v, want 4 requests (healthz and stats not counted) and 3 failures", got)
	}
}
