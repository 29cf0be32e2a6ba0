#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# make test: unit tests, then integration tests against a real httpd; ends
# with one summary line "total: N passed, N failed" and exits non-zero when
# anything failed. Output is shown as it comes (tee); each runner's own exit
# status is taken from PIPESTATUS, never tee's.
set -o pipefail
PY=$1; shift
ulog=$(mktemp); ilog=$(mktemp)
trap 'rm -f "$ulog" "$ilog"' EXIT
bash test/run-unit.sh "$@" 2>&1 | tee "$ulog"
urc=${PIPESTATUS[0]}
"$PY" -m pytest -q -p no:cacheprovider test/integration 2>&1 | tee "$ilog"
irc=${PIPESTATUS[0]}
up=$(sed -n 's/^unit: \([0-9]*\) passed, \([0-9]*\) failed$/\1/p' "$ulog")
uf=$(sed -n 's/^unit: \([0-9]*\) passed, \([0-9]*\) failed$/\2/p' "$ulog")
ip=$(tail -n 3 "$ilog" | grep -o '[0-9]* passed' | grep -o '[0-9]*' | tail -n 1)
if_=$(tail -n 3 "$ilog" | grep -o '[0-9]* failed' | grep -o '[0-9]*' | tail -n 1)
ie=$(tail -n 3 "$ilog" | grep -o '[0-9]* error' | grep -o '[0-9]*' | tail -n 1)
up=${up:-0}; uf=${uf:-0}; ip=${ip:-0}; if_=${if_:-0}; ie=${ie:-0}
# A runner exiting non-zero with nothing counted as failed (a crash, no
# summary line, no tests collected) is a failure too.
[ "$urc" -ne 0 ] && [ "$uf" -eq 0 ] && uf=1
[ "$irc" -ne 0 ] && [ "$if_" -eq 0 ] && [ "$ie" -eq 0 ] && ie=1
echo "total: $((up + ip)) passed, $((uf + if_ + ie)) failed"
[ "$urc" -eq 0 ] && [ "$irc" -eq 0 ] && [ "$uf" -eq 0 ] && [ "$((if_ + ie))" -eq 0 ]
