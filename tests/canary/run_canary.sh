#!/usr/bin/env bash
# Runs one canary (docs/testing.md, "Canaries"):
#
#     run_canary.sh CAFRAFT_TESTS_BINARY CANARIES_TSV NAME
#
# Looks NAME up in the table and runs the binary with the row's environment and
# --gtest_filter=<the row's filter>, first without a canary (it must pass), then with
# CAFRAFT_CANARY=NAME; passes only if that second run fails through a failed test, an abort or a
# sanitizer report: the planted bug was caught. It fails when the tests pass with the canary (a
# missing test), when they fail without it, when the binary was built without CAFRAFT_CANARIES,
# when the filter selects no test, and when the run fails in any other way (it cannot be told
# apart from a broken setup).
set -u

if [ $# -ne 3 ]; then
  echo "usage: $0 CAFRAFT_TESTS_BINARY CANARIES_TSV NAME" >&2
  exit 2
fi
bin=$1
table=$2
name=$3

row=$(awk -F'\t' -v n="$name" '$1 == n' "$table")
if [ -z "$row" ]; then
  echo "ERROR: canary $name has no row in $table"
  exit 2
fi
filter=$(printf '%s\n' "$row" | cut -f2)
extra=$(printf '%s\n' "$row" | cut -f3)
if [ -z "$filter" ]; then
  echo "ERROR: the row of $name in $table names no tests"
  exit 2
fi
[ "$extra" = "-" ] && extra=""

log=$(mktemp)
trap 'rm -f "$log"' EXIT
show_log() {
  echo "---- last lines of the run:"
  tail -n 40 "$log"
}

# First without the canary: the selected tests must pass, or a failure with it means nothing
# (a broken or flaky test, a sanitizer report that has nothing to do with the canary).
# shellcheck disable=SC2086 # the row's environment is a list of VAR=value words
env -u CAFRAFT_CANARY $extra timeout 600 "$bin" --gtest_filter="$filter" >"$log" 2>&1
rc=$?
if [ "$rc" -ne 0 ]; then
  echo "ERROR: without the canary, $(basename "$bin") --gtest_filter='$filter' fails (exit $rc):"
  echo "the selected tests must pass before a failure with $name can count as a catch"
  show_log
  exit 2
fi
# shellcheck disable=SC2086 # the row's environment is a list of VAR=value words
env $extra CAFRAFT_CANARY="$name" timeout 600 "$bin" --gtest_filter="$filter" >"$log" 2>&1
rc=$?

echo "canary $name: CAFRAFT_CANARY=$name ${extra:+$extra }$(basename "$bin") --gtest_filter='$filter' (exit $rc; passes without the canary)"

if ! grep -q "cafraft: canary $name is planted" "$log"; then
  if grep -q "names no canary" "$log"; then
    echo "ERROR: the binary does not know canary $name (runtime/canary.hpp lists them)"
  else
    echo "ERROR: the binary did not plant $name: was it built with -DCAFRAFT_CANARIES=ON?"
  fi
  show_log
  exit 2
fi
if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
  echo "ERROR: the run did not finish in 600 s (a hang is no catch: make a test fail)"
  show_log
  exit 2
fi
ran=$(sed -n 's/^\[==========\] Running \([0-9]*\) tests\{0,1\} from.*/\1/p' "$log" | head -n 1)
if [ -z "$ran" ] || [ "$ran" -eq 0 ]; then
  echo "ERROR: the filter '$filter' selects no test"
  show_log
  exit 2
fi
if [ "$rc" -eq 0 ]; then
  echo "NOT CAUGHT: all $ran selected tests passed with the canary planted. A test is missing."
  exit 1
fi

failed=$(sed -n 's/^\[  FAILED  \] \([A-Za-z_][A-Za-z0-9_/]*\.[A-Za-z0-9_/]*\).*/\1/p' "$log" | sort -u)
if [ -n "$failed" ]; then
  echo "caught by $(printf '%s\n' "$failed" | wc -l) of $ran tests:"
  printf '  %s\n' $failed
  echo "first failures:"
  grep -m 3 -A 3 -E ': Failure$' "$log" | grep -v -- '^--$' | sed 's/^/  /'
  exit 0
fi
last_run=$(sed -n 's/^\[ RUN      \] //p' "$log" | tail -n 1)
if grep -q -E 'ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:' "$log"; then
  echo "caught by a sanitizer report in ${last_run:-?}:"
  grep -m 3 -E 'ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:' "$log" | sed 's/^/  /'
  exit 0
fi
if [ "$rc" -ge 128 ]; then
  echo "caught by an abort (signal $((rc - 128))) in ${last_run:-?}"
  exit 0
fi
echo "ERROR: the run failed (exit $rc) without a failed test, an abort or a sanitizer report"
show_log
exit 2
