#!/usr/bin/env bash
# Runs every e2e suite (e2e-tests/*.bats, or the bats files given) and fails when kwctl is on
# PATH yet a test was skipped: there the suites must run, and a skip must not pass for a run.
#   e2e-tests/run.sh [FILE.bats...]    (`make e2e-tests` builds annotated-policy.wasm first)
set -euo pipefail
cd "$(dirname "$0")"

if ! command -v bats >/dev/null 2>&1; then
	echo "bats is not installed: apt-get install bats" >&2
	exit 1
fi
if [ "$#" -eq 0 ]; then
	set -- *.bats
fi

report="$(mktemp)"
trap 'rm -f "$report"' EXIT
status=0
bats --formatter tap "$@" | tee "$report" || status=$?

if command -v kwctl >/dev/null 2>&1 && grep -q '^ok [0-9]* .* # skip' "$report"; then
	echo "kwctl is on PATH, yet these tests were skipped:" >&2
	grep '^ok [0-9]* .* # skip' "$report" >&2
	status=1
fi
exit "$status"
