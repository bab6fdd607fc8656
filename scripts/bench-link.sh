#!/usr/bin/env bash
# Snapshot sync over an emulated link: a joiner syncs N objects from one
# bootstrap over QUIC (`bluepods-node --sync-snapshot`), but dials a
# `bluepods link` relay instead of the bootstrap. The relay adds a one-way
# delay (RTT/2 each way), random loss and a rate cap with a bounded router
# queue, per direction, on loopback.
#
# Why: bench-sync.sh runs on bare loopback, which has no delay, no loss and
# more bandwidth than any WAN, so it cannot show what a real link does to the
# sync: congestion control backing off on loss, flow-control windows too small
# for the bandwidth-delay product, the chunk pipeline stalling on round trips.
# Here the sync time is set against the link's capacity (utilisation) and the
# bytes the relay carried against the compressed snapshot (overhead and
# retransmissions).
#
# Usage: scripts/bench-link.sh OBJECTS RATE RTT_MS LOSS [CC]
#   e.g. scripts/bench-link.sh 1000000 100mbit 80 0.005
#   RATE: bits/s as 500kbit, 20mbit, 1gbit, or 0 for no cap (as `bluepods link --rate`).
#   RTT_MS: round trip; each direction gets RTT_MS/2 (rounded down).
#   LOSS: probability a datagram is dropped, per direction, 0..1.
#   CC: joiner's congestion controller (cubic|newreno|bbr), default the node's.
# Environment: QUEUE_MS (router buffer, default 100), SEED (loss RNG, default 1),
#   BOOT_TIMEOUT (s to wait for the bootstrap's first snapshot, default 600),
#   BIN (directory of prebuilt binaries; default: build target/release), KEEP (keep the logs).
# Needs: python3, GNU time (installed with apt-get if missing), coreutils timeout.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ $# -lt 4 ] || [ $# -gt 5 ]; then
  sed -n '16,21p' "$0" | sed 's/^# \{0,1\}//' >&2
  exit 2
fi
objects=$1 rate=$2 rtt_ms=$3 loss=$4 cc=${5:-}
queue_ms=${QUEUE_MS:-100}
seed=${SEED:-1}
boot_timeout=${BOOT_TIMEOUT:-600}

# Same grammar as `bluepods link --rate` (cli/src/link.rs, parse_rate).
rate_bps=$(python3 - "$rate" <<'EOF'
import sys
s = sys.argv[1].strip().lower()
for unit, scale in (("gbit", 1e9), ("mbit", 1e6), ("kbit", 1e3), ("bit", 1.0)):
    if s.endswith(unit):
        s = s[: -len(unit)]
        break
else:
    scale = 1.0
try:
    bps = round(float(s) * scale)
    assert bps >= 0
except (ValueError, OverflowError, AssertionError):
    sys.exit(f"bad rate {sys.argv[1]!r}: want e.g. 500kbit, 20mbit, 1gbit or 0")
print(bps)
EOF
)
case $rtt_ms in '' | *[!0-9]*) echo "bad RTT_MS $rtt_ms: want whole milliseconds" >&2; exit 2 ;; esac
python3 -c 'import sys; p = float(sys.argv[1]); assert 0 <= p <= 1' "$loss" 2>/dev/null ||
  { echo "bad LOSS $loss: want a probability in 0..1" >&2; exit 2; }
[ -x /usr/bin/time ] || apt-get install -y time >/dev/null

# BIN=DIR runs prebuilt binaries (to keep one build across a series).
bin=${BIN:-target/release}
[ -n "${BIN:-}" ] || cargo build --release --bins -q
work=$(mktemp -d /tmp/bluepods-bench-link.XXXXXX)
boot_pid='' relay_pid=''
cleanup() {
  for p in $boot_pid $relay_pid; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  if [ -n "${KEEP:-}" ]; then echo "logs kept in $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT

# QUIC runs on UDP, so the ports are probed as UDP ports.
free_port() {
  python3 -c 'import socket; s=socket.socket(type=socket.SOCK_DGRAM); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
quic=$(free_port)
relay=$(free_port)
# Waits up to $2 seconds for command $1 to succeed; fails if process $3 died.
wait_for() {
  local deadline=$((SECONDS + $2))
  until eval "$1"; do
    kill -0 "$3" 2>/dev/null || return 1
    [ "$SECONDS" -lt "$deadline" ] || return 1
    sleep 0.2
  done
}

echo "== bootstrap with $objects synthetic objects"
# The congestion controller that matters is the sender's (the bootstrap's);
# the joiner gets the same one.
cc_args=()
[ -z "$cc" ] || cc_args=(--quic-congestion "$cc")
RUST_LOG=info "$bin/bluepods-node" --bootstrap --data "$work/boot" --quic "127.0.0.1:$quic" --http 127.0.0.1:0 \
  ${cc_args[@]+"${cc_args[@]}"} \
  --genesis-objects "$objects" 2>"$work/boot.log" &
boot_pid=$!
# Wait until the first snapshot is built; its attestation trails by a vertex.
wait_for 'grep -q "\[SNAPSHOT\] built round=0" "$work/boot.log" 2>/dev/null' "$boot_timeout" "$boot_pid" ||
  { echo "bootstrap built no snapshot:"; tail "$work/boot.log"; exit 1; }
grep "\[SNAPSHOT\] built round=0" "$work/boot.log"
sleep 1

link_desc="rate=$rate rtt=${rtt_ms}ms loss=$loss queue=${queue_ms}ms cc=${cc:-default}"
echo "== relay 127.0.0.1:$relay -> 127.0.0.1:$quic ($link_desc)"
"$bin/bluepods" link --listen "127.0.0.1:$relay" --to "127.0.0.1:$quic" --rate "$rate" \
  --delay-ms $((rtt_ms / 2)) --loss "$loss" --queue-ms "$queue_ms" --seed "$seed" \
  --stats "$work/link.json" 2>"$work/link.log" &
relay_pid=$!
# The relay writes its stats file every second: once it exists, it is up.
wait_for '[ -s "$work/link.json" ]' 10 "$relay_pid" ||
  { echo "relay did not start:"; tail "$work/link.log"; exit 1; }

echo "== sync through the relay: bluepods-node --sync-snapshot"
start=$(date +%s.%N)
rc=0
timeout 900 /usr/bin/time -v "$bin/bluepods-node" --sync-snapshot --bootstrap-addr "127.0.0.1:$relay" \
  --data "$work/joiner" ${cc_args[@]+"${cc_args[@]}"} >"$work/sync.out" 2>"$work/sync.log" || rc=$?
end=$(date +%s.%N)

# SIGTERM makes the relay write its final counters.
kill -TERM "$relay_pid" 2>/dev/null || true
wait "$relay_pid" 2>/dev/null || true
relay_pid=''
if [ "$rc" -ne 0 ]; then
  [ "$rc" -eq 124 ] && echo "sync timed out after 900 s" || echo "sync failed (exit $rc)"
  tail -n 20 "$work/sync.log"
  cat "$work/link.json" 2>/dev/null && echo
  exit 1
fi
cat "$work/sync.out"

rss_kb=$(grep "Maximum resident set size" "$work/sync.log" | awk '{print $NF}' || true)
raw_mb=$(grep -o "requesting snapshot round=[0-9]* root=[0-9a-f]* ([0-9]* chunks, [0-9.]* MB)" "$work/sync.log" |
  tail -n 1 | grep -o "[0-9.]* MB" | awk '{print $1}' || true)
# The compressed size of the snapshot the joiner took, as the bootstrap built
# and serves it.
synced_round=$(grep -o "requesting snapshot round=[0-9]*" "$work/sync.log" | tail -n 1 | cut -d= -f2 || true)
compressed=$(grep -o "built round=$synced_round .*compressed_bytes=[0-9]*" "$work/boot.log" |
  grep -o "compressed_bytes=[0-9]*" | tail -n 1 | cut -d= -f2 || true)
# The download phase alone (first chunk request to last chunk), as the
# joiner reports it: "[SYNC] snapshot round=R downloaded in S s: ...".
download_s=$(grep -o "downloaded in [0-9.]*s" "$work/sync.log" | tail -n 1 | grep -o "[0-9.]*" || true)

# Bytes are UDP payload bytes as the relay forwarded them (QUIC packets with
# their headers and retransmissions; no IP/UDP headers).
OBJECTS=$objects RATE=$rate RATE_BPS=$rate_bps RTT_MS=$rtt_ms LOSS=$loss CC=${cc:-default} \
  START=$start END=$end DOWNLOAD_S=$download_s RSS_KB=$rss_kb RAW_MB=$raw_mb COMPRESSED=$compressed \
  python3 - "$work/link.json" <<'EOF'
import json, os, sys
e = os.environ
stats = json.load(open(sys.argv[1]))
sync_s = float(e["END"]) - float(e["START"])
rate_bps = int(e["RATE_BPS"])
to_client, to_server = stats["to_client_bytes"], stats["to_server_bytes"]
carried_mb = (to_client + to_server) / 1e6
compressed_mb = int(e["COMPRESSED"]) / 1e6 if e["COMPRESSED"] else None
utilisation = 100 * to_client / (sync_s * rate_bps / 8) if rate_bps else None
ratio = carried_mb / compressed_mb if compressed_mb else None
download_s = float(e["DOWNLOAD_S"]) if e["DOWNLOAD_S"] else None
# While chunks flow: the compressed snapshot over the download phase.
download_util = (
    100 * compressed_mb * 1e6 / (download_s * rate_bps / 8)
    if rate_bps and download_s and compressed_mb else None
)
fmt = lambda v, spec: "n/a" if v is None else format(v, spec)
rows = [
    ("objects", e["OBJECTS"], ""),
    ("link", f"{e['RATE']} rtt={e['RTT_MS']}ms loss={e['LOSS']} cc={e['CC']}", ""),
    ("raw snapshot", e["RAW_MB"] or "n/a", "MB"),
    ("compressed snapshot", fmt(compressed_mb, ".1f"), "MB"),
    ("sync wall time", f"{sync_s:.2f}", "s"),
    ("bytes carried (both ways)", f"{carried_mb:.1f}", "MB"),
    ("  of which server -> client", f"{to_client / 1e6:.1f}", "MB"),
    ("link utilisation (to client)", fmt(utilisation, ".1f"), "%"),
    ("download phase", fmt(download_s, ".2f"), "s"),
    ("  utilisation while downloading", fmt(download_util, ".1f"), "%"),
    ("bytes carried / compressed", fmt(ratio, ".3f"), ""),
    ("joiner peak RSS", fmt(int(e["RSS_KB"]) / 1024 if e["RSS_KB"] else None, ".0f"), "MiB"),
    ("datagrams lost (both ways)", str(stats["lost"]), ""),
    ("queue drops (both ways)", str(stats["queue_dropped"]), ""),
]
print(f"\n{'measure':<34} {'value':>10}")
for name, value, unit in rows:
    print(f"{name:<34} {value:>10} {unit}".rstrip())
print(
    f"RESULT objects={e['OBJECTS']} rate={e['RATE']} rtt_ms={e['RTT_MS']} loss={e['LOSS']}"
    f" cc={e['CC']} sync_s={sync_s:.2f} carried_mb={carried_mb:.1f}"
    f" compressed_mb={fmt(compressed_mb, '.1f')} utilisation={fmt(utilisation, '.1f')}"
    f" carried_ratio={fmt(ratio, '.3f')} download_s={fmt(download_s, '.2f')}"
    f" download_utilisation={fmt(download_util, '.1f')}"
)
EOF
