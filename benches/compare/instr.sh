#!/usr/bin/env bash
# Instruction counts of the micro-bench workloads under callgrind (issue 5: "where
# wall time is too noisy"). For each workload of `instr list`, runs
#   valgrind --tool=callgrind --toggle-collect='*instr::measured*' instr OP K
# at K and 2K iterations and prints (Ir(2K) - Ir(K)) / K: instructions per
# iteration, with what `measured` costs once cancelled out. Deterministic up to
# allocator and hash-seed effects (repeat runs agree to well under 1%).
#
#   benches/compare/instr.sh [--skip-build] [OP ...]
# Needs valgrind (apt-get install valgrind). Binaries: $CARGO_TARGET_DIR/release
# (default target/release).
set -euo pipefail
cd "$(dirname "$0")/../.."
skip_build=0
if [ "${1:-}" = "--skip-build" ]; then skip_build=1; shift; fi
command -v valgrind >/dev/null || { echo "instr.sh: valgrind is missing (apt-get install valgrind)" >&2; exit 2; }
[ $skip_build = 1 ] || cargo build --release -q -p benches --bin instr
bin="${CARGO_TARGET_DIR:-target}/release/instr"
[ -x "$bin" ] || { echo "instr.sh: $bin not built" >&2; exit 2; }
ops=("$@")
[ ${#ops[@]} -gt 0 ] || mapfile -t ops < <("$bin" list | cut -f1)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
iterations() {
  case "$1" in
    fanout_*) echo 5 ;;
    mpegts_*) echo 20 ;;
    rtmp_decode_*) echo 50 ;;
    *) echo 1000 ;;
  esac
}
ir() { # OP K -> collected Ir
  valgrind --tool=callgrind --toggle-collect='*instr::measured*' --callgrind-out-file="$tmp/out" \
    "$bin" "$1" "$2" >/dev/null 2>"$tmp/log" || { cat "$tmp/log" >&2; exit 1; }
  awk '/^(summary|totals):/ {print $2; exit}' "$tmp/out"
}
echo "| workload | instructions per iteration | what |"
echo "|---|---|---|"
for op in "${ops[@]}"; do
  k=$(iterations "$op")
  a=$(ir "$op" "$k")
  b=$(ir "$op" $((2 * k)))
  per=$(( (b - a) / k ))
  what=$("$bin" list | awk -F'\t' -v o="$op" '$1 == o {print $2}')
  printf '| `%s` | %s | %s |\n' "$op" "$per" "$what"
done
