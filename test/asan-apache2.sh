#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# APACHE2 for `make test-asan`: the stock /usr/sbin/apache2 with the ASan
# runtime preloaded, so the ASan + UBSan build of mod_mcp_auth.so can load.
# Reports go to files MCP_ASAN_LOG_DIR/asan.<pid> (children run as another
# user and have no terminal); test/run-asan.sh fails when any exists.
#   MCP_ASAN_LOG_DIR  directory for the reports (required; writable by the httpd user)
#   MCP_ASAN_RUNTIME  the runtime of the compiler that built the module
#                     (default: clang's libclang_rt.asan-<arch>.so)
#   MCP_REAL_APACHE2  the httpd binary (default /usr/sbin/apache2)
# Leak detection is off inside httpd: it exits its children and the parent
# without freeing its pools (by design), which LeakSanitizer reports as
# thousands of leaks that say nothing about the module. Memory errors and
# undefined behaviour stop the process (halt_on_error). The quarantine of
# freed memory (use-after-free detection) is 64 MB per process instead of
# 256: an httpd has several children.
: "${MCP_ASAN_LOG_DIR:?MCP_ASAN_LOG_DIR must name the report directory}"
rt=${MCP_ASAN_RUNTIME:-$(clang -print-file-name="libclang_rt.asan-$(uname -m).so" 2>/dev/null)}
if [ ! -f "$rt" ]; then
  echo "asan-apache2.sh: ASan runtime not found (${rt:-none}); set MCP_ASAN_RUNTIME" >&2
  exit 1
fi
LD_PRELOAD="$rt${LD_PRELOAD:+:$LD_PRELOAD}"
ASAN_OPTIONS="log_path=$MCP_ASAN_LOG_DIR/asan:detect_leaks=0:abort_on_error=0:halt_on_error=1:detect_odr_violation=0:allow_user_segv_handler=1:quarantine_size_mb=64"
UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
export LD_PRELOAD ASAN_OPTIONS UBSAN_OPTIONS
exec "${MCP_REAL_APACHE2:-/usr/sbin/apache2}" "$@"
