#!/usr/bin/env bash
# Catch-up benchmark: four validators (a bootstrap and three admitted by
# registration) under a steady transaction load; one is stopped for
# STOP_SECONDS while the other three go on committing, then restarted from
# its data directory. It catches up by range fetch and replay; the script
# reports how far behind it was, how long it took to be live again and
# caught up, and the rates (rounds/s and transactions/s) against the
# network's own production rate.
#
# The load comes from three `bluepods load` clients, one per running
# validator, TPS/3 each (one client submits one transaction at a time).
#
# Usage: scripts/bench-catchup.sh [STOP_SECONDS] [TPS]   (defaults 300, 1000)
# BIN=DIR runs prebuilt binaries; KEEP=1 keeps the logs; MODE=range restarts
# the stopped validator with `--sync-mode range` (by default, `auto`, it
# takes a snapshot when it is more than `strategy_switch_threshold` behind).
set -euo pipefail
cd "$(dirname "$0")/.."
stop_s=${1:-300}
tps=${2:-1000}

if [ -z "${BIN:-}" ]; then cargo build --release --bins -q; fi
bin=${BIN:-target/release}
work=$(mktemp -d /tmp/bluepods-catchup.XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  if [ -n "${KEEP:-}" ]; then echo "logs kept in $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT

# shellcheck source=scripts/lib.sh
source scripts/lib.sh

declare -a quic http
for i in 0 1 2 3; do quic[$i]=$(free_port); http[$i]=$(free_port); done
start_validator() { # I [WRAPPER...]
  local i=$1; shift
  local wrap=("$@")
  if [ "$i" = 0 ]; then
    RUST_LOG=info "$bin/bluepods-node" --bootstrap --data "$work/v0" --quic "127.0.0.1:${quic[0]}" \
      --http "127.0.0.1:${http[0]}" 2>>"$work/v0.log" &
  else
    RUST_LOG=info "${wrap[@]}" "$bin/bluepods-node" --bootstrap-addr "127.0.0.1:${quic[0]}" --data "$work/v$i" \
      --quic "127.0.0.1:${quic[$i]}" --http "127.0.0.1:${http[$i]}" ${mode_flag[@]+"${mode_flag[@]}"} \
      2>>"$work/v$i.log" &
  fi
  pids+=($!)
  echo $! >"$work/v$i.pid"
}

echo "== 4 validators"
start_validator 0
for _ in $(seq 1 300); do [ "$(status_field "${http[0]}" 's["last_committed_round"] or 0')" != "?" ] && break; sleep 0.2; done
for i in 1 2 3; do start_validator "$i"; done
for _ in $(seq 1 600); do [ "$(status_field "${http[0]}" 's["validators"]')" = "4" ] && break; sleep 0.5; done
[ "$(status_field "${http[0]}" 's["validators"]')" = "4" ] || { echo "validators did not join"; tail -5 "$work"/v*.log; exit 1; }
echo "   in the set at round $(status_field "${http[0]}" 's["highest_round"]')"

per_client=$(( (tps + 2) / 3 ))
load_s=$(( stop_s + 60 ))
echo "== load: 3 clients x $per_client tx/s for ${load_s}s"
for i in 0 1 2; do
  "$bin/bluepods" load --http "127.0.0.1:${http[$i]}" --tps "$per_client" --duration "$load_s" --settle 5 \
    >"$work/load$i.out" 2>&1 &
  pids+=($!)
done
sleep 20
r0=$(status_field "${http[0]}" 's["last_committed_round"]'); t0=$(now)
x0=$(status_field "${http[0]}" 's["executed_txs"]')

echo "== stop v3 for ${stop_s}s"
from_round=$(status_field "${http[3]}" 's["last_committed_round"]')
x_from=$(status_field "${http[3]}" 's["executed_txs"]')
kill "$(cat "$work/v3.pid")"
wait "$(cat "$work/v3.pid")" 2>/dev/null || true
stopped_at=$(status_field "${http[0]}" 's["last_committed_round"]')
sleep "$stop_s"
r1=$(status_field "${http[0]}" 's["last_committed_round"]'); t1=$(now)
x1=$(status_field "${http[0]}" 's["executed_txs"]')
net_rounds_s=$(echo "($r1 - $r0) / ($t1 - $t0)" | bc -l)
net_tx_s=$(echo "($x1 - $x0) / ($t1 - $t0)" | bc -l)

echo "== restart v3 ($((r1 - stopped_at)) committed rounds behind)${MODE:+, --sync-mode $MODE}"
mode_flag=()
if [ -n "${MODE:-}" ]; then mode_flag=(--sync-mode "$MODE"); fi
restart=$(now)
# WRAP="perf record -g -o FILE" profiles the restarted validator.
# shellcheck disable=SC2086
start_validator 3 ${WRAP:-env}
live=""
for _ in $(seq 1 3000); do
  phase=$(status_field "${http[3]}" 's["phase"]')
  if [ "$phase" = "live" ] || [ "$phase" = "Live" ]; then
    mine=$(status_field "${http[3]}" 's["last_committed_round"] or 0')
    theirs=$(status_field "${http[0]}" 's["last_committed_round"] or 0')
    if [ "$mine" != "?" ] && [ "$theirs" != "?" ] && [ $((theirs - mine)) -le 4 ]; then
      live=$(now); break
    fi
  fi
  sleep 0.1
done
[ -n "$live" ] || { echo "v3 did not catch up"; tail -20 "$work/v3.log"; exit 1; }
took=$(echo "$live - $restart" | bc -l)
caught=$(status_field "${http[3]}" 's["last_committed_round"]')
x_to=$(status_field "${http[3]}" 's["executed_txs"]')
rounds=$((caught - from_round))
txs=$((x_to - x_from))
for i in 0 1 2; do grep "\[LOAD\] submitted" "$work/load$i.out" || true; done

printf '\n%-44s %12s\n' "measure" "value"
printf '%-44s %12.2f rounds/s\n' "network commit rate while v3 was down" "$net_rounds_s"
printf '%-44s %12.0f tx/s\n' "network execution rate while v3 was down" "$net_tx_s"
printf '%-44s %12s\n' "committed rounds v3 was behind at restart" "$((r1 - stopped_at))"
way=range; grep -q "snapshot applied successfully" "$work/v3.log" && way=snapshot
printf '%-44s %12s\n' "v3 rejoined by" "$way"
printf '%-44s %12.2f s\n' "restart to live and within 4 rounds" "$took"
printf '%-44s %12s\n' "rounds v3 committed (stop to caught up)" "$rounds"
printf '%-44s %12.0f rounds/s\n' "catch-up rate" "$(echo "$rounds / $took" | bc -l)"
printf '%-44s %12.0f tx/s\n' "catch-up execution rate" "$(echo "$txs / $took" | bc -l)"
printf '%-44s %12.1f x\n' "catch-up / production (rounds)" "$(echo "($rounds / $took) / $net_rounds_s" | bc -l)"
