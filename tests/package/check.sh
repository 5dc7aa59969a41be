#!/usr/bin/env bash
# ctest Package.DebianPackagesInstallAndRun (label package): what an operator and a developer
# get from `cpack -G DEB` (cmake/package.cmake, docs/deployment.md).
#   check.sh BUILD_DIR SOURCE_DIR
# 1. Builds both packages from BUILD_DIR and checks their contents and dependencies.
# 2. Unpacks them into a scratch root.
# 3. cafraft: the programs and man pages; the systemd unit passes `systemd-analyze verify`, and
#    its sandbox scores at most 3.0 on `systemd-analyze security` (whose --threshold counts
#    tenths).
# 4. systemd.sh: `dpkg -i` of both packages, a node from /etc/cafraft/n1.conf (the shipped
#    example filled in, with mutual TLS) started by `systemctl enable --now cafraft-node@n1`
#    under a real systemd, written to and read from with the installed cafraftctl, restarted,
#    stopped (exit 0); examples/consumer built outside the tree against the installed
#    libcafraft-dev with find_package(cafraft), and run.
set -euo pipefail
build=$(cd "$1" && pwd)
src=$(cd "$2" && pwd)
work=$(mktemp -d /tmp/cafraft-package-XXXXXX)
cleanup() { rm -rf "$work"; }
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

# 4. An operator installs both packages with dpkg and starts a node with systemd; a developer
#    builds examples/consumer against the installed libcafraft-dev (systemd.sh, in namespaces
#    of its own: nothing is installed on this machine).
mkdir -p "$work/systemd"
unshare --mount --net --propagation private bash "$src/tests/package/systemd.sh" \
  "$work/systemd" "$runtime" "$dev" "$src"
echo "cafraft and libcafraft-dev: built, installed, started by systemd, built against"
