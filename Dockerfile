# syntax=docker/dockerfile:1
#
# foodpipe images. One static binary; the targets differ only in what they run:
#   docker build --target producer -t foodpipe-producer .   # foodpipe produce
#   docker build --target consumer -t foodpipe-consumer .   # foodpipe consume
#   docker build -t foodpipe .                               # any subcommand: topic, migrate, dlq, ...
# The final images are distroless (no shell, no package manager) and run as the
# unprivileged user nonroot.

ARG GO_VERSION=1.26

FROM golang:${GO_VERSION}-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
# The embedded broker's source is carried in the repository (third_party/kfake).
COPY third_party/kfake/go.mod third_party/kfake/go.sum third_party/kfake/
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o /out/foodpipe ./cmd/foodpipe

FROM gcr.io/distroless/static-debian12:nonroot AS runtime
COPY --from=build /out/foodpipe /foodpipe
USER nonroot:nonroot
ENTRYPOINT ["/foodpipe"]

FROM runtime AS producer
EXPOSE 9100
CMD ["produce"]

FROM runtime AS consumer
EXPOSE 9100
CMD ["consume"]

# The last stage is the default target.
FROM runtime AS foodpipe
CMD ["help"]
