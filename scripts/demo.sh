#!/usr/bin/env bash
# The README's first command: installs what is missing, then walks through the reference
# chat's functions against DynamoDB Local and writes reports/walkthrough/summary.json.
# (The harness issue replaces this with `dynamowave run scenarios/smoke.yaml`.)
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
cargo run --release --locked -p dynamowave-chat --example walkthrough
