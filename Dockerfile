# syntax=docker/dockerfile:1
# Images of the resilience operator: one Dockerfile, two targets.
#
#   docker build --target manager -t resilience-operator/manager:dev .
#   docker build --target gateway -t resilience-operator/gateway:dev .
#
# (`make docker-build` runs both.) Static binaries (CGO_ENABLED=0) on distroless/static, running as
# the image's nonroot user (65532), so both fit the "restricted" Pod Security Standard and a
# read-only root filesystem. Built on the build platform and cross-compiled, so multi-platform
# builds (`docker buildx build --platform linux/amd64,linux/arm64`) need no emulation.

ARG GO_VERSION=1.26
# The base images, to be pinned by digest where images are built (a release pipeline resolves them,
# e.g. `crane digest gcr.io/distroless/static:nonroot`, and passes --build-arg
# BASE_IMAGE=gcr.io/distroless/static:nonroot@sha256:...). Tags by default: this repository is
# developed where no registry can be read, so a digest written here could not be checked.
ARG GO_IMAGE=golang:${GO_VERSION}
ARG BASE_IMAGE=gcr.io/distroless/static:nonroot
# VERSION is what --version prints and the images' version label; REVISION the source commit.
ARG VERSION=dev
ARG REVISION=unknown

FROM --platform=$BUILDPLATFORM ${GO_IMAGE} AS source
WORKDIR /workspace
# Dependencies first, so that source changes reuse this layer.
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY api/ api/
COPY cmd/ cmd/
COPY internal/ internal/

FROM source AS build-manager
ARG TARGETOS
ARG TARGETARCH
ARG VERSION
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 GOOS=${TARGETOS:-linux} GOARCH=${TARGETARCH} \
    go build -trimpath -ldflags="-s -w -X main.version=${VERSION}" -o /out/manager ./cmd/manager

FROM source AS build-gateway
ARG TARGETOS
ARG TARGETARCH
ARG VERSION
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 GOOS=${TARGETOS:-linux} GOARCH=${TARGETARCH} \
    go build -trimpath -ldflags="-s -w -X main.version=${VERSION}" -o /out/gateway ./cmd/gateway

FROM ${BASE_IMAGE} AS gateway
ARG VERSION
ARG REVISION
LABEL org.opencontainers.image.title="resilience-gateway" \
      org.opencontainers.image.description="Enforcement gateway of the resilience operator" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.vendor="resilience operator authors"
WORKDIR /
COPY --from=build-gateway /out/gateway /gateway
USER 65532:65532
EXPOSE 8080 8081 9090
ENTRYPOINT ["/gateway"]

# Last, so that a plain `docker build .` builds the manager, as in kubebuilder projects.
FROM ${BASE_IMAGE} AS manager
ARG VERSION
ARG REVISION
LABEL org.opencontainers.image.title="resilience-manager" \
      org.opencontainers.image.description="Manager (controllers and snapshot stream) of the resilience operator" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.vendor="resilience operator authors"
WORKDIR /
COPY --from=build-manager /out/manager /manager
USER 65532:65532
EXPOSE 8080 8081 9443
ENTRYPOINT ["/manager"]
