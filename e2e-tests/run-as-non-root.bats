#!/usr/bin/env bats
# README "Pods that must run as non-root", under kwctl: the added init container never
# holds a pod in Init that would start without the policy. KServe's uidModelcar (1010 by
# default) gives its modelcar a runAsUser; a root-default model image with runAsNonRoot and
# no user is refused by the kubelet.

load helpers

setup() {
	require_engine
}

# The securityContext of the init container the patch adds.
added_security_context() {
	patch_ops | jq -c '[.[] | select(.op == "add" and (.path | startswith("/spec/initContainers")))
		| if .path == "/spec/initContainers" then .value[] else .value end][0].securityContext'
}

@test "scenario 1, containers require non-root, before KServe: the added container does not" {
	kwctl_run kserve-predictor-containers-run-as-non-root
	[ "$status" -eq 0 ]
	assert_expected_patch kserve-predictor-containers-run-as-non-root
	added_security_context | jq -e 'has("runAsNonRoot") | not'
	added_security_context | jq -e 'has("runAsUser") | not'
	added_security_context | jq -e '.allowPrivilegeEscalation == false and .capabilities == {"drop": ["ALL"]}'
	response | jq -e '.warnings == null'
}

@test "scenario 1 after KServe v0.13 with uidModelcar (namespaced): the modelcar's user is copied" {
	kwctl_run kserve-predictor-v0.13-uid-modelcar-restricted
	[ "$status" -eq 0 ]
	assert_expected_patch kserve-predictor-v0.13-uid-modelcar-restricted
	added_security_context | jq -e '.runAsUser == 1010 and (has("runAsNonRoot") | not)'
	response | jq -e '.auditAnnotations.prefetch | contains("added init container modelcar-prefetch")'
}

@test "scenario 2, the pod requires non-root and no user is known: not pre-pulled, with a warning" {
	kwctl_run kserve-predictor-psa-restricted
	[ "$status" -eq 0 ]
	assert_expected_patch kserve-predictor-psa-restricted
	response | jq -e 'has("patch") | not'
	response | jq -e '.warnings | length == 1'
	response | jq -e '.warnings[0] | startswith("modelcar-prefetch: image ghcr.io/example/models/granite:2.0 is not pre-pulled")'
	response | jq -e '.warnings[0] | contains("securityContext: {runAsUser: 1010}")'
	# The same words reach policy-server's log (kwctl prints the policy's log lines).
	[[ "$output" == *"is not pre-pulled: the pod requires runAsNonRoot"* ]]
}

@test "scenario 2 with securityContext: {runAsUser: 1010}: pre-pulled as KServe's modelcar runs" {
	kwctl_run kserve-predictor-psa-restricted --settings-json '{"securityContext": {"runAsUser": 1010}}'
	[ "$status" -eq 0 ]
	assert_expected_patch kserve-predictor-psa-restricted.uid-setting
	added_security_context | jq -e '.runAsUser == 1010'
	# The pod's own runAsNonRoot and seccomp profile apply; restricted asks nothing more.
	added_security_context | jq -e '(has("runAsNonRoot") | not) and (has("seccompProfile") | not)'
	response | jq -e '.warnings == null'
}
