#!/usr/bin/env bash
# Many-peer download benchmark: four validators serve the same snapshot,
# each pacing its answers to RATE bytes/s per connection
# (`max_upload_bandwidth`); one joiner downloads from all four, another from
# the bootstrap only. The goodput ratio shows what parallel sources buy when
# each peer's upload is the bottleneck (a joiner on a fast link, validators
# that keep bandwidth for consensus).
#
# Usage: scripts/bench-peers.sh [OBJECTS] [RATE]   (defaults 300000, 5000000)
set -euo pipefail
cd "$(dirname "$0")/.."
objects=${1:-300000}
rate=${2:-5000000}

cargo build --release --bins -q
bin=target/release
work=$(mktemp -d /tmp/bluepods-peers.XXXXXX)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

# shellcheck source=scripts/lib.sh
source scripts/lib.sh

printf 'max_upload_bandwidth = %s\n' "$rate" >"$work/serve.toml"
# The single-source joiner: no connections beyond its bootstrap peer.
printf '[sync]\ntarget_peers = 0\nmax_sync_peers = 1\n' >"$work/one.toml"

declare -a quic http
for i in 0 1 2 3; do quic[$i]=$(free_port); http[$i]=$(free_port); done

echo "== 4 validators, $objects objects, each serving at most $rate B/s per peer"
RUST_LOG=info "$bin/bluepods-node" --bootstrap --data "$work/v0" --quic "127.0.0.1:${quic[0]}" \
  --http "127.0.0.1:${http[0]}" --genesis-objects "$objects" --config "$work/serve.toml" 2>"$work/v0.log" &
pids+=($!)
for _ in $(seq 1 300); do [ "$(status_field "${http[0]}" 's["last_committed_round"] or 0')" != "?" ] && break; sleep 0.2; done
for i in 1 2 3; do
  RUST_LOG=info "$bin/bluepods-node" --bootstrap-addr "127.0.0.1:${quic[0]}" --data "$work/v$i" \
    --quic "127.0.0.1:${quic[$i]}" --http "127.0.0.1:${http[$i]}" --config "$work/serve.toml" 2>"$work/v$i.log" &
  pids+=($!)
done
for _ in $(seq 1 600); do [ "$(status_field "${http[0]}" 's["validators"]')" = "4" ] && break; sleep 0.5; done
[ "$(status_field "${http[0]}" 's["validators"]')" = "4" ] || { echo "validators did not join"; tail -5 "$work"/v*.log; exit 1; }
joined=$(status_field "${http[0]}" 's["highest_round"]')
echo "   4 validators in the set at round $joined; waiting for a snapshot they all serve"
for _ in $(seq 1 600); do
  same=$(for i in 0 1 2 3; do status_field "${http[$i]}" '(s["snapshot"] or ["-"])[0]'; done | sort -u)
  if [ "$(echo "$same" | wc -l)" = 1 ] && [ "$same" != "-" ] && [ "$same" != "?" ] && [ "$same" -gt "$((joined + 2))" ]; then break; fi
  sleep 0.5
done
echo "   all four serve the snapshot of round $same"
sleep 1.5 # its attestations ride on the next vertices

sync_from() { # NAME EXTRA_ARGS...
  local name=$1; shift
  local start end
  start=$(date +%s.%N)
  "$bin/bluepods-node" --sync-snapshot --bootstrap-addr "127.0.0.1:${quic[0]}" --data "$work/$name" "$@" \
    >"$work/$name.out" 2>"$work/$name.log"
  end=$(date +%s.%N)
  local secs rate_line peers
  secs=$(echo "$end - $start" | bc -l)
  rate_line=$(grep -o "100% ([0-9.]* MB / [0-9.]* MB) chunks [0-9/]*, [0-9.]* MB/s" "$work/$name.log" | tail -1)
  peers=$(grep -o "get_chunk\|from [0-9]* peer(s)" "$work/$name.log" | tail -1)
  printf '%-26s %8.2f s wall   %s   (%s at start)\n' "$name" "$secs" "$rate_line" "$peers"
  echo "$rate_line" | grep -o "[0-9.]* MB/s" | awk '{print $1}' >"$work/$name.rate"
}

echo "== downloads"
sync_from joiner-four-peers
sync_from joiner-one-peer --config "$work/one.toml"
four=$(cat "$work/joiner-four-peers.rate")
one=$(cat "$work/joiner-one-peer.rate")
printf '\n%-34s %10s\n' "measure" "value"
printf '%-34s %10s MB/s\n' "goodput, four serving peers" "$four"
printf '%-34s %10s MB/s\n' "goodput, one serving peer" "$one"
printf '%-34s %10.2f x\n' "ratio four / one" "$(echo "$four / $one" | bc -l)"
printf '%-34s %10.1f MB/s\n' "per-peer upload limit" "$(echo "$rate / 1000000" | bc -l)"
