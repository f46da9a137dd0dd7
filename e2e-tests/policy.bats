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

# jq: the pod apart from what the policy adds: its init containers and, for each modelcar it
# starts first, the postStart hook, kubectl's default container and the containers' order.
BESIDES_THE_POLICY='
	if .spec.initContainers then
		.spec.initContainers |= map(select(.name | startswith("modelcar-prefetch") | not))
	else . end
	| if .spec.initContainers == [] then del(.spec.initContainers) else . end
	| .spec.containers |= (map(del(.lifecycle.postStart)
		| if .lifecycle == {} then del(.lifecycle) else . end) | sort_by(.name))
	| del(.metadata.annotations["kubectl.kubernetes.io/default-container"])
	| if .metadata.annotations == {} then del(.metadata.annotations) else . end'

# The rest of the pod is left alone.
assert_nothing_else_changed() {
	patched_object | expect_jq --slurpfile request "$REQUEST" \
		"def rest: $BESIDES_THE_POLICY; rest == (\$request[0].object | rest)"
}

# $1 prefetch init containers added, and nothing else but modelcars started first.
assert_allowed_with_prefetch() {
	[ "$status" -eq 0 ]
	response | jq -e '.allowed == true and .patchType == "JSONPatch"'
	added_init_containers | expect_jq --argjson n "$1" \
		'length == $n and all(.[]; .name | startswith("modelcar-prefetch"))'
	assert_nothing_else_changed
}

# startModelcarFirst (the default): the modelcars named lead spec.containers, each with a
# postStart hook that waits for its model, and kubectl's default container is the one that
# led before.
assert_started_first() {
	local before
	before="$(jq -r '.object.metadata.annotations["kubectl.kubernetes.io/default-container"]
		// .object.spec.containers[0].name' "$REQUEST")"
	patched_object | expect_jq --args --arg before "$before" '
		[.spec.containers[:$ARGS.positional | length][] | .name] == $ARGS.positional
		and all(.spec.containers[:$ARGS.positional | length][];
			.lifecycle.postStart.exec.command | join(" ") | contains("until [ -e "))
		and .metadata.annotations["kubectl.kubernetes.io/default-container"] == $before' "$@"
}

# Hardened no-op container as the policy spec describes it; $2: expect a seccompProfile.
assert_prefetch_container() {
	local container=$1 with_seccomp=$2
	echo "$container" | expect_jq '.command == ["sh", "-c", "true"]'
	echo "$container" | expect_jq '.terminationMessagePolicy == "FallbackToLogsOnError"'
	echo "$container" | expect_jq '.securityContext.allowPrivilegeEscalation == false'
	echo "$container" | expect_jq '.securityContext.capabilities.drop == ["ALL"]'
	echo "$container" | expect_jq '.resources.requests == .resources.limits'
	if [ "$with_seccomp" = "with-seccomp" ]; then
		echo "$container" | expect_jq '.securityContext.seccompProfile.type == "RuntimeDefault"'
	else
		echo "$container" | expect_jq '.securityContext | has("seccompProfile") | not'
	fi
}

@test "pod before KServe's webhook: prefetch init container from the storage URI annotation" {
	kwctl_run kserve-predictor-before-kserve-webhook
	assert_allowed_with_prefetch 1
	patch_ops | jq -e '.[0].path == "/spec/initContainers" and (.[0].value | length) == 1'
	local container
	container="$(added_init_containers | jq -c '.[0]')"
	assert_prefetch_container "$container" with-seccomp
	echo "$container" | expect_jq '.name == "modelcar-prefetch"'
	echo "$container" | expect_jq '.image == "quay.io/example/models-iris:v1"'
	# No modelcar container to copy from: tag v1 defaults to IfNotPresent, resources to 10m/15Mi.
	echo "$container" | expect_jq '.imagePullPolicy == "IfNotPresent"'
	echo "$container" | expect_jq '.resources.requests == {"cpu": "10m", "memory": "15Mi"}'
	assert_expected_patch kserve-predictor-before-kserve-webhook
}

@test "KServe v0.13 modelcar: prefetch init container copies the modelcar, which starts first" {
	kwctl_run kserve-predictor-v0.13-modelcar
	assert_allowed_with_prefetch 1
	assert_started_first modelcar
	local container
	container="$(added_init_containers | jq -c '.[0]')"
	assert_prefetch_container "$container" with-seccomp
	echo "$container" | expect_jq '.name == "modelcar-prefetch"'
	echo "$container" | expect_jq --argjson v "$(fixture_container kserve-predictor-v0.13-modelcar modelcar .image)" '.image == $v'
	echo "$container" | expect_jq --argjson v "$(fixture_container kserve-predictor-v0.13-modelcar modelcar .imagePullPolicy)" '.imagePullPolicy == $v'
	echo "$container" | expect_jq --argjson v "$(fixture_container kserve-predictor-v0.13-modelcar modelcar .resources)" '.resources == $v'
	assert_expected_patch kserve-predictor-v0.13-modelcar
}

@test "KServe v0.14 modelcar-init already pulls the image: no prefetch; the modelcar starts first" {
	kwctl_run kserve-predictor-v0.14-modelcar-init
	assert_allowed_with_prefetch 0
	assert_started_first modelcar
	assert_expected_patch kserve-predictor-v0.14-modelcar-init
}

@test "Istio and private registry digest: appended after istio-init, image byte for byte" {
	kwctl_run kserve-predictor-istio-private-digest
	assert_allowed_with_prefetch 1
	assert_started_first modelcar
	local existing
	existing="$(jq '.object.spec.initContainers | length' "$FIXTURES/kserve-predictor-istio-private-digest.json")"
	patched_object | expect_jq --argjson i "$existing" '.spec.initContainers[$i].name == "modelcar-prefetch"'
	local container
	container="$(added_init_containers | jq -c '.[0]')"
	assert_prefetch_container "$container" with-seccomp
	echo "$container" | expect_jq '.name == "modelcar-prefetch"'
	echo "$container" | expect_jq --argjson v "$(fixture_container kserve-predictor-istio-private-digest modelcar .image)" '.image == $v'
	echo "$container" | expect_jq '.image | contains("@sha256:")'
	assert_expected_patch kserve-predictor-istio-private-digest
}

@test "two modelcars: one prefetch init container per image" {
	kwctl_run pod-two-modelcars
	assert_allowed_with_prefetch 2
	assert_started_first modelcar modelcar-1
	added_init_containers | expect_jq '[.[].name] == ["modelcar-prefetch", "modelcar-prefetch-1"]'
	added_init_containers | expect_jq '[.[].image] == ["quay.io/example/models-a:v2", "quay.io/example/models-b:latest"]'
	added_init_containers | expect_jq '[.[].imagePullPolicy] == ["IfNotPresent", "Always"]'
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

@test "pod with fields unknown to k8s-openapi: kept; the init container added, the modelcar first" {
	kwctl_run pod-unknown-field
	assert_allowed_with_prefetch 1
	assert_started_first modelcar
	added_init_containers | expect_jq '.[0].name == "modelcar-prefetch"'
	assert_expected_patch pod-unknown-field
}

@test "LLMInferenceService pod carrying modelcar-init: no prefetch by default; the modelcar starts first" {
	kwctl_run llm-inference-service-modelcar
	assert_allowed_with_prefetch 0
	assert_started_first modelcar
	assert_expected_patch llm-inference-service-modelcar
}

@test "nativeSidecar mode: the LLMInferenceService modelcar moves into the init containers" {
	kwctl_run llm-inference-service-modelcar --settings-json '{"mode": "nativeSidecar"}'
	[ "$status" -eq 0 ]
	assert_expected_patch llm-inference-service-modelcar.native-sidecar
	added_init_containers | expect_jq '.[0].startupProbe.exec.command == ["sh", "-c", "test -e '"'"'/mnt/models/qwen'"'"'"]'
}
