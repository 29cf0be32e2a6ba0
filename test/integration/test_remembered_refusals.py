# SPDX-License-Identifier: Apache-2.0
"""Lasting refusals are remembered per child (issue 12, "rejections never
cost more than an accepted distinct token").

A token whose signature does not match a key that fits it, or whose good
signature carries claims refused for good (expired, another audience), is
refused the same way every time it comes back: each child verifies it once
and then answers from its own cache -- until the keys change, since the
remembered refusal depends on the JWKS generation it was checked against.
A refusal that time lifts (``nbf`` in the future) is never remembered.
Every test sends its requests over one keep-alive connection, so one child
answers them all.
"""

import http.client
import time

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from harness.httpd import mcp_location as location
from conftest import Minter, SigningKey, es256_key

REMEMBERED = "refused moments ago"


SERVER = "\n".join(["LogLevel warn mcp_auth:info", "MCPAuthRefusalLogInterval 0",
                    "MCPAuthJWKSRefreshCooldown 1"])


def send(conn, token):
    conn.request("GET", "/mcp", headers={"Authorization": f"Bearer {token}"})
    resp = conn.getresponse()
    resp.read()
    return resp.status, resp.getheader("WWW-Authenticate") or ""


def refusal_lines(log, reason):
    return [line for line in log.splitlines() if reason in line]


def protected(jwks_server, start_httpd, keys, name, key):
    """An httpd whose /mcp trusts an issuer publishing only key; a minter
    for that issuer; one keep-alive connection (one child answers all)."""
    issuer = f"https://idp.remember-{name}.example"
    jwks_server.server.set(f"/jwks-{name}", {"keys": [key.jwk]})
    h = start_httpd({"/mcp": location(issuer, jwks_server.url(f"/jwks-{name}"))}, SERVER)
    conn = http.client.HTTPConnection("127.0.0.1", h.port, timeout=20)
    return h, Minter(keys, issuer=issuer), conn


@pytest.mark.slow
def test_a_forged_signature_sent_again_is_verified_once(jwks_server, start_httpd, keys):
    real = es256_key("k1")
    h, m, conn = protected(jwks_server, start_httpd, keys, "forged", real)
    # Same kid as the published key, another key: a fitting key, a bad signature.
    forged = m.token("ES256", key=SigningKey("ES256", real.kid, ec.generate_private_key(ec.SECP256R1())))
    good = m.token("ES256", key=real)
    mark = h.log_offset()
    answers = [send(conn, forged) for _ in range(10)]
    assert send(conn, good)[0] == 200  # the neighbour
    log = h.log_since(mark)
    assert all(s == 401 and 'error="invalid_token"' in c for s, c in answers), answers
    # Every answer is the same challenge, remembered or not.
    assert len({c for _, c in answers}) == 1, answers
    lines = refusal_lines(log, "Invalid signature")
    assert len(lines) == 10, log[-3000:]
    assert sum(REMEMBERED in line for line in lines) == 9, "\n".join(lines)
    assert forged not in log  # never the token itself


@pytest.mark.slow
def test_a_remembered_refusal_ends_when_the_keys_change(jwks_server, start_httpd, keys):
    """The IdP republishes kid k1 with the key that did sign the token (a
    reused kid): once the JWKS is fetched again, the token is accepted --
    the remembered refusal belonged to the old key set."""
    old = es256_key("k1")
    new = SigningKey("ES256", old.kid, ec.generate_private_key(ec.SECP256R1()))
    h, m, conn = protected(jwks_server, start_httpd, keys, "rotate", old)
    token = m.token("ES256", key=new)
    mark = h.log_offset()
    assert send(conn, token)[0] == 401
    assert send(conn, token)[0] == 401
    assert REMEMBERED in h.log_since(mark)
    jwks_server.server.set("/jwks-rotate", {"keys": [new.jwk]})
    time.sleep(1.3)  # past MCPAuthJWKSRefreshCooldown
    # An unknown kid makes the child fetch the JWKS again (a new generation).
    other = es256_key("k-other")
    assert send(conn, m.token("ES256", key=other))[0] == 401
    status, challenge = send(conn, token)
    assert status == 200, (challenge, h.log_since(mark)[-2000:])


@pytest.mark.slow
def test_an_expired_token_is_remembered_a_not_yet_valid_one_is_not(jwks_server, start_httpd, keys):
    key = es256_key("k1")
    h, m, conn = protected(jwks_server, start_httpd, keys, "time", key)
    now = int(time.time())
    expired = m.token("ES256", key=key, iat=now - 7200, exp=now - 3600)
    # Not valid for an hour: refused now, but time lifts that refusal.
    later = m.token("ES256", key=key, nbf=now + 3600, exp=now + 7200)
    mark = h.log_offset()
    for _ in range(4):
        assert send(conn, expired)[0] == 401
        assert send(conn, later)[0] == 401
    assert send(conn, m.token("ES256", key=key))[0] == 200
    log = h.log_since(mark)
    expired_lines = refusal_lines(log, "Token expired")
    later_lines = refusal_lines(log, "Token not yet valid")
    assert len(expired_lines) == 4 and len(later_lines) == 4, log[-3000:]
    assert sum(REMEMBERED in line for line in expired_lines) == 3, "\n".join(expired_lines)
    assert not any(REMEMBERED in line for line in later_lines), "\n".join(later_lines)
