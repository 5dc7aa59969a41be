#!/usr/bin/env bash
# Many groups over three processes (docs/performance.md, "Many groups over three processes"):
# three cafraft-node processes on 127.0.0.1, each with --groups G besides its own group 0. It
# prints the time until every group has a leader, each process's resident memory once idle,
# and then, over 20 s with no client, the CPU time the three use (/proc/PID/stat) and the
# frames they send each other (the frames_out of their connection actors). Extra arguments go
# to every node:
#   bench/groups_processes.sh 1000
#   bench/groups_processes.sh 1000 --quiesce-after-ms 300
set -euo pipefail
G=${1:?usage: bench/groups_processes.sh GROUPS [cafraft-node options]}
shift
B=$(cd "$(dirname "$0")/.." && pwd)/build/bin
D=$(mktemp -d)
P1=$((20000 + RANDOM % 20000))
EP="127.0.0.1:$P1,127.0.0.1:$((P1 + 1)),127.0.0.1:$((P1 + 2))"
IC="n1=127.0.0.1:$P1,n2=127.0.0.1:$((P1 + 1)),n3=127.0.0.1:$((P1 + 2))"
pids=()
trap 'kill "${pids[@]}" 2>/dev/null || true; wait; rm -rf "$D"' EXIT
start=$(date +%s.%N)
for i in 1 2 3; do
  "$B/cafraft-node" --id n$i --data-dir "$D/n$i" --listen 127.0.0.1:$((P1 + i - 1)) \
    --initial-cluster "$IC" --insecure --groups "$G" "$@" >"$D/n$i.log" 2>&1 &
  pids+=($!)
done
# Every group (G + group 0) listed with a leader.
led() { "$B/cafraftctl" --endpoints "$EP" --timeout-ms 20000 group list 2>/dev/null |
  awk 'NR > 1 && $2 != "-" { n++ } END { print n + 0 }'; }
until [ "$(led)" -ge $((G + 1)) ]; do sleep 0.2; done
echo "$G groups (+ group 0) x 3 replicas: every group led after" \
  "$(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN {printf "%.1f", b - a}') s"
sleep 5
for i in 0 1 2; do
  rss=$(awk '/VmRSS/ {print $2}' /proc/${pids[$i]}/status)
  echo "n$((i + 1)): $((rss / 1024)) MiB resident, $((rss / (G + 1))) KiB per group replica"
done
frames() {
  local t=0 i p
  for i in 1 2 3; do
    for p in 1 2 3; do
      [ $i = $p ] && continue
      t=$((t + $("$B/cafraft-console" --endpoints "$EP" -c "inspect n$i/conn-n$p" 2>/dev/null |
        awk '$1 == "frames_out" { print $2 }' || echo 0)))
    done
  done
  echo $t
}
ticks() { local t=0 p; for p in "${pids[@]}"; do t=$((t + $(awk '{print $14 + $15}' /proc/$p/stat))); done; echo $t; }
f0=$(frames)
t0=$(ticks)
sleep 20
t1=$(ticks)
f1=$(frames)
hz=$(getconf CLK_TCK)
echo "idle for 20 s: $(awk -v t=$((t1 - t0)) -v hz="$hz" 'BEGIN {printf "%.2f", 100 * t / hz / 20 / 3}')%" \
  "of a core per process, $(((f1 - f0) / 20)) frames/s between the processes"
