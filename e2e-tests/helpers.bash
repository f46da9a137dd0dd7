# Shared by the e2e suites (`load helpers` in each e2e-tests/*.bats).
#
# They need kwctl (a release binary: https://github.com/kubewarden/kwctl/releases), bats and
# jq; registry.bats also needs Debian's docker-registry. Without kwctl every test is skipped.
# With kwctl on PATH nothing may be skipped: a missing tool, module or registry fails the test,
# so that a suite which could not run never passes for one that did (e2e-tests/run.sh also
# fails the run on any skip).
#
# kwctl checks sigstore material against the public sigstore trust root, which it downloads.
# To run offline, point KWCTL_SIGSTORE_TRUST_CONFIG at a local sigstore ClientTrustConfig JSON
# (trusted root + signing config); the suites then pass `--sigstore-trust-config` to kwctl.

ROOT="$(cd "$BATS_TEST_DIRNAME/.." && pwd)"
FIXTURES="$ROOT/e2e-tests/fixtures"
SETTINGS="$ROOT/e2e-tests/settings"
EXPECTED="$ROOT/e2e-tests/expected"
SESSIONS="$ROOT/e2e-tests/sessions"
POLICY="${POLICY:-$ROOT/annotated-policy.wasm}"
KWCTL_RELEASES="https://github.com/kubewarden/kwctl/releases"

# kwctl's policy store, wasmtime cache and sources.yaml live under the XDG directories: one
# private set per bats run, so that pulls neither land in nor depend on the user's store.
export XDG_CACHE_HOME="$BATS_RUN_TMPDIR/xdg-cache"
export XDG_CONFIG_HOME="$BATS_RUN_TMPDIR/xdg-config"

have() {
	command -v "$1" >/dev/null 2>&1
}

# A test that cannot run: skipped where kwctl is missing (nothing could run there), a failure
# where kwctl is on PATH.
cannot_run() {
	if have kwctl; then
		echo "kwctl is on PATH, so this test must run, but: $*" >&2
		return 1
	fi
	skip "$*"
}

require_engine() {
	have kwctl || skip "kwctl is not installed: get a release binary from $KWCTL_RELEASES and put it on PATH"
	have jq || cannot_run "jq is not installed: apt-get install jq"
	[ -f "$POLICY" ] || cannot_run "$POLICY is missing: run \`make annotated-policy.wasm\`"
}

# For the kwctl commands that verify sigstore material (run, pull, scaffold manifest).
trust_flags() {
	if [ -n "${KWCTL_SIGSTORE_TRUST_CONFIG:-}" ]; then
		printf '%s\n' --sigstore-trust-config "$KWCTL_SIGSTORE_TRUST_CONFIG"
	fi
}

# kwctl run on a fixture (bare name in fixtures/, or a path) with the default settings, or
# with the kwctl flags given after it; the policy is $POLICY unless --policy URI comes first.
kwctl_run() {
	local policy="$POLICY"
	if [ "$1" = --policy ]; then
		policy=$2
		shift 2
	fi
	local request=$1
	shift
	[ -f "$request" ] || request="$FIXTURES/$request.json"
	local flags=(--settings-path "$SETTINGS/default.json")
	if [ "$#" -gt 0 ]; then
		flags=("$@")
	fi
	local trust
	mapfile -t trust < <(trust_flags)
	run kwctl --no-color run "${trust[@]}" "${flags[@]}" --request-path "$request" "$policy"
	echo "output = ${output}"
}

# kwctl's AdmissionResponse: the JSON line among whatever else kwctl printed (bats `run`
# mixes stderr, where kwctl logs, into $output).
response() {
	printf '%s\n' "$output" | grep -E '^\{.*"allowed"' | tail -n 1
}

# The decoded JSON Patch, `[]` when there is none.
patch_ops() {
	response | jq -c 'if .patch then (.patch | @base64d | fromjson) else [] end'
}

# The containers the patch adds to the init containers, whatever the shape of the ops.
added_init_containers() {
	patch_ops | jq -c '[.[] | select(.op == "add") |
		if .path == "/spec/initContainers" then .value[] else .value end]'
}

# The decoded patch has the operations of e2e-tests/expected/$1.json (shared with the
# waPC-host tests). Their order follows the pod's key order in kwctl's JSON library, so
# it is compared as a set; the ops in these patches touch independent paths.
assert_expected_patch() {
	response | jq -e '.allowed == true'
	patch_ops | jq -e --slurpfile want "$EXPECTED/$1.json" 'sort == ($want[0] | sort)'
}

# kwctl refused the settings: non-zero exit, and its error names the problem ($1, verbatim).
assert_settings_refused() {
	[ "$status" -ne 0 ]
	local error
	error="$(printf '%s\n' "$output" | grep '^Error: Provided settings are not valid: ')"
	echo "settings error: $error"
	[[ "$error" == *"$1"* ]]
	# Refused before any evaluation: no AdmissionResponse.
	[ -z "$(response)" ]
}
