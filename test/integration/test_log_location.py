# SPDX-License-Identifier: Apache-2.0
"""Engine log lines name their own file and line (issue 13, section 3).

The engine (src/*.c) logs through a callback of the httpd glue. With
``ErrorLogFormat "%F"`` a line must show where the engine wrote it
(``keyring.c(N)``, ``discovery.c(N)``), not the glue callback that handed it
to httpd (``authn.c``): otherwise every engine line shows the same useless
location.
"""

import re
import secrets

import pytest

from conftest import AUDIENCE, HTTPSServer, Minter, es256_key

# %F is "file(line)"; the marker keeps it apart from the message.
FORMAT = 'ErrorLogFormat "[%l] [%m] at=%F: %M"'
AT = re.compile(r"at=(\S+)\((\d+)\): ")


@pytest.fixture(scope="module")
def rig(tls, httpd_factory, mcp_auth_so):
    idp = HTTPSServer(tls)
    key = es256_key("loc")
    # /broken: the JWKS answers 500. /nodisc: no discovery document at all.
    idp.set("/broken/jwks", {"error": "down"}, status=500)
    broken = idp.url("/broken")
    nodisc = idp.url("/nodisc")

    def loc(issuer, source=""):
        return "\n".join(["AuthType mcp-jwt", 'AuthName "mcp"', f"MCPAuthIssuer {issuer} {source}".rstrip(),
                          f"MCPAuthAudience {AUDIENCE}", "Require valid-user"])

    h = httpd_factory.start({
        "/broken": loc(broken, f"jwks_uri={idp.url('/broken/jwks')}"),
        "/nodisc": loc(nodisc),
    }, server_conf=f"{FORMAT}\nMCPAuthHTTPTimeout 3\nMCPAuthJWKSRefreshCooldown 1", module_so=mcp_auth_so,
        name="logloc")

    class Rig:
        pass

    r = Rig()
    r.h, r.idp, r.key, r.broken, r.nodisc = h, idp, key, broken, nodisc
    try:
        yield r
    finally:
        h.stop()
        idp.stop()


def _line_with(log, phrase):
    lines = [line for line in log.splitlines() if phrase in line]
    assert lines, f"no line with {phrase!r} in:\n{log[-3000:]}"
    return lines[0]


def _location(line):
    m = AT.search(line)
    assert m, f"no %F location in: {line}"
    return m.group(1).rsplit("/", 1)[-1], int(m.group(2))


def test_jwks_fetch_failure_names_keyring_c(rig):
    mark = rig.h.log_offset()
    token = Minter(None, issuer=rig.broken).token("ES256", key=rig.key)
    assert rig.h.get("/broken", token).status == 503
    # keyring.c's own line, then the glue's refusal line (the first refusal
    # with this reason: later ones within a second are only counted).
    log = rig.h.wait_for_log("no usable keys for", since=mark)
    line = _line_with(log, f"JWKS fetch failed: {rig.idp.url('/broken/jwks')}: HTTP 500")
    name, lineno = _location(line)
    assert name == "keyring.c", line
    assert lineno > 1, line
    # The line the glue writes itself still names a glue file.
    refusal = AT.search(_line_with(log, "no usable keys for"))
    assert refusal and "httpd/" in refusal.group(1), log


def test_discovery_failure_names_discovery_c(rig):
    mark = rig.h.log_offset()
    token = Minter(None, issuer=rig.nodisc).token("ES256", key=rig.key)
    assert rig.h.get("/nodisc", token).status == 503
    line = _line_with(rig.h.wait_for_log("Discovery failed", since=mark), "Discovery failed for issuer")
    name, lineno = _location(line)
    assert name == "discovery.c", line
    assert lineno > 1, line
