#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# make lint: the SPDX line, clang-format, cppcheck, clang-tidy. Every step
# runs, prints its findings, their count and its time; the exit status is
# non-zero when any step found something.
#   lint.sh PYTHON CLANG_FORMAT CPPCHECK CLANG_TIDY "FORMAT_SRC" "LINT_SRC" "TIDY_FLAGS"
python=$1 clang_format=$2 cppcheck=$3 clang_tidy=$4 format_src=$5 lint_src=$6 tidy_flags=$7
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
failed=0

# step NAME PATTERN CMD...: PATTERN counts the findings in the output.
step() {
  name=$1 pattern=$2
  shift 2
  t0=$(date +%s)
  "$@" >"$out/$name" 2>&1
  rc=$?
  n=$(grep -cE "$pattern" "$out/$name")
  cat "$out/$name"
  echo "==== lint: $name: $n finding(s), exit $rc, $(($(date +%s) - t0)) s"
  if [ "$rc" != 0 ] || [ "$n" != 0 ]; then failed=1; fi
}

tidy_all() {
  # Two at a time; each file with the flags the build gives it (the glue's
  # -Isrc/httpd does not change the engine's meaning).
  echo $lint_src | tr ' ' '\n' | xargs -P2 -n4 sh -c '"$0" --quiet "$@" -- '"$tidy_flags" "$clang_tidy"
}

step spdx ':1: missing' "$python" test/spdx.py check
# shellcheck disable=SC2086 # word splitting of the file lists is wanted
step clang-format 'code should be clang-formatted' "$clang_format" --dry-run -Werror $format_src
# shellcheck disable=SC2086
step cppcheck '^[^ ]+:[0-9]+:[0-9]+: (error|warning|style|performance|portability)' \
  "$cppcheck" --enable=warning --std=c11 --quiet --inline-suppr --error-exitcode=1 \
  -D__GNUC__ -Isrc -Isrc/httpd $lint_src
step clang-tidy '^[^ ]+:[0-9]+:[0-9]+: (warning|error):' tidy_all
exit $failed
