#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# Proves that the README's test command fails when a test fails: in a
# scratch copy of the tree (never the real suite), `make -f apxs.mk test`
# runs three times -- with a deliberately failing unit test, with a
# deliberately failing integration test, and with neither -- and must exit
# non-zero, non-zero, and zero; then the speed guard runs once against a
# planted, impossible budget and must fail. The copy keeps one small unit test and one
# small integration test beside the planted ones, so this takes a minute
# or so rather than a whole suite.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
scratch=$(mktemp -d /tmp/mcp-selftest.XXXXXX)
trap 'rm -rf "$scratch"' EXIT

# The tracked files as they are in the work tree.
(cd "$repo" && git ls-files -z | xargs -0 tar -cf - 2>/dev/null) | tar -xf - -C "$scratch"
cd "$scratch"
# make test installs the Node peers (npm ci) unless they are there: borrow them.
if [ -d "$repo/test/node_modules" ]; then ln -s "$repo/test/node_modules" test/node_modules; fi
find test/unit -name 'test_*.c' ! -name test_b64url.c -delete
find test/integration -name 'test_*.py' ! -name test_cli.py -delete

cat > test/unit/test_zz_planted.c <<'C'
/* Planted by test/selftest-runners.sh: fails on purpose unless PLANT_UNIT_PASS is set. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
static void planted(void **state)
{
    (void)state;
    assert_non_null(getenv("PLANT_UNIT_PASS"));
}
int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(planted)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
C
cat > test/integration/test_zz_planted.py <<'PY'
"""Planted by test/selftest-runners.sh: fails on purpose unless PLANT_INTEGRATION_PASS is set."""
import os


def test_planted():
    assert os.environ.get("PLANT_INTEGRATION_PASS")
PY

run() { # name, environment (which planted tests pass), expected: fail|pass
  local name=$1 expect=$3 rc=0 out total
  out=$(mktemp)
  echo "---- selftest: $name (expected to $expect)"
  env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL $2 make -f apxs.mk test >"$out" 2>&1 || rc=$?
  total=$(grep '^total:' "$out" | tail -n 1 || true)
  echo "$total"
  if { [ "$expect" = fail ] && [ "$rc" -eq 0 ]; } || { [ "$expect" = pass ] && [ "$rc" -ne 0 ]; }; then
    echo "---- selftest: $name: make test exited $rc, expected to $expect"; cat "$out"; exit 1
  fi
  if [ "$expect" = fail ] && ! echo "$total" | grep -Eq '^total: [0-9]+ passed, [1-9][0-9]* failed$'; then
    echo "---- selftest: $name: the summary line does not count the failure"; exit 1
  fi
  echo "---- selftest: $name: exit $rc as expected"
}
run "failing unit test" "PLANT_INTEGRATION_PASS=1" fail
run "failing integration test" "PLANT_UNIT_PASS=1" fail
run "no failing test" "PLANT_UNIT_PASS=1 PLANT_INTEGRATION_PASS=1" pass

# The speed guard (make -f apxs.mk perf-guard) must fail when either path
# costs more than its budget, and say so with both numbers (a broken
# measurement also fails, but without that message): plant a budget of 1 Ir
# for one path at a time.
for planted in repeated_token distinct_tokens; do
  echo "---- selftest: over-budget perf guard, $planted (expected to fail)"
  { echo "repeated_token_ir_above_ceiling 999999"; echo "distinct_tokens_ir_above_ceiling 999999"; } |
    sed "s/^${planted}_ir_above_ceiling .*/${planted}_ir_above_ceiling 1/" > test/perf-budget
  rc=0; out=$(env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL make -f apxs.mk perf-guard 2>&1) || rc=$?
  if [ "$rc" -eq 0 ] || ! echo "$out" | grep -Eq "FAILED: .* [0-9,]+ Ir/request above the ceiling, over the budget of 1 \(${planted}_ir"; then
    echo "---- selftest: over-budget perf guard, $planted: exit $rc, expected a failure naming both numbers"; echo "$out"; exit 1
  fi
  echo "---- selftest: over-budget perf guard, $planted: exit $rc as expected"
done
echo "selftest: 5 passed, 0 failed"
