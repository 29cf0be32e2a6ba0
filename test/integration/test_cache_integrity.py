# SPDX-License-Identifier: Apache-2.0
"""Verdict caches never carry a verdict from one policy to another (issue 10,
item 3).

Both cache levels -- the shared one (all children) and each child's own --
key on a content-based fingerprint of the location's policy, which names
each trusted issuer by where its keys come from, not by its issuer string
alone, and which does not depend on where in memory the configuration lives
(``.htaccess`` rebuilds it on every request).

* ``/dev`` trusts ``https://idp.example jwks_file=dev.json`` and ``/prod``
  the same issuer string with ``jwks_file=prod.json`` (same ``kid``, other
  key): a dev-signed token accepted at ``/dev`` is refused at ``/prod`` --
  before and after ``/dev`` accepted it, from every child, under load.
* Two ``<Directory>`` trees whose ``.htaccess`` differ in
  ``MCPAuthRequiredClaims`` (which ``.htaccess`` may narrow): a token accepted in
  one is refused in the other, on one keep-alive connection (same child,
  same thread, request pools reused at the same addresses) and under load.

httpd runs 3 children x 8 threads (conftest) at ``LogLevel mcp_auth:trace1``
so the tests can show the caches were in play (cache hits, several pids).
"""

import http.client
import json
import os
import re
import secrets
import threading
import time
from collections import Counter

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from harness.httpd import mcp_location
from conftest import AUDIENCE, SigningKey, make_jws

ISS = "https://idp.example"
TRACE = "LogLevel warn core:notice mcp_auth:trace1"
CACHE_HIT = "verified-token cache hit"
PID_RE = re.compile(r"\[pid (\d+)")


def es256(kid):
    return SigningKey("ES256", kid, ec.generate_private_key(ec.SECP256R1()))


def token(key, typ="JWT", **claims):
    now = int(time.time())
    c = {"iss": ISS, "aud": AUDIENCE, "sub": "alice", "iat": now, "exp": now + 600,
         "jti": secrets.token_hex(8)}
    c.update(claims)
    return make_jws({"alg": "ES256", "typ": typ, "kid": key.kid}, c, key)


def get(port, path, tok, conn=None):
    """(status, body); a new connection unless conn is given (keep-alive)."""
    own = conn is None
    if own:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=20)
    try:
        conn.request("GET", path, headers={"Authorization": f"Bearer {tok}"})
        r = conn.getresponse()
        return r.status, r.read()
    finally:
        if own:
            conn.close()


def hammer(port, jobs, threads=12):
    """Runs (path, token) jobs on fresh connections; returns [(path, status)]."""
    out, errors, lock, it = [], [], threading.Lock(), iter(list(jobs))

    def worker():
        while True:
            with lock:
                job = next(it, None)
            if job is None:
                return
            try:
                status, _ = get(port, *job)
            except OSError as e:  # pragma: no cover - reported below
                with lock:
                    errors.append(repr(e))
                continue
            with lock:
                out.append((job[0], status))

    ts = [threading.Thread(target=worker) for _ in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(120)
    assert not errors, errors[:5]
    return out


def hit_pids(text):
    return {m.group(1) for line in text.splitlines() if CACHE_HIT in line
            for m in [PID_RE.search(line)] if m}


# ---------------------------------------------------------------------------
# fixtures
# ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def keydir(tmp_root):
    d = tmp_root / "cache-integrity"
    d.mkdir(parents=True, exist_ok=True)
    os.chmod(d, 0o755)
    # The same kid on both sides: only the key material tells them apart.
    dev, prod = es256("k1"), es256("k1")
    for name, key in (("dev.json", dev), ("prod.json", prod)):
        (d / name).write_text(json.dumps({"keys": [key.jwk]}))
        os.chmod(d / name, 0o644)
    return d, dev, prod


def protected(jwks_file, extra=()):
    return mcp_location(ISS, jwks_file=jwks_file, lines=extra)


@pytest.fixture(scope="module")
def devprod(httpd_factory, mcp_auth_so, keydir):
    d, _, _ = keydir
    h = httpd_factory.start({"/dev": protected(d / "dev.json"), "/prod": protected(d / "prod.json")},
                            server_conf=TRACE, module_so=mcp_auth_so, name="cache-devprod")
    yield h
    h.stop()


# Pairs of equal length, names and lines: with the same sequence of
# allocations, the per-request configuration of one directory lands at the
# addresses the other one's had (what an address-keyed cache confuses).
HTACCESS = {
    "ra": "MCPAuthRequiredClaims sub jti",
    "rb": "MCPAuthRequiredClaims sub eml",
    "na": "MCPAuthRequiredClaims iat",
    "nb": "MCPAuthRequiredClaims nbf",
}


@pytest.fixture(scope="module")
def htaccess(httpd_factory, mcp_auth_so, keydir):
    d, _, _ = keydir
    docs = d / "docs"
    for name, line in HTACCESS.items():
        (docs / name).mkdir(parents=True, exist_ok=True)
        (docs / name / "index.txt").write_text(f"dir {name}\n")
        (docs / name / ".htaccess").write_text(line + "\n")
    for root, dirs, files in os.walk(docs):
        os.chmod(root, 0o755)
        for f in files:
            os.chmod(os.path.join(root, f), 0o644)
    conf = "\n".join([
        TRACE,
        f'Alias /h "{docs}"',
        f'<Directory "{docs}">',
        "  AllowOverride AuthConfig",
        protected(d / "dev.json"),
        "</Directory>",
    ])
    h = httpd_factory.start([], server_conf=conf, module_so=mcp_auth_so, name="cache-htaccess")
    yield h
    h.stop()


# ---------------------------------------------------------------------------
# same issuer string, other keys
# ---------------------------------------------------------------------------

@pytest.mark.slow
def test_dev_token_accepted_at_dev_is_refused_at_prod_in_every_child(devprod, keydir):
    _, dev, _ = keydir
    tok = token(dev)
    since = devprod.log_offset()
    # before /dev ever saw it
    assert get(devprod.port, "/prod", tok)[0] == 401
    status, body = get(devprod.port, "/dev", tok)
    assert status == 200 and b"REMOTE_USER=alice" in body
    # after: many requests on fresh connections, spread over the children,
    # /dev and /prod interleaved
    results = hammer(devprod.port, [("/dev", tok), ("/prod", tok)] * 150)
    by_path = {p: Counter(s for q, s in results if q == p) for p in ("/dev", "/prod")}
    assert by_path["/prod"] == {401: 150}, by_path
    assert by_path["/dev"] == {200: 150}, by_path
    assert get(devprod.port, "/prod", tok)[0] == 401
    log = devprod.log_since(since)
    # the caches were in play, in more than one child
    assert len(hit_pids(log)) >= 2, f"cache hits from pids {hit_pids(log)}: the test proves nothing"


@pytest.mark.slow
def test_prod_token_passes_at_prod_only(devprod, keydir):
    _, _, prod = keydir
    tok = token(prod)
    assert get(devprod.port, "/prod", tok)[0] == 200
    results = hammer(devprod.port, [("/prod", tok), ("/dev", tok)] * 60)
    assert Counter(s for p, s in results if p == "/prod") == {200: 60}
    assert Counter(s for p, s in results if p == "/dev") == {401: 60}


# ---------------------------------------------------------------------------
# .htaccess: the configuration is rebuilt per request
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("allowed,refused,tok_kw,good_kw", [
    ("ra", "rb", {}, {"eml": "alice@example.com"}),
    ("na", "nb", {}, {"nbf": int(time.time()) - 5}),
])
@pytest.mark.slow
def test_htaccess_verdict_does_not_leak_between_directories(htaccess, keydir, allowed, refused, tok_kw, good_kw):
    _, dev, _ = keydir
    tok = token(dev, **tok_kw)
    a, b = f"/h/{allowed}/index.txt", f"/h/{refused}/index.txt"
    since = htaccess.log_offset()
    # one keep-alive connection: the same child and thread, request pools
    # reused at the same addresses -- where an address-keyed cache leaks
    conn = http.client.HTTPConnection("127.0.0.1", htaccess.port, timeout=20)
    try:
        seen = []
        for _ in range(60):
            seen.append((a, get(htaccess.port, a, tok, conn)[0]))
            seen.append((b, get(htaccess.port, b, tok, conn)[0]))
    finally:
        conn.close()
    assert Counter(s for p, s in seen if p == a) == {200: 60}, seen[:10]
    assert Counter(s for p, s in seen if p == b) == {401: 60}, seen[:10]
    # and across children
    results = hammer(htaccess.port, [(a, tok), (b, tok)] * 100)
    assert Counter(s for p, s in results if p == a) == {200: 100}
    assert Counter(s for p, s in results if p == b) == {401: 100}
    assert hit_pids(htaccess.log_since(since)), "no cache hit at all: the test proves nothing"
    # the legitimate neighbour: a token that meets the other rule passes there
    kw = dict(good_kw)
    typ = kw.pop("typ", "JWT")
    good = token(dev, typ=typ, **kw)
    for _ in range(3):
        assert get(htaccess.port, b, good)[0] == 200
        assert get(htaccess.port, a, good)[0] == (401 if typ != "JWT" else 200)
