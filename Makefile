# ftvs — build, test, lint, bench. `make test` does all set-up itself on a
# fresh Debian 12 machine as root (Debian packages, Go modules).
export PATH := $(PATH):/usr/local/go/bin
export GOFLAGS := -mod=readonly
GO ?= go
VERSION ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X main.version=$(VERSION)
BIN := bin/ftvs

.PHONY: all build test lint bench deps clean

all: build

deps:
	./scripts/deps.sh
	$(GO) mod download

build:
	CGO_ENABLED=0 GOAMD64=v1 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/ftvs

test: deps build lint
	$(GO) test -count=1 -timeout 28m -p 2 ./...

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

bench: deps build
	./scripts/bench.sh

clean:
	rm -rf bin
