#!/usr/bin/env bash
# The README's release-profile table: builds the policy once per [profile.release] step,
# each adding one choice to the previous one, prints the sizes, then runs the benchmark
# with every build measured next to the baselines in the same run (BENCH_VARIANTS).
# Usage: make bench-profiles (BENCH_SAMPLES / BENCH_SAMPLE_MS tune the benchmark).
set -euo pipefail
cd "$(dirname "$0")/.."

out="$PWD/target/profile-variants"
mkdir -p "$out"

# name, then CARGO_PROFILE_RELEASE_* settings (cargo reads them over Cargo.toml).
steps=(
  "defaults OPT_LEVEL=3 LTO=false CODEGEN_UNITS=16 STRIP=debuginfo PANIC=unwind"
  "strip-abort OPT_LEVEL=3 LTO=false CODEGEN_UNITS=16 STRIP=true PANIC=abort"
  "lto OPT_LEVEL=3 LTO=true CODEGEN_UNITS=16 STRIP=true PANIC=abort"
  "cgu1 OPT_LEVEL=3 LTO=true CODEGEN_UNITS=1 STRIP=true PANIC=abort"
  "opt-s OPT_LEVEL=s LTO=true CODEGEN_UNITS=1 STRIP=true PANIC=abort"
  "opt-z OPT_LEVEL=z LTO=true CODEGEN_UNITS=1 STRIP=true PANIC=abort"
)

variants=()
for step in "${steps[@]}"; do
  read -r name settings <<<"$step"
  env_args=()
  for s in $settings; do
    env_args+=("CARGO_PROFILE_RELEASE_${s}")
  done
  env "${env_args[@]}" cargo build --locked --release --target wasm32-wasip1 \
    -p modelcar-prefetch-policy --target-dir "$out/$name" >&2
  module="$out/$name/wasm32-wasip1/release/modelcar_prefetch_policy.wasm"
  printf '%-12s %8d bytes  %s\n' "$name" "$(wc -c <"$module")" "$settings"
  variants+=("$name=$module")
done

BENCH_VARIANTS="$(IFS=,; echo "${variants[*]}")" make bench
