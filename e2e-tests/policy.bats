#!/usr/bin/env bats
# The annotated policy run by kwctl, as Kubewarden's policy CI does, on the AdmissionRequests
# in fixtures/ (see fixtures/README.md): the exact JSON Patch of each. Settings refusals are
# in settings.bats, mode auto in auto-mode.bats, packaging in packaging.bats, OCI distribution
# in registry.bats; helpers.bash says what the suites need. `make e2e-tests` runs them all.

load helpers

setup() {
	require_engine
}

# Field of the fixture's container named $2 (jq path $3).
fixture_container() {
	jq -c --arg name "$2" ".object.spec.containers[] | select(.name == \$name) | $3" "$FIXTURES/$1.json"
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
