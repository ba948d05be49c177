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

package server

import "github.com/prometheus/client_golang/prometheus"

// Metrics of the manager's side of the stream.
var (
	metricReplicas = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "resilience_manager_gateway_replicas", Help: "Gateway replicas with a stream open to this manager replica.",
	})
	metricVersion = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "resilience_manager_snapshot_version", Help: "Version of the latest snapshot this manager replica published.",
	})
	metricBytes = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "resilience_manager_snapshot_bytes", Help: "Encoded size of the latest snapshot.",
	})
	metricRefused = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "resilience_manager_snapshot_refusals_total", Help: "Snapshots a gateway refused (it kept its last good one).",
	})
	metricStreamsRefused = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "resilience_manager_unauthenticated_streams_total", Help: "Stream requests refused for want of a gateway's token.",
	})
	metricBreakerChanges = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "resilience_manager_breaker_transitions_total", Help: "Breaker transitions reported by gateways, by new state.",
	}, []string{"to"})
)

// RegisterMetrics registers the stream's metrics (the manager passes controller-runtime's registry).
func RegisterMetrics(reg prometheus.Registerer) error {
	for _, c := range []prometheus.Collector{metricReplicas, metricVersion, metricBytes, metricRefused, metricStreamsRefused, metricBreakerChanges} {
		if err := reg.Register(c); err != nil {
			return err
		}
	}
	return nil
}
