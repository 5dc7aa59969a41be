#!/usr/bin/env bash
# Configures the library alone without the optional dependencies, installs a build tree into a
# scratch prefix, then builds examples/consumer from a copy outside
# the source tree against that prefix only (find_package(cafraft 0.2 CONFIG)), runs it, and
# links the same program with the flags of the installed pkg-config file (docs/library.md).
#
#     consume.sh BUILD_DIR SOURCE_DIR
set -euo pipefail
build=${1:?usage: $0 BUILD_DIR SOURCE_DIR}
src=${2:?usage: $0 BUILD_DIR SOURCE_DIR}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# The library alone configures without what only the tests, programs and benchmarks need.
cmake -S "$src" -B "$work/library-only" -DCAFRAFT_BUILD_TESTS=OFF -DCAFRAFT_BUILD_APPS=OFF \
  -DCAFRAFT_BUILD_BENCH=OFF -DCMAKE_DISABLE_FIND_PACKAGE_GTest=ON \
  -DCMAKE_DISABLE_FIND_PACKAGE_benchmark=ON -DCMAKE_DISABLE_FIND_PACKAGE_nlohmann_json=ON \
  >"$work/library-only.log" 2>&1 || { cat "$work/library-only.log"; exit 1; }

cmake --install "$build" --prefix "$work/prefix" >"$work/install.log"
for f in include/cafraft/actors/node.hpp include/cafraft/messages/raft.pb.h \
  lib/libcafraft.a lib/cmake/cafraft/cafraftConfig.cmake \
  lib/cmake/cafraft/cafraftConfigVersion.cmake lib/pkgconfig/cafraft.pc; do
  [ -e "$work/prefix/$f" ] || { echo "not installed: $f"; exit 1; }
done
# Installed headers include each other as <cafraft/...> only.
if grep -rnE '#include "(actors|messages|runtime)/' "$work/prefix/include/cafraft"; then
  echo "an installed header includes a path of the source tree"
  exit 1
fi

cp -r "$src/examples/consumer" "$work/consumer"
cmake -S "$work/consumer" -B "$work/build" -DCMAKE_PREFIX_PATH="$work/prefix" \
  -DCMAKE_BUILD_TYPE=Release >"$work/configure.log" || { cat "$work/configure.log"; exit 1; }
cmake --build "$work/build" -j2
"$work/build/consumer"

# A version this package does not promise is refused (SameMinorVersion before 1.0).
mkdir "$work/too-new"
cat >"$work/too-new/CMakeLists.txt" <<'CMAKE'
cmake_minimum_required(VERSION 3.20)
project(too_new NONE)
find_package(cafraft 0.9 CONFIG QUIET)
if(cafraft_FOUND)
  message(FATAL_ERROR "cafraft 0.9 was asked for, and an older version was accepted")
endif()
CMAKE
cmake -S "$work/too-new" -B "$work/too-new/build" -DCMAKE_PREFIX_PATH="$work/prefix" >/dev/null

# pkg-config: its flags compile a header and link the program built above.
export PKG_CONFIG_PATH="$work/prefix/lib/pkgconfig"
echo '#include <cafraft/actors/node.hpp>' >"$work/pc.cpp"
c++ $(pkg-config --cflags cafraft) -fsyntax-only "$work/pc.cpp"
c++ "$work"/build/CMakeFiles/consumer.dir/main.cpp.o -o "$work/consumer-pc" \
  $(pkg-config --libs cafraft)
"$work/consumer-pc"
echo "consume.sh: the installed package builds, links and runs a program outside the tree"
