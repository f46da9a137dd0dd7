#!/usr/bin/env bash
# Seeds fuzz/corpus/validate_payload from the request fixtures: each one wrapped as a
# `validate` payload, with default settings and with each mode. The corpus itself is not
# committed (it grows with every run); the fixtures are the seeds.
set -euo pipefail
cd "$(dirname "$0")"
corpus=corpus/validate_payload
mkdir -p "$corpus"
for fixture in ../e2e-tests/fixtures/*.json; do
    name=$(basename "$fixture" .json)
    request=$(cat "$fixture")
    printf '{"request": %s, "settings": {}}' "$request" >"$corpus/$name"
    for mode in nativeSidecar auto; do
        printf '{"request": %s, "settings": {"mode": "%s"}}' "$request" "$mode" >"$corpus/$name-$mode"
    done
done
echo "seeded $(ls "$corpus" | wc -l) inputs in fuzz/$corpus"
