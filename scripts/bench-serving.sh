#!/usr/bin/env bash
# Serving without stalling the node: four joiners download an OBJECTS-object
# snapshot from one bootstrap at once (QUIC on loopback), and the bootstrap's
# committed rounds per second during the downloads are compared with before.
# Chunk reads run off the event loop (Action::ServeChunk), so the two should
# match.
#
# Usage: scripts/bench-serving.sh [OBJECTS]   (default 1000000)
# Environment: BIN (prebuilt binaries; default: build target/release).
set -euo pipefail
cd "$(dirname "$0")/.."
objects=${1:-1000000}
bin=${BIN:-target/release}
[ -n "${BIN:-}" ] || cargo build --release --bins -q
work=$(mktemp -d /tmp/bluepods-bench-serving.XXXXXX)
trap 'kill $(jobs -p) 2>/dev/null; rm -rf $work' EXIT
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
quic=$(port); http=$(port)
RUST_LOG=info $bin/bluepods-node --bootstrap --data $work/boot --quic 127.0.0.1:$quic --http 127.0.0.1:$http --genesis-objects $objects 2>$work/boot.log &
for _ in $(seq 1 600); do grep -q "built round=0" $work/boot.log 2>/dev/null && break; sleep 0.2; done
grep -q "built round=0" $work/boot.log || { echo "no snapshot built:"; tail $work/boot.log; exit 1; }
sleep 2  # attestations trail the build by a vertex
cr() { curl -s http://127.0.0.1:$http/v1/status | python3 -c 'import json,sys; print(json.load(sys.stdin)["last_committed_round"])'; }
r0=$(cr); t0=$(date +%s.%N); sleep 5; r1=$(cr); t1=$(date +%s.%N)
echo "idle: $(python3 -c "print(round(($r1-$r0)/($t1-$t0),2))") committed rounds/s"
pids=()
s0=$(date +%s.%N); c0=$(cr)
for j in 1 2 3 4; do $bin/bluepods-node --sync-snapshot --bootstrap-addr 127.0.0.1:$quic --data $work/j$j >$work/j$j.out 2>$work/j$j.log & pids+=($!); done
for p in "${pids[@]}"; do wait $p; done
s1=$(date +%s.%N); c1=$(cr)
echo "four joiners: $(python3 -c "print(round($s1-$s0,2))") s for all four; bootstrap $(python3 -c "print(round(($c1-$c0)/($s1-$s0),2))") committed rounds/s meanwhile"
grep -h "downloaded in" $work/j*.log | sed 's/.*downloaded in/downloaded in/' | cut -c1-60
