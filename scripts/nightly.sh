#!/usr/bin/env bash
# The nightly scenario set (.github/workflows/nightly.yml runs it; it runs locally too):
#
#   scripts/nightly.sh run OUT_DIR [STACK_NAME]
#       runs every nightly scenario into OUT_DIR/NAME/ — against the embedded local stack, or
#       against the deployed stack STACK_NAME (`dynamowave doctor`, then `run --stack`) — and carries on
#       past failures. Exit: 0 all passed; 99 an SLO failed (and nothing worse); 2 a scenario
#       could not run.
#   scripts/nightly.sh compare BASELINE_DIR NEW_DIR
#       prints, as Markdown, `dynamowave compare` of each NEW_DIR/NAME with BASELINE_DIR/NAME
#       (the previous night); a scenario without a baseline is listed as such. Exit 0.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 2

bin="${DYNAMOWAVE_BIN:-target/release/dynamowave}"

scenarios() {
  printf '%s\n' scenarios/smoke.yaml scenarios/broadcast-1k.yaml scenarios/soak.yaml
  for f in scenarios/chaos-*.yaml scenarios/warmer-cold-starts.yaml scenarios/game-day.yaml; do
    [ -f "$f" ] && printf '%s\n' "$f"
  done
}

run_all() {
  local out="$1" stack="${2:-}" worst=0 code name
  mkdir -p "$out"
  while read -r scenario; do
    name=$(basename "$scenario" .yaml)
    printf '\n==> %s%s\n' "$name" "${stack:+ (stack $stack)}" >&2
    if [ -n "$stack" ]; then
      # The preflight first: a scenario the stack cannot serve is named, not half-run.
      if "$bin" doctor "$scenario" --stack "$stack" > "$out/$name.doctor.txt"; then
        "$bin" run "$scenario" --stack "$stack" --out "$out/$name"
      else
        cat "$out/$name.doctor.txt" >&2
        (exit 2)
      fi
    else
      "$bin" run "$scenario" --out "$out/$name"
    fi
    code=$?
    printf '%s %s\n' "$name" "$code" >> "$out/exit-codes.txt"
    if [ "$code" -ne 0 ] && [ "$code" -ne 99 ]; then
      worst=2
    elif [ "$code" -eq 99 ] && [ "$worst" -eq 0 ]; then
      worst=99
    fi
  done < <(scenarios)
  return "$worst"
}

compare_all() {
  local base="$1" new="$2" dir name
  printf '## Compared with the previous night\n\n'
  for dir in "$new"/*/; do
    dir="${dir%/}"
    [ -f "$dir/summary.json" ] || continue
    name=$(basename "$dir")
    printf '### %s\n\n' "$name"
    if [ -f "$base/$name/summary.json" ]; then
      # Exit 99 (a regression) still writes the table; 2 (bad input) does not.
      rm -f "$dir/compare.md"
      "$bin" compare "$base/$name" "$dir" --markdown "$dir/compare.md" >/dev/null 2>"$dir/compare.err"
      if [ -f "$dir/compare.md" ]; then
        cat "$dir/compare.md"
      else
        printf 'compare failed: %s\n' "$(cat "$dir/compare.err")"
      fi
    else
      printf 'No baseline from the previous night.\n'
    fi
    printf '\n'
  done
}

case "${1:-}" in
  run) shift; run_all "$@" ;;
  compare) shift; compare_all "$@" ;;
  *) printf 'usage: %s run OUT_DIR [STACK_NAME] | compare BASELINE_DIR NEW_DIR\n' "$0" >&2; exit 2 ;;
esac
