# SPDX-License-Identifier: Apache-2.0
"""Assertions shared by the suites, each in its strictest form.

The Bearer challenge grammar is the one the module emits (RFC 6750 section 3
with the parameters the module uses): ``Bearer`` then lower-case
``name="value"`` pairs separated by exactly ", ", no quote or backslash inside
a value, each name at most once.  A suite that parsed challenges more loosely
(any case, any spacing, no anchoring) now gets this one, so a malformed
challenge fails every suite, not only the strict ones.
"""

import re


_PARAM = r'[a-z_]+="[^"\\]*"'
CHALLENGE_RE = re.compile(rf"^Bearer ({_PARAM}(, {_PARAM})*)$")
_PAIR_RE = re.compile(r'([a-z_]+)="([^"\\]*)"')


def bearer(token) -> list:
    """The Authorization header for ``token``, as a header list."""
    return [("Authorization", f"Bearer {token}")]


def only_challenge(resp) -> str:
    """The one WWW-Authenticate value of ``resp`` (exactly one, one Bearer challenge)."""
    vals = resp.header_all("WWW-Authenticate")
    assert len(vals) == 1, f"expected exactly one WWW-Authenticate, got {vals!r} ({resp!r})"
    return vals[0]


def challenge_pairs(value) -> list:
    """[(name, value)] of a challenge in wire order; ``value`` is the header
    text or a response (which must carry exactly one challenge)."""
    if not isinstance(value, (str, type(None))):
        value = only_challenge(value)
    m = CHALLENGE_RE.match(value or "")
    assert m, f"not a well-formed Bearer challenge: {value!r}"
    pairs = _PAIR_RE.findall(m.group(1))
    names = [k for k, _ in pairs]
    assert len(names) == len(set(names)), f"a challenge parameter appears twice: {value!r}"
    return pairs


def challenge_params(value) -> dict:
    """{name: value} of a challenge (header text or a response); see challenge_pairs."""
    return dict(challenge_pairs(value))


def assert_ok(resp, user="alice", what="") -> dict:
    """200 from the CGI behind the module: no challenge, the CGI ran, it saw
    ``user`` as REMOTE_USER and the module's auth type.  Returns the CGI's
    environment lines."""
    assert resp.status == 200, f"{what}: expected 200, got {resp!r}"
    assert resp.header_all("WWW-Authenticate") == [], f"{what}: {resp!r}"
    env = resp.cgi_env()
    assert env.get("SCRIPT_OK") == "1", f"{what}: {resp!r}"
    assert env.get("REMOTE_USER") == user, f"{what}: {env}"
    assert env.get("AUTH_TYPE") == "mcp-jwt", f"{what}: {env}"
    return env


def assert_invalid_token(resp, what=""):
    """401 with one well-formed invalid_token challenge (with a description),
    a JSON body saying the same, and the CGI not run."""
    assert resp.status < 500, f"{what}: server error {resp!r}"
    assert resp.status == 401, f"{what}: expected 401 invalid_token, got {resp!r}"
    params = challenge_params(resp)
    assert params.get("error") == "invalid_token", f"{what}: {params}"
    assert params.get("error_description"), f"{what}: {params}"
    ctype = resp.header("Content-Type") or ""
    assert ctype.split(";")[0].strip().lower() == "application/json", f"{what}: {resp!r}"
    body = resp.json()
    assert body.get("error") == "invalid_token", f"{what}: {body!r}"
    assert isinstance(body.get("error_description"), str) and body["error_description"], f"{what}: {body!r}"
    assert "SCRIPT_OK" not in resp.text, f"{what}: {resp!r}"
