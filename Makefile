# Kiln's entry points. `make demo` and `make test` work on a fresh Debian build machine: each
# installs what it needs (idempotently) before running.

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c

# One persistent target dir outside the clone, so CI and fresh clones do not rebuild the world.
export CARGO_TARGET_DIR ?= /var/cache/kiln/target
CARGO ?= cargo
KILN := $(CARGO_TARGET_DIR)/debug/kiln
FACTORY ?= examples/factory
# Seconds per fuzz target (four targets) in `make test`.
FUZZ_SECONDS ?= 20

.PHONY: all deps demo test test-cache check fmt clippy unit bench fuzz fuzz-smoke stress

all: check

deps:
	@scripts/host-deps.sh base builder scanner postgres ci server publish

## The main job on the example factory: validate, plan, build both images (bootstrap, provision,
## seal, disk, exports), boot each and run its checks, record them in the registry, promote to
## the first channel as its policy allows, then show the versions and their ancestry.
demo: deps
	@$(CARGO) build --quiet -p kiln-cli
	@echo "==> kiln validate --factory $(FACTORY)"
	@$(KILN) validate --factory $(FACTORY)
	@echo "==> kiln plan --all --factory $(FACTORY)"
	@$(KILN) plan --all --factory $(FACTORY)
	@echo "==> kiln build --all --factory $(FACTORY)"
	@$(KILN) build --all --factory $(FACTORY)
	@echo "==> kiln versions base-debian12 / app-web"
	@$(KILN) versions base-debian12 --factory $(FACTORY)
	@$(KILN) versions app-web --factory $(FACTORY)
	@echo "==> kiln ancestry app-web"
	@$(KILN) ancestry app-web --factory $(FACTORY)

## The whole suite: formatting, lints, every test, and a short fuzz run.
test: deps test-cache check fuzz-smoke

## The build tests share a stage cache; keep it bounded (least recently used stages go first)
## so repeated runs on one machine do not fill its disk.
TEST_CACHE_MAX ?= 8GiB
test-cache:
	@$(CARGO) build --quiet -p kiln-cli
	@$(KILN) -q cache prune --cache-dir "$${KILN_TEST_CACHE_DIR:-/var/cache/kiln/test-stages}" --max-size $(TEST_CACHE_MAX)

check: fmt clippy unit

fmt:
	$(CARGO) fmt --all -- --check

clippy:
	$(CARGO) clippy --workspace --all-targets --locked -- -D warnings

unit:
	$(CARGO) test --workspace --locked

## Planner and registry benchmarks, the build benchmark against mkosi (installs mkosi from
## backports), the scanner against trivy and detect-secrets, the server under wrk (artifact
## lookups; on PostgreSQL with one server and two), the EBS upload to moto (1 vs 16 blocks in
## flight, zero blocks skipped), the scheduling simulation (10,000 images on 100 workers, waves
## vs the queue), then the pipeline benchmark (cold demo, warm rebuilds, boot tests included).
bench:
	$(CARGO) bench -p kiln-plan --bench plan
	$(CARGO) bench -p kiln-registry --bench lookup
	$(CARGO) bench -p kiln-registry --bench schedule
	scripts/bench-build.sh
	scripts/bench-scan.sh
	scripts/bench-server.sh
	scripts/bench-server-pg.sh
	scripts/bench-publish.sh
	scripts/bench-pipeline.sh

## Long runs: 2,000 SIGKILLs of a registry writer, a longer state-machine property test.
stress:
	KILN_CRASH_KILLS=2000 $(CARGO) test -p kiln-registry --test crash -- --nocapture
	PROPTEST_CASES=2000 $(CARGO) test -p kiln-registry --test state_machine

fuzz-smoke:
	@FUZZ_SECONDS=$(FUZZ_SECONDS) scripts/fuzz.sh

## Long fuzzing: make fuzz FUZZ_SECONDS=600
fuzz: FUZZ_SECONDS = 600
fuzz:
	@FUZZ_SECONDS=$(FUZZ_SECONDS) scripts/fuzz.sh
