#!/usr/bin/env bats
# What users get from kwctl besides evaluations: the metadata `kwctl annotate` embeds and
# `kwctl inspect` shows, the policy resources `kwctl scaffold manifest` writes, the Artifact Hub
# package `kwctl scaffold artifacthub` writes, and the policy resources in examples/.

load helpers

setup() {
	require_engine
}

# The policy resource in $1 with its module replaced by the local annotated module: the
# published one (registry://ghcr.io/...) is not reachable from the tests. Prints the copy's path.
with_local_module() {
	local copy
	copy="$BATS_TEST_TMPDIR/$(basename "$1")"
	sed "s|^\(  *module:\) .*|\1 file://$POLICY|" "$1" >"$copy"
	grep -q "module: file://$POLICY\$" "$copy"
	echo "$copy"
}

# kwctl run on policy resources: the settings, module and context-aware grant come from the
# YAML. An empty session makes any host call fail visibly (and saves kwctl from looking for a
# cluster when the resource grants context-aware access).
run_resources() {
	local resources=$1 fixture=$2 session=${3:-}
	if [ -z "$session" ]; then
		session="$BATS_TEST_TMPDIR/no-calls.yml"
		echo '[]' >"$session"
	fi
	kwctl_run --policy "$resources" "$fixture" --replay-host-capabilities-interactions "$session"
	[ "$status" -eq 0 ]
	[[ "$output" != *"Replay error"* ]]
	[[ "$output" != *"the list of recorded responses is empty"* ]]
}

metadata_version() {
	grep 'io.kubewarden.policy.version' "$ROOT/metadata.yml" | awk '{print $2}' | tr -d '"'
}

@test "kwctl annotate + inspect: mutating, rules, context-aware resources, annotations, README as usage" {
	local annotated="$BATS_TEST_TMPDIR/annotated.wasm"
	run kwctl --no-color annotate -m "$ROOT/metadata.yml" -u "$ROOT/README.md" -o "$annotated" "$ROOT/policy.wasm"
	[ "$status" -eq 0 ]
	kwctl --no-color inspect -o yaml "$annotated" >"$BATS_TEST_TMPDIR/inspect.yml"
	local inspect
	inspect="$(cat "$BATS_TEST_TMPDIR/inspect.yml")"
	echo "$inspect" | grep -v '^    '
	grep -qx 'mutating: true' <<<"$inspect"
	grep -qx 'backgroundAudit: false' <<<"$inspect"
	grep -qx 'executionMode: kubewarden-wapc' <<<"$inspect"
	grep -qx 'protocolVersion: v1' <<<"$inspect"
	# Pod CREATE only: a patch on UPDATE makes the API server reject the update.
	[[ "$inspect" == *$'\nrules:\n- apiGroups:\n  - \'\'\n  apiVersions:\n  - v1\n  resources:\n  - pods\n  operations:\n  - CREATE\n'* ]]
	[[ "$inspect" == *$'\ncontextAwareResources:\n- apiVersion: v1\n  kind: Node'* ]]
	grep -qx '  io.kubewarden.policy.title: modelcar-prefetch' <<<"$inspect"
	grep -qx "  io.kubewarden.policy.version: $(metadata_version)" <<<"$inspect"
	grep -qx '  io.kubewarden.policy.ociUrl: ghcr.io/modelcar-prefetch/policies/modelcar-prefetch' <<<"$inspect"
	# kwctl 1.31's policy metadata has no host-capabilities field: annotate drops metadata.yml's
	# `hostCapabilities`, and users see the Node grant above (and "context aware: true" below).
	kwctl --no-color inspect "$annotated" | grep -E '^context aware: +true *$'
	# The usage users read is README.md, byte for byte.
	awk '/^  io.kubewarden.policy.usage: \|/ { u = 1; next }
		u && $0 != "" && substr($0, 1, 4) != "    " { u = 0 }
		u { sub(/^    /, ""); print }' "$BATS_TEST_TMPDIR/inspect.yml" >"$BATS_TEST_TMPDIR/usage.md"
	diff -u "$ROOT/README.md" "$BATS_TEST_TMPDIR/usage.md"
}

# kwctl scaffold manifest -t $1 into $2: a mutating policy of that kind.
scaffold_manifest() {
	local kind=$1 manifest=$2 trust
	mapfile -t trust < <(trust_flags)
	kwctl --no-color scaffold manifest "${trust[@]}" -t "$kind" "$POLICY" >"$manifest"
	cat "$manifest"
	grep -qx "kind: $kind" "$manifest"
	grep -qx '  mutating: true' "$manifest"
}

@test "kwctl scaffold manifest -t ClusterAdmissionPolicy: its settings pass the module's validation" {
	local manifest="$BATS_TEST_TMPDIR/cluster-admission-policy.yaml"
	scaffold_manifest ClusterAdmissionPolicy "$manifest"
	grep -qx "  module: file://$POLICY" "$manifest"
	run_resources "$manifest" kserve-predictor-before-kserve-webhook
	assert_expected_patch kserve-predictor-before-kserve-webhook
}

@test "kwctl scaffold manifest -t AdmissionPolicy: its settings pass the module's validation" {
	local manifest="$BATS_TEST_TMPDIR/admission-policy.yaml"
	scaffold_manifest AdmissionPolicy "$manifest"
	run_resources "$manifest" kserve-predictor-v0.13-modelcar
	assert_expected_patch kserve-predictor-v0.13-modelcar
}

@test "kwctl scaffold manifest --allow-context-aware, mode auto: the Node grant reaches the module" {
	local manifest="$BATS_TEST_TMPDIR/auto.yaml"
	local trust
	mapfile -t trust < <(trust_flags)
	kwctl --no-color scaffold manifest "${trust[@]}" -t ClusterAdmissionPolicy --allow-context-aware \
		--settings-json '{"mode": "auto"}' "$POLICY" >"$manifest"
	cat "$manifest"
	[[ "$(cat "$manifest")" == *$'\n  contextAwareResources:\n  - apiVersion: v1\n    kind: Node'* ]]
	run_resources "$manifest" pod-two-modelcars "$SESSIONS/nodes-all-native-sidecar-ready.yml"
	assert_expected_patch pod-two-modelcars.native-sidecar
}

# kwctl stamps createdAt with the time it runs and has no flag to fix it, so createdAt is the
# one field compared loosely (as Kubewarden's check-artifacthub action does): it must be a
# timestamp, and the rest must be kwctl's output. No `-v VERSION`: kwctl 1.31 deprecates it
# and writes metadata.yml's io.kubewarden.policy.version whatever it is given.
@test "artifacthub-pkg.yml is what kwctl scaffold artifacthub writes" {
	local generated="$BATS_TEST_TMPDIR/artifacthub-pkg.yml"
	local regenerate="kwctl scaffold artifacthub -m metadata.yml -q questions-ui.yml -o artifacthub-pkg.yml"
	(cd "$ROOT" && kwctl --no-color scaffold artifacthub -m metadata.yml -q questions-ui.yml -o "$generated")
	grep -qx "version: $(metadata_version)" "$generated"
	local created_at
	created_at="$(grep '^createdAt: ' "$ROOT/artifacthub-pkg.yml")"
	[[ "$created_at" =~ ^createdAt:\ [0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?Z$ ]] || {
		echo "artifacthub-pkg.yml: '$created_at' is not an RFC 3339 UTC timestamp; regenerate it with: $regenerate" >&2
		return 1
	}
	grep -q '^createdAt: ' "$generated"
	sed -i "s/^createdAt: .*/$created_at/" "$generated"
	diff -u "$ROOT/artifacthub-pkg.yml" "$generated" || {
		echo "artifacthub-pkg.yml drifted from metadata.yml and questions-ui.yml; regenerate it with: $regenerate" >&2
		return 1
	}
}

@test "every policy resource in examples/ is accepted by the module" {
	local examples=("$ROOT"/examples/*.yaml) example
	[ -f "${examples[0]}" ]
	for example in "${examples[@]}"; do
		echo "# $example"
		# A predictor pod before KServe's webhook: every mode pre-pulls it with an init container.
		run_resources "$(with_local_module "$example")" kserve-predictor-before-kserve-webhook
		assert_expected_patch kserve-predictor-before-kserve-webhook
	done
}

@test "examples/auto-mode-policy.yaml: its Node grant, mode auto and GPU nodes' kubelets make native sidecars" {
	# The session answers only a Node list with the example's nodeLabelSelector.
	run_resources "$(with_local_module "$ROOT/examples/auto-mode-policy.yaml")" pod-two-modelcars \
		"$SESSIONS/gpu-nodes-all-native-sidecar-ready.yml"
	assert_expected_patch pod-two-modelcars.native-sidecar
}

@test "examples/admission-policy.yaml: default settings start KServe's modelcar first" {
	run_resources "$(with_local_module "$ROOT/examples/admission-policy.yaml")" kserve-predictor-v0.13-modelcar
	assert_expected_patch kserve-predictor-v0.13-modelcar
}
