#!/usr/bin/env bash
# WebRTC SFU benchmark (issue 6): 1 WHIP publisher -> N WHEP subscribers on one core.
#
# Usage: benches/compare/whep.sh [--skip-build] [--subs "100 250 500"] [--reps 3] [--window 15]
#                                [--perf 500] [--no-floor] ...   (python3 benches/compare/whep.py --help)
#
# Builds the release binaries (microvibe, whep-load, srtp-floor) into $CARGO_TARGET_DIR
# (default target/), then re-runs itself inside a fresh network namespace (`unshare -n`,
# only `lo` up; needs root) where benches/compare/whep.py starts microvibe on CPU 1
# (engine.shards=1), whep-load on CPU 0, and the SRTP floor. Results go to
# $CARGO_TARGET_DIR/bench-whep/<time>/report.md and results.jsonl.
set -euo pipefail
cd "$(dirname "$0")/../.."

if [ -z "${WHEP_BENCH_IN_NETNS:-}" ]; then
    args=()
    build=1
    for a in "$@"; do
        if [ "$a" = "--skip-build" ]; then build=0; else args+=("$a"); fi
    done
    if [ "$build" = 1 ]; then
        cargo build --release -p control --bin microvibe
        cargo build --release -p benches --bin whep-load --bin srtp-floor
    fi
    if [ "$(id -u)" != 0 ]; then
        echo "whep.sh: needs root for unshare -n (a private network namespace)" >&2
        exit 1
    fi
    # The whole run (server + load generator + floor) sees only its own loopback.
    exec env WHEP_BENCH_IN_NETNS=1 unshare -n sh -c 'ip link set lo up && exec "$0" "$@"' "$0" ${args[@]+"${args[@]}"}
fi

# Inside the namespace: refuse to run with any interface but lo.
if ip -o link show | grep -v ': lo:' | grep -q .; then
    echo "whep.sh: not in a private network namespace (interfaces other than lo exist)" >&2
    exit 1
fi
exec python3 benches/compare/whep.py "$@"
