# foodpipe images. One static binary; the targets differ only in what they run:
#   docker build --target producer -t foodpipe-producer .   # foodpipe produce
#   docker build --target consumer -t foodpipe-consumer .   # foodpipe consume
#   docker build -t foodpipe .                               # any subcommand: topic, migrate, dlq, ...
# The final images are distroless (no shell, no package manager) and run as the
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
ARG BUILDER_IMAGE=golang:1.26-bookworm
ARG RUNTIME_IMAGE=gcr.io/distroless/static-debian12:nonroot

FROM ${BUILDER_IMAGE} AS build
WORKDIR /src
COPY go.mod go.sum ./
# The embedded broker's source is carried in the repository (third_party/kfake).
COPY third_party/kfake/go.mod third_party/kfake/go.sum third_party/kfake/
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o /out/foodpipe ./cmd/foodpipe

FROM ${RUNTIME_IMAGE} AS runtime
COPY --from=build /out/foodpipe /foodpipe
# Numeric, not nonroot:nonroot: Kubernetes' runAsNonRoot can only verify a
# numeric user; with a name it refuses to start the pod.
USER 65532:65532
ENTRYPOINT ["/foodpipe"]

# The long-running targets serve /metrics, /healthz and /readyz on :9100, and
# Docker asks /healthz through the binary itself: the image has no shell or
# curl, so the check is in exec form.
FROM runtime AS producer
ENV METRICS_ADDR=:9100
EXPOSE 9100
HEALTHCHECK --interval=10s --timeout=5s --start-period=10s --retries=3 CMD ["/foodpipe", "health"]
CMD ["produce"]

FROM runtime AS consumer
ENV METRICS_ADDR=:9100
EXPOSE 9100
HEALTHCHECK --interval=10s --timeout=5s --start-period=10s --retries=3 CMD ["/foodpipe", "health"]
CMD ["consume"]

# The last stage is the default target. It runs one-shot commands (topic,
# migrate, dlq, ...), so it has no health check.
FROM runtime AS foodpipe
CMD ["help"]
