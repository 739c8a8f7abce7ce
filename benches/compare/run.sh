#!/usr/bin/env bash
# One command for the side-by-side fan-out comparison (nginx-rtmp, microvibe, floor).
# Usage: benches/compare/run.sh [--quick] [--players "250 500 1000 2000"] [--reps 2] ...
# (python3 benches/compare/compare.py --help lists every option). Results go to
# target/bench-compare/<timestamp>/report.md and results.jsonl.
set -euo pipefail
cd "$(dirname "$0")/../.."
# compare.py stops every process it started (by pid) on exit, Ctrl-C or SIGTERM.
exec python3 benches/compare/compare.py "$@"
