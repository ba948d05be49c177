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
	KUBEBUILDER_ASSETS="$(LOCALBIN)/k8s" go test $(GO_TEST_FLAGS) ./...

.PHONY: bench
bench: ## Benchmark the patterns beside their anchor libraries and print a ratio table.
	@mkdir -p $(LOCALBIN)
	go test -run '^$$' -bench . -benchmem -count=$${BENCH_COUNT:-3} ./internal/patterns/... | tee $(LOCALBIN)/bench.txt
	go run ./hack/benchtable -json $(LOCALBIN)/bench.json < $(LOCALBIN)/bench.txt

##@ Build

.PHONY: build
build: manifests generate fmt vet ## Build the manager and gateway binaries.
	go build -o $(LOCALBIN)/manager ./cmd/manager
	go build -o $(LOCALBIN)/gateway ./cmd/gateway

.PHONY: run
run: manifests generate fmt vet ## Run the manager against the cluster of the current kubeconfig.
	go run ./cmd/manager

.PHONY: docker-build
docker-build: ## Build the container images (needs a Docker engine).
	docker build --target manager -t $(MANAGER_IMG) .

##@ Deployment

.PHONY: install
install: manifests ## Install the CRDs into the cluster of the current kubeconfig.
	$(KUBECTL) apply --server-side -f config/crd/bases

.PHONY: uninstall
uninstall: manifests ## Remove the CRDs from the cluster of the current kubeconfig.
	$(KUBECTL) delete --ignore-not-found -f config/crd/bases

##@ Tools

.PHONY: controller-gen
controller-gen: $(CONTROLLER_GEN) ## Install controller-gen into bin/.
$(CONTROLLER_GEN):
	@mkdir -p $(LOCALBIN)
	GOBIN=$(LOCALBIN) go install sigs.k8s.io/controller-tools/cmd/controller-gen@$(CONTROLLER_TOOLS_VERSION)

.PHONY: setup-envtest
setup-envtest: ## Provide kube-apiserver and etcd in bin/k8s (download, else build once from the Go module proxy).
	@LOCALBIN=$(LOCALBIN) ENVTEST_K8S_VERSION=$(ENVTEST_K8S_VERSION) hack/setup-envtest.sh

##@ Local

.PHONY: run-local
run-local: manifests generate setup-envtest ## Run a local control plane with the manager and a gateway, no cluster needed (Ctrl-C stops all).
	go build -o $(LOCALBIN)/manager ./cmd/manager
	go build -o $(LOCALBIN)/gateway ./cmd/gateway
	go build -o $(LOCALBIN)/runlocal ./hack/runlocal
	$(LOCALBIN)/runlocal --bin $(LOCALBIN)

.PHONY: demo
demo: manifests generate setup-envtest ## Like run-local, plus demo backends and config/samples/: drive traffic, print what each pattern did (exit 0 if all behaved).
	go build -o $(LOCALBIN)/manager ./cmd/manager
	go build -o $(LOCALBIN)/gateway ./cmd/gateway
	go build -o $(LOCALBIN)/demo-backend ./cmd/demo-backend
	go build -o $(LOCALBIN)/demo ./hack/demo
	$(LOCALBIN)/demo --bin $(LOCALBIN)
