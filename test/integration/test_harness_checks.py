# SPDX-License-Identifier: Apache-2.0
"""The harness's after-test check (harness/checks.py) finds what it must:
a child crash line and an issued token in an error log.  Each test plants
the line, asks the check directly, and so also consumes it (the autouse
check after the test then sees a clean log)."""

import secrets

import pytest

from harness import checks
from harness.httpd import mcp_location
from harness.tokens import ISSUED


def _append(h, line):
    with open(h.error_log, "a") as f:
        f.write(line + "\n")


def test_crash_line_is_found(start_httpd, jwks_server):
    h = start_httpd({"/p": mcp_location(jwks_uri=jwks_server.jwks_uri)})
    assert checks.problems() == []
    _append(h, "free(): double free detected in tcache 2")
    _append(h, "[mpm_event:notice] [pid 1] AH00052: child pid 2 exit signal Aborted (6)")
    found = checks.problems()
    assert len(found) == 1 and "child crash lines" in found[0], found
    # The child's last words come with it: the log is gone after the test.
    assert "double free detected" in found[0], found
    _append(h, "==3==ERROR: AddressSanitizer: heap-use-after-free on address 0x6020")
    assert "AddressSanitizer" in " ".join(checks.problems())
    assert checks.problems() == [], "a line is reported once"


def test_issued_token_is_found(start_httpd, jwks_server, minter):
    h = start_httpd({"/p": mcp_location(jwks_uri=jwks_server.jwks_uri)})
    # A header of its own (a header alone may have been sent as a token elsewhere).
    token = minter.token(header=minter.header(x_check=secrets.token_hex(8)))
    assert h.get("/p", token).status == 200
    assert checks.problems() == []
    # The header and the claims may be quoted; the signature never.
    _append(h, "[mcp_auth:info] header " + token.split(".")[0])
    assert checks.problems() == []
    _append(h, "[mcp_auth:info] oops " + token.rsplit(".", 1)[1] + "xyz")
    found = checks.problems()
    assert len(found) == 1 and "1 token(s)" in found[0], found


def test_sent_opaque_token_is_found(start_httpd, jwks_server):
    h = start_httpd({"/p": mcp_location(jwks_uri=jwks_server.jwks_uri)})
    opaque = "opaque-" + "Zq9" * 12
    assert h.get("/p", opaque).status == 401
    n = ISSUED.count
    _append(h, f"[mcp_auth:info] token={opaque}")
    assert ISSUED.count == n and len(checks.problems()) == 1


@pytest.mark.token_in_log("plants a token line and leaves it for the after-test check, which the marker lets pass")
def test_marker_lets_a_planted_token_through(start_httpd, jwks_server, minter):
    h = start_httpd({"/p": mcp_location(jwks_uri=jwks_server.jwks_uri)})
    _append(h, "[mcp_auth:info] planted " + minter.token())
