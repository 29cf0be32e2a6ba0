#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# Runs the cmocka unit-test binaries given as arguments; prints each one's
# output and a line "unit: N passed, N failed". Exit status 1 on any failure.
passed=0; failed=0
out=$(mktemp)
for t in "$@"; do
  "$t" >"$out" 2>&1; rc=$?
  cat "$out"
  ran=$(sed -n 's/^\[==========\] \(.*: \)\{0,1\}\([0-9][0-9]*\) test(s) run\./\2/p' "$out" | tail -n 1)
  ok=$(grep -c '^\[       OK \]' "$out")
  [ -z "$ran" ] && ran=$ok
  bad=$((ran - ok))
  # A binary that crashed or exited non-zero without reporting a failure still failed.
  [ "$rc" -ne 0 ] && [ "$bad" -eq 0 ] && bad=1
  passed=$((passed + ok)); failed=$((failed + bad))
done
rm -f "$out"
echo "unit: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
