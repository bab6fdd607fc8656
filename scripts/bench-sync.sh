#!/usr/bin/env bash
# Snapshot sync benchmark: a joiner syncs N objects from one bootstrap over
# QUIC on loopback (`bluepods-node --sync-snapshot`), against copying the
# bootstrap's stopped data directory with `tar | zstd -1 | socat` over
# loopback and unpacking it, on the same machine in the same run.
#
# It prints the process's wall time and the join's (first log line to
# "snapshot applied"), both against the copy, and the join's stage profile.
#
# Usage: scripts/bench-sync.sh [OBJECTS]   (default 1000000)
# Needs: zstd, socat, GNU time (installed with apt-get if missing).
set -euo pipefail
cd "$(dirname "$0")/.."
objects=${1:-1000000}

for tool in zstd socat; do
  command -v "$tool" >/dev/null || { echo "installing $tool"; apt-get install -y "$tool" >/dev/null; }
done
[ -x /usr/bin/time ] || apt-get install -y time >/dev/null

cargo build --release --bins -q
bin=target/release
work=$(mktemp -d /tmp/bluepods-bench.XXXXXX)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT

# shellcheck source=scripts/lib.sh
source scripts/lib.sh
quic=$(free_port)

echo "== bootstrap with $objects synthetic objects"
RUST_LOG=info "$bin/bluepods-node" --bootstrap --data "$work/boot" --quic "127.0.0.1:$quic" --http 127.0.0.1:0 \
  --genesis-objects "$objects" 2>"$work/boot.log" &
pids+=($!)
# Wait until the first snapshot is built and attested (the next vertex).
for _ in $(seq 1 600); do
  grep -q "\[SNAPSHOT\] built round=0" "$work/boot.log" 2>/dev/null && break
  sleep 0.2
done
grep "\[SNAPSHOT\] built round=0" "$work/boot.log" || { tail "$work/boot.log"; exit 1; }
sleep 1

echo "== sync: bluepods-node --sync-snapshot"
start=$(date +%s.%N)
/usr/bin/time -v "$bin/bluepods-node" --sync-snapshot --bootstrap-addr "127.0.0.1:$quic" --data "$work/joiner" \
  >"$work/sync.out" 2>"$work/sync.log"
end=$(date +%s.%N)
sync_s=$(echo "$end - $start" | bc -l)
rss_kb=$(grep "Maximum resident set size" "$work/sync.log" | awk '{print $NF}')
# From the joiner's first log line to "snapshot applied": the join itself,
# without the exit (which waits for fjall to finish compacting what was
# staged). The stage profile says where the time went.
applied_s=$(python3 - "$work/sync.log" <<'PY'
import re, sys, datetime
stamps = []
for line in open(sys.argv[1]):
    m = re.match(r"(\d{4}-\d\d-\d\dT[\d:.]+)Z", line)
    if m:
        t = datetime.datetime.fromisoformat(m.group(1)[:26])
        stamps.append((t, line))
start = stamps[0][0]
end = next(t for t, l in stamps if "snapshot applied successfully" in l)
print(f"{(end - start).total_seconds():.3f}")
PY
)
profile=$(grep -o "stage profile: .*" "$work/sync.log" || true)
raw_mb=$(grep -o "requesting snapshot round=[0-9]* root=[0-9a-f]* ([0-9]* chunks, [0-9.]* MB)" "$work/sync.log" | grep -o "[0-9.]* MB" | awk '{print $1}')
cat "$work/sync.out"

echo "== copy: tar | zstd -1 | socat, then unpack"
kill "${pids[0]}"; wait "${pids[0]}" 2>/dev/null || true; pids=()
port=$(free_port)
mkdir -p "$work/copy"
start=$(date +%s.%N)
(socat -u "TCP-LISTEN:$port,reuseaddr" - | zstd -d -q | tar -C "$work/copy" -xf -) &
receiver=$!
sleep 0.2
tar -C "$work" -cf - boot | zstd -1 -q -T1 | socat -u - "TCP:127.0.0.1:$port"
wait "$receiver"
end=$(date +%s.%N)
copy_s=$(echo "$end - $start" | bc -l)
dir_mb=$(du -sm "$work/boot" | cut -f1)

printf '\n%-34s %10s\n' "measure" "value"
printf '%-34s %10.2f s\n' "sync wall time" "$sync_s"
printf '%-34s %10.2f s\n' "join: start to snapshot applied" "$applied_s"
printf '%-34s %10.1f MB/s\n' "apply rate (raw, to applied)" "$(echo "$raw_mb / $applied_s" | bc -l)"
printf '%-34s %10.1f MB/s\n' "sync goodput (raw snapshot bytes)" "$(echo "$raw_mb / $sync_s" | bc -l)"
printf '%-34s %10.0f MiB\n' "joiner peak RSS" "$(echo "$rss_kb / 1024" | bc -l)"
printf '%-34s %10.2f s\n' "tar|zstd -1|socat copy + unpack" "$copy_s"
printf '%-34s %10s MB\n' "source data dir" "$dir_mb"
printf '%-34s %10.2f\n' "ratio sync / copy" "$(echo "$sync_s / $copy_s" | bc -l)"
printf '%-34s %10.2f\n' "ratio join / copy" "$(echo "$applied_s / $copy_s" | bc -l)"
echo "$profile"
