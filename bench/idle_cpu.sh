#!/usr/bin/env bash
# What an idle cluster costs (docs/performance.md, "Idle groups"): three cafraft-node processes
# on 127.0.0.1, one write, 3 s to settle, then the CPU time all three use in 20 s with no
# client (/proc/PID/stat). Extra arguments go to every node:
#   bench/idle_cpu.sh --heartbeat-ms 50
#   bench/idle_cpu.sh --heartbeat-ms 50 --quiesce-after-ms 300
set -euo pipefail
B=$(cd "$(dirname "$0")/.." && pwd)/build/bin
D=$(mktemp -d)
P1=$((20000 + RANDOM % 20000))
IC="n1=127.0.0.1:$P1,n2=127.0.0.1:$((P1 + 1)),n3=127.0.0.1:$((P1 + 2))"
pids=()
trap 'kill "${pids[@]}" 2>/dev/null || true; wait; rm -rf "$D"' EXIT
for i in 1 2 3; do
  "$B/cafraft-node" --id n$i --data-dir "$D/n$i" --listen 127.0.0.1:$((P1 + i - 1)) \
    --initial-cluster "$IC" --insecure "$@" >"$D/n$i.log" 2>&1 &
  pids+=($!)
done
sleep 2
"$B/cafraftctl" --endpoints "127.0.0.1:$P1,127.0.0.1:$((P1 + 1)),127.0.0.1:$((P1 + 2))" put k v >/dev/null
sleep 3
ticks() { local t=0 p; for p in "${pids[@]}"; do t=$((t + $(awk '{print $14 + $15}' /proc/$p/stat))); done; echo $t; }
t0=$(ticks)
sleep 20
t1=$(ticks)
hz=$(getconf CLK_TCK)
echo "$*: $((t1 - t0)) ticks in 20 s over 3 processes:" \
  "$(awk -v t=$((t1 - t0)) -v hz="$hz" 'BEGIN {printf "%.2f", 100 * t / hz / 20 / 3}')% of a core per process"
