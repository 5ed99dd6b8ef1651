#!/usr/bin/env bash
# The project's test command (README, .ci/run): installs what is missing, then checks
# formatting, lints, the SAM template, and runs every test. Builds once, in release mode,
# because the end-to-end tests drive the release binaries.
set -euo pipefail
cd "$(dirname "$0")/.."

cache="${DYNAMOWAVE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/dynamowave}"
step() { printf '\n==> %s\n' "$*" >&2; }

step "setup"
DYNAMOWAVE_SKIP_RUNTIMES=1 scripts/setup.sh
# The Node runtime client builds a native addon (~2 min, mostly one core): beside the lints.
rt_log=$(mktemp)
scripts/setup-runtimes.sh >"$rt_log" 2>&1 &
rt_pid=$!

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy --all-targets -D warnings"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "cfn-lint template.yaml baselines/seed-python/template.yaml"
"$cache/venv/bin/cfn-lint" template.yaml baselines/seed-python/template.yaml

step "actionlint .github/workflows"
"$cache/venv/bin/actionlint" -no-color

step "setup-runtimes (started with setup)"
if ! wait "$rt_pid"; then cat "$rt_log" >&2; exit 1; fi
cat "$rt_log" >&2

step "cargo test --release"
log=$(mktemp)
trap 'rm -f "$log" "$rt_log"' EXIT
cargo test --workspace --release --locked 2>&1 | tee "$log"
# One closing line for the whole run, summed over every test binary.
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i } }
     END { printf "\ntests: %d passed, %d failed\n", p, f }' "$log"
