#!/usr/bin/env bash
# The README's first command: installs what is missing, builds the release binaries, and
# runs the smoke scenario on the embedded local stack. The report folder's path is printed
# at the end; the exit code is the run's (0 passed, 99 an SLO failed, 2 harness error).
# Extra arguments go to `dynamowave run` (e.g. --out DIR).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
cargo build --release --locked -p dynamowave-chat -p dynamowave-harness
exec target/release/dynamowave run scenarios/smoke.yaml "$@"
