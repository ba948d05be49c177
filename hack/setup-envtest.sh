#!/usr/bin/env bash
# Provides kube-apiserver, etcd and kube-controller-manager for envtest in bin/k8s/ (kubectl too,
# where it is not installed).
#
# Order of attempts for kube-apiserver and etcd:
#   1. the setup-envtest store (under the user's data directory) already holds them: reuse;
#   2. setup-envtest downloads them (the kubebuilder way; fails fast without a network);
#   3. build them from the Go module proxy into that same store, once.
# kube-controller-manager (tests that need the real EndpointSlice controller and garbage collector
# run it) is never in setup-envtest's downloads, so in every path it is reused from the store or
# built into it from the Go module proxy, once.
# The store outlives clean clones of the repository, so CI builds at most once per machine.
set -euo pipefail

K8S_VERSION="${ENVTEST_K8S_VERSION:-1.37.2}"
ETCD_VERSION="${ENVTEST_ETCD_VERSION:-3.6.8}"
SETUP_ENVTEST_VERSION="${SETUP_ENVTEST_VERSION:-v0.25.1}"
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
LOCALBIN="${LOCALBIN:-$ROOT/bin}"
OUT="$LOCALBIN/k8s"

os="$(go env GOOS)"; arch="$(go env GOARCH)"
data_home="${XDG_DATA_HOME:-$HOME/.local/share}"
STORE="$data_home/kubebuilder-envtest/k8s/${K8S_VERSION}-${os}-${arch}"

log() { printf 'setup-envtest: %s\n' "$*" >&2; }

have_store() { [[ -x "$STORE/kube-apiserver" && -x "$STORE/etcd" ]]; }

link_out() {
  mkdir -p "$OUT"
  for b in kube-apiserver etcd; do ln -sfn "$STORE/$b" "$OUT/$b"; done
  for b in kubectl kube-controller-manager; do
    if [[ -x "$STORE/$b" ]]; then ln -sfn "$STORE/$b" "$OUT/$b"; fi
  done
  log "using $STORE (linked into bin/k8s)"
}

# kubectl: envtest's downloads ship it; where kubectl is neither there nor installed, build it once
# (the e2e and deploy tests drive the cluster with the real kubectl).
ensure_kubectl() {
  if [[ -x "$STORE/kubectl" ]] || command -v kubectl >/dev/null 2>&1; then return 0; fi
  log "building kubectl v$K8S_VERSION (about 2 minutes, once per machine)..."
  build_from_kubernetes k8s.io/kubernetes/cmd/kubectl "$STORE/kubectl"
  ln -sfn "$STORE/kubectl" "$OUT/kubectl"
}

# kube-controller-manager: no envtest download ships it, so it is always built from source, once.
ensure_controller_manager() {
  if [[ ! -x "$STORE/kube-controller-manager" ]]; then
    log "building kube-controller-manager v$K8S_VERSION (about 6 minutes on 2 cores after kube-apiserver's build, once per machine)..."
    build_from_kubernetes k8s.io/kubernetes/cmd/kube-controller-manager "$STORE/kube-controller-manager"
  fi
  ln -sfn "$STORE/kube-controller-manager" "$OUT/kube-controller-manager"
}

# build_from_kubernetes builds one command of k8s.io/kubernetes in a throwaway module whose every
# ./staging/... replacement points at the same module from the Go module proxy.
build_from_kubernetes() {
  local pkg="$1" dest="$2" mod
  mod="$(mktemp -d)"
  (
    cd "$mod"
    go mod init envtest-k8s >/dev/null 2>&1
    go mod download -json "k8s.io/kubernetes@v$K8S_VERSION" >k8s.json
    gomod="$(sed -n 's/.*"GoMod": "\(.*\)".*/\1/p' k8s.json)"
    staging_ver="v0.${K8S_VERSION#1.}"
    {
      echo "require k8s.io/kubernetes v$K8S_VERSION"
      grep -E '=>\s*\./staging/' "$gomod" | awk -v v="$staging_ver" '{print "replace " $1 " => " $1 " " v}'
    } >>go.mod
    printf 'package main\nimport _ "%s"\n' "$pkg" >tools.go
    go mod tidy >/dev/null 2>&1 || true
    CGO_ENABLED=0 go build -trimpath -o "$dest.tmp" "$pkg"
    mv "$dest.tmp" "$dest"
  )
  rm -rf "$mod"
}

if have_store; then link_out; ensure_kubectl; ensure_controller_manager; exit 0; fi

# 2. The kubebuilder way.
if [[ ! -x "$LOCALBIN/setup-envtest" ]]; then
  log "installing setup-envtest $SETUP_ENVTEST_VERSION"
  GOBIN="$LOCALBIN" go install "sigs.k8s.io/controller-runtime/tools/setup-envtest@$SETUP_ENVTEST_VERSION" || true
fi
if [[ -x "$LOCALBIN/setup-envtest" ]]; then
  log "trying to download envtest binaries $K8S_VERSION"
  if dir="$(timeout 60 "$LOCALBIN/setup-envtest" use "$K8S_VERSION" -p path 2>/dev/null)" && [[ -x "$dir/kube-apiserver" ]]; then
    STORE="$dir"; link_out; ensure_kubectl; ensure_controller_manager; exit 0
  fi
  log "download unavailable; building from the Go module proxy instead"
fi

# 3. Build from source, in throwaway modules, straight into the store.
work="$(mktemp -d)"; trap 'rm -rf "$work"' EXIT
mkdir -p "$STORE"

if [[ ! -x "$STORE/etcd" ]]; then
  log "building etcd v$ETCD_VERSION (about 30 s)..."
  mkdir -p "$work/etcd" && cd "$work/etcd"
  go mod init envtest-etcd >/dev/null 2>&1
  go get "go.etcd.io/etcd/server/v3@v$ETCD_VERSION" >/dev/null 2>&1
  CGO_ENABLED=0 go build -trimpath -o "$STORE/etcd.tmp" go.etcd.io/etcd/server/v3
  mv "$STORE/etcd.tmp" "$STORE/etcd"
fi

if [[ ! -x "$STORE/kube-apiserver" ]]; then
  log "building kube-apiserver v$K8S_VERSION (about 3 minutes, once per machine)..."
  build_from_kubernetes k8s.io/kubernetes/cmd/kube-apiserver "$STORE/kube-apiserver"
fi

link_out
ensure_kubectl
ensure_controller_manager
