#!/usr/bin/env bash
# What an operator does with the cafraft package, done for real: `dpkg -i`, a configuration in
# /etc/cafraft, `systemctl enable --now cafraft-node@n1`, a write and a read, a restart that
# keeps the data, `systemctl stop`. Called by check.sh as
#   unshare --mount --net --propagation private systemd.sh WORK RUNTIME_DEB DEV_DEB SRC
# so that nothing leaves the test's namespaces:
# - /etc, /usr and /var are overlays whose upper layers live in WORK: dpkg installs into them
#   and the machine's own files stay untouched; /run is fresh;
# - the network is a namespace of its own with only the loopback device;
# - systemd runs as PID 1 of a PID namespace of its own, with only the unit of the package and
#   the few targets its default dependencies name (the machine's own units are not started).
set -euo pipefail
work=$1
runtime=$2
dev=$3
src=$4
fail() { echo "systemd: $*" >&2; exit 1; }
pid1=0
sd=
cleanup() { # killing PID 1 of the PID namespace ends everything in it
  if [[ -n $sd ]]; then kill -9 "$sd" 2>/dev/null || true; fi
  if ((pid1)); then kill -9 "$pid1" 2>/dev/null || true; fi
}
trap cleanup EXIT

# The overlays and the fresh directories, seen only in this mount namespace.
for d in etc usr var; do
  mkdir -p "$work/ovl/$d/upper" "$work/ovl/$d/work"
  mount -t overlay overlay \
    -o "lowerdir=/$d,upperdir=$work/ovl/$d/upper,workdir=$work/ovl/$d/work" "/$d"
done
mount -t tmpfs tmpfs /run
ip link set lo up

# The operator's side, step 1: install the packages.
dpkg -i "$runtime" "$dev" >"$work/dpkg.log" 2>&1 || { cat "$work/dpkg.log" >&2; fail "dpkg -i"; }
getent passwd cafraft >/dev/null || fail "the package made no user cafraft"
[[ -f /usr/lib/systemd/system/cafraft-node@.service ]] || fail "no unit installed"
cafraft-node --version | grep -q "^cafraft-node " || fail "cafraft-node --version"

# systemd's unit directories hold only the package's unit and the targets its default
# dependencies name; /etc/systemd/system is empty, for `systemctl enable`; no generator runs
# (the machine's /etc/fstab and /etc/init.d are not this test's business).
units=$work/units
mkdir -p "$units" "$work/etc-units" "$work/no-generators"
cp /usr/lib/systemd/system/cafraft-node@.service "$units/"
# The journal too, where the node's log goes as on any Debian machine.
for u in systemd-journald.service systemd-journald.socket systemd-journald-dev-log.socket \
  systemd-journald-audit.socket syslog.socket; do
  cp "/usr/lib/systemd/system/$u" "$units/"
done
for t in sysinit basic shutdown network-online multi-user sockets local-fs; do
  printf '[Unit]\nDescription=%s (cafraft package test)\n' "$t" >"$units/$t.target"
done
printf '[Unit]\nDescription=cafraft package test\nWants=systemd-journald.service multi-user.target\n' \
  >"$units/cafraft-test.target"
mount --bind "$units" /usr/lib/systemd/system
mount --bind "$work/etc-units" /etc/systemd/system
mount --bind "$work/no-generators" /usr/lib/systemd/system-generators

# Step 2: the configuration, from the shipped example, with mutual TLS.
port=7001
[[ -d /etc/cafraft ]] || fail "the package made no /etc/cafraft"
tls=/etc/cafraft/tls
install -d -o root -g cafraft -m 0750 "$tls" # as docs/deployment.md says
(
  cd "$tls"
  openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=ca -keyout ca.key -out ca.pem
  for n in n1 client; do
    openssl req -newkey rsa:2048 -nodes -subj "/CN=$n" -keyout $n.key -out $n.csr
    openssl x509 -req -in $n.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 -out $n.pem
  done
) >/dev/null 2>&1 || fail "cannot make certificates"
chgrp cafraft "$tls"/*
chmod 0640 "$tls"/*
sed -e "s|^listen = .*|listen = 127.0.0.1:$port|" \
  -e "s|^initial-cluster = .*|initial-cluster = \"n1=127.0.0.1:$port\"|" \
  /usr/share/doc/cafraft/example.conf >/etc/cafraft/n1.conf

# systemd, as PID 1 of its own PID namespace, in this mount and network namespace.
unshare --pid --fork --kill-child --mount-proc env container=cafraft-test /lib/systemd/systemd --system \
  --unit=cafraft-test.target --log-target=kmsg --log-level=notice </dev/null \
  >"$work/systemd.log" 2>&1 &
pid1=$!
for _ in $(seq 100); do
  sd=$(pgrep -P "$pid1" -x systemd || true)
  if [[ -n $sd ]] && [[ -S /run/systemd/private ]]; then break; fi
  sleep 0.1
done
[[ -n $sd ]] && [[ -S /run/systemd/private ]] || { cat "$work/systemd.log" >&2; fail "systemd did not start"; }
# systemctl speaks to systemd from inside its PID namespace.
sctl() { nsenter -t "$sd" -p -m systemctl --no-pager "$@"; }
for _ in $(seq 100); do
  state=$(sctl is-system-running 2>/dev/null || true)
  [[ $state == running ]] && break
  sleep 0.1
done
[[ $state == running ]] || fail "systemd is $state: $(sctl --failed --plain --no-legend)"

ctl() {
  cafraftctl --endpoints "127.0.0.1:$port" --tls-cert "$tls/client.pem" \
    --tls-key "$tls/client.key" --tls-ca "$tls/ca.pem" "$@"
}
wait_write() { # KEY VALUE
  for _ in $(seq 100); do
    if ctl --timeout-ms 1000 put "$1" "$2" >/dev/null 2>&1; then return 0; fi
    [[ $(sctl is-failed cafraft-node@n1) == failed ]] && break
    sleep 0.1
  done
  sctl status cafraft-node@n1 >&2 || true
  nsenter -t "$sd" -p -m journalctl --no-pager -u cafraft-node@n1 >&2 || true
  fail "the node systemd started took no write"
}

# Step 3: enable and start, write and read.
sctl enable --now cafraft-node@n1 >"$work/enable.log" 2>&1 ||
  { cat "$work/enable.log" >&2; sctl status cafraft-node@n1 >&2 || true; fail "enable --now"; }
[[ -L /etc/systemd/system/multi-user.target.wants/cafraft-node@n1.service ]] ||
  fail "enable made no link in multi-user.target.wants"
wait_write k v
[[ $(ctl get k) == v ]] || fail "no read"
[[ $(sctl is-active cafraft-node@n1) == active ]] || fail "the unit is not active"
main=$(sctl show -p MainPID --value cafraft-node@n1)
owner=$(stat -c %U /var/lib/cafraft/n1)
[[ $owner == cafraft ]] || fail "/var/lib/cafraft/n1 belongs to $owner"
[[ -n $(ls /var/lib/cafraft/n1) ]] || fail "no data in /var/lib/cafraft/n1"
uid=$(nsenter -t "$sd" -p -m awk '/^Uid:/ {print $2}' "/proc/$main/status")
[[ $uid == $(id -u cafraft) ]] || fail "the node runs as uid $uid, not as cafraft"
nsenter -t "$sd" -p -m journalctl --no-pager -u cafraft-node@n1 | grep -q "is now leader" ||
  fail "the journal has no 'is now leader' from cafraft-node@n1"
echo "systemd started cafraft-node@n1 (pid $main in its namespace) as user cafraft; it took a write"

# Step 4: a restart keeps what was written.
sctl restart cafraft-node@n1
wait_write k2 v2
[[ $(ctl get k) == v ]] || fail "the write before the restart is lost"

# Step 5: stop; the node exits 0 on the unit's stop signal.
sctl stop cafraft-node@n1
[[ $(sctl show -p Result --value cafraft-node@n1) == success ]] ||
  fail "the stop did not succeed: $(sctl show -p Result -p ExecMainStatus cafraft-node@n1)"
status=$(sctl show -p ExecMainStatus --value cafraft-node@n1)
((status == 0)) || fail "the node exited $status when systemd stopped it"
echo "systemctl stop: the node exited 0"

# The developer's side: examples/consumer, outside the tree, against the installed
# libcafraft-dev found by find_package in /usr.
cp -r "$src/examples/consumer" "$work/consumer"
cmake -S "$work/consumer" -B "$work/consumer-build" -DCMAKE_BUILD_TYPE=Release \
  >"$work/consumer.log" 2>&1 || { cat "$work/consumer.log" >&2; fail "configure"; }
cmake --build "$work/consumer-build" -j2 >>"$work/consumer.log" 2>&1 ||
  { tail -30 "$work/consumer.log" >&2; fail "the consumer does not build against libcafraft-dev"; }
grep -q "cafraft_DIR:PATH=/usr/lib/cmake/cafraft" "$work/consumer-build/CMakeCache.txt" ||
  fail "the consumer found another cafraft"
"$work/consumer-build/consumer" || fail "the consumer failed"
echo "examples/consumer built against the installed libcafraft-dev and ran"
