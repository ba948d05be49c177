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

package observe

import (
	"strings"
	"testing"
	"time"
)

const dashboardPath = "../../config/grafana/resilience-operator.json"

// TestDashboardQueriesMatchTheBinaries: every query of the Grafana dashboard parses with the
// Prometheus parser and names only metrics, labels and label values that the running manager and
// gateway expose once traffic has gone through a policy of each kind.
func TestDashboardQueriesMatchTheBinaries(t *testing.T) {
	qs, err := readDashboard(dashboardPath)
	if err != nil {
		t.Fatal(err)
	}
	if len(qs) < 20 {
		t.Fatalf("the dashboard has %d queries; the test reads fewer than it should", len(qs))
	}
	traffic(t)
	// Gateways report breaker transitions to the manager asynchronously: scrape until every query is
	// satisfied or 15 seconds have passed, then report what is still wrong.
	var problems []string
	var ex exposed
	deadline := time.Now().Add(15 * time.Second)
	for {
		ex = exposed{}
		for _, addr := range []string{harness.Opts.ManagerMetrics, harness.Opts.GatewayMetrics} {
			if err := scrape("http://"+addr+"/metrics", ex); err != nil {
				t.Fatal(err)
			}
		}
		problems = problems[:0]
		for _, q := range qs {
			problems = append(problems, check(q, ex)...)
		}
		if len(problems) == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if len(problems) > 0 {
		t.Errorf("%d problems in %s:\n%s", len(problems), dashboardPath, strings.Join(problems, "\n"))
	}
	t.Logf("%d queries checked against %d series names scraped from the manager and the gateway", len(qs), len(ex))
}

// TestCheckFindsMistakes: the checker itself reports each kind of mistake, so that the test above
// cannot pass by checking nothing.
func TestCheckFindsMistakes(t *testing.T) {
	ex := exposed{}
	ex.add("resilience_gateway_requests_total", nil, "target_namespace", "shop", "target_service", "api", "code", "200")
	ex.add("resilience_gateway_upstream_duration_seconds_bucket", nil, "target_namespace", "shop", "target_service", "api", "le", "0.1")
	good := []query{
		{where: "ok", expr: `sum by (target_service, code) (rate(resilience_gateway_requests_total{target_namespace=~"$namespace", code="200"}[$__rate_interval]))`, legend: "{{target_service}} {{code}}"},
		{where: "ok", expr: `histogram_quantile(0.9, sum by (le, target_service) (rate(resilience_gateway_upstream_duration_seconds_bucket[5m])))`, legend: "{{target_service}}"},
		{where: "ok", expr: `resilience_gateway_requests_total`, legend: "{{pod}}"},
		{where: "ok", expr: `resilience_gateway_requests_total`, labelValues: "target_namespace"},
	}
	for _, q := range good {
		if p := check(q, ex); len(p) > 0 {
			t.Errorf("a correct query was refused: %v", p)
		}
	}
	bad := map[string]query{
		"parse error":          {expr: `sum(rate(resilience_gateway_requests_total[5m])`},
		"unknown metric":       {expr: `rate(resilience_gateway_request_total[5m])`},
		"colliding label":      {expr: `resilience_gateway_requests_total{namespace="shop"}`},
		"grouping label":       {expr: `sum by (service) (resilience_gateway_requests_total)`},
		"matching label":       {expr: `resilience_gateway_requests_total / on (service) resilience_gateway_requests_total`},
		"unseen value":         {expr: `resilience_gateway_requests_total{code="999"}`},
		"legend after sum":     {expr: `sum(resilience_gateway_requests_total)`, legend: "{{target_service}}"},
		"unknown variable":     {expr: `resilience_gateway_requests_total{code=~"$code"}`},
		"label_values label":   {expr: `resilience_gateway_requests_total`, labelValues: "service"},
		"le after quantile":    {expr: `histogram_quantile(0.9, sum by (le) (resilience_gateway_upstream_duration_seconds_bucket))`, legend: "{{le}}"},
		"histogram base name":  {expr: `resilience_gateway_upstream_duration_seconds`},
		"regexp matching none": {expr: `resilience_gateway_requests_total{code=~"5.."}`},
	}
	for name, q := range bad {
		q.where = name
		if p := check(q, ex); len(p) == 0 {
			t.Errorf("%s: %q passed the check", name, q.expr)
		}
	}
}
