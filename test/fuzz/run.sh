#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# make fuzz: runs each libFuzzer target for SECONDS on a copy of its seed
# corpus (test/fuzz/corpus/<target>), prints executions per target, and
# fails when any target crashed, leaked, timed out or ran out of memory.
#   sh test/fuzz/run.sh SECONDS BUILD_DIR TARGET...
# SECONDS 0 only replays the seeds (-runs=0). Crash inputs are kept in
# BUILD_DIR/run/<target>/artifacts; reproduce with BUILD_DIR/fuzz_<target> FILE.
secs=$1; dir=$2; shift 2
here=$(dirname "$0")
failed=""
total=0
printf '%-12s %10s %8s %7s %6s  %s\n' target executions exec/s corpus cov result
for t in "$@"; do
  bin="$dir/fuzz_$t"
  work="$dir/run/$t"
  rm -rf "$work"
  mkdir -p "$work/corpus" "$work/artifacts"
  [ -d "$here/corpus/$t" ] && cp "$here/corpus/$t"/* "$work/corpus/" 2>/dev/null
  if [ "$secs" -gt 0 ] 2>/dev/null; then limit="-max_total_time=$secs"; else limit="-runs=0"; fi
  "$bin" "$limit" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
    -dict="$here/jose.dict" -artifact_prefix="$work/artifacts/" "$work/corpus" >"$work/log" 2>&1
  rc=$?
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$work/log" | tail -n 1)
  speed=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$work/log" | tail -n 1)
  cov=$(grep -o 'cov: [0-9]*' "$work/log" | tail -n 1 | grep -o '[0-9]*')
  ncorp=$(ls "$work/corpus" | wc -l)
  result=ok
  if [ "$rc" -ne 0 ] || [ -n "$(ls "$work/artifacts")" ]; then
    result="FAILED (exit $rc)"
    failed="$failed $t"
  fi
  total=$((total + ${execs:-0}))
  printf '%-12s %10s %8s %7s %6s  %s\n' "$t" "${execs:-?}" "${speed:-?}" "$ncorp" "${cov:-?}" "$result"
  if [ "$result" != ok ]; then
    echo "---- $work/log (last 60 lines)"
    tail -n 60 "$work/log"
    for a in "$work/artifacts"/*; do
      [ -f "$a" ] && echo "---- artifact $a (reproduce: $bin $a)" && od -c "$a" | head -n 20
    done
    echo "----"
  fi
done
echo "fuzz: $# targets, $total executions, failed:${failed:- none}"
[ -z "$failed" ]
