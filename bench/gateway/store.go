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
	"bufio"
	"fmt"
	"net/http"
	"strconv"
	"strings"
)

// StoreFigures are the Global configuration's costs in the store, as the gateway process counted them.
type StoreFigures struct {
	Requests        float64 `json:"requests"`   // requests the gateway answered for Service global
	Calls           float64 `json:"storeCalls"` // calls made to the store (not those skipped while down)
	CallsPerRequest float64 `json:"storeCallsPerRequest"`
	Errors          float64 `json:"storeErrors"`
}

// storeFigures reads the gateway process's metrics.
func storeFigures(metricsAddr string) (*StoreFigures, error) {
	resp, err := http.Get("http://" + metricsAddr + "/metrics")
	if err != nil {
		return nil, fmt.Errorf("read the gateway's metrics: %w", err)
	}
	defer resp.Body.Close()
	f := &StoreFigures{}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		fields := strings.Fields(line)
		if len(fields) < 2 {
			continue
		}
		v, err := strconv.ParseFloat(fields[len(fields)-1], 64)
		if err != nil {
			continue
		}
		switch {
		case strings.HasPrefix(line, "resilience_gateway_requests_total{") && strings.Contains(line, `target_service="global"`):
			f.Requests += v
		case strings.HasPrefix(line, "resilience_gateway_store_calls_total{") && !strings.Contains(line, `outcome="skipped"`):
			f.Calls += v
			if strings.Contains(line, `outcome="error"`) {
				f.Errors += v
			}
		}
	}
	if f.Requests == 0 {
		return nil, fmt.Errorf("the gateway counted no request to Service global")
	}
	f.CallsPerRequest = f.Calls / f.Requests
	return f, sc.Err()
}

// globalGoals are the goals for a Global limit against the same limit PerReplica.
func globalGoals(figs []Figures, st *StoreFigures, rate float64) []Goal {
	g, l := byName(figs, "gateway-global-limit"), byName(figs, "gateway-perreplica-limit")
	ratio := g.RPS / l.RPS
	return []Goal{
		{Goal: fmt.Sprintf("Global limit: p99 at %.0f req/s at most 0.3 ms above PerReplica", rate),
			Actual: fmt.Sprintf("%+.0f us", g.P99us-l.P99us), Met: g.P99us-l.P99us <= 300},
		{Goal: "Global limit: req/s >= 0.8x PerReplica", Actual: fmt.Sprintf("%.2fx", ratio), Met: ratio >= 0.8},
		{Goal: "Global limit far from empty: store calls per request well under 0.1",
			Actual: fmt.Sprintf("%.5f (%.0f calls, %.0f errors, %.0f requests)", st.CallsPerRequest, st.Calls, st.Errors, st.Requests),
			Met:    st.CallsPerRequest < 0.01},
	}
}
