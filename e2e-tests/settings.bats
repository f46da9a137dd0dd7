#!/usr/bin/env bats
# Settings validation as kwctl (and so policy-server) runs it: each kind of mistake README
# "Settings" lists is refused before any request is evaluated, with the message that names
# the field and the fix. Invalid settings put a deployed policy in an error state where every
# pod it matches is rejected, so these messages are what a user gets to fix it.

load helpers

setup() {
	require_engine
}

# kwctl runs settings validation first; the request only has to be a valid one.
refuse() {
	kwctl_run kserve-predictor-before-kserve-webhook --settings-json "$1"
}

@test "both model image sources empty: refused" {
	refuse '{"modelcarContainerNames": [], "storageUriAnnotations": []}'
	assert_settings_refused "modelcarContainerNames and storageUriAnnotations are both empty: the policy would find no model image; keep at least one of them"
}

@test "modelcar name pattern '*' alone: refused, it would match every container" {
	refuse '{"modelcarContainerNames": ["modelcar", "*"]}'
	assert_settings_refused 'modelcarContainerNames[1]: "*" would match every container; name the modelcar, for example "modelcar" or "modelcar-*"'
}

@test "modelcar name pattern with '*' inside: refused" {
	refuse '{"modelcarContainerNames": ["model*car"]}'
	assert_settings_refused 'modelcarContainerNames[0]: "model*car": `*` may only end a pattern'
}

@test "empty storage URI annotation key: refused" {
	refuse '{"storageUriAnnotations": [""]}'
	assert_settings_refused 'storageUriAnnotations[0] is empty; write an annotation key such as "internal.serving.kserve.io/storage-initializer-sourceuri"'
}

@test "initContainerName not a DNS-1123 label: refused" {
	refuse '{"initContainerName": "Prefetch_Models"}'
	assert_settings_refused 'initContainerName: "Prefetch_Models" is not a valid container name; use lower-case letters, digits and '"'-'"', starting and ending with a letter or digit'
}

@test "initContainerName longer than 57 characters: refused, no room for -N suffixes" {
	local name
	name="$(printf 'a%.0s' {1..58})"
	refuse "{\"initContainerName\": \"$name\"}"
	assert_settings_refused "initContainerName: \"$name\" has 58 characters; use at most 57 so that \`-N\` suffixes fit in 63"
}

@test "initContainerName modelcar-init: refused, KServe v0.14+ adds its own" {
	refuse '{"initContainerName": "modelcar-init"}'
	assert_settings_refused 'initContainerName: "modelcar-init" is the name KServe gives its own init container, and a duplicate name makes the API server reject the pod; use another name, for example "modelcar-prefetch"'
}

@test "initContainerName modelcar-init-N: refused, KServe v0.20 numbers its own" {
	refuse '{"initContainerName": "modelcar-init-2"}'
	assert_settings_refused 'initContainerName: "modelcar-init-2" is the name KServe gives its own init container'
}

@test "empty command: refused" {
	refuse '{"command": []}'
	assert_settings_refused 'command is empty; give the program to run, for example ["sh", "-c", "true"]'
}

@test "command with an empty program: refused" {
	refuse '{"command": ["", "-c", "true"]}'
	assert_settings_refused 'command[0] is empty; it must name the program to run, for example "sh"'
}

@test "resources value that is not a Kubernetes quantity: refused" {
	refuse '{"resources": {"limits": {"memory": "15MB"}}}'
	assert_settings_refused 'resources.limits.memory: "15MB" is not a Kubernetes quantity; write it like "10m", "15Mi" or "1"'
}

@test "resources request above its limit: refused, the API server would reject the pod" {
	refuse '{"resources": {"requests": {"cpu": "1"}, "limits": {"cpu": "500m"}}}'
	assert_settings_refused 'resources.requests.cpu ("1") is above resources.limits.cpu; the API server rejects such a container'
}

@test "resources key other than requests and limits: refused" {
	refuse '{"resources": {"claims": [{"name": "gpu"}]}}'
	assert_settings_refused 'resources.claims is not supported; use resources.requests and resources.limits'
}

@test "securityContext field a container securityContext does not have: refused" {
	refuse '{"securityContext": {"runAsNonroot": true}}'
	assert_settings_refused 'securityContext.runAsNonroot is not a field of a container securityContext; known fields: allowPrivilegeEscalation,'
}

@test "startupProbe field a probe does not have: refused" {
	refuse '{"mode": "nativeSidecar", "startupProbe": {"exec": {"command": ["true"]}, "periodSecond": 1}}'
	assert_settings_refused 'startupProbe.periodSecond is not a field of a container startupProbe; known fields: exec,'
}

@test "nativeSidecarMinKubeletVersion that is not a version: refused" {
	refuse '{"mode": "auto", "nativeSidecarMinKubeletVersion": "latest"}'
	assert_settings_refused 'nativeSidecarMinKubeletVersion: "latest" is not a Kubernetes version; write it as "1.29"'
}

@test "nodeLabelSelector that is not a label selector: refused" {
	refuse '{"mode": "auto", "nodeLabelSelector": "gpu: true"}'
	assert_settings_refused 'nodeLabelSelector: "gpu: true" is not a label selector; write it as `kubectl get nodes -l` takes it, for example "nvidia.com/gpu.present=true", or leave it empty for every node'
}

@test "unknown setting: refused and named" {
	kwctl_run kserve-predictor-before-kserve-webhook --settings-path "$SETTINGS/invalid-unknown-field.json"
	assert_settings_refused 'settings: unknown field `nonsenseField`, expected one of `mode`,'
}

@test "setting of the wrong type: refused and named" {
	refuse '{"command": "true"}'
	assert_settings_refused 'command: invalid type: string "true", expected a sequence'
}

@test "unknown mode: refused with the modes there are" {
	refuse '{"mode": "sidecar"}'
	assert_settings_refused 'mode: unknown variant `sidecar`, expected one of `initContainer`, `nativeSidecar`, `auto`'
}

@test "several mistakes: every one is reported at once" {
	refuse '{"command": [], "initContainerName": "modelcar-init"}'
	assert_settings_refused 'initContainerName: "modelcar-init" is the name KServe gives its own init container'
	assert_settings_refused 'command is empty'
}

# The README's settings examples (```yaml blocks with a top-level `settings:` key, in the
# section "Settings") as kwctl reads a settings file.
@test "every settings example in the README is accepted" {
	local dir="$BATS_TEST_TMPDIR/readme-settings"
	mkdir -p "$dir"
	awk -v dir="$dir" '
		/^## / { in_settings = ($0 == "## Settings") }
		in_settings && /^```yaml$/ { block = 1; body = 0; next }
		block && /^```$/ { block = 0; if (body) close(file); next }
		block && /^settings:/ { body = 1; n++; file = dir "/" n ".yml"; next }
		block && body { sub(/^  /, ""); print > file }
	' "$ROOT/README.md"
	local files=("$dir"/*.yml)
	[ -f "${files[0]}" ] || {
		echo "no \`settings:\` example found in README.md's Settings section" >&2
		return 1
	}
	local file
	for file in "${files[@]}"; do
		echo "# README example: $(cat "$file")"
		kwctl_run kserve-predictor-before-kserve-webhook --settings-path "$file"
		[ "$status" -eq 0 ]
		response | jq -e '.allowed == true'
	done
	echo "checked ${#files[@]} examples"
}
