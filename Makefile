# Scifer / Automation OS. `make run` starts everything locally; `make test` is what CI runs.
SHELL := /bin/bash
CARGO ?= cargo
NATS_SERVER = $(shell deploy/dev/find-nats-server)

.PHONY: run build test lint bench fmt clean-data browser-deps

## run: private nats-server, every service on SQLite, and the Meta simulator playing a demo world.
run: build
	SCIFER_NATS_SERVER="$(NATS_SERVER)" $(CARGO) run --quiet -p scifer-devstack --bin scifer-devstack

build:
	$(CARGO) build --workspace --bins

## test: formatting, lints, unit tests, each service's integration tests, and the end-to-end suite on
## SQLite and then on PostgreSQL.
test: lint build browser-deps
	SCIFER_NATS_SERVER="$(NATS_SERVER)" $(CARGO) test --workspace --no-fail-fast
	SCIFER_NATS_SERVER="$(NATS_SERVER)" SCIFER_TEST_DB=postgres $(CARGO) test -p scifer-e2e --no-fail-fast

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings
	deploy/k8s-check

fmt:
	$(CARGO) fmt --all

## browser-deps: Debian's chromium, tests/browser/node_modules, the TypeScript client generated from
## proto/ and the page bundle (idempotent; quiet when nothing fails).
browser-deps:
	tests/browser/install-deps.sh

## bench: the webhook load driver against webhook-ingest and its two references (release build).
bench:
	$(CARGO) build --release --workspace --bins
	SCIFER_NATS_SERVER="$(NATS_SERVER)" SCIFER_BIN_PROFILE=release $(CARGO) run --release -p scifer-bench --bin scifer-bench

clean-data:
	rm -rf .data
