#!/usr/bin/env bash
# Fuzzes every target in fuzz/ (or those named) for SECONDS each with cargo-fuzz (libFuzzer):
#   scripts/fuzz.sh [SECONDS] [TARGET...]        default 60 s per target
# Seeds are fuzz/corpus/<target>/ (read only); what the fuzzer learns goes to
# fuzz/work/<target>/ and crashes to fuzz/artifacts/<target>/ (both ignored by git). A crash
# fails the script; fix it, and copy the input into the target's corpus as
# `regression-<what>` so CI's corpus replay (tests/fuzz_corpus.rs) keeps it fixed.
# Prints, per target, the executions and the time, for RELIABILITY.md.
set -euo pipefail
cd "$(dirname "$0")/.."
say_as=fuzz
# shellcheck source=scripts/lib.sh
. scripts/lib.sh

seconds="${1:-60}"
shift || true
case "$seconds" in '' | *[!0-9]*) say "SECONDS must be a whole number, not '$seconds'"; exit 2 ;; esac

if ! command -v cargo-fuzz >/dev/null; then
  say "installing cargo-fuzz 0.13.2"
  cargo install cargo-fuzz --locked --version 0.13.2
fi
# libFuzzer's instrumentation needs nightly flags: a nightly toolchain if there is one, else
# the stable compiler told to accept them.
toolchain=()
if rustup toolchain list 2>/dev/null | grep -q '^nightly'; then
  toolchain=(+nightly)
else
  export RUSTC_BOOTSTRAP=1
fi

if [ "$#" -gt 0 ]; then targets=("$@"); else mapfile -t targets < <(cd fuzz && cargo "${toolchain[@]}" fuzz list); fi
mkdir -p fuzz/logs
say "building ${#targets[@]} targets (instrumented, release)"
(cd fuzz && cargo "${toolchain[@]}" fuzz build --release) >&2

status=0
printf '%-16s %12s %8s %s\n' target executions seconds result
for t in "${targets[@]}"; do
  mkdir -p "fuzz/work/$t"
  log="fuzz/logs/$t.log"
  started=$(date +%s)
  if (cd fuzz && cargo "${toolchain[@]}" fuzz run --release "$t" "work/$t" "corpus/$t" -- \
      -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len=65536 \
      -print_final_stats=1) >"$log" 2>&1; then
    result=ok
  else
    result="CRASH (see $log and fuzz/artifacts/$t/)"
    status=1
  fi
  runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' | tail -1)
  printf '%-16s %12s %8s %s\n' "$t" "${runs:-?}" "$(($(date +%s) - started))" "$result"
done
exit "$status"
