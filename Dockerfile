# The foodpipe image: one static binary, every subcommand. Each service says
# what it runs (compose's command:, Kubernetes' args:):
#   docker build -t foodpipe .
#   docker run foodpipe produce | consume | analytics | topic create | migrate up | version
# VERSION and REVISION are stamped into the binary (`foodpipe version`, the
# foodpipe_build_info metric) and the image's OCI labels; the build context
# has no .git, so the Go toolchain cannot find them itself. `make docker-build`
# passes git's:
#   docker build --build-arg VERSION=$(git describe --tags --always) --build-arg REVISION=$(git rev-parse HEAD) -t foodpipe .
# The image is distroless (no shell, no package manager) and runs as the
# unprivileged user nonroot, uid and gid 65532.
#
# BuildKit is required (DOCKER_BUILDKIT=1 on Docker 20.10, the default with
# buildx on Docker 23 and later) for the cache mounts below. There is
# deliberately no `# syntax=docker/dockerfile:1` line: that line makes BuildKit
# pull the Dockerfile frontend image from Docker Hub before building, which
# fails on a machine that reaches no image registry, while the frontend built
# into Docker 20.10 and later already understands RUN --mount=type=cache.

# The base images are build arguments so that a machine without a registry can
# build with images it made itself (e2e/image_test.go does); the defaults are
# the public images.
ARG BUILDER_IMAGE=golang:1.26.8-bookworm
ARG RUNTIME_IMAGE=gcr.io/distroless/static-debian12:nonroot

FROM ${BUILDER_IMAGE} AS build
WORKDIR /src
COPY go.mod go.sum ./
# The embedded broker's source is carried in the repository (third_party/kfake).
COPY third_party/kfake/go.mod third_party/kfake/go.sum third_party/kfake/
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
ARG VERSION=devel
ARG REVISION=unknown
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 go build -trimpath -buildvcs=false \
      -ldflags "-s -w -X foodpipe/internal/telemetry.version=${VERSION} -X foodpipe/internal/telemetry.revision=${REVISION}" \
      -o /out/foodpipe ./cmd/foodpipe

# Mailpit, the compose stack's mail server (its mail service), built at the
# version go.mod pins for `go tool mailpit`, so the stack and the tests send
# to the same one: `docker build --target mail -t foodpipe-mail .` Only this
# target builds these two stages; the default target (the last stage) does
# not.
FROM ${BUILDER_IMAGE} AS mailpit-build
WORKDIR /src
COPY go.mod go.sum ./
COPY third_party/kfake/go.mod third_party/kfake/go.sum third_party/kfake/
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o /out/mailpit github.com/axllent/mailpit

FROM ${RUNTIME_IMAGE} AS mail
COPY --from=mailpit-build /out/mailpit /mailpit
USER 65532:65532
EXPOSE 1025 8025
ENTRYPOINT ["/mailpit"]

FROM ${RUNTIME_IMAGE} AS foodpipe
ARG VERSION=devel
ARG REVISION=unknown
LABEL org.opencontainers.image.title="foodpipe" \
      org.opencontainers.image.description="A Kafka food-order pipeline: producer, consumers, analytics, topic and schema jobs in one binary" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}"
COPY --from=build /out/foodpipe /foodpipe
# Numeric, not nonroot:nonroot: Kubernetes' runAsNonRoot can only verify a
# numeric user; with a name it refuses to start the pod.
USER 65532:65532
# The long-running commands (produce, consume, analytics) serve /metrics,
# /healthz and /readyz here; one-shot commands serve nothing. No HEALTHCHECK:
# a one-shot command has no health to ask, so each long-running service sets
# its own (`/foodpipe health`, in exec form: the image has no shell or curl).
ENV METRICS_ADDR=:9100
EXPOSE 9100
ENTRYPOINT ["/foodpipe"]
CMD ["help"]
