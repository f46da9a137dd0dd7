# Shared by the e2e suites (`load helpers` in each e2e-tests/*.bats).
#
# They need kwctl (a release binary, see KWCTL_RELEASES below), bats and jq; registry.bats
# also needs Debian's docker-registry and python3. Without kwctl every test is skipped.
# With kwctl on PATH nothing may be skipped: a missing tool, module or registry fails the test,
# so that a suite which could not run never passes for one that did (e2e-tests/run.sh also
# fails the run on any skip). With KUBEWARDEN_ENGINES, run.sh runs them once per kwctl.
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
# Since 1.32 kwctl is released from Kubewarden's monorepo; kubewarden/kwctl is archived (its
# releases stop at 1.31).
KWCTL_RELEASES="https://github.com/kubewarden/kubewarden-controller/releases"

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
	have kwctl || skip "kwctl is not installed: unzip kwctl-linux-x86_64.zip of a release at $KWCTL_RELEASES (1.32 and later; kubewarden/kwctl, archived, has 1.31 and older) and put kwctl on PATH"
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
	# For patched_object and added_init_containers.
	REQUEST=$request
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

# jq: the input with the JSON Patch $ops applied; add, remove and replace, the operations
# policy-server's diff produces. A pointer's token indexes an array where the document has one.
APPLY_PATCH='
def path_in($doc):
	reduce (ltrimstr("/") | split("/")[] | gsub("~1"; "/") | gsub("~0"; "~")) as $token ([];
		. as $above
		| . + [if ($doc | getpath($above) | type) == "array" then ($token | tonumber) else $token end]);
reduce $ops[] as $op (.;
	. as $doc
	| ($op.path | path_in($doc)) as $path
	| $path[:-1] as $parent
	| if $op.op == "replace" then setpath($path; $op.value)
	elif $op.op == "add" and (getpath($parent) | type) == "array" then
		setpath($parent; getpath($parent) | .[:$path[-1]] + [$op.value] + .[$path[-1]:])
	elif $op.op == "add" then setpath($path; $op.value)
	elif $op.op == "remove" then delpaths([$path])
	else error("unexpected patch operation \($op.op)") end)'

# The last kwctl_run's object as the patch leaves it; fails when kwctl gave no answer.
patched_object() {
	local ops
	ops="$(patch_ops)"
	if [ -z "$ops" ]; then
		echo "no AdmissionResponse in kwctl's output" >&2
		return 1
	fi
	jq -ec --argjson ops "$ops" ".object | $APPLY_PATCH" "$REQUEST"
}

# The init containers of the patched object that the request's object did not have.
added_init_containers() {
	patched_object | jq -c --slurpfile request "$REQUEST" '
		($request[0].object.spec.initContainers // [] | map(.name)) as $before
		| [.spec.initContainers // [] | .[] | select(.name as $name | $before | index($name) | not)]'
}

# jq -e on standard input, which must not be empty: jq 1.6 passes on no input at all, so a
# failed producer upstream in the pipe would pass for a true assertion.
expect_jq() {
	local input
	input="$(cat)"
	if [ -z "$input" ]; then
		echo "expect_jq $*: no input" >&2
		return 1
	fi
	jq -e "$@" <<<"$input"
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
