#!/usr/bin/env bash
# ctest Package.DebianPackagesInstallAndRun (label package): what an operator and a developer
# get from `cpack -G DEB` (cmake/package.cmake, docs/deployment.md).
#   check.sh BUILD_DIR SOURCE_DIR
# 1. Builds both packages from BUILD_DIR and checks their contents and dependencies.
# 2. Unpacks them into a scratch root (what dpkg -i writes, without touching this machine).
# 3. cafraft: the installed programs and man pages; the systemd unit passes `systemd-analyze
#    verify`, and its sandbox scores at most 3.0 on `systemd-analyze security` (whose
#    --threshold counts tenths); then the unit's ExecStart, with %i = n1 and the paths moved
#    into the scratch root, starts a node from /etc/cafraft/n1.conf (the shipped example filled
#    in, with mutual TLS) as systemd would, the installed cafraftctl writes and reads, and
#    the unit's stop signal stops the node with exit 0.
# 4. libcafraft-dev: examples/consumer built outside the tree against the unpacked package
#    with find_package(cafraft), and run.
# systemd is not running here (no PID 1 to start units with), so step 3 runs the unit's
# command line itself.
set -euo pipefail
build=$(cd "$1" && pwd)
src=$(cd "$2" && pwd)
work=$(mktemp -d /tmp/cafraft-package-XXXXXX)
node=0
cleanup() {
  if ((node)); then kill -9 "$node" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT
fail() { echo "package: $*" >&2; exit 1; }

# 1. Build and look inside.
(cd "$build" && cpack -G DEB -B "$work/pkg" >"$work/cpack.log" 2>&1) ||
  { cat "$work/cpack.log" >&2; fail "cpack failed"; }
runtime=$(ls "$work"/pkg/cafraft_*.deb)
dev=$(ls "$work"/pkg/libcafraft-dev_*.deb)
dpkg-deb -c "$runtime" >"$work/runtime.txt"
for f in usr/bin/cafraft-node usr/bin/cafraftctl usr/bin/cafraft-console \
  usr/share/man/man1/cafraft-node.1 usr/share/man/man1/cafraftctl.1 \
  usr/share/man/man1/cafraft-console.1 usr/lib/systemd/system/cafraft-node@.service \
  usr/share/doc/cafraft/example.conf; do
  grep -q "\./$f\$" "$work/runtime.txt" || fail "cafraft lacks /$f"
done
dpkg-deb -f "$runtime" Depends | grep -q libcaf-core || fail "cafraft does not depend on CAF"
dpkg-deb -I "$runtime" postinst >/dev/null || fail "cafraft has no postinst"
dpkg-deb -c "$dev" >"$work/dev.txt"
for f in usr/include/cafraft/actors/node.hpp usr/include/cafraft/messages/raft.pb.h \
  usr/include/cafraft/messages/wire.pb.h usr/lib/libcafraft.a usr/lib/cmake/cafraft/cafraftConfig.cmake \
  usr/lib/pkgconfig/cafraft.pc; do
  grep -q "\./$f\$" "$work/dev.txt" || fail "libcafraft-dev lacks /$f"
done
if grep -q "usr/bin/" "$work/dev.txt"; then fail "libcafraft-dev holds programs"; fi
dpkg-deb -f "$dev" Depends | grep -q libcaf-dev || fail "libcafraft-dev does not depend on libcaf-dev"

# 2. Unpack.
root=$work/root
dpkg-deb -x "$runtime" "$root"
dpkg-deb -x "$dev" "$root"

# 3. The operator's side.
version=$("$root/usr/bin/cafraft-node" --version)
[[ $version == "cafraft-node $(dpkg-deb -f "$runtime" Version) "* ]] || fail "--version says '$version'"
"$root/usr/bin/cafraftctl" --version | grep -q "^cafraftctl " || fail "cafraftctl --version"
"$root/usr/bin/cafraft-console" --version | grep -q "^cafraft-console " || fail "console --version"
grep -q '^\.TH CAFRAFT-NODE' "$root/usr/share/man/man1/cafraft-node.1" || fail "no man page"
grep -qF 'initial\-cluster' "$root/usr/share/man/man1/cafraft-node.1" || fail "man page lacks the options"
unit=$root/usr/lib/systemd/system/cafraft-node@.service
sdroot=$work/sdroot # the unit among the system's own units, for systemd-analyze --root
mkdir -p "$sdroot/usr/lib/systemd/system" "$sdroot/usr/bin" "$sdroot/etc/cafraft"
cp -r /usr/lib/systemd/system/. "$sdroot/usr/lib/systemd/system/"
cp "$unit" "$sdroot/usr/lib/systemd/system/"
cp "$root/usr/bin/cafraft-node" "$sdroot/usr/bin/"
echo "id = n1" >"$sdroot/etc/cafraft/n1.conf"
verify=$(systemd-analyze verify --root="$sdroot" --man=no cafraft-node@n1.service 2>&1) ||
  fail "systemd-analyze verify: $verify"
[[ -z $verify ]] || fail "systemd-analyze verify: $verify"
systemd-analyze security --offline=yes --root="$sdroot" --threshold=30 cafraft-node@n1.service \
  >"$work/security.txt" 2>&1 || { tail -3 "$work/security.txt" >&2; fail "the unit's sandbox scores above 3"; }
grep "Overall exposure" "$work/security.txt"

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
# The shipped example, as an operator fills it in: one member here, with mutual TLS.
tls=$root/etc/cafraft/tls
mkdir -p "$tls" "$root/var/lib/cafraft"
(
  cd "$tls"
  openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=ca -keyout ca.key -out ca.pem
  for n in n1 client; do
    openssl req -newkey rsa:2048 -nodes -subj "/CN=$n" -keyout $n.key -out $n.csr
    openssl x509 -req -in $n.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 -out $n.pem
  done
) >/dev/null 2>&1 || fail "cannot make certificates"
sed -e "s|^listen = .*|listen = 127.0.0.1:$port|" \
  -e "s|^initial-cluster = .*|initial-cluster = \"n1=127.0.0.1:$port\"|" \
  -e "s|/etc/cafraft/|$root/etc/cafraft/|" \
  "$root/usr/share/doc/cafraft/example.conf" >"$root/etc/cafraft/n1.conf"
ctl() {
  "$root/usr/bin/cafraftctl" --endpoints "127.0.0.1:$port" --tls-cert "$tls/client.pem" \
    --tls-key "$tls/client.key" --tls-ca "$tls/ca.pem" "$@"
}
exec_start=$(sed -n 's/^ExecStart=//p' "$unit")
exec_start=${exec_start//%i/n1}
exec_start=${exec_start//\/usr\/bin\//$root/usr/bin/}
exec_start=${exec_start//\/etc\/cafraft\//$root/etc/cafraft/}
exec_start=${exec_start//\/var\/lib\/cafraft\//$root/var/lib/cafraft/}
$exec_start >"$work/n1.log" 2>&1 &
node=$!
ok=0
for _ in $(seq 100); do
  if ctl --timeout-ms 1000 put k v >/dev/null 2>&1; then
    ok=1
    break
  fi
  sleep 0.1
done
((ok)) || { cat "$work/n1.log" >&2; fail "the node started by the unit's ExecStart took no write"; }
[[ $(ctl get k) == v ]] || fail "no read"
[[ -n $(ls "$root/var/lib/cafraft/n1") ]] || fail "no data in /var/lib/cafraft/n1"
signal=$(sed -n 's/^KillSignal=SIG//p' "$unit")
kill -s "$signal" "$node"
code=0
wait "$node" || code=$?
node=0
((code == 0)) || fail "the node exited $code on SIG$signal"
echo "the unit's ExecStart served a write and stopped with exit 0 on SIG$signal"

# 4. The developer's side.
cp -r "$src/examples/consumer" "$work/consumer"
cmake -S "$work/consumer" -B "$work/consumer-build" -DCMAKE_PREFIX_PATH="$root/usr" \
  -DCMAKE_BUILD_TYPE=Release >"$work/consumer.log" 2>&1 || { cat "$work/consumer.log" >&2; fail "configure"; }
cmake --build "$work/consumer-build" -j2 >>"$work/consumer.log" 2>&1 ||
  { tail -30 "$work/consumer.log" >&2; fail "the consumer does not build against libcafraft-dev"; }
grep -q "$root/usr/lib/cmake/cafraft" "$work/consumer-build/CMakeCache.txt" ||
  fail "the consumer found another cafraft"
"$work/consumer-build/consumer" || fail "the consumer failed"
echo "cafraft and libcafraft-dev: built, unpacked, run"
