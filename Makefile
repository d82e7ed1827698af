# groundwork — every command a developer or CI needs. `make help` lists them.
#
# Tools that are not part of the Rust toolchain (moto for the local S3 server, cfn-lint, cargo-lambda
# and zig for arm64 builds) are installed on first use into a virtualenv outside the clone, so repeated
# runs on one machine are warm and a fresh machine still works.

SHELL := /bin/bash
CARGO_TARGET_DIR ?= $(HOME)/.cache/groundwork-target
export CARGO_TARGET_DIR
VENV ?= $(HOME)/.cache/groundwork-venv
PY := $(VENV)/bin/python
CARGO ?= cargo
# The same package selection in every cargo command, so nothing is rebuilt between steps.
PKGS := --workspace
GROUNDWORK := $(CARGO_TARGET_DIR)/debug/groundwork
FUNCTIONS := gt-pre-human-task gt-annotation-consolidation gt-auto-chainer

.DEFAULT_GOAL := help
.PHONY: help demo test lint fmt fmt-check check build package validate bench bench-crowdkit bench-process bench-seg bench-topup bench-memory eval deploy clean-venv

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-16s %s\n", $$1, $$2}'

$(VENV)/.moto: ## (internal) local S3 server for the integration tests
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check 'moto[server]>=5.1,<6'
	touch $@

$(VENV)/.cfn-lint:
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check 'cfn-lint>=1.20,<2'
	touch $@

$(VENV)/.cargo-lambda:
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check 'cargo-lambda>=1.8' ziglang
	touch $@

demo: $(VENV)/.moto ## A local Ground Truth: a replayed crowd job stopped, chained, completed and verified, a box job; then the CLI on the sample data
	$(CARGO) build $(PKGS) --bins --quiet
	MOTO_SERVER=$(VENV)/bin/moto_server $(CARGO_TARGET_DIR)/debug/groundwork-sim demo \
	  --crowd-dir data/crowd --set venanzi2015_wsamt --objects 300 --out $(CARGO_TARGET_DIR)/sim-demo
	tests/scripts/demo.sh $(GROUNDWORK)

test: $(VENV)/.moto ## Run every test (unit, property, fixture, integration against a local S3 server)
	@# The end-to-end tests run the real binaries: `cargo test` builds a package's binaries only for that
	@# package's own integration tests, so build them first (a fresh machine has none).
	$(CARGO) build $(PKGS) --bins
	MOTO_SERVER=$(VENV)/bin/moto_server $(CARGO) test $(PKGS)

lint: ## cargo fmt --check and clippy -D warnings
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy $(PKGS) --all-targets -- -D warnings

fmt: ## Format the code
	$(CARGO) fmt --all

check: lint test validate ## Everything CI checks

build: ## Debug build of every crate
	$(CARGO) build $(PKGS)

validate: $(VENV)/.cfn-lint ## Lint the SAM template offline
	$(VENV)/bin/cfn-lint template.yaml

package: $(VENV)/.cargo-lambda ## Release arm64 build of the three functions (cargo-lambda + zig)
	rustup target add aarch64-unknown-linux-gnu >/dev/null 2>&1 || true
	PATH="$(VENV)/bin:$$PATH" $(VENV)/bin/cargo-lambda lambda build --release --arm64 $(addprefix --bin ,$(FUNCTIONS))
	@ls -l $(CARGO_TARGET_DIR)/lambda/*/bootstrap

bench: ## Criterion benchmarks of the consolidation engine
	$(CARGO) bench -p groundwork

eval: ## Truth inference on every real crowd set and the synthetic regimes, whole set and batch by batch, against gold
	$(CARGO) run --release --quiet -p groundwork --example eval

$(VENV)/.matplotlib:
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check 'matplotlib>=3.8,<4'
	touch $@

bench-topup: $(VENV)/.matplotlib ## Adaptive redundancy replayed on the real sets: accuracy against answers, ours vs Toloka-style (table + docs/topup.png)
	$(CARGO) run --release --quiet -p groundwork --example topup -- --orders 20 --csv $(CARGO_TARGET_DIR)/topup-curves.csv
	$(PY) tests/scripts/plot-topup.py $(CARGO_TARGET_DIR)/topup-curves.csv docs/topup.png

bench-crowdkit: ## Ours vs crowd-kit on the same CSV files, side by side (crowd-kit in a pinned venv, made on first use)
	tests/scripts/bench-crowdkit.sh

bench-process: ## groundwork consolidate --labels vs a whole crowd-kit Python process on the same CSV, each started fresh
	tests/scripts/bench-process.sh

bench-memory: $(VENV)/.moto ## Peak memory of the release consolidation binary against its payload's size, under a local Lambda Runtime API with moto S3
	$(CARGO) build --release -p annotation-consolidation --quiet
	MOTO_SERVER=$(VENV)/bin/moto_server $(CARGO) run --quiet -p groundwork-sim --example consolidation_memory -- \
	  --bin-dir $(CARGO_TARGET_DIR)/release $(if $(OBJECTS),--objects $(OBJECTS)) $(BENCH_ARGS)

bench-seg: ## Our segmentation vs crowd-kit's SegmentationMajorityVote on the same masks, side by side
	tests/scripts/bench-seg.sh

# SAM's rust-cargolambda build method is a beta feature: without the flag `sam build` stops to ask.
deploy: ## sam build --beta-features && sam deploy --guided (needs AWS credentials, aws-sam-cli, cargo-lambda)
	sam build --beta-features && sam deploy --guided

clean-venv: ## Remove the tool virtualenv
	rm -rf $(VENV)
