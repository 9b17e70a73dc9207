# ftvs — build, test, lint, bench. `make test` does all set-up itself on a
# fresh Debian 12 machine as root (Debian packages, Go modules).
export PATH := $(PATH):/usr/local/go/bin
export GOFLAGS := -mod=readonly
GO ?= go
VERSION ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X main.version=$(VERSION)
BIN := bin/ftvs

.PHONY: all build test lint bench deps clean image demo

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

# The main demonstration: two CoServers in namespaces, a client download,
# the primary killed, restarted and rejoined, the other killed (needs root).
demo: deps build
	./scripts/demo.sh

# Installer boot media in $(IMAGE_DIR). ftvs image fetches Debian's kernel
# into the cache ($$FTVS_CACHE or .cache/) itself when it is missing.
# IMAGE_CONFIG=FILE embeds an unattended install config.
IMAGE_DIR ?= bin/images
IMAGE_CONFIG ?=
image: build
	mkdir -p $(IMAGE_DIR)
	$(BIN) image initramfs --out $(IMAGE_DIR)/initramfs.cpio.gz $(if $(IMAGE_CONFIG),--config $(IMAGE_CONFIG))
	$(BIN) image usb --initramfs $(IMAGE_DIR)/initramfs.cpio.gz --out $(IMAGE_DIR)/ftvs-usb.img
	$(BIN) image iso --initramfs $(IMAGE_DIR)/initramfs.cpio.gz --out $(IMAGE_DIR)/ftvs.iso
	rm -rf $(IMAGE_DIR)/pxe
	$(BIN) image pxe --initramfs $(IMAGE_DIR)/initramfs.cpio.gz --out $(IMAGE_DIR)/pxe

clean:
	rm -rf bin
