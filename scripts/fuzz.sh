#!/usr/bin/env bash
# Runs a libFuzzer target over bluepods_core::fuzzing on stable Rust (the
# coverage instrumentation cargo-fuzz would add, without a sanitizer: the
# core forbids unsafe code). New inputs land in fuzz/corpus/TARGET; commit
# the ones worth keeping (`-merge=1` minimizes), and `cargo test` replays
# them all.
#
# Usage: scripts/fuzz.sh TARGET [SECONDS] [extra libFuzzer flags]
#   targets: wire_decode handshake node_inputs cluster_schedule chunk_delta
# With cargo-fuzz installed, `cd fuzz && cargo fuzz run TARGET` works too.
set -euo pipefail
cd "$(dirname "$0")/.."
target=${1:?usage: scripts/fuzz.sh TARGET [SECONDS]}
secs=${2:-60}
shift $(( $# < 2 ? $# : 2 ))
export RUSTFLAGS="-Cpasses=sancov-module -Cllvm-args=-sanitizer-coverage-level=4 \
-Cllvm-args=-sanitizer-coverage-inline-8bit-counters -Cllvm-args=-sanitizer-coverage-pc-table \
-Cllvm-args=-sanitizer-coverage-trace-compares --cfg fuzzing -Cdebug-assertions -Coverflow-checks"
# An explicit --target keeps the flags off build scripts (as cargo-fuzz does).
host=$(rustc -vV | sed -n 's/^host: //p')
cargo build --release --manifest-path fuzz/Cargo.toml --bin "$target" --target-dir target/fuzz \
  --target "$host" -q
mkdir -p "fuzz/corpus/$target" "fuzz/artifacts/$target"
exec "target/fuzz/$host/release/$target" -max_total_time="$secs" -print_final_stats=1 \
  -artifact_prefix="fuzz/artifacts/$target/" "$@" "fuzz/corpus/$target"
