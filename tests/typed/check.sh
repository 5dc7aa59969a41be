#!/bin/bash
# The typed node handle turns mistakes into compile errors: tests/typed/requests.cpp compiles
# as it is, and does not compile with an undeclared request or a wrong response handler, for
# the reason CAF gives. Usage: check.sh CXX FLAGS-FILE (the include flags of the build).
set -u
cxx=$1
flags=$(cat "$2")
src=$(dirname "$0")/requests.cpp
out=$(mktemp)
trap 'rm -f "$out"' EXIT
compile() { $cxx -std=c++17 -fsyntax-only $flags "$@" "$src" >"$out" 2>&1; }
if ! compile; then
  echo "FAIL: the control does not compile"; cat "$out"; exit 1
fi
echo "ok: declared requests compile"
if compile -DCAFRAFT_UNDECLARED_REQUEST; then
  echo "FAIL: an undeclared request compiled"; exit 1
fi
# CAF finds no response type for the message in the handle's signatures.
grep -q "no type named .type. in .struct caf::response_type<.*cafraft::pb::AppendEntries>" "$out" ||
  { echo "FAIL: another error than expected"; cat "$out"; exit 1; }
echo "ok: an undeclared request does not compile (no response type for it in the handle)"
if compile -DCAFRAFT_WRONG_RESPONSE; then
  echo "FAIL: a wrong response handler compiled"; exit 1
fi
grep -q "wrong functor signature" "$out" ||
  { echo "FAIL: another error than expected"; cat "$out"; exit 1; }
echo "ok: a response handler of the wrong type does not compile (wrong functor signature)"
