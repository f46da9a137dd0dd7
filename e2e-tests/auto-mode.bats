#!/usr/bin/env bats
# Mode auto under kwctl: the annotated module (its metadata grants the Node list), run with
# --allow-context-aware, its one host call answered from a session in sessions/.
#
# kwctl answers a call only when it matches the session's next exchange; a call it cannot
# answer fails, and the policy then falls back to init containers as it does for any failed
# call. So every fallback test also checks the reason the policy logged, and that kwctl replayed
# the session as recorded. (kwctl 1.31 compares api_version, kind and the selectors: its
# request type has no field_masks, so the masks in the sessions are what the module sends but
# kwctl does not check them.)

load helpers

setup() {
	require_engine
}

# kwctl_run in mode auto ($2: settings JSON) on pod-two-modelcars.json, replaying session $1.
run_auto() {
	local session=$1 settings=${2:-'{"mode": "auto"}'}
	kwctl_run pod-two-modelcars --settings-json "$settings" --allow-context-aware \
		--replay-host-capabilities-interactions "$SESSIONS/$session"
	[ "$status" -eq 0 ]
}

# kwctl answered the module's call from the session and used every exchange in it.
assert_session_replayed() {
	[[ "$output" != *"Replay error"* ]]
	[[ "$output" != *"the list of recorded responses is empty"* ]]
	[[ "$output" != *"have not been replayed"* ]]
}

# The policy reports why (in its log, or in the response) and pre-pulls with init containers.
assert_falls_back_because() {
	[[ "$output" == *"mode auto uses init containers, not native sidecars: $1"* ]]
	assert_expected_patch pod-two-modelcars
}

@test "every kubelet runs native sidecars: the modelcars become native sidecars" {
	run_auto nodes-all-native-sidecar-ready.yml
	assert_session_replayed
	[[ "$output" != *"mode auto uses init containers"* ]]
	added_init_containers | expect_jq '[.[].name] == ["modelcar", "modelcar-1"]'
	added_init_containers | expect_jq 'all(.[]; .restartPolicy == "Always")'
	# Moved, not copied: both leave spec.containers (names are unique across the pod).
	patch_ops | jq -e '[.[] | select(.op == "remove" and (.path | startswith("/spec/containers/")))] | length == 2'
	assert_expected_patch pod-two-modelcars.native-sidecar
}

@test "nodeLabelSelector: the node list asks for the selected nodes only, which decide" {
	# kwctl replays the session only for a call with this label selector.
	run_auto gpu-nodes-all-native-sidecar-ready.yml '{"mode": "auto", "nodeLabelSelector": "nvidia.com/gpu.present=true"}'
	assert_session_replayed
	[[ "$output" != *"mode auto uses init containers"* ]]
	assert_expected_patch pod-two-modelcars.native-sidecar
}

@test "nodeLabelSelector, but the session lists every node: kwctl refuses the call, init containers" {
	run_auto nodes-all-native-sidecar-ready.yml '{"mode": "auto", "nodeLabelSelector": "nvidia.com/gpu.present=true"}'
	[[ "$output" == *"Replay error"* ]]
	[[ "$output" == *"mode auto uses init containers, not native sidecars: the node list could not be read"* ]]
	assert_expected_patch pod-two-modelcars
}

@test "one kubelet too old for native sidecars: prefetch init containers" {
	run_auto nodes-one-kubelet-too-old.yml
	assert_session_replayed
	assert_falls_back_because "node old-node runs kubelet v1.28.9, older than 1.29"
	added_init_containers | expect_jq '[.[].name] == ["modelcar-prefetch", "modelcar-prefetch-1"]'
}

@test "nativeSidecarMinKubeletVersion above a node's kubelet: prefetch init containers" {
	run_auto nodes-all-native-sidecar-ready.yml '{"mode": "auto", "nativeSidecarMinKubeletVersion": "1.31"}'
	assert_session_replayed
	assert_falls_back_because "node gpu-node-a runs kubelet v1.30.4, older than 1.31"
}

@test "a node's kubelet version cannot be read: prefetch init containers" {
	run_auto nodes-kubelet-version-unreadable.yml
	assert_session_replayed
	assert_falls_back_because 'node edge-node reports kubelet version "", which cannot be read'
}

@test "empty node list: prefetch init containers" {
	run_auto nodes-empty-list.yml
	assert_session_replayed
	assert_falls_back_because "the node list is empty"
}

@test "the node list call fails: prefetch init containers, the host's error logged" {
	run_auto failed-calls/nodes-list-forbidden.yml
	assert_session_replayed
	assert_falls_back_because 'the node list could not be read (Host error: Callback evaluation failure: nodes is forbidden: User "system:serviceaccount:kubewarden:policy-server-default" cannot list resource "nodes" in API group "" at the cluster scope'
}

# What a namespaced AdmissionPolicy gets: Kubewarden grants context-aware resources only to
# cluster-wide policies.
@test "no context-aware grant: kwctl denies the Node list, prefetch init containers" {
	kwctl_run pod-two-modelcars --settings-json '{"mode": "auto"}'
	[ "$status" -eq 0 ]
	assert_falls_back_because "the node list could not be read (Host error: Policy has not been granted access to Kubernetes v1/Node resources."
}

@test "no movable modelcar: no host call" {
	# An empty session: any call would fail and be logged.
	local session="$BATS_TEST_TMPDIR/no-calls.yml"
	echo '[]' >"$session"
	local fixture
	for fixture in kserve-predictor-v0.13-modelcar kserve-predictor-before-kserve-webhook pod-without-modelcar; do
		kwctl_run "$fixture" --settings-json '{"mode": "auto"}' --allow-context-aware \
			--replay-host-capabilities-interactions "$session"
		[ "$status" -eq 0 ]
		assert_session_replayed
		[[ "$output" != *"mode auto uses init containers"* ]]
		assert_expected_patch "$fixture"
	done
}
