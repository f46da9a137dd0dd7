#!/usr/bin/env bash
# `make run`: evaluates one AdmissionRequest against policy.wasm and explains the outcome
# (decision, JSON Patch, each added init container).
#
#   scripts/run.sh [REQUEST_JSON] [SETTINGS_JSON]
#
# Defaults: the KServe predictor pod before KServe's webhook, settings `{}`. Uses kwctl when
# it is on PATH (set KWCTL_SIGSTORE_TRUST_CONFIG to a local sigstore ClientTrustConfig JSON
# to run it offline), else the in-repo waPC host (host/), which runs the module the same way.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
request="${1:-$root/e2e-tests/fixtures/kserve-predictor-before-kserve-webhook.json}"
settings="${2:-{\}}"
module="$root/policy.wasm"
runner=(cargo run --quiet --locked --manifest-path "$root/Cargo.toml"
	-p modelcar-prefetch-host --bin modelcar-prefetch-run --)

echo "Request:  $request"
echo "Settings: $settings"
if command -v kwctl >/dev/null 2>&1; then
	trust=()
	if [ -n "${KWCTL_SIGSTORE_TRUST_CONFIG:-}" ]; then
		trust=(--sigstore-trust-config "$KWCTL_SIGSTORE_TRUST_CONFIG")
	fi
	echo "Runner:   kwctl run"
	echo
	response="$(kwctl run "${trust[@]}" --settings-json "$settings" --request-path "$request" "$module")"
	printf '%s\n' "$response" | "${runner[@]}" --explain-kwctl-output
else
	echo "Runner:   in-repo waPC host (kwctl is not on PATH)"
	echo
	"${runner[@]}" --explain --settings-json "$settings" --request-path "$request" "$module"
fi
