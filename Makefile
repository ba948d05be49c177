# Image names used by docker-build, kind-load and deploy.
MANAGER_IMG ?= resilience-operator/manager:dev
GATEWAY_IMG ?= resilience-operator/gateway:dev

# Kubernetes version of the envtest control plane (kube-apiserver and etcd).
ENVTEST_K8S_VERSION ?= 1.37.2

SHELL = /usr/bin/env bash -o pipefail
.SHELLFLAGS = -ec

LOCALBIN ?= $(shell pwd)/bin
CONTROLLER_GEN ?= $(LOCALBIN)/controller-gen
CONTROLLER_TOOLS_VERSION ?= v0.23.0
KUBECTL ?= kubectl
# VERSION is what --version prints and the images are labelled with.
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
GO_LDFLAGS = -X main.version=$(VERSION)
GO_TEST_FLAGS ?= -race -count=1

.PHONY: all
all: build

##@ General

.PHONY: help
help: ## Display this help.
	@awk 'BEGIN {FS = ":.*##"; printf "\nUsage:\n  make \033[36m<target>\033[0m\n"} /^[a-zA-Z_0-9-]+:.*?##/ { printf "  \033[36m%-18s\033[0m %s\n", $$1, $$2 } /^##@/ { printf "\n\033[1m%s\033[0m\n", substr($$0, 5) } ' $(MAKEFILE_LIST)

##@ Development

.PHONY: manifests
manifests: controller-gen ## Generate CRDs and RBAC from the markers in api/ and internal/controller/.
	$(CONTROLLER_GEN) rbac:roleName=manager-role crd paths="./api/..." paths="./internal/controller/..." paths="./cmd/..." output:crd:artifacts:config=config/crd/bases output:rbac:artifacts:config=config/rbac

.PHONY: generate
generate: controller-gen ## Generate deepcopy code.
	$(CONTROLLER_GEN) object:headerFile="hack/boilerplate.go.txt" paths="./api/..."

.PHONY: verify
verify: manifests generate ## Fail when a generated file differs from what manifests and generate produce.
	@if [ -n "$$(git status --porcelain -- api config)" ]; then \
		echo "generated files are out of date; run 'make manifests generate' and commit:"; \
		git status --porcelain -- api config; git --no-pager diff --stat -- api config; exit 1; \
	fi

.PHONY: fmt
fmt: ## Run go fmt.
	go fmt ./...

.PHONY: vet
vet: ## Run go vet.
	go vet ./...

.PHONY: test
test: manifests generate fmt vet setup-envtest ## Run every test (unit, envtest) on a real kube-apiserver and etcd.
	KUBEBUILDER_ASSETS="$(LOCALBIN)/k8s" RESILIENCE_REQUIRE_KCM=1 go test $(GO_TEST_FLAGS) ./...

.PHONY: test-reliability
test-reliability: setup-envtest ## Faults, soak (RELIABILITY_SOAK, default 5m), hostile input and trust, on the real binaries.
	KUBEBUILDER_ASSETS="$(LOCALBIN)/k8s" go test -tags reliability -count=1 -timeout 30m -v ./test/reliability/ 2>&1 | tee $(LOCALBIN)/reliability.txt

FUZZ_TIME ?= 10s

.PHONY: fuzz
fuzz: ## Run every fuzz target for FUZZ_TIME each (host parsing, status codes, snapshots, header values).
	@set -e; for file in $$(grep -rl --include='*_test.go' '^func Fuzz' .); do \
		for f in $$(sed -n 's/^func \(Fuzz[A-Za-z0-9_]*\)(.*/\1/p' $$file); do \
			echo "== $$(dirname $$file) $$f"; go test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZ_TIME) ./$$(dirname $$file); \
		done; \
	done

.PHONY: bench
bench: ## Benchmark the patterns beside their anchor libraries and print a ratio table.
	@mkdir -p $(LOCALBIN)
	go test -run '^$$' -bench . -benchmem -count=$${BENCH_COUNT:-3} ./internal/patterns/... | tee $(LOCALBIN)/bench.txt
	go run ./bench/table -json $(LOCALBIN)/bench.json < $(LOCALBIN)/bench.txt

##@ Build

.PHONY: build
build: manifests generate fmt vet ## Build the manager and gateway binaries.
	go build -ldflags "$(GO_LDFLAGS)" -o $(LOCALBIN)/manager ./cmd/manager
	go build -ldflags "$(GO_LDFLAGS)" -o $(LOCALBIN)/gateway ./cmd/gateway

.PHONY: run
run: manifests generate fmt vet ## Run the manager against the cluster of the current kubeconfig.
	go run ./cmd/manager

CONTAINER_TOOL ?= docker
KIND ?= kind
KIND_CLUSTER ?= resilience

.PHONY: docker-build
docker-build: ## Build the manager and gateway images, MANAGER_IMG and GATEWAY_IMG (needs a Docker engine).
	$(CONTAINER_TOOL) build --build-arg VERSION=$(VERSION) --build-arg REVISION=$$(git rev-parse HEAD 2>/dev/null) --target manager -t $(MANAGER_IMG) .
	$(CONTAINER_TOOL) build --build-arg VERSION=$(VERSION) --build-arg REVISION=$$(git rev-parse HEAD 2>/dev/null) --target gateway -t $(GATEWAY_IMG) .

.PHONY: kind-load
kind-load: ## Load both images into the kind cluster KIND_CLUSTER (default resilience; see hack/kind-config.yaml).
	$(KIND) load docker-image $(MANAGER_IMG) $(GATEWAY_IMG) --name $(KIND_CLUSTER)

##@ Deployment

.PHONY: install
install: manifests ## Install the CRDs into the cluster of the current kubeconfig.
	$(KUBECTL) apply --server-side -f config/crd/bases

.PHONY: uninstall
uninstall: manifests ## Remove the CRDs from the cluster of the current kubeconfig.
	$(KUBECTL) delete --ignore-not-found -f config/crd/bases

# deploy applies config/default through a throwaway overlay (bin/deploy, git-ignored) that points
# the images at MANAGER_IMG and GATEWAY_IMG, so the tracked kustomizations never change.
DEPLOY_OVERLAY := bin/deploy

.PHONY: deploy
deploy: manifests deploy-overlay ## Deploy CRDs, RBAC, manager and gateway (images MANAGER_IMG, GATEWAY_IMG) to the cluster of the current kubeconfig.
	$(KUBECTL) apply --server-side -k $(DEPLOY_OVERLAY)

.PHONY: build-installer
build-installer: manifests deploy-overlay ## Write dist/install.yaml: config/default in one file, images MANAGER_IMG and GATEWAY_IMG (kubectl apply --server-side -f dist/install.yaml).
	@mkdir -p dist
	$(KUBECTL) kustomize $(DEPLOY_OVERLAY) > dist/install.yaml
	@echo "wrote dist/install.yaml ($$(grep -c '^kind:' dist/install.yaml) objects)"

.PHONY: deploy-overlay
deploy-overlay: ## Write the overlay of deploy and build-installer: config/default with images MANAGER_IMG and GATEWAY_IMG.
	@mkdir -p $(DEPLOY_OVERLAY)
	@image() { local ref="$$2" name="" digest="" tag=""; \
	  if [[ "$$ref" == *@* ]]; then digest="$${ref#*@}"; ref="$${ref%%@*}"; fi; \
	  name="$$ref"; if [[ "$${ref##*/}" == *:* ]]; then name="$${ref%:*}"; tag="$${ref##*:}"; fi; \
	  printf -- '- name: %s\n  newName: %s\n' "$$1" "$$name"; \
	  if [[ -n "$$digest" ]]; then printf '  digest: %s\n' "$$digest"; else printf '  newTag: %s\n' "$${tag:-latest}"; fi; }; \
	{ printf '# Written by make deploy-overlay.\nresources:\n- ../../config/default\nimages:\n'; \
	  image resilience-operator/manager '$(MANAGER_IMG)'; image resilience-operator/gateway '$(GATEWAY_IMG)'; \
	} > $(DEPLOY_OVERLAY)/kustomization.yaml

.PHONY: chart
chart: manifests ## Regenerate charts/resilience-operator's templates and CRDs from config/default (test/deploy checks they agree).
	go test ./test/deploy -run TestChartIsGenerated -count=1 -update-chart

.PHONY: undeploy
undeploy: ## Remove the operator, its namespace and its CRDs (so every policy too) from the cluster of the current kubeconfig.
	$(KUBECTL) kustomize config/default | $(KUBECTL) delete --ignore-not-found -f -

##@ Tools

.PHONY: controller-gen
controller-gen: $(CONTROLLER_GEN) ## Install controller-gen into bin/.
$(CONTROLLER_GEN):
	@mkdir -p $(LOCALBIN)
	GOBIN=$(LOCALBIN) go install sigs.k8s.io/controller-tools/cmd/controller-gen@$(CONTROLLER_TOOLS_VERSION)

.PHONY: setup-envtest
setup-envtest: ## Provide kube-apiserver and etcd in bin/k8s (download, else build once from the Go module proxy), and kube-controller-manager (built once).
	@LOCALBIN=$(LOCALBIN) ENVTEST_K8S_VERSION=$(ENVTEST_K8S_VERSION) hack/setup-envtest.sh

##@ Local

GATEWAYS ?= 1

.PHONY: run-local
run-local: manifests generate setup-envtest ## Run a local control plane with the manager, GATEWAYS gateway replicas (default 1) and redis-server when installed, no cluster needed (Ctrl-C stops all).
	go build -ldflags "$(GO_LDFLAGS)" -o $(LOCALBIN)/manager ./cmd/manager
	go build -ldflags "$(GO_LDFLAGS)" -o $(LOCALBIN)/gateway ./cmd/gateway
	go build -o $(LOCALBIN)/run-local ./cmd/run-local
	$(LOCALBIN)/run-local --bin $(LOCALBIN) --gateways $(GATEWAYS)

.PHONY: demo
demo: manifests generate setup-envtest ## Like run-local, plus demo backends and config/samples/: drive traffic, print what each pattern did (exit 0 if all behaved).
	go build -ldflags "$(GO_LDFLAGS)" -o $(LOCALBIN)/manager ./cmd/manager
	go build -ldflags "$(GO_LDFLAGS)" -o $(LOCALBIN)/gateway ./cmd/gateway
	go build -o $(LOCALBIN)/demo-backend ./cmd/demo-backend
	go build -o $(LOCALBIN)/demo ./cmd/demo
	$(LOCALBIN)/demo --bin $(LOCALBIN)

##@ Benchmarks

.PHONY: bench-gateway
bench-gateway: ## Gateway data path vs the backend directly and a bare reverse proxy (alternating rounds); table + bin/bench-gateway.json.
	@mkdir -p $(LOCALBIN)
	go build -o $(LOCALBIN)/demo-backend ./cmd/demo-backend
	go build -o $(LOCALBIN)/benchgateway ./bench/gateway
	$(LOCALBIN)/benchgateway -bin $(LOCALBIN) -json $(LOCALBIN)/bench-gateway.json $(BENCH_GATEWAY_FLAGS)

# COMPARE_REF is the git revision bench-gateway-compare measures this tree against.
COMPARE_REF ?= main

.PHONY: bench-gateway-compare
bench-gateway-compare: ## bench-gateway with COMPARE_REF's gateway (default main) in the same rounds; adds a ratio table (this tree / COMPARE_REF).
	@mkdir -p $(LOCALBIN)/compare
	src=$$(mktemp -d) && git archive $(COMPARE_REF) | tar -x -C $$src && \
		(cd $$src && go build -o $(LOCALBIN)/compare/benchgateway ./bench/gateway); rc=$$?; rm -rf $$src; exit $$rc
	$(MAKE) bench-gateway BENCH_GATEWAY_FLAGS="-compare-bin $(LOCALBIN)/compare $(BENCH_GATEWAY_FLAGS)"

.PHONY: bench-control
bench-control: setup-envtest ## Compile time, snapshot size, apply->enforced on the local stack, memory; table + bin/bench-control.json.
	go build -ldflags "$(GO_LDFLAGS)" -o $(LOCALBIN)/manager ./cmd/manager
	go build -ldflags "$(GO_LDFLAGS)" -o $(LOCALBIN)/gateway ./cmd/gateway
	go build -o $(LOCALBIN)/benchcontrol ./bench/control
	$(LOCALBIN)/benchcontrol -bin $(LOCALBIN) -json $(LOCALBIN)/bench-control.json $(BENCH_CONTROL_FLAGS)

.PHONY: bench-control-compare
bench-control-compare: setup-envtest ## bench-control of COMPARE_REF (default main), then of this tree, with a ratio table (this tree / COMPARE_REF); one after the other.
	@mkdir -p $(LOCALBIN)/compare
	src=$$(mktemp -d) && trap 'rm -rf $$src' EXIT && git archive $(COMPARE_REF) | tar -x -C $$src && cd $$src && \
		go build -o $(LOCALBIN)/compare/manager ./cmd/manager && go build -o $(LOCALBIN)/compare/gateway ./cmd/gateway && \
		go build -o $(LOCALBIN)/compare/benchcontrol ./bench/control && \
		KUBEBUILDER_ASSETS="$(LOCALBIN)/k8s" $(LOCALBIN)/compare/benchcontrol -bin $(LOCALBIN)/compare \
			-json $(LOCALBIN)/compare/bench-control.json $(BENCH_CONTROL_FLAGS)
	$(MAKE) bench-control BENCH_CONTROL_FLAGS="-compare-json $(LOCALBIN)/compare/bench-control.json $(BENCH_CONTROL_FLAGS)"
