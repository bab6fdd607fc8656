#!/usr/bin/env bash
# A node under a flood of hostile peers: a bootstrap validator with N
# synthetic objects runs while `bluepods flood` keeps PEERS hostile peers on
# it for SECONDS (half flood wide range requests, half claim round 10^9,
# withhold every answer and resend every vertex three times; banned peers
# come back with fresh keys). Reports the target's resident memory (before,
# peak, end), whether it kept committing, and how long its API took to
# answer during the flood.
#
# Usage: scripts/bench-flood.sh [PEERS] [SECONDS] [OBJECTS]   (default 64 60 100000)
# Environment: BIN (directory of prebuilt binaries; default: build target/release),
#   KEEP (keep the logs).
# Needs: python3, curl.
set -euo pipefail
cd "$(dirname "$0")/.."

peers=${1:-64} seconds=${2:-60} objects=${3:-100000}
bin=${BIN:-target/release}
[ -n "${BIN:-}" ] || cargo build --release --bins -q
work=$(mktemp -d /tmp/bluepods-bench-flood.XXXXXX)
boot_pid='' flood_pid=''
cleanup() {
  for p in $boot_pid $flood_pid; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  if [ -n "${KEEP:-}" ]; then echo "logs kept in $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT

free_port() {
  python3 -c 'import socket,sys; s=socket.socket(type=getattr(socket, sys.argv[1])); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])' "$1"
}
quic=$(free_port SOCK_DGRAM)
http=$(free_port SOCK_STREAM)
rss_kb() { awk '/^VmRSS/ {print $2}' "/proc/$boot_pid/status"; }
committed() { curl -s "http://127.0.0.1:$http/v1/status" | python3 -c 'import json,sys; print(json.load(sys.stdin).get("last_committed_round") or 0)'; }

echo "== bootstrap with $objects synthetic objects"
RUST_LOG=info "$bin/bluepods-node" --bootstrap --data "$work/boot" --quic "127.0.0.1:$quic" \
  --http "127.0.0.1:$http" --genesis-objects "$objects" 2>"$work/boot.log" &
boot_pid=$!
deadline=$((SECONDS + 300))
until grep -q "\[SNAPSHOT\] built round=0" "$work/boot.log" 2>/dev/null; do
  kill -0 "$boot_pid" 2>/dev/null || { tail "$work/boot.log"; exit 1; }
  [ "$SECONDS" -lt "$deadline" ] || { echo "no snapshot built"; exit 1; }
  sleep 0.2
done
sleep 2
before=$(rss_kb) round_before=$(committed)
echo "== $peers hostile peers for $seconds s"
"$bin/bluepods" flood --target "127.0.0.1:$quic" --peers "$peers" --seconds "$seconds" \
  >"$work/flood.out" 2>"$work/flood.log" &
flood_pid=$!
peak=$before worst_ms=0
while kill -0 "$flood_pid" 2>/dev/null; do
  now=$(rss_kb); [ "$now" -gt "$peak" ] && peak=$now
  ms=$(python3 - "$http" <<'PY'
import sys, time, urllib.request
t = time.monotonic()
urllib.request.urlopen(f"http://127.0.0.1:{sys.argv[1]}/v1/status", timeout=30).read()
print(int((time.monotonic() - t) * 1000))
PY
)
  [ "$ms" -gt "$worst_ms" ] && worst_ms=$ms
  sleep 1
done
wait "$flood_pid" || { echo "flood failed:"; tail "$work/flood.log"; exit 1; }
flood_pid=''
end=$(rss_kb) round_after=$(committed)
kill -0 "$boot_pid" || { echo "the target stopped:"; tail "$work/boot.log"; exit 1; }
cat "$work/flood.out"
bans=$(grep -c "banned until" "$work/boot.log" || true)
drops=$(grep -c "dropped:" "$work/boot.log" || true)
printf 'target RSS: %d MiB before, %d MiB peak, %d MiB at the end\n' \
  $((before / 1024)) $((peak / 1024)) $((end / 1024))
echo "target committed rounds $round_before -> $round_after during the flood"
echo "slowest /v1/status during the flood: $worst_ms ms"
echo "bans: $bans, peers dropped: $drops"
