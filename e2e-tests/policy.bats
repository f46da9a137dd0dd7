#!/usr/bin/env bats
# End-to-end tests: the annotated policy run by kwctl, as Kubewarden's policy CI does, on the
# AdmissionRequests in fixtures/ (see fixtures/README.md). `make e2e-tests` builds
# annotated-policy.wasm and runs this file.
#
# Needs kwctl, bats and jq. bats and jq come from Debian (`apt-get install bats jq`); kwctl is
# a release binary of kubewarden/kwctl. Without kwctl every test is skipped.
#
# kwctl checks sigstore material against the public sigstore trust root, which it downloads.
# To run offline, point KWCTL_SIGSTORE_TRUST_CONFIG at a local sigstore ClientTrustConfig JSON
# (trusted root + signing config); this suite then passes `--sigstore-trust-config` to kwctl.

ROOT="$(cd "$BATS_TEST_DIRNAME/.." && pwd)"
FIXTURES="$ROOT/e2e-tests/fixtures"
SETTINGS="$ROOT/e2e-tests/settings"
EXPECTED="$ROOT/e2e-tests/expected"
POLICY="${POLICY:-$ROOT/annotated-policy.wasm}"

require_tools() {
	if ! command -v kwctl >/dev/null 2>&1; then
		skip "kwctl is not installed: install a kwctl release binary to run the e2e tests"
	fi
	if ! command -v jq >/dev/null 2>&1; then
		skip "jq is not installed: apt-get install jq"
	fi
}

# bats before 1.9 cannot skip from setup_file: the skip itself happens in setup.
setup_file() {
	command -v kwctl >/dev/null 2>&1 || return 0
	if [ ! -f "$POLICY" ]; then
		echo "# $POLICY is missing: run \`make annotated-policy.wasm\`" >&3
		return 1
	fi
}

setup() {
	require_tools
}

# Runs kwctl on a fixture with the default settings, or with the kwctl flags given after it.
kwctl_run() {
	local fixture=$1
	shift
	local trust=()
	if [ -n "${KWCTL_SIGSTORE_TRUST_CONFIG:-}" ]; then
		trust=(--sigstore-trust-config "$KWCTL_SIGSTORE_TRUST_CONFIG")
	fi
	local settings=(--settings-path "$SETTINGS/default.json")
	if [ "$#" -gt 0 ]; then
		settings=("$@")
	fi
	run kwctl run "${trust[@]}" "${settings[@]}" --request-path "$FIXTURES/$fixture.json" "$POLICY"
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

# Field of the fixture's container named $2 (jq path $3).
fixture_container() {
	jq -c --arg name "$2" ".object.spec.containers[] | select(.name == \$name) | $3" "$FIXTURES/$1.json"
}

# The decoded patch has the operations of e2e-tests/expected/$1.json (shared with the
# waPC-host tests). Their order follows the pod's key order in kwctl's JSON library, so
# it is compared as a set; the ops in these patches touch independent paths.
assert_expected_patch() {
	patch_ops | jq -e --slurpfile want "$EXPECTED/$1.json" 'sort == ($want[0] | sort)'
}

assert_allowed_without_patch() {
	[ "$status" -eq 0 ]
	response | jq -e '.allowed == true'
	response | jq -e 'has("patch") | not'
}

assert_allowed_with_ops() {
	[ "$status" -eq 0 ]
	response | jq -e '.allowed == true and .patchType == "JSONPatch"'
	patch_ops | jq -e --argjson n "$1" 'length == $n'
	# Nothing but init container additions: the rest of the pod is left alone.
	patch_ops | jq -e 'all(.[]; .op == "add" and (.path | startswith("/spec/initContainers")))'
}

# Hardened no-op container as the policy spec describes it; $2: expect a seccompProfile.
assert_prefetch_container() {
	local container=$1 with_seccomp=$2
	echo "$container" | jq -e '.command == ["sh", "-c", "true"]'
	echo "$container" | jq -e '.terminationMessagePolicy == "FallbackToLogsOnError"'
	echo "$container" | jq -e '.securityContext.allowPrivilegeEscalation == false'
	echo "$container" | jq -e '.securityContext.capabilities.drop == ["ALL"]'
	echo "$container" | jq -e '.resources.requests == .resources.limits'
	if [ "$with_seccomp" = "with-seccomp" ]; then
		echo "$container" | jq -e '.securityContext.seccompProfile.type == "RuntimeDefault"'
	else
		echo "$container" | jq -e '.securityContext | has("seccompProfile") | not'
	fi
}

@test "pod before KServe's webhook: prefetch init container from the storage URI annotation" {
	kwctl_run kserve-predictor-before-kserve-webhook
	assert_allowed_with_ops 1
	patch_ops | jq -e '.[0].path == "/spec/initContainers" and (.[0].value | length) == 1'
	local container
	container="$(added_init_containers | jq -c '.[0]')"
	assert_prefetch_container "$container" with-seccomp
	echo "$container" | jq -e '.name == "modelcar-prefetch"'
	echo "$container" | jq -e '.image == "quay.io/example/models-iris:v1"'
	# No modelcar container to copy from: tag v1 defaults to IfNotPresent, resources to 10m/15Mi.
	echo "$container" | jq -e '.imagePullPolicy == "IfNotPresent"'
	echo "$container" | jq -e '.resources.requests == {"cpu": "10m", "memory": "15Mi"}'
	assert_expected_patch kserve-predictor-before-kserve-webhook
}

@test "KServe v0.13 modelcar: prefetch init container copies the modelcar" {
	kwctl_run kserve-predictor-v0.13-modelcar
	assert_allowed_with_ops 1
	patch_ops | jq -e '.[0].path == "/spec/initContainers"'
	local container
	container="$(added_init_containers | jq -c '.[0]')"
	assert_prefetch_container "$container" with-seccomp
	echo "$container" | jq -e '.name == "modelcar-prefetch"'
	echo "$container" | jq -e --argjson v "$(fixture_container kserve-predictor-v0.13-modelcar modelcar .image)" '.image == $v'
	echo "$container" | jq -e --argjson v "$(fixture_container kserve-predictor-v0.13-modelcar modelcar .imagePullPolicy)" '.imagePullPolicy == $v'
	echo "$container" | jq -e --argjson v "$(fixture_container kserve-predictor-v0.13-modelcar modelcar .resources)" '.resources == $v'
	assert_expected_patch kserve-predictor-v0.13-modelcar
}

@test "KServe v0.14 modelcar-init already pulls the image: no patch" {
	kwctl_run kserve-predictor-v0.14-modelcar-init
	assert_allowed_without_patch
	assert_expected_patch kserve-predictor-v0.14-modelcar-init
}

@test "PSA restricted namespace: hardened container keeps the pod's seccomp profile" {
	kwctl_run kserve-predictor-psa-restricted
	assert_allowed_with_ops 1
	local container
	container="$(added_init_containers | jq -c '.[0]')"
	assert_prefetch_container "$container" without-seccomp
	echo "$container" | jq -e '.image == "ghcr.io/example/models/granite:2.0"'
	assert_expected_patch kserve-predictor-psa-restricted
}

@test "Istio and private registry digest: appended after istio-init, image byte for byte" {
	kwctl_run kserve-predictor-istio-private-digest
	assert_allowed_with_ops 1
	local existing
	existing="$(jq '.object.spec.initContainers | length' "$FIXTURES/kserve-predictor-istio-private-digest.json")"
	patch_ops | jq -e --arg path "/spec/initContainers/$existing" '.[0].path == $path'
	local container
	container="$(added_init_containers | jq -c '.[0]')"
	assert_prefetch_container "$container" with-seccomp
	echo "$container" | jq -e '.name == "modelcar-prefetch"'
	echo "$container" | jq -e --argjson v "$(fixture_container kserve-predictor-istio-private-digest modelcar .image)" '.image == $v'
	echo "$container" | jq -e '.image | contains("@sha256:")'
	assert_expected_patch kserve-predictor-istio-private-digest
}

@test "two modelcars: one prefetch init container per image" {
	kwctl_run pod-two-modelcars
	[ "$status" -eq 0 ]
	patch_ops | jq -e 'length == 1 or length == 2'
	patch_ops | jq -e 'all(.[]; .op == "add" and (.path | startswith("/spec/initContainers")))'
	added_init_containers | jq -e '[.[].name] == ["modelcar-prefetch", "modelcar-prefetch-1"]'
	added_init_containers | jq -e '[.[].image] == ["quay.io/example/models-a:v2", "quay.io/example/models-b:latest"]'
	added_init_containers | jq -e '[.[].imagePullPolicy] == ["IfNotPresent", "Always"]'
	local container
	container="$(added_init_containers | jq -c '.[1]')"
	assert_prefetch_container "$container" with-seccomp
	assert_expected_patch pod-two-modelcars
}

@test "pod without a modelcar: no patch" {
	kwctl_run pod-without-modelcar
	assert_allowed_without_patch
	assert_expected_patch pod-without-modelcar
}

@test "UPDATE of a modelcar pod: no patch (pod specs are immutable)" {
	kwctl_run kserve-predictor-update
	assert_allowed_without_patch
	assert_expected_patch kserve-predictor-update
}

@test "DELETE of a modelcar pod: no patch" {
	kwctl_run kserve-predictor-delete
	assert_allowed_without_patch
	assert_expected_patch kserve-predictor-delete
}

@test "Deployment CREATE: not a pod, no patch" {
	kwctl_run deployment-create
	assert_allowed_without_patch
	assert_expected_patch deployment-create
}

@test "pod with fields unknown to k8s-openapi: only the init container is added" {
	kwctl_run pod-unknown-field
	assert_allowed_with_ops 1
	added_init_containers | jq -e '.[0].name == "modelcar-prefetch"'
	assert_expected_patch pod-unknown-field
}

@test "unknown settings field: kwctl refuses the settings and names the field" {
	kwctl_run kserve-predictor-v0.13-modelcar --settings-path "$SETTINGS/invalid-unknown-field.json"
	[ "$status" -ne 0 ]
	[[ "$output" == *"Provided settings are not valid"* ]]
	[[ "$output" == *"nonsenseField"* ]]
}

@test "mode auto, every kubelet runs native sidecars: the modelcars become native sidecars" {
	kwctl_run pod-two-modelcars --settings-path "$SETTINGS/mode-auto.json" --allow-context-aware \
		--replay-host-capabilities-interactions "$ROOT/e2e-tests/sessions/nodes-all-native-sidecar-ready.yml"
	[ "$status" -eq 0 ]
	response | jq -e '.allowed == true'
	added_init_containers | jq -e '[.[].name] == ["modelcar", "modelcar-1"]'
	added_init_containers | jq -e 'all(.[]; .restartPolicy == "Always")'
	added_init_containers | jq -e '[.[].image] == ["quay.io/example/models-a:v2", "quay.io/example/models-b:latest"]'
	# Moved, not copied: both leave spec.containers (names are unique across the pod).
	patch_ops | jq -e '[.[] | select(.op == "remove" and (.path | startswith("/spec/containers/")))] | length == 2'
	assert_expected_patch pod-two-modelcars.native-sidecar
}

@test "mode auto, one kubelet too old for native sidecars: prefetch init containers instead" {
	kwctl_run pod-two-modelcars --settings-path "$SETTINGS/mode-auto.json" --allow-context-aware \
		--replay-host-capabilities-interactions "$ROOT/e2e-tests/sessions/nodes-one-kubelet-too-old.yml"
	assert_allowed_with_ops 1
	added_init_containers | jq -e '[.[].name] == ["modelcar-prefetch", "modelcar-prefetch-1"]'
	added_init_containers | jq -e 'all(.[]; has("restartPolicy") | not)'
	assert_expected_patch pod-two-modelcars
}

@test "LLMInferenceService pod carrying modelcar-init: no patch in the default mode" {
	kwctl_run llm-inference-service-modelcar
	assert_allowed_without_patch
	assert_expected_patch llm-inference-service-modelcar
}

@test "nativeSidecar mode: the LLMInferenceService modelcar moves into the init containers" {
	kwctl_run llm-inference-service-modelcar --settings-json '{"mode": "nativeSidecar"}'
	[ "$status" -eq 0 ]
	assert_expected_patch llm-inference-service-modelcar.native-sidecar
	added_init_containers | jq -e '.[0].startupProbe.exec.command == ["sh", "-c", "test -e '"'"'/mnt/models/qwen'"'"'"]'
}
