# SPDX-License-Identifier: Apache-2.0
"""Project basics: the version the module and the CLI report.

One startup line per configuration generation (a start reads the
configuration twice; the first, dry-run reading logs nothing), naming the
module's version and the OpenSSL, libcurl and jansson versions loaded;
`mcp-auth-token --version` prints the same version."""

import re
import subprocess

from conftest import APACHE2, AUDIENCE, ISSUER, REPO_ROOT, wait_for_port

STARTUP = re.compile(r"mod_mcp_auth/(\d+\.\d+\.\d+) \(OpenSSL [^,]+, libcurl/[0-9][^,]*, jansson/[0-9][^)]*\)")
LOCATION = "\n".join([
    "AuthType mcp-jwt",
    'AuthName "mcp"',
    f"MCPAuthIssuer {ISSUER} jwks_uri=https://127.0.0.1:9/jwks",
    f"MCPAuthAudience {AUDIENCE}",
    "Require valid-user",
])


def version_h():
    text = (REPO_ROOT / "src" / "version.h").read_text()
    return re.search(r'#define MCP_AUTH_VERSION "([^"]+)"', text).group(1)


def startup_lines(text):
    return [line for line in text.splitlines() if "mod_mcp_auth/" in line]


def restart(h, how):
    mark = h.log_offset()
    proc = subprocess.run([APACHE2, "-f", str(h.conf), "-k", how], capture_output=True, text=True, timeout=30)
    assert proc.returncode == 0, proc.stderr
    log = h.wait_for_log("resuming normal operations", since=mark, timeout=30)
    assert "resuming normal operations" in log, log[-2000:]
    assert wait_for_port(h.port, 10)
    return log


def assert_one_line(text):
    lines = startup_lines(text)
    assert len(lines) == 1, "expected one startup line:\n" + "\n".join(lines) + "\n---\n" + text[-3000:]
    m = STARTUP.search(lines[0])
    assert m, lines[0]
    assert m.group(1) == version_h(), lines[0]
    # Logged at notice, which httpd writes whatever the LogLevel (as its own
    # "resuming normal operations").
    assert ":notice]" in lines[0], lines[0]


def test_startup_line_once_per_generation(start_httpd):
    h = start_httpd({"/mcp": LOCATION}, "LogLevel warn")
    log = h.wait_for_log("resuming normal operations", timeout=15)
    assert_one_line(log)
    assert_one_line(restart(h, "graceful"))
    assert_one_line(restart(h, "restart"))
    # Three generations, three lines: none logged twice, none by the dry run.
    assert len(startup_lines(h.log_text())) == 3, h.log_text()[-3000:]


def test_cli_version(mcp_auth_cli):
    proc = subprocess.run([str(mcp_auth_cli), "--version"], capture_output=True, text=True, timeout=30)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout.strip()
    assert re.fullmatch(r"mcp-auth-token/(\S+) \(OpenSSL [^,]+, libcurl/[0-9][^,]*, jansson/[0-9][^)]*\)", out), out
    assert out.split()[0] == f"mcp-auth-token/{version_h()}", out


def test_cli_usage_names_version(mcp_auth_cli):
    proc = subprocess.run([str(mcp_auth_cli)], capture_output=True, text=True, timeout=30)
    assert proc.returncode == 2
    assert "mcp-auth-token --version" in proc.stderr, proc.stderr
