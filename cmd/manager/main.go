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
// Command manager runs the resilience operator's control plane: the reconcilers that validate RateLimit,
// CircuitBreaker and RetryPolicy objects and write their status, the snapshot builder, and the
// distribution server that streams snapshots to the gateways.
package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	toolscache "k8s.io/client-go/tools/cache"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	"sigs.k8s.io/controller-runtime/pkg/metrics"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"resilience.dev/operator/api/v1alpha1"
	"resilience.dev/operator/internal/capture"
	"resilience.dev/operator/internal/controller"
	"resilience.dev/operator/internal/distribution"
	"resilience.dev/operator/internal/distribution/server"
)

// +kubebuilder:rbac:groups=authentication.k8s.io,resources=tokenreviews,verbs=create
// +kubebuilder:rbac:groups="",namespace=resilience-system,resources=secrets,verbs=get;create
// +kubebuilder:rbac:groups="",namespace=resilience-system,resources=configmaps,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups=coordination.k8s.io,namespace=resilience-system,resources=leases,verbs=get;list;watch;create;update;patch;delete

type config struct {
	metricsAddr, probeAddr, streamAddr string
	pprofAddr                          string
	leaderElect                        bool
	leaseDuration, renewDeadline       time.Duration
	retryPeriod                        time.Duration
	namespace                          string // the operator's own
	gatewaySA                          string // name or namespace/name
	caSecret                           string // name or namespace/name
	certHosts                          string
	writeCAFile                        string
	tlsCertFile, tlsKeyFile            string
	replica                            string
	gatewayService                     string // name or namespace/name
	captureRange                       string
}

func main() {
	var c config
	flag.StringVar(&c.metricsAddr, "metrics-bind-address", ":8080", "address the Prometheus metrics endpoint binds to; 0 disables it")
	flag.StringVar(&c.pprofAddr, "pprof-bind-address", "0", "address Go's profiler (/debug/pprof/) binds to; 0 disables it")
	flag.StringVar(&c.probeAddr, "health-probe-bind-address", ":8081", "address the /healthz and /readyz endpoints bind to")
	flag.StringVar(&c.streamAddr, "distribution-bind-address", ":9443", "address the gateways' snapshot stream (TLS) binds to")
	flag.BoolVar(&c.leaderElect, "leader-elect", false, "elect a leader, so that only one manager replica writes status")
	flag.DurationVar(&c.leaseDuration, "leader-elect-lease-duration", 15*time.Second, "how long a standby replica waits before taking over from a leader that stopped renewing")
	flag.DurationVar(&c.renewDeadline, "leader-elect-renew-deadline", 10*time.Second, "how long the leader keeps retrying a renewal before it gives up leadership")
	flag.DurationVar(&c.retryPeriod, "leader-elect-retry-period", 2*time.Second, "how often replicas try to acquire or renew the lease")
	flag.StringVar(&c.namespace, "namespace", os.Getenv("POD_NAMESPACE"), "the operator's namespace, where names without a namespace below are resolved (unset: $POD_NAMESPACE, which the manifests set from the pod)")
	flag.StringVar(&c.gatewaySA, "gateway-service-account", "resilience-gateway", "ServiceAccount gateways authenticate as: name (in --namespace) or namespace/name")
	flag.StringVar(&c.gatewayService, "gateway-service", "resilience-gateway", "the gateway's Service, whose EndpointSlices list the gateway pods that front Services are pointed at: name (in --namespace) or namespace/name")
	flag.StringVar(&c.captureRange, "capture-range", capture.DefaultRange.String(), "ports the gateway listens on for captured traffic, first-last; capture ports of front Services are allocated from it (the gateway's --capture-range must be the same)")
	flag.StringVar(&c.caSecret, "ca-secret", "resilience-distribution-ca", "Secret holding the stream's CA (created when absent), with the ConfigMap of its certificate beside it: name (in --namespace) or namespace/name")
	flag.StringVar(&c.certHosts, "distribution-hosts", "", "comma-separated names and IPs in the stream's serving certificate (unset: "+defaultHosts("<namespace>")+")")
	host, _ := os.Hostname()
	flag.StringVar(&c.replica, "replica", envOr("POD_NAME", host), "this manager replica's name, owner of the gateway states it shares")
	flag.StringVar(&c.tlsCertFile, "tls-cert-file", "", "serve the stream with this certificate (PEM, RSA or ECDSA; e.g. cert-manager's tls.crt) instead of one from the built-in CA; reloaded when it changes")
	flag.StringVar(&c.tlsKeyFile, "tls-key-file", "", "the key of --tls-cert-file (e.g. cert-manager's tls.key)")
	flag.StringVar(&c.writeCAFile, "write-ca-file", "", "also write the CA certificate to this file (local mode: the gateway reads it)")
	opts := zap.Options{}
	opts.BindFlags(flag.CommandLine)
	showVersion := flag.Bool("version", false, "print the version and exit")
	flag.Parse()
	if *showVersion {
		printVersion(os.Stdout)
		return
	}
	ctrl.SetLogger(zap.New(zap.UseFlagOptions(&opts)))

	if err := run(c); err != nil {
		ctrl.Log.Error(err, "manager stopped")
		os.Exit(1)
	}
}

func run(c config) error {
	saNS, saName, caNS, caName, err := resolveNamespace(&c)
	if err != nil {
		return err
	}
	mgr, err := newManager(c, caNS)
	if err != nil {
		return err
	}
	ctx := ctrl.SetupSignalHandler()
	getCert, err := servingCert(ctx, mgr, c, caNS, caName)
	if err != nil {
		return err
	}
	if err := server.RegisterMetrics(metrics.Registry); err != nil {
		return fmt.Errorf("register metrics: %w", err)
	}
	store := &server.ConfigMapStore{Client: mgr.GetClient(), Reader: mgr.GetCache(), Namespace: caNS}
	srv := server.NewServer(&server.TokenReviewAuthenticator{
		Client: mgr.GetClient(), Namespace: saNS, ServiceAccount: saName}, store, c.replica, ctrl.Log.WithName("distribution"))
	capt, err := captureConfig(c)
	if err != nil {
		return err
	}
	if err := wire(ctx, mgr, srv, capt); err != nil {
		return err
	}
	if err := mgr.Add(streamServer(c.streamAddr, srv, getCert)); err != nil {
		return err
	}
	if err := mgr.AddHealthzCheck("healthz", healthz.Ping); err != nil {
		return fmt.Errorf("add health check: %w", err)
	}
	if err := mgr.AddReadyzCheck("readyz", healthz.Ping); err != nil {
		return fmt.Errorf("add ready check: %w", err)
	}
	ctrl.Log.Info("starting manager", "stream", c.streamAddr)
	return mgr.Start(ctx)
}

// newManager makes the controller-runtime manager, its cache and its leader election.
func newManager(c config, caNS string) (ctrl.Manager, error) {
	scheme := runtime.NewScheme()
	utilruntime.Must(clientgoscheme.AddToScheme(scheme))
	utilruntime.Must(v1alpha1.AddToScheme(scheme))
	cfg, err := ctrl.GetConfig()
	if err != nil {
		return nil, fmt.Errorf("load kubeconfig: %w", err)
	}
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme: scheme,
		// The only ConfigMaps the manager watches are the gateway states in its own namespace.
		Cache: cache.Options{
			// managedFields are often the larger part of a small object, and nothing here reads them
			// from the cache, which holds every policy, Service and EndpointSlice of the cluster.
			DefaultTransform: cache.TransformStripManagedFields(),
			ByObject: map[client.Object]cache.ByObject{&corev1.ConfigMap{}: {
				Namespaces: map[string]cache.Config{caNS: {}},
				Label:      labels.SelectorFromSet(labels.Set{server.StateLabel: "true"}),
			}}},
		Metrics:                metricsserver.Options{BindAddress: c.metricsAddr},
		HealthProbeBindAddress: c.probeAddr,
		PprofBindAddress:       c.pprofAddr,
		LeaderElection:         c.leaderElect,
		LeaderElectionID:       "resilience-operator.resilience.dev",
		// The lease lives beside the CA Secret, in the operator's own namespace, in a cluster or not.
		LeaderElectionNamespace:       caNS,
		LeaseDuration:                 &c.leaseDuration,
		RenewDeadline:                 &c.renewDeadline,
		RetryPeriod:                   &c.retryPeriod,
		LeaderElectionReleaseOnCancel: true,
	})
	if err != nil {
		return nil, fmt.Errorf("create manager: %w", err)
	}
	return mgr, nil
}

// wire joins the feedback loop: the snapshot builder publishes through the distribution server; the
// server's view of the gateways (acks, replicas, breaker transitions) requeues the reconcilers,
// retriggers the builder (Split limits depend on the replica count) and records breaker Events.
func wire(ctx context.Context, mgr ctrl.Manager, srv *server.Server, capt *controller.CaptureReconciler) error {
	if err := mgr.Add(srv); err != nil {
		return err
	}
	if err := mgr.Add(watchGatewayStates(mgr.GetCache(), srv)); err != nil {
		return err
	}
	notifier, err := controller.SetupAll(mgr, controller.Options{Programmed: srv, Breakers: srv, Store: srv,
		Recorder: mgr.GetEventRecorder("resilience-manager")})
	if err != nil {
		return err
	}
	capt.Client, capt.Recorder = mgr.GetClient(), mgr.GetEventRecorder("resilience-manager")
	if err := capt.SetupWithManager(mgr); err != nil {
		return fmt.Errorf("set up the capture reconciler: %w", err)
	}
	builder := (&controller.SnapshotBuilder{Cache: mgr.GetCache(), Publisher: srv, CaptureRange: capt.Range}).Init()
	if err := mgr.Add(builder); err != nil {
		return err
	}
	breakerEvents := &controller.BreakerEventRecorder{Client: mgr.GetClient(), Recorder: mgr.GetEventRecorder("resilience-manager")}
	srv.OnChange = notifier.Poke
	srv.OnReplicas = func(int) { builder.Trigger() }
	srv.OnBreaker = func(replica string, ch distribution.BreakerChange) { breakerEvents.Record(ctx, replica, ch) }
	return nil
}

// watchGatewayStates tells the server when any manager replica changed a gateway's shared state.
func watchGatewayStates(c cache.Cache, srv *server.Server) manager.Runnable {
	return everyReplica(func(ctx context.Context) error {
		inf, err := c.GetInformer(ctx, &corev1.ConfigMap{})
		if err != nil {
			return fmt.Errorf("watch gateway states: %w", err)
		}
		if _, err := inf.AddEventHandler(toolscache.ResourceEventHandlerFuncs{
			AddFunc:    func(any) { srv.StoreChanged() },
			UpdateFunc: func(any, any) { srv.StoreChanged() },
			DeleteFunc: func(any) { srv.StoreChanged() },
		}); err != nil {
			return fmt.Errorf("watch gateway states: %w", err)
		}
		<-ctx.Done()
		return nil
	})
}

// everyReplica is a Runnable that runs on every manager replica, leader or not. A bare RunnableFunc
// would wait for leadership, and a standby replica would then not serve the gateways.
type everyReplica manager.RunnableFunc

func (f everyReplica) Start(ctx context.Context) error { return f(ctx) }
func (everyReplica) NeedLeaderElection() bool          { return false }

// streamServer serves the gateways' stream over TLS (HTTP/2) on every replica, leader or not.
func streamServer(addr string, h http.Handler, getCert func(*tls.ClientHelloInfo) (*tls.Certificate, error)) manager.Runnable {
	return everyReplica(func(ctx context.Context) error {
		srv := &http.Server{
			Addr:              addr,
			Handler:           h,
			ReadHeaderTimeout: 10 * time.Second,
			TLSConfig:         &tls.Config{GetCertificate: getCert, MinVersion: tls.VersionTLS12, NextProtos: []string{"h2"}},
		}
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			return fmt.Errorf("listen %s: %w", addr, err)
		}
		go func() {
			<-ctx.Done()
			shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_ = srv.Shutdown(shutdown)
		}()
		if err := srv.ServeTLS(ln, "", ""); err != nil && !errors.Is(err, http.ErrServerClosed) {
			return err
		}
		return nil
	})
}

func envOr(key, dflt string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return dflt
}
