#!/usr/bin/env bash
# Which sync strategy when (seed 001's benchmark_sync_strategies): time to
# Live of a fresh listener joining one bootstrap validator by `range`,
# `snapshot` and `auto`, across state sizes and history lengths.
#
# For each state size the bootstrap starts with that many synthetic genesis
# objects and makes its history fast (`round_interval_ms = 1`, about 500
# rounds/s here), up to each history length in turn. Before each set of
# joins it is restarted at the default round interval (250 ms, the
# production rate a joiner chases) and the script waits for a snapshot built
# after the restart, so every snapshot join starts from a fresh one, as it
# would on a network that has run at its normal pace.
#
# A join's time is from the listener's start until its phase is `live` and
# its last commit is within 4 rounds of the bootstrap's. The listener uses
# the default configuration, so `auto` decides with the default
# `strategy_switch_threshold` (THRESHOLD=N sets it for every listener).
#
# The history here is of empty rounds of one validator: the cheapest a range
# can be. Rounds of four validators under load cost far more each to replay
# (see scripts/bench-catchup.sh); the README derives the default from both.
#
# Usage: scripts/bench-strategies.sh ["OBJECTS ..."] ["ROUNDS ..."]
#        (defaults "10000 1000000 10000000" and "1000 10000 100000")
# MODES="range snapshot auto" picks the columns; BIN=DIR runs prebuilt
# binaries; KEEP=1 keeps the logs.
set -euo pipefail
cd "$(dirname "$0")/.."
objects_list=${1:-"10000 1000000 10000000"}
rounds_list=${2:-"1000 10000 100000"}
modes=${MODES:-"range snapshot auto"}

if [ -z "${BIN:-}" ]; then cargo build --release --bins -q; fi
bin=${BIN:-target/release}
work=$(mktemp -d /tmp/bluepods-strategies.XXXXXX)
boot_pid=""
joiner_pid=""
cleanup() {
  for p in $boot_pid $joiner_pid; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  if [ -n "${KEEP:-}" ]; then echo "logs kept in $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT

# shellcheck source=scripts/lib.sh
source scripts/lib.sh
newest_snapshot() { # HTTP_PORT
  curl -s "127.0.0.1:$1/v1/snapshots" 2>/dev/null |
    python3 -c "import json,sys; print(max([s['round'] for s in json.load(sys.stdin)] or [0]))" 2>/dev/null || echo 0
}

quic=$(free_port)
http=$(free_port)
jhttp=$(free_port)
printf 'round_interval_ms = 1\n' >"$work/fast.toml"
: >"$work/normal.toml"
if [ -n "${THRESHOLD:-}" ]; then
  printf '[sync]\nstrategy_switch_threshold = %s\n' "$THRESHOLD" >"$work/joiner.toml"
else
  : >"$work/joiner.toml"
fi

start_boot() { # OBJECTS CONFIG
  RUST_LOG=info "$bin/bluepods-node" --bootstrap --data "$work/boot" --quic "127.0.0.1:$quic" \
    --http "127.0.0.1:$http" --genesis-objects "$1" --config "$2" 2>>"$work/boot.log" &
  boot_pid=$!
  for _ in $(seq 1 3000); do
    [ "$(status_field "$http" 's["last_committed_round"] or 0')" != "?" ] && return 0
    boot_alive
    sleep 0.1
  done
  echo "the bootstrap did not start"; tail -5 "$work/boot.log"; exit 1
}
boot_alive() {
  kill -0 "$boot_pid" 2>/dev/null && return 0
  echo "the bootstrap exited"; tail -5 "$work/boot.log"; exit 1
}
stop_boot() { kill "$boot_pid"; wait "$boot_pid" 2>/dev/null || true; boot_pid=""; }

join() { # MODE -> prints seconds to live, or "-" (it exited, or 900 s passed)
  rm -rf "$work/joiner"
  local start; start=$(now)
  RUST_LOG=info "$bin/bluepods-node" --listener --sync-mode "$1" --bootstrap-addr "127.0.0.1:$quic" \
    --data "$work/joiner" --quic 127.0.0.1:0 --http "127.0.0.1:$jhttp" --config "$work/joiner.toml" \
    2>"$work/join-$1.log" &
  joiner_pid=$!
  local took="-"
  for _ in $(seq 1 9000); do
    kill -0 "$joiner_pid" 2>/dev/null || break # it exited: no time
    if [ "$(status_field "$jhttp" 's["phase"]')" = "live" ]; then
      local mine theirs
      mine=$(status_field "$jhttp" 's["last_committed_round"] or 0')
      theirs=$(status_field "$http" 's["last_committed_round"] or 0')
      if [ "$mine" != "?" ] && [ "$theirs" != "?" ] && [ $((theirs - mine)) -le 4 ]; then
        took=$(printf '%.2f' "$(echo "$(now) - $start" | bc -l)"); break
      fi
    fi
    sleep 0.1
  done
  kill "$joiner_pid" 2>/dev/null || true; wait "$joiner_pid" 2>/dev/null || true; joiner_pid=""
  echo "$took"
}

results="$work/results"
printf '%-10s %-8s' "objects" "rounds" >"$results"
for m in $modes; do printf ' %10s' "$m (s)" >>"$results"; done
echo >>"$results"
for objects in $objects_list; do
  rm -rf "$work/boot"
  for rounds in $rounds_list; do
    echo "== $objects objects: history to round $rounds"
    start_boot "$objects" "$work/fast.toml"
    for _ in $(seq 1 100000); do
      r=$(status_field "$http" 's["last_committed_round"] or 0')
      [ "$r" != "?" ] && [ "$r" -ge "$rounds" ] && break
      boot_alive
      sleep 0.2
    done
    stop_boot
    start_boot "$objects" "$work/normal.toml"
    restarted=$(status_field "$http" 's["last_committed_round"] or 0')
    # A snapshot built after the restart, and time for the vertex that
    # attests it to commit (a joiner that comes sooner waits for the next).
    for _ in $(seq 1 3000); do
      [ "$(newest_snapshot "$http")" -gt "$restarted" ] && break
      boot_alive
      sleep 0.2
    done
    sleep 3
    printf '%-10s %-8s' "$objects" "$rounds" >>"$results"
    for m in $modes; do
      t=$(join "$m")
      way=$(grep -o 'phase handshake -> [a-z_]*' "$work/join-$m.log" | head -1 | awk '{print $NF}')
      echo "   $m: $t s (handshake -> ${way:-?})"
      printf ' %10s' "$t" >>"$results"
    done
    echo >>"$results"
    stop_boot
  done
done
echo
cat "$results"
