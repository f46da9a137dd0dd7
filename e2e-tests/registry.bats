#!/usr/bin/env bats
# OCI distribution for real: the annotated module pushed with `kwctl push` to a local CNCF
# distribution registry (Debian's docker-registry, plain HTTP on 127.0.0.1), then pulled, run
# and inspected from there as users do from ghcr.io. The registry lives for this file: started
# in setup_file by e2e-tests/lib/registry.py (the Python suites' starter), stopped by PID in
# teardown_file, which bats runs whether the tests pass or fail.

load helpers

REPOSITORY=policies/modelcar-prefetch

# bats before 1.9 cannot skip from setup_file: setup_file notes why it could not start the
# registry, and each test's setup reports it (a skip without kwctl, a failure with it).
setup_file() {
	have kwctl || return 0
	if ! have docker-registry; then
		export REGISTRY_MISSING="docker-registry is not installed: apt-get install docker-registry"
		return 0
	fi
	if ! have python3; then
		export REGISTRY_MISSING="python3, which starts the registry, is not installed"
		return 0
	fi
	local dir="$BATS_FILE_TMPDIR/registry" started
	# Started as the Python suites start it (e2e-tests/lib/registry.py), left running: it prints
	# the address and PID once the registry answers. fd 3 closed: bats waits for every process
	# that holds it.
	started="$(python3 "$ROOT/e2e-tests/lib/registry.py" serve "$dir" 3>&-)" || return 1
	read -r REGISTRY REGISTRY_PID <<<"$started"
	export REGISTRY
	export POLICY_URI="registry://$REGISTRY/$REPOSITORY:v0.0.0-e2e"
	# The registry speaks plain HTTP.
	export SOURCES="$dir/sources.yml"
	printf 'insecure_sources:\n  - "%s"\n' "$REGISTRY" >"$SOURCES"
	export PUSH_OUTPUT="$dir/push.out"
	kwctl --no-color push --sources-path "$SOURCES" "$POLICY" "$POLICY_URI" >"$PUSH_OUTPUT" 2>&1 || {
		cat "$PUSH_OUTPUT" >&2
		return 1
	}
}

# Not this shell's child: signal it by PID and wait until it is gone.
teardown_file() {
	if [ -n "${REGISTRY_PID:-}" ]; then
		kill "$REGISTRY_PID" 2>/dev/null || true
		local tries=0
		while kill -0 "$REGISTRY_PID" 2>/dev/null && [ "$tries" -lt 100 ]; do
			sleep 0.1
			tries=$((tries + 1))
		done
		! kill -0 "$REGISTRY_PID" 2>/dev/null || kill -KILL "$REGISTRY_PID"
	fi
}

setup() {
	require_engine
	[ -z "${REGISTRY_MISSING:-}" ] || cannot_run "$REGISTRY_MISSING"
	[ -n "${REGISTRY:-}" ]
}

@test "kwctl push: the annotated module is in the registry under the digest kwctl reports" {
	cat "$PUSH_OUTPUT"
	local pushed
	pushed="$(sed -n "s|^Policy successfully pushed: $REGISTRY/$REPOSITORY@\(sha256:[0-9a-f]\{64\}\)\$|\1|p" "$PUSH_OUTPUT")"
	[ -n "$pushed" ]
	run kwctl --no-color digest --sources-path "$SOURCES" "$POLICY_URI"
	echo "$output"
	[ "$status" -eq 0 ]
	[[ "$output" == *"$pushed"* ]]
}

@test "kwctl pull: the module comes back byte for byte, into the private store" {
	local trust
	mapfile -t trust < <(trust_flags)
	run kwctl --no-color pull "${trust[@]}" --sources-path "$SOURCES" "$POLICY_URI"
	echo "$output"
	[ "$status" -eq 0 ]
	# The store kwctl reports is the suite's own, and holds the module as pushed.
	local store
	store="$(kwctl --no-color info | sed -n 's/^Policy store: //p')"
	[[ "$store" == "$XDG_CACHE_HOME"/* ]]
	local stored
	stored="$(find "$store" -type f -path "*$REGISTRY*")"
	echo "stored: $stored"
	cmp "$POLICY" "$stored"
	run kwctl --no-color policies
	echo "$output"
	[[ "$output" == *"$POLICY_URI"* ]]
	# Also to a file of one's own.
	run kwctl --no-color pull "${trust[@]}" --sources-path "$SOURCES" -o "$BATS_TEST_TMPDIR/pulled.wasm" "$POLICY_URI"
	[ "$status" -eq 0 ]
	cmp "$POLICY" "$BATS_TEST_TMPDIR/pulled.wasm"
}

@test "kwctl run registry://: the same patch as the local module" {
	kwctl_run --policy "$POLICY_URI" kserve-predictor-v0.13-modelcar \
		--settings-path "$SETTINGS/default.json" --sources-path "$SOURCES"
	[ "$status" -eq 0 ]
	local from_registry
	from_registry="$(patch_ops)"
	assert_expected_patch kserve-predictor-v0.13-modelcar
	kwctl_run kserve-predictor-v0.13-modelcar
	[ "$status" -eq 0 ]
	[ "$(patch_ops)" = "$from_registry" ]
}

@test "kwctl run registry://, mode auto: the pulled module keeps its context-aware metadata" {
	kwctl_run --policy "$POLICY_URI" pod-two-modelcars --settings-json '{"mode": "auto"}' \
		--sources-path "$SOURCES" --allow-context-aware \
		--replay-host-capabilities-interactions "$SESSIONS/nodes-all-native-sidecar-ready.yml"
	[ "$status" -eq 0 ]
	assert_expected_patch pod-two-modelcars.native-sidecar
}

@test "kwctl inspect registry://: the metadata of the local module" {
	run kwctl --no-color inspect -o yaml --sources-path "$SOURCES" "$POLICY_URI"
	[ "$status" -eq 0 ]
	local from_registry=$output
	grep -qx 'mutating: true' <<<"$from_registry"
	grep -qx '  kind: Node' <<<"$from_registry"
	run kwctl --no-color inspect -o yaml "$POLICY"
	[ "$status" -eq 0 ]
	[ "$from_registry" = "$output" ]
}
