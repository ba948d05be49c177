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
	"fmt"
	"net/http"
	"sync"
	"time"

	"resilience.dev/operator/internal/localstack"
	"resilience.dev/operator/internal/redisserver"
)

// The Global step's numbers: a limit of 10/s with a burst of 5, offered 20 req/s for 3 s, 9 of every
// 10 requests to the first replica. Split would give each of the two replicas 5/s with a burst of 2:
// the first admits 5/s, the second only what it is offered (2/s), about 26 in all.
const (
	glRequests = 10
	glBurst    = 5
	glRate     = 20
	glSeconds  = 3
)

// startStore starts redis-server for the Global step when it is installed; the gateways get its URL.
func (d *demo) startStore(ctx context.Context) []string {
	if !redisserver.Installed() {
		return nil
	}
	srv, err := redisserver.Start(ctx, "127.0.0.1:0", d.syncLog())
	if err != nil {
		fmt.Printf("\n(redis-server did not start: %v; the Global step will not run)\n", err)
		return nil
	}
	d.store = srv
	return []string{"--store-url=" + srv.URL()}
}

// globalLimit shows one bucket shared by two gateway replicas with uneven traffic.
func (d *demo) globalLimit(ctx context.Context, st *step) error {
	if d.store == nil {
		fmt.Println("   not run: redis-server is not installed (apt-get install redis-server); Global limits need a store")
		return nil
	}
	second, err := d.startSecondReplica(ctx)
	if err != nil {
		return err
	}
	be, err := d.startBackend(ctx, "tickets", "127.0.0.1:0")
	if err != nil {
		return err
	}
	manifest := localstack.LocalService("shop", "tickets", be.port()) + fmt.Sprintf(`---
apiVersion: resilience.dev/v1alpha1
kind: RateLimit
metadata: {name: tickets, namespace: shop}
spec:
  targetRefs: [{name: tickets}]
  distribution: Global
  limits: [{name: total, requests: %d, period: 1s, burst: %d}]
`, glRequests, glBurst)
	fmt.Printf("   A second gateway replica on %s shares the store %s with the first.\n", second, d.store.URL())
	fmt.Printf("   RateLimit tickets: distribution Global, %d requests/s, burst %d.\n", glRequests, glBurst)
	if _, err := d.kubectl(ctx, manifest, "apply", "--server-side", "-f", "-"); err != nil {
		return cause(ctx, err)
	}
	if err := waitFor(ctx, 20*time.Second, func() bool {
		out, err := d.kubectl(ctx, "", "get", "ratelimit", "tickets", "-n", "shop", "-o",
			`jsonpath={.status.conditions[?(@.type=="Programmed")].message} {.status.conditions[?(@.type=="StoreAvailable")].status}`)
		return err == nil && out == "2/2 gateway replicas True"
	}); err != nil {
		return fmt.Errorf("RateLimit tickets not Programmed on both replicas with StoreAvailable: %w", cause(ctx, err))
	}
	out, _ := d.kubectl(ctx, "", "get", "ratelimit", "tickets", "-n", "shop", "-o", "wide")
	fmt.Print(indent("$ kubectl get ratelimit tickets -n shop -o wide\n" + out))
	return d.globalTraffic(ctx, st, second)
}

// globalTraffic offers glRate req/s for glSeconds, 9 of 10 to the first replica, and checks that the
// two admit what one bucket allows.
func (d *demo) globalTraffic(ctx context.Context, st *step, second string) error {
	n := glRate * glSeconds
	codes := make([]int, n)
	var wg sync.WaitGroup
	start := time.Now()
	for i := range n {
		if err := pause(ctx, time.Until(start.Add(time.Duration(i)*time.Second/glRate))); err != nil {
			return err
		}
		addr := d.gateway
		if i%10 == 9 {
			addr = second
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if r, err := d.do(ctx, http.MethodGet, "http://"+addr+"/", "tickets.shop", nil); err == nil {
				codes[i] = r.code
			}
		}()
	}
	wg.Wait()
	span := time.Since(start).Seconds()
	admitted, refused := 0, 0
	for _, c := range codes {
		switch c {
		case http.StatusOK:
			admitted++
		case http.StatusTooManyRequests:
			refused++
		}
	}
	ideal := glBurst + glRequests*span
	fmt.Printf("   %d requests in %.1fs, 90%% to one replica: %d admitted, %d refused (429), %d other\n",
		n, span, admitted, refused, n-admitted-refused)
	st.check(float64(admitted) >= 0.9*ideal && float64(admitted) <= ideal+2 && admitted+refused == n, "global count",
		"admitted %d of the %.0f one shared bucket allows (burst + requests*T); Split would admit about 26 here", admitted, ideal)
	return nil
}

// startSecondReplica starts a second gateway replica with the store and waits until it is ready.
func (d *demo) startSecondReplica(ctx context.Context) (string, error) {
	a := localstack.GatewayAddrs{Listen: localstack.FreeAddr(), Health: localstack.FreeAddr(), Metrics: localstack.FreeAddr()}
	if err := d.stack.StartGatewayAs("gateway-b", a, "--store-url="+d.store.URL()); err != nil {
		return "", err
	}
	if err := waitFor(ctx, 30*time.Second, func() bool { return httpOK("http://" + a.Health + "/readyz") }); err != nil {
		return "", fmt.Errorf("the second gateway replica did not become ready: %w", cause(ctx, err))
	}
	return a.Listen, nil
}
