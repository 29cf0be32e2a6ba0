#!/bin/sh
# make test: unit tests, then integration tests against a real httpd; ends
# with one summary line "total: N passed, N failed".
PY=$1; shift
ulog=$(mktemp); ilog=$(mktemp)
sh test/run-unit.sh "$@" | tee "$ulog"
"$PY" -m pytest -q -p no:cacheprovider test/integration 2>&1 | tee "$ilog"
irc=$?
up=$(sed -n 's/^unit: \([0-9]*\) passed, \([0-9]*\) failed$/\1/p' "$ulog")
uf=$(sed -n 's/^unit: \([0-9]*\) passed, \([0-9]*\) failed$/\2/p' "$ulog")
ip=$(tail -n 3 "$ilog" | grep -o '[0-9]* passed' | grep -o '[0-9]*' | tail -n 1)
if_=$(tail -n 3 "$ilog" | grep -o '[0-9]* failed' | grep -o '[0-9]*' | tail -n 1)
ie=$(tail -n 3 "$ilog" | grep -o '[0-9]* error' | grep -o '[0-9]*' | tail -n 1)
up=${up:-0}; uf=${uf:-1}; ip=${ip:-0}; if_=${if_:-0}; ie=${ie:-0}
# pytest exiting non-zero with nothing counted as failed (e.g. no tests collected) is a failure too.
[ "$irc" -ne 0 ] && [ "$if_" -eq 0 ] && [ "$ie" -eq 0 ] && ie=1
rm -f "$ulog" "$ilog"
echo "total: $((up + ip)) passed, $((uf + if_ + ie)) failed"
[ "$uf" -eq 0 ] && [ "$irc" -eq 0 ]
