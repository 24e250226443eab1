# The common tasks. `make test` is the test command CI runs.
GO        ?= go
COVER_MIN ?= 80

.PHONY: build test test-short cover demo lint fmt docker-build compose-up compose-small-up compose-down

# The version and commit stamped into the binary (`foodpipe version`, the
# foodpipe_build_info metric) and the image's OCI labels.
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo devel)
REVISION ?= $(shell git rev-parse HEAD 2>/dev/null || echo unknown)
LDFLAGS  = -X foodpipe/internal/telemetry.version=$(VERSION) -X foodpipe/internal/telemetry.revision=$(REVISION)

build: ## build ./foodpipe
	$(GO) build -ldflags "$(LDFLAGS)" -o foodpipe ./cmd/foodpipe

# Unit and integration tests against the embedded broker and the local
# PostgreSQL (FOODPIPE_TEST_DATABASE_URL, default postgres://postgres@127.0.0.1:5432/postgres),
# then the statement coverage of the whole module (not of the broker's source carried in
# third_party, which -coverpkg=./... would take in), which must reach COVER_MIN percent.
# scripts/test-deps first installs kcat and starts PostgreSQL when they are missing.
# gotestsum (a tool in go.mod) runs `go test -json` and prints one line per test
# and a count at the end, so a log shows which tests ran, not only packages.
# -timeout bounds each package's test binary: e2e holds the image build, the
# compose stack and the kill storms, 25-30 min on a 2-core machine kept busy
# (ci-under-load --busy 2), so it gets an hour, inside CI's 90 minutes.
test:
	scripts/test-deps
	$(GO) vet ./...
	$(GO) tool gotestsum --format testname -- -count=1 -timeout 60m -coverpkg=foodpipe/... -coverprofile=coverage.out ./...
	@$(GO) tool cover -func=coverage.out | awk -v min=$(COVER_MIN) '/^total:/ { sub("%","",$$3); printf "total statement coverage: %s%% (minimum %s%%)\n", $$3, min; if ($$3+0 < min) { print "coverage below the minimum"; exit 1 } }'

# The short tier, for every small change: unit tests and the integration tests
# that take well under a few seconds each (the embedded broker in process, the
# local PostgreSQL). Tests that start child processes, a browser or an image,
# or that wait out timeouts skip themselves under -short (testing.Short); the
# e2e package is left out whole. `make test` runs them all.
test-short:
	scripts/test-deps
	$(GO) vet ./...
	$(GO) tool gotestsum --format testname -- -short -count=1 ./...

cover: test ## open the coverage report in a browser
	$(GO) tool cover -html=coverage.out

demo: ## the whole pipeline in one command
	$(GO) run ./cmd/foodpipe demo

fmt:
	gofmt -l -w .

# golangci-lint built with this Go (a prebuilt one refuses a newer go.mod), with .golangci.yml.
GOLANGCI_LINT_VERSION ?= v2.15.0
lint:
	$(GO) run github.com/golangci/golangci-lint/v2/cmd/golangci-lint@$(GOLANGCI_LINT_VERSION) run ./...

# Images and the Docker Compose stack (docs/DEPLOY.md).
IMAGE_TAG ?= local
# The Dockerfile's cache mounts need BuildKit: DOCKER_BUILDKIT=1 turns it on
# for the Docker 20.10 client and is the default of later ones (with buildx).
# DOCKER_BUILD_ARGS passes more flags to every build, e.g. other base images:
#   make docker-build DOCKER_BUILD_ARGS="--build-arg BUILDER_IMAGE=... --build-arg RUNTIME_IMAGE=..."
# e2e/image_test.go builds the image through this target.
DOCKER            ?= docker
DOCKER_BUILD_ARGS ?=
DOCKER_BUILD      = DOCKER_BUILDKIT=1 $(DOCKER) build $(DOCKER_BUILD_ARGS)

docker-build: ## the foodpipe image, stamped with VERSION and REVISION
	$(DOCKER_BUILD) --build-arg VERSION=$(VERSION) --build-arg REVISION=$(REVISION) -t foodpipe:$(IMAGE_TAG) .

compose-up: ## the KRaft stack: Kafka, PostgreSQL, producer, 2 consumers
	docker compose up -d --build

compose-small-up: ## the same within 2 GB (t2.small)
	docker compose -f docker-compose.yml -f docker-compose.small.yml up -d --build

compose-down: ## stop the stack; the volumes stay (add -v to docker compose down to drop them)
	docker compose down
