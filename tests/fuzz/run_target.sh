#!/usr/bin/env bash
# Runs one fuzz target for ctest (tests/fuzz/CMakeLists.txt):
#   run_target.sh replay BINARY SOURCE_DIR TARGET WORK_DIR
#       every regression input (SOURCE_DIR/regressions/TARGET/) and seed (corpus/TARGET/) once
#   run_target.sh run BINARY SOURCE_DIR TARGET WORK_DIR
#       fuzzing for CAFRAFT_FUZZ_SECONDS seconds (default 20) on a copy of the seeds and the
#       regression inputs in WORK_DIR/TARGET/corpus (the source tree is never written)
# Crashes, leaks, timeouts and out-of-memory inputs go to WORK_DIR/TARGET/artifacts/.
set -euo pipefail
mode=$1 bin=$2 src=$3 target=$4 work=$5
corpus=$src/corpus/$target
regressions=$src/regressions/$target
artifacts=$work/$target/artifacts
mkdir -p "$artifacts"
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:symbolize=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
# A hang is an input that runs longer than this (a node must never get stuck on input).
common=(-timeout=10 -rss_limit_mb=2048 -artifact_prefix="$artifacts/")

inputs() { # the files of the directories given, hidden ones (.gitkeep) left out
  local d
  for d in "$@"; do
    [[ -d $d ]] && find "$d" -type f ! -name '.*' | sort
  done
  return 0
}

case $mode in
  replay)
    mapfile -t files < <(inputs "$regressions" "$corpus")
    if ((${#files[@]} == 0)); then
      echo "no inputs for $target in $regressions or $corpus" >&2
      exit 1
    fi
    echo "replaying ${#files[@]} inputs of $target"
    exec "$bin" "${common[@]}" "${files[@]}"
    ;;
  run)
    copy=$work/$target/corpus
    rm -rf "$copy"
    mkdir -p "$copy"
    mapfile -t files < <(inputs "$regressions" "$corpus")
    ((${#files[@]} == 0)) || cp "${files[@]}" "$copy/"
    seconds=${CAFRAFT_FUZZ_SECONDS:-20}
    echo "fuzzing $target for ${seconds}s on $copy"
    exec "$bin" "${common[@]}" -max_total_time="$seconds" -use_value_profile=1 \
      -print_final_stats=1 "$copy"
    ;;
  *)
    echo "usage: $0 replay|run BINARY SOURCE_DIR TARGET WORK_DIR" >&2
    exit 2
    ;;
esac
