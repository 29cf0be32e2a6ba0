#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# make test-asan: the unit tests and the integration suite against the
# ASan + UBSan build (build/asan): httpd runs through test/asan-apache2.sh,
# the CLI and unit binaries carry the runtime themselves. Every report goes
# to a file in one directory; any report fails the run and is printed.
#   sh test/run-asan.sh PYTHON ASAN_BUILD_DIR ASAN_RUNTIME UNIT_BINARY...
PY=$1; dir=$(cd "$2" && pwd); rt=$3; shift 3
repo=$(cd "$(dirname "$0")/.." && pwd)
logs=$(mktemp -d /tmp/mcp-asan.XXXXXX)
# httpd children run as an unprivileged user and write their reports here.
chmod 1777 "$logs"
status=0

# Unit tests: leaks are checked too (each test destroys its pool).
ASAN_OPTIONS="log_path=$logs/asan:detect_leaks=1:abort_on_error=0:halt_on_error=1:detect_stack_use_after_return=1"
UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
export ASAN_OPTIONS UBSAN_OPTIONS
sh "$repo/test/run-unit.sh" "$@" || status=1

# Integration. Leaks are not checked here: httpd runs with detect_leaks=0
# (test/asan-apache2.sh), and the CLI leaves through exit(1) on a refusal
# with its pool alive; APR keeps pool memory in mmap'd blocks LeakSanitizer
# does not scan, so all the pool owns would be reported (make valgrind
# checks the CLI for leaks instead).
ASAN_OPTIONS="log_path=$logs/asan:detect_leaks=0:abort_on_error=0:halt_on_error=1"
# pytest must not pass the outer make's variables to the `make demo` it
# runs, or the demo would build into build/asan.
# Deselected: the 100k-request load test's leak check compares the RSS of
# the children, which under ASan measures its allocator (quarantine, shadow,
# stack depot), not the module; make test runs it on the normal build.
# Node ids are relative to test/integration (where its pytest.ini is).
env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL MCP_AUTH_SANITIZER=asan \
  APACHE2="$repo/test/asan-apache2.sh" MCP_ASAN_RUNTIME="$rt" MCP_ASAN_LOG_DIR="$logs" \
  MCP_AUTH_SO="$dir/mod_mcp_auth.so" MCP_AUTH_CLI="$dir/mcp-auth-token" \
  "$PY" -m pytest -q -p no:cacheprovider "$repo/test/integration" \
  --deselect test_faults.py::test_load_100k_mixed_tokens_no_5xx_no_leak || status=1

reports=$(ls "$logs" 2>/dev/null)
if [ -n "$reports" ]; then
  status=1
  for f in "$logs"/*; do
    echo "==== sanitizer report $f"
    cat "$f"
  done
fi
rm -rf "$logs"
echo "test-asan: $(echo "$reports" | grep -c .) sanitizer reports, $([ $status -eq 0 ] && echo passed || echo FAILED)"
exit $status
