# Kubewarden's usual policy targets. `make check` is what CI runs (see .ci/run): `make test`,
# then the engine suites.
SOURCE_FILES := $(shell find src -type f -name '*.rs') Cargo.toml Cargo.lock
WASM_TARGET := wasm32-wasip1
BUILT_MODULE := target/$(WASM_TARGET)/release/modelcar_prefetch_policy.wasm
CARGO ?= cargo

.PHONY: all
all: policy.wasm

.PHONY: setup
setup:
	rustup target add $(WASM_TARGET)

policy.wasm: $(SOURCE_FILES)
	@rustup target list --installed 2>/dev/null | grep -qx $(WASM_TARGET) || $(MAKE) setup
	$(CARGO) build --locked --release --target $(WASM_TARGET) -p modelcar-prefetch-policy
	cp $(BUILT_MODULE) policy.wasm

annotated-policy.wasm: policy.wasm metadata.yml README.md
	kwctl annotate -m metadata.yml -u README.md -o annotated-policy.wasm policy.wasm

.PHONY: fmt
fmt:
	$(CARGO) fmt --all -- --check

.PHONY: lint
lint:
	$(CARGO) clippy --locked --workspace --all-targets -- -D warnings

.PHONY: test
test: fmt lint policy.wasm
	$(CARGO) test --locked --workspace

.PHONY: check
check: test
	$(MAKE) e2e-tests
	$(MAKE) e2e-cluster
	$(MAKE) e2e-cluster-scale
	$(MAKE) e2e-node

.PHONY: clean
clean:
	$(CARGO) clean
	rm -f policy.wasm annotated-policy.wasm

# Evaluates the KServe predictor pod fixture and explains the patch (kwctl when installed).
.PHONY: run
run: policy.wasm
	bash scripts/run.sh

# Every e2e suite (e2e-tests/*.bats) through kwctl. Needs kwctl, bats, jq and docker-registry
# (`scripts/install-test-deps.sh`); without kwctl each test is skipped, with kwctl on PATH a
# skipped test fails the run (e2e-tests/run.sh). Kubewarden's release workflow runs this
# target on a runner with kwctl and bats only, hence the install where CI is set.
.PHONY: e2e-tests
e2e-tests:
	@if [ -n "$$CI" ]; then scripts/install-test-deps.sh; fi
	@if command -v kwctl >/dev/null 2>&1; then $(MAKE) annotated-policy.wasm; fi
	e2e-tests/run.sh

# The annotated module in a real control plane (etcd, kube-apiserver, policy-server, a KServe
# webhook stand-in): see e2e-tests/cluster/README.md. Skipped, with how to get them, when the
# binaries are missing; a skip is a failure when they are present.
.PHONY: e2e-cluster
e2e-cluster:
	@if command -v kwctl >/dev/null 2>&1; then $(MAKE) annotated-policy.wasm; fi
	python3 e2e-tests/cluster/run.py

# `auto` against 1,000 Nodes of realistic size (E2E_CLUSTER_SCALE_NODES=1000,5000 adds
# 5,000): the first pod after policy-server starts and steady pods, latency and memory
# printed. See "Scale suite" in e2e-tests/cluster/README.md; skips as e2e-cluster does.
.PHONY: e2e-cluster-scale
e2e-cluster-scale:
	@if command -v kwctl >/dev/null 2>&1; then $(MAKE) annotated-policy.wasm; fi
	python3 e2e-tests/cluster/scale.py

# KServe-shaped pods on a real node (kubelet, containerd, runc; a control plane as for
# e2e-cluster): see e2e-tests/node/README.md. Needs root; skipped, with how to get them,
# when the binaries are missing, and a skip is a failure when they are present.
.PHONY: e2e-node
e2e-node:
	@if command -v kwctl >/dev/null 2>&1; then $(MAKE) annotated-policy.wasm; fi
	python3 e2e-tests/node/run.py $(if $(NODE_RESULTS_FILE),--results $(NODE_RESULTS_FILE))

# The README's node-results table and docs/node-outcome.svg, from the committed results of
# the node suite (`make e2e-node E2E_NODE_RUNS=5 NODE_RESULTS_FILE=...` records them).
NODE_RESULTS ?= e2e-tests/node/results/latest.jsonl
.PHONY: node-report
node-report:
	python3 e2e-tests/node/report.py $(NODE_RESULTS) --readme README.md --svg docs/node-outcome.svg

# The policy module next to the SDK baseline modules (benches/baselines, built for speed with
# [profile.floor]), through the in-repo waPC host and, when kwctl is on PATH, `kwctl bench`:
# prints each case's ratio to its floor. See README "Performance" for the knobs.
BASELINES := accept-only parse-accept mutate-label
.PHONY: bench
bench: policy.wasm
	$(CARGO) build --locked --profile floor --target $(WASM_TARGET) $(addprefix -p ,$(BASELINES))
	$(CARGO) bench --locked -p modelcar-prefetch-host --bench policy

# The README's release-profile table: one build per [profile.release] step, all measured in
# one benchmark run next to the baselines.
.PHONY: bench-profiles
bench-profiles: policy.wasm
	bash scripts/profile-table.sh
