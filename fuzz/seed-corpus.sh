#!/usr/bin/env bash
# Seeds fuzz/corpus/validate_payload from the request fixtures: each one wrapped as a
# `validate` payload, with default settings, with each mode, and with the settings that are
# Kubernetes objects (valid and invalid). The corpus itself is not
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
    # The settings that are Kubernetes objects, read as text: valid, then invalid.
    printf '{"request": %s, "settings": %s}' "$request" \
        '{"mode": "nativeSidecar", "resources": {"requests": {"cpu": "1m"}, "limits": {"cpu": 0.5}}, "securityContext": {"runAsNonRoot": true}, "startupProbe": {"exec": {"command": ["true"]}}}' \
        >"$corpus/$name-object-settings"
    printf '{"request": %s, "settings": %s}' "$request" \
        '{"resources": {"limits": {"memory": "15MB"}}, "command": "true", "securityContext": []}' \
        >"$corpus/$name-invalid-settings"
done
echo "seeded $(ls "$corpus" | wc -l) inputs in fuzz/$corpus"
