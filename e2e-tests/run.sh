#!/usr/bin/env bash
# Runs every e2e suite (e2e-tests/*.bats, or the bats files given) and fails when kwctl is on
# PATH yet a test was skipped: there the suites must run, and a skip must not pass for a run.
# KUBEWARDEN_ENGINES (folders separated by ':', each holding a kwctl, as for the Python suites)
# runs them once per folder, with that folder first on PATH.
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

reports="$(mktemp -d)"
trap 'rm -rf "$reports"' EXIT

# Every file once, with the kwctl PATH finds. Prints the kwctl it ran; fails on a failed test,
# and on a skipped one when kwctl is there.
run_once() {
	local report="$reports/$1.tap" status=0
	shift
	if command -v kwctl >/dev/null 2>&1; then
		echo "# $(kwctl --version 2>&1 | head -n 1) ($(command -v kwctl))"
	fi
	bats --formatter tap "$@" | tee "$report" || status=$?
	if command -v kwctl >/dev/null 2>&1 && grep -q '^ok [0-9]* .* # skip' "$report"; then
		echo "kwctl is on PATH, yet these tests were skipped:" >&2
		grep '^ok [0-9]* .* # skip' "$report" >&2
		status=1
	fi
	return "$status"
}

IFS=: read -r -a engines <<<"${KUBEWARDEN_ENGINES:-}"
if [ "${#engines[@]}" -eq 0 ]; then
	run_once default "$@"
	exit
fi

status=0
summary=()
for i in "${!engines[@]}"; do
	dir="${engines[$i]}"
	[ -n "$dir" ] || continue
	if [ ! -x "$dir/kwctl" ]; then
		echo "KUBEWARDEN_ENGINES names $dir, which holds no executable kwctl" >&2
		exit 1
	fi
	if PATH="$dir:$PATH" run_once "$i" "$@"; then
		summary+=("# $("$dir/kwctl" --version 2>&1 | head -n 1): passed")
	else
		summary+=("# $("$dir/kwctl" --version 2>&1 | head -n 1): FAILED")
		status=1
	fi
done
printf '%s\n' "${summary[@]}"
exit "$status"
