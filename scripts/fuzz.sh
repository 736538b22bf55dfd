#!/usr/bin/env bash
# Builds the libFuzzer targets in Fuzz/ (-sanitize=fuzzer,address) and runs each on its committed
# seeds (Fuzz/Corpus/<target>) plus what earlier runs found (.build-fuzz/corpus/<target>).
#   scripts/fuzz.sh [--runs N | --time SECONDS] [TARGET ...]     (default: --time 10, every target)
# A crash stops the run with its input in .build-fuzz/artifacts/<target>/; keep it as a regression
# test. Prints executions and coverage per target (docs/fuzzing.md records a long run).
set -euo pipefail
cd "$(dirname "$0")/.."
limit=(-max_total_time=10)
targets=()
while [ $# -gt 0 ]; do
  case "$1" in
    --runs) limit=(-runs="$2"); shift 2 ;;
    --time) limit=(-max_total_time="$2"); shift 2 ;;
    *) targets+=("$1"); shift ;;
  esac
done
[ ${#targets[@]} -gt 0 ] || targets=(FuzzSafetensors FuzzTorch FuzzImages FuzzCSV FuzzImpair FuzzHead)
./scripts/setup.sh --deps-only
mkdir -p .build-fuzz
# The fuzz targets are this package's when CLIPDETECT_FUZZ=1 (Package.swift), built on their own.
export CLIPDETECT_FUZZ=1
build=(swift build --scratch-path .build-fuzz/build -c release -Xswiftc -sanitize=fuzzer,address -Xswiftc -use-ld=lld)
# A failed build must stop here: running the previous binaries would fuzz old code.
: >.build-fuzz/build.log
for target in "${targets[@]}"; do
  "${build[@]}" --product "$target" >>.build-fuzz/build.log 2>&1 || { tail -40 .build-fuzz/build.log; exit 1; }
done
bin=$("${build[@]}" --show-bin-path)
for target in "${targets[@]}"; do
  corpus=.build-fuzz/corpus/$target artifacts=.build-fuzz/artifacts/$target
  mkdir -p "$corpus" "$artifacts"
  log=.build-fuzz/$target.log
  status=0
  SWIFT_BACKTRACE=enable=no ASAN_OPTIONS=detect_leaks=0 "$bin/$target" "${limit[@]}" -rss_limit_mb=4096 -timeout=20 -max_len=65536 \
    -artifact_prefix="$artifacts/" -print_final_stats=1 "$corpus" "Fuzz/Corpus/$target" >"$log" 2>&1 || status=$?
  runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo 0)
  cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 | grep -o '[0-9]*' || echo 0)
  echo "$target: $runs executions, coverage $cov edges, exit $status"
  if [ "$status" -ne 0 ]; then tail -40 "$log"; exit "$status"; fi
done
