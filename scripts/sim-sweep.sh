#!/usr/bin/env bash
# Sweeps many simulator seeds over every scenario (release build), each seed
# run twice for determinism, and prints a summary with the line that
# reproduces each failure. CI runs a fixed 55 of these (sim/tests/seeds.rs).
#
# Usage: scripts/sim-sweep.sh [FIRST_SEED] [LAST_SEED] [extra `bluepods sim` flags]
#   default 1..1000; e.g. scripts/sim-sweep.sh 1 5000 --nodes 9
set -euo pipefail
cd "$(dirname "$0")/.."
first=${1:-1}
last=${2:-1000}
shift $(( $# < 2 ? $# : 2 ))
cargo build --release --bins -q
status=0
for scenario in steady join partition crash hostile; do
  target/release/bluepods sim --scenario "$scenario" --seeds "$first..$last" --twice \
    --duration 15 --heal 20 "$@" | tee "/tmp/bluepods-sweep-$scenario.txt" | grep -E "FAIL|reproduce|runs," || status=1
done
exit $status
