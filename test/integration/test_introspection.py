# SPDX-License-Identifier: Apache-2.0
"""Opaque tokens through RFC 7662 introspection (MCPAuthIntrospection).

Two IdPs:

* test/mcp/idp.mjs (oidc-provider 9) with opaque-format resources equal to
  the httpd location URLs, its introspection endpoint and its revocation
  endpoint: the real thing, for a valid token, revocation, cache=0 / cache=5.
* ``Introspector``: a small threaded HTTP server written here.  It records
  every call (method, path, query, headers, raw body, parsed form) and
  answers per token from a script (JSON or raw body, status, delay), so the
  tests can count IdP calls exactly and feed the module every kind of answer.

httpd runs with ``MCPAuthHTTPTimeout 2`` and ``LogLevel mcp_auth:debug``;
every location is served by a CGI that prints REMOTE_USER and MCP_AUTH_*.
Every token any test sends is remembered: the last test checks that the
error logs contain none of them and none of the client secrets.

Node dependencies come from test/package-lock.json; when test/node_modules
is missing they are installed with ``npm ci`` (a failure fails the tests).
"""

import base64
import http.client
import json
import random
import re
import secrets
import threading
import time
import urllib.parse
import urllib.request
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pytest

from harness.httpd import ENV_CGI, install_cgi
from harness.env import free_port
from harness.servers import Answer, Introspector
from harness.node import NodeProc

HTTP_TIMEOUT = 2  # MCPAuthHTTPTimeout of the counting httpd

ISS_A = "https://issuer-a.introspection.test"  # the issuer of most locations
ISS_B = "https://issuer-b.introspection.test"  # has introspection_endpoint=; not configured on /i/basic

# Client credentials the module uses towards the counting IdP. Special
# characters on purpose: RFC 6749 2.3.1 form-encodes them before base64.
BASIC_ID, BASIC_SECRET = "rs:1", "p@ss w/rd+"
POST_ID, POST_SECRET = "rs-post", "post-S3cret!&=x"
DISC_B_ID, DISC_B_SECRET = "rs-b", "rs-b-secret-7f3a"
DISC_D_ID, DISC_D_SECRET = "rs-d", "rs-d-secret-91c2"
DOWN_ID, DOWN_SECRET = "rs-down", "down-secret-5e8d"
REAL_RS_ID, REAL_RS_SECRET = "rs", "rs-secret-0a4f9d"
SECRETS = [BASIC_SECRET, POST_SECRET, DISC_B_SECRET, DISC_D_SECRET, DOWN_SECRET, REAL_RS_SECRET]

# Every token sent to httpd by this file (checked against the error logs at the end).
SENT_TOKENS = set()



def new_token(label="t") -> str:
    """An opaque token (no dots, RFC 6750 b64token characters)."""
    t = f"opq{label}{secrets.token_urlsafe(24)}"
    SENT_TOKENS.add(t)
    return t


def form_encode(s: str) -> str:
    """RFC 3986 unreserved kept, everything else %XX (space as %20)."""
    return urllib.parse.quote(s, safe="-._~")


def form_encode_plus(s: str) -> str:
    """The same with space as '+' (RFC 6749 Appendix B / HTML forms)."""
    return urllib.parse.quote_plus(s, safe="-._~")


# ---------------------------------------------------------------------------
# HTTP client side
# ---------------------------------------------------------------------------

@dataclass
class Resp:
    status: int
    headers: dict  # lower-case name -> value (last one wins)
    www: list      # every WWW-Authenticate value
    body: bytes
    elapsed: float = 0.0

    @property
    def text(self):
        return self.body.decode("utf-8", "replace")

    def env(self) -> dict:
        out = {}
        for line in self.text.splitlines():
            if "=" in line:
                k, v = line.split("=", 1)
                out[k] = v
        return out

    def json(self):
        return json.loads(self.body)

    def __repr__(self):
        return f"<Resp {self.status} {self.elapsed:.2f}s headers={self.headers} body={self.body[:300]!r}>"


def get(port, path, token=None, timeout=30, headers=()) -> Resp:
    if token is not None:
        SENT_TOKENS.add(token)
    t0 = time.monotonic()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        hdrs = dict(headers)
        if token is not None:
            hdrs["Authorization"] = f"Bearer {token}"
        conn.request("GET", path, headers=hdrs)
        r = conn.getresponse()
        body = r.read()
        raw = r.getheaders()
        return Resp(r.status, {k.lower(): v for k, v in raw},
                    [v for k, v in raw if k.lower() == "www-authenticate"], body, time.monotonic() - t0)
    finally:
        conn.close()


def assert_ok(r: Resp, user=None):
    assert r.status == 200, r
    env = r.env()
    assert env.get("SCRIPT_OK") == "1", r
    assert env.get("AUTH_TYPE") == "mcp-jwt", r
    if user is not None:
        assert env.get("REMOTE_USER") == user, r
    return env


def assert_401(r: Resp, description: str):
    assert r.status == 401, r
    assert len(r.www) == 1, r
    assert 'error="invalid_token"' in r.www[0], r
    assert f'error_description="{description}"' in r.www[0], r
    assert r.json().get("error_description") == description, r


def assert_503(r: Resp):
    assert r.status == 503, r
    ra = r.headers.get("retry-after")
    assert ra is not None and ra.isdigit() and int(ra) > 0, f"no usable Retry-After: {r}"
    assert not r.www, f"503 must carry no WWW-Authenticate challenge: {r}"


def concurrently(port, jobs, clients, timeout=60):
    """jobs: list of (path, token).  ``clients`` threads, one new connection
    per request (so requests spread over httpd's children).  Returns the
    statuses in job order (None for an exception) and the exceptions."""
    status = [None] * len(jobs)
    errors = []
    lock = threading.Lock()
    it = iter(range(len(jobs)))

    def worker():
        while True:
            with lock:
                i = next(it, None)
            if i is None:
                return
            path, tok = jobs[i]
            try:
                status[i] = get(port, path, tok, timeout=timeout).status
            except Exception as e:  # noqa: BLE001 - reported by the caller
                with lock:
                    errors.append((i, repr(e)))

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(clients)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + timeout
    for t in threads:
        t.join(max(0.1, deadline - time.monotonic()))
    assert not any(t.is_alive() for t in threads), f"requests still running after {timeout} s"
    return status, errors


def simultaneously(port, jobs, timeout=30):
    """One thread per job, all released at once by a barrier; each returns
    (status, elapsed) or (None, exception)."""
    results = [None] * len(jobs)
    barrier = threading.Barrier(len(jobs))

    def one(i, path, tok):
        try:
            barrier.wait(timeout=10)
            r = get(port, path, tok, timeout=timeout)
            results[i] = (r.status, r.elapsed)
        except Exception as e:  # noqa: BLE001
            results[i] = (None, repr(e))

    threads = [threading.Thread(target=one, args=(i, p, t), daemon=True) for i, (p, t) in enumerate(jobs)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + timeout + 10
    for t in threads:
        t.join(max(0.1, deadline - time.monotonic()))
    assert not any(t.is_alive() for t in threads), f"requests still running after {timeout + 10} s"
    return results


# ---------------------------------------------------------------------------
# The counting introspection endpoint
# ---------------------------------------------------------------------------

def wait_count(idp, token, n, timeout=3.0):
    """Calls are recorded before the answer is sent, but give stragglers a moment."""
    deadline = time.monotonic() + timeout
    while idp.count(token) < n and time.monotonic() < deadline:
        time.sleep(0.02)
    return idp.count(token)


# ---------------------------------------------------------------------------
# httpd with the counting IdP
# ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def env_cgi(tmp_root):
    return install_cgi(tmp_root / "introspection-cgi", ENV_CGI)


@pytest.fixture(scope="module")
def idp():
    srv = Introspector()
    c = srv.base_url
    srv.docs["/.well-known/openid-configuration"] = Answer({
        "issuer": c, "jwks_uri": f"{c}/jwks", "token_endpoint": f"{c}/token",
        "introspection_endpoint": f"{c}/introspect-d"})
    srv.docs["/jwks"] = Answer({"keys": []})
    try:
        yield srv
    finally:
        srv.stop()


@dataclass
class Rig:
    httpd: object
    idp: Introspector
    down_port: int
    pid_log: Path
    # tokens asked once when the rig started (for the 30 s negative-TTL check)
    early_inactive: str = ""
    early_active: str = ""
    early_done: float = 0.0

    @property
    def port(self):
        return self.httpd.port

    def get(self, path, token=None, **kw):
        return get(self.port, path, token, **kw)


def _loc(*lines, require="Require valid-user"):
    return "\n".join(["AuthType mcp-jwt", 'AuthName "mcp"', *lines, require])


@pytest.fixture(scope="module")
def rig(httpd_factory, mcp_auth_so, idp, env_cgi, tmp_root):
    c = idp.base_url
    down_port = free_port()
    iss_a = f"MCPAuthIssuer {ISS_A} jwks_uri={c}/jwks"
    basic = f'"client_id={BASIC_ID}" "client_secret={BASIC_SECRET}"'
    locations = {
        "/i/basic": _loc(iss_a, f"MCPAuthIntrospection {c}/introspect {basic}"),
        "/i/post": _loc(iss_a, f'MCPAuthIntrospection {c}/introspect auth=client_secret_post '
                               f'client_id={POST_ID} "client_secret={POST_SECRET}"'),
        "/i/none": _loc(iss_a, f"MCPAuthIntrospection {c}/introspect auth=none"),
        "/i/none-id": _loc(iss_a, f"MCPAuthIntrospection {c}/introspect auth=none client_id=public-rs"),
        "/i/get": _loc(iss_a, f'MCPAuthIntrospection "{c}/tokeninfo?alt=json" method=GET '
                              f"param=access_token auth=none"),
        "/i/c0": _loc(iss_a, f"MCPAuthIntrospection {c}/introspect {basic} cache=0"),
        "/i/c2": _loc(iss_a, f"MCPAuthIntrospection {c}/introspect {basic} cache=2"),
        "/i/scope": _loc(iss_a, f"MCPAuthIntrospection {c}/introspect {basic}",
                         require="Require mcp-scope notes:read"),
        "/i/disc-opt": _loc(f"MCPAuthIssuer {ISS_B} jwks_uri={c}/jwks introspection_endpoint={c}/introspect-b",
                            f"MCPAuthIntrospection discover client_id={DISC_B_ID} client_secret={DISC_B_SECRET}"),
        "/i/disc-doc": _loc(f"MCPAuthIssuer {c}",
                            f"MCPAuthIntrospection discover client_id={DISC_D_ID} client_secret={DISC_D_SECRET}"),
        "/i/down": _loc(iss_a, f"MCPAuthIntrospection http://127.0.0.1:{down_port}/introspect "
                               f"client_id={DOWN_ID} client_secret={DOWN_SECRET}"),
        "/i/get-down": _loc(iss_a, f'MCPAuthIntrospection "http://127.0.0.1:{down_port}/tokeninfo?alt=json" '
                                   f"method=GET param=access_token auth=none"),
        "/i/nointro": _loc(iss_a),
    }
    pid_log = tmp_root / f"introspection-pids-{secrets.token_hex(4)}.log"
    server_conf = "\n".join([
        f"MCPAuthHTTPTimeout {HTTP_TIMEOUT}",
        "LogLevel warn core:notice mcp_auth:debug",
        "MCPAuthRefusalLogInterval 0",  # each test reads its own refusal's log line
        'LogFormat "%P %U %>s" mcp_introspection_pid',
        f'CustomLog "{pid_log}" mcp_introspection_pid',
        # before the harness's own ScriptAliasMatch lines: /i/* gets the env CGI
        f'ScriptAliasMatch "^/i(/.*)?$" "{env_cgi}"',
    ])
    h = httpd_factory.start(locations, server_conf=server_conf, module_so=mcp_auth_so, name="introspection")
    rig = Rig(h, idp, down_port, pid_log)
    # For test_negative_answers_expire_after_30_seconds (the last tests): one
    # inactive and one active token, asked now.
    rig.early_inactive, rig.early_active = new_token("earlyneg"), new_token("earlypos")
    idp.answer(rig.early_inactive, {"active": False})
    idp.answer(rig.early_active, {"active": True, "sub": "early"})
    assert_401(rig.get("/i/basic", rig.early_inactive), "Token inactive")
    assert_ok(rig.get("/i/basic", rig.early_active), "early")
    rig.early_done = time.monotonic()
    try:
        yield rig
    finally:
        h.stop()


def active(sub="alice", **claims):
    return {"active": True, "sub": sub, **claims}


# ---------------------------------------------------------------------------
# Node.js and the real IdP (oidc-provider)
# ---------------------------------------------------------------------------

class NodeIdP(NodeProc):
    """test/mcp/idp.mjs as a child process; ``ready`` is its JSON ready line."""

    def __init__(self, node, args, log: Path, timeout=30):
        super().__init__(node, "idp.mjs", args, log, timeout=timeout)

    def introspections(self):
        return self.log_text().count("idp: POST /token/introspection -> ")

    def _post(self, endpoint, client, secret, fields):
        data = urllib.parse.urlencode(fields).encode()
        auth = base64.b64encode(f"{client}:{secret}".encode()).decode()
        req = urllib.request.Request(self.ready[endpoint], data=data, headers={
            "Authorization": f"Basic {auth}", "Content-Type": "application/x-www-form-urlencoded"})
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, r.read()

    def token(self, resource, client="owner", secret="owner-secret", scope="mcp:tools notes:read"):
        status, body = self._post("token_endpoint", client, secret, {
            "grant_type": "client_credentials", "scope": scope, "resource": resource})
        tok = json.loads(body)["access_token"]
        assert tok.count(".") == 0, f"expected an opaque token, got {tok!r}"
        SENT_TOKENS.add(tok)
        return tok

    def revoke(self, tok, client="owner", secret="owner-secret"):
        status, _ = self._post("revocation_endpoint", client, secret,
                               {"token": tok, "token_type_hint": "access_token"})
        assert status == 200


@dataclass
class Real:
    httpd: object
    idp: NodeIdP
    issuer: str

    def get(self, path, token=None):
        return get(self.httpd.port, path, token)

    def resource(self, path):
        return f"{self.httpd.base_url}{path}"

    def wait_introspections(self, n, timeout=3.0):
        deadline = time.monotonic() + timeout
        while self.idp.introspections() < n and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.2)  # a late extra call would show up here
        return self.idp.introspections()


@pytest.fixture(scope="module")
def real(node, httpd_factory, mcp_auth_so, env_cgi, tmp_root):
    tmp = tmp_root / "introspection-real"
    tmp.mkdir(parents=True, exist_ok=True)
    last = None
    for attempt in range(3):
        idp_port = free_port()
        issuer = f"http://127.0.0.1:{idp_port}"
        intro = f"{issuer}/token/introspection"

        def loc(extra):
            return _loc(f"MCPAuthIssuer {issuer}",
                        f"MCPAuthIntrospection {intro} client_id={REAL_RS_ID} "
                        f"client_secret={REAL_RS_SECRET} {extra}",
                        require="Require mcp-scope mcp:tools")

        server_conf = "\n".join([
            "LogLevel warn core:notice mcp_auth:debug",
            f'ScriptAliasMatch "^/r(/.*)?$" "{env_cgi}"',
        ])
        h = httpd_factory.start({"/r/c0": loc("cache=0"), "/r/c5": loc("cache=5"), "/r/c1": loc("cache=1")},
                                server_conf=server_conf, module_so=mcp_auth_so, name="introspection-real")
        base = h.base_url
        cfg = tmp / f"idp-{attempt}.json"
        cfg.write_text(json.dumps({
            "clients": [
                {"client_id": "owner", "client_secret": "owner-secret", "scope": "mcp:tools notes:read"},
                {"client_id": REAL_RS_ID, "client_secret": REAL_RS_SECRET, "scope": ""},
            ],
            "resources": {
                f"{base}/r/c0": {"scopes": "mcp:tools notes:read", "format": "opaque"},
                f"{base}/r/c5": {"scopes": "mcp:tools notes:read", "format": "opaque"},
                f"{base}/r/c1": {"scopes": "mcp:tools notes:read", "format": "opaque"},
            },
        }))
        try:
            node_idp = NodeIdP(node, ["--port", str(idp_port), "--config", str(cfg)], tmp / f"idp-{attempt}.log")
        except RuntimeError as e:  # the port was taken meanwhile: new ports, new httpd
            last = e
            h.stop()
            continue
        try:
            assert node_idp.ready["issuer"] == issuer
            yield Real(h, node_idp, issuer)
        finally:
            node_idp.stop()
            h.stop()
        return
    pytest.fail(f"could not start test/mcp/idp.mjs: {last}", pytrace=False)


# ---------------------------------------------------------------------------
# 1. the real IdP: valid token, revocation with cache=0 and cache=5
# ---------------------------------------------------------------------------

def test_real_idp_valid_opaque_token_then_revoked_with_cache0(real):
    tok = real.idp.token(real.resource("/r/c0"))
    n0 = real.idp.introspections()
    env = assert_ok(real.get("/r/c0", tok), user="owner")  # no sub: REMOTE_USER falls back to client_id
    assert env["MCP_AUTH_SCOPE"] == "mcp:tools notes:read"
    assert env["MCP_AUTH_ISS"] == real.issuer
    assert_ok(real.get("/r/c0", tok), user="owner")
    assert_ok(real.get("/r/c0", tok), user="owner")
    # cache=0: each request asked the IdP
    assert real.wait_introspections(n0 + 3) == n0 + 3, real.idp.log_text()[-2000:]

    real.idp.revoke(tok)
    assert_401(real.get("/r/c0", tok), "Token inactive")
    assert_401(real.get("/r/c0", tok), "Token inactive")


def test_real_idp_revocation_with_cache5_takes_effect_within_the_cache_time(real):
    tok = real.idp.token(real.resource("/r/c5"))
    n0 = real.idp.introspections()
    t_first = time.monotonic()
    env = assert_ok(real.get("/r/c5", tok), user="owner")
    assert env["MCP_AUTH_SCOPE"] == "mcp:tools notes:read"
    assert real.wait_introspections(n0 + 1) == n0 + 1

    real.idp.revoke(tok)
    # still cached right after the revocation, without asking the IdP
    assert_ok(real.get("/r/c5", tok), user="owner")
    assert real.wait_introspections(n0 + 1, timeout=0.3) == n0 + 1

    seen = []
    deadline = t_first + 5 + 1
    r = None
    while time.monotonic() < deadline:
        r = real.get("/r/c5", tok)
        seen.append((round(time.monotonic() - t_first, 2), r.status))
        if r.status != 200:
            break
        time.sleep(0.2)
    assert r is not None and r.status == 401, f"still not refused 6 s after caching: {seen}"
    assert_401(r, "Token inactive")
    # and never accepted again
    end = time.monotonic() + 1.5
    while time.monotonic() < end:
        assert_401(real.get("/r/c5", tok), "Token inactive")
        time.sleep(0.1)


def test_real_idp_revoked_token_never_comes_back_50_times_under_load(real):
    """Issue 10, item 11: once any process refused a token as inactive, no
    process accepts it again -- a child's own copy of the positive answer
    never outlives the shared entry it came from, and dies everywhere when
    any child learns the token is inactive (the revocation epoch).

    50 revocations (5 in flight at a time, cache=1 so each takes about a
    second) while load threads hammer every live token on fresh connections,
    so every child holds copies of the positive answer when the shared
    entry expires. For each token, no request that started after the first
    refusal of that token was answered (any response) may be a 200."""
    n_scenarios, workers, loaders = 50, 5, 6
    lock = threading.Lock()
    hot, records, failures = [], [], []
    stop = threading.Event()

    def timed_get(tok):
        t0 = time.monotonic()
        r = real.get("/r/c1", tok)
        with lock:
            records.append((tok, t0, time.monotonic(), r.status))
        return r

    def loader():
        rnd = random.Random()
        while not stop.is_set():
            with lock:
                toks = list(hot)
            if toks:
                try:
                    timed_get(rnd.choice(toks))
                except OSError as e:
                    with lock:
                        failures.append(f"load request failed: {e!r}")
            time.sleep(0.005)

    def scenario():
        tok = real.idp.token(real.resource("/r/c1"))
        assert_ok(timed_get(tok), user="owner")
        with lock:
            hot.append(tok)
        time.sleep(0.15)  # copies of the positive answer spread over the children
        real.idp.revoke(tok)
        deadline = time.monotonic() + 1 + 2.5  # cache=1, plus slack for a loaded machine
        r = timed_get(tok)
        while r.status == 200 and time.monotonic() < deadline:
            time.sleep(0.03)
            r = timed_get(tok)
        assert_401(r, "Token inactive")
        time.sleep(0.6)  # keep hammering well past the per-process TTL (250 ms)
        with lock:
            hot.remove(tok)

    def worker(n):
        for _ in range(n):
            try:
                scenario()
            except Exception as e:  # noqa: BLE001 - reported below
                with lock:
                    failures.append(repr(e))

    load = [threading.Thread(target=loader, daemon=True) for _ in range(loaders)]
    runs = [threading.Thread(target=worker, args=(n_scenarios // workers,), daemon=True) for _ in range(workers)]
    t_start = time.monotonic()
    for t in load + runs:
        t.start()
    for t in runs:
        t.join(120)
    stop.set()
    for t in load:
        t.join(30)
    took = time.monotonic() - t_start
    assert not failures, failures[:5]
    by_tok = {}
    for tok, t0, t1, status in records:
        by_tok.setdefault(tok, []).append((t0, t1, status))
    assert len(by_tok) == n_scenarios
    back = []
    for tok, rs in by_tok.items():
        refused_at = min(t1 for t0, t1, status in rs if status == 401)
        back += [(round(t0 - refused_at, 3), status) for t0, t1, status in rs if t0 > refused_at and status != 401]
    statuses = Counter(status for _, _, _, status in records)
    assert not back, f"revoked tokens answered again after their first refusal: {back[:10]} ({statuses}, {took:.1f} s)"
    assert set(statuses) == {200, 401}, statuses
    # the load really overlapped the revocations
    assert statuses[401] >= 3 * n_scenarios, statuses


# ---------------------------------------------------------------------------
# 2. one IdP call per token for all children
# ---------------------------------------------------------------------------

@pytest.mark.slow
def test_2000_requests_same_token_one_idp_call(rig):
    tok = new_token("load")
    rig.idp.answer(tok, active("loaduser", scope="mcp:tools"))
    before = rig.pid_log.read_text().count("\n") if rig.pid_log.exists() else 0
    t0 = time.monotonic()
    status, errors = concurrently(rig.port, [("/i/basic", tok)] * 2000, clients=12, timeout=100)
    took = time.monotonic() - t0
    assert not errors, errors[:5]
    assert Counter(status) == {200: 2000}, Counter(status)
    assert wait_count(rig.idp, tok, 1, timeout=0.3) == 1, f"{rig.idp.count(tok)} IdP calls for one token"
    # the requests were served by more than one child (pids from the access log)
    deadline = time.monotonic() + 3
    while True:
        lines = [ln.split() for ln in rig.pid_log.read_text().splitlines()[before:]]
        mine = [ln for ln in lines if len(ln) == 3 and ln[1] == "/i/basic" and ln[2] == "200"]
        if len(mine) >= 2000 or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    pids = Counter(ln[0] for ln in mine)
    assert len(pids) >= 2, f"all requests went to one child ({pids}); the test proves nothing ({took:.1f} s)"


@pytest.mark.slow
def test_200_concurrent_first_requests_single_flight(rig):
    tok = new_token("flight")
    # slow enough that every worker is waiting while the first call runs
    rig.idp.answer(tok, active("flight"), delay=0.8)
    results = simultaneously(rig.port, [("/i/basic", tok)] * 200, timeout=40)
    assert Counter(s for s, _ in results) == {200: 200}, results[:10]
    assert wait_count(rig.idp, tok, 1, timeout=0.3) == 1, f"{rig.idp.count(tok)} IdP calls (single-flight)"


@pytest.mark.slow
def test_two_tokens_two_calls_and_key_includes_client(rig):
    t1, t2 = new_token("two1"), new_token("two2")
    rig.idp.answer(t1, active("one"))
    rig.idp.answer(t2, active("two"))
    for _ in range(5):
        assert_ok(rig.get("/i/basic", t1), "one")
        assert_ok(rig.get("/i/basic", t2), "two")
    assert rig.idp.count(t1) == 1 and rig.idp.count(t2) == 1
    # Same URL, same token, another client_id (client_secret_post location): another key
    assert_ok(rig.get("/i/post", t1), "one")
    assert_ok(rig.get("/i/post", t1), "one")
    assert rig.idp.count(t1) == 2


def test_cache0_asks_every_time(rig):
    tok = new_token("c0")
    rig.idp.answer(tok, active("c0"))
    for _ in range(5):
        assert_ok(rig.get("/i/c0", tok), "c0")
    assert rig.idp.count(tok) == 5
    # and a revocation at the IdP is seen at once
    rig.idp.answer(tok, {"active": False})
    assert_401(rig.get("/i/c0", tok), "Token inactive")
    assert rig.idp.count(tok) == 6


@pytest.mark.slow
def test_cache_seconds_and_exp_bound_the_positive_cache(rig):
    # cache=2: kept 2 s, then asked again (active and inactive alike)
    pos, neg = new_token("c2pos"), new_token("c2neg")
    rig.idp.answer(pos, active("c2"))
    rig.idp.answer(neg, {"active": False})
    # cache=300 but exp in 2 s: kept until exp, not 300 s
    soon = new_token("exp")
    exp = int(time.time()) + 2
    rig.idp.answer(soon, active("soon", exp=exp))
    assert_ok(rig.get("/i/c2", pos), "c2")
    assert_401(rig.get("/i/c2", neg), "Token inactive")
    assert_ok(rig.get("/i/basic", soon), "soon")
    assert_ok(rig.get("/i/c2", pos), "c2")
    assert_401(rig.get("/i/c2", neg), "Token inactive")
    assert_ok(rig.get("/i/basic", soon), "soon")
    assert (rig.idp.count(pos), rig.idp.count(neg), rig.idp.count(soon)) == (1, 1, 1)
    while time.time() < max(exp, 0) + 0.3 or time.monotonic() < rig.idp.calls_for(pos)[0].at + 2.3:
        time.sleep(0.05)
    assert_ok(rig.get("/i/c2", pos), "c2")
    assert_401(rig.get("/i/c2", neg), "Token inactive")
    assert_ok(rig.get("/i/basic", soon), "soon")  # exp passed, but within the 30 s skew
    assert (rig.idp.count(pos), rig.idp.count(neg), rig.idp.count(soon)) == (2, 2, 2)


# ---------------------------------------------------------------------------
# 3. how the module calls the endpoint
# ---------------------------------------------------------------------------

def test_client_secret_basic_header_is_form_encoded(rig):
    tok = new_token("basic")
    rig.idp.answer(tok, active("b"))
    assert_ok(rig.get("/i/basic", tok), "b")
    (call,) = rig.idp.calls_for(tok)
    assert call.method == "POST" and call.path == "/introspect"
    assert call.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"), call.headers
    # RFC 6749 2.3.1: id and secret form-encoded, then "id:secret" base64.
    # A space is %20 or '+' (both decode to a space in a form decoder).
    expected = {"Basic " + base64.b64encode(f"{enc(BASIC_ID)}:{enc(BASIC_SECRET)}".encode()).decode()
                for enc in (form_encode, form_encode_plus)}
    assert call.headers.get("authorization") in expected, (call.headers.get("authorization"), expected)
    assert call.form == {"token": [tok], "token_type_hint": ["access_token"]}, call.form
    assert call.query == {}


def test_client_secret_post_form_fields(rig):
    tok = new_token("post")
    rig.idp.answer(tok, active("p"))
    assert_ok(rig.get("/i/post", tok), "p")
    (call,) = rig.idp.calls_for(tok)
    assert call.method == "POST"
    assert "authorization" not in call.headers, call.headers
    assert call.form == {"token": [tok], "token_type_hint": ["access_token"],
                         "client_id": [POST_ID], "client_secret": [POST_SECRET]}, (call.form, call.body)
    # '&' and '=' inside the secret are escaped, or the form would have extra fields
    assert b"post-S3cret%21%26%3Dx" in call.body or b"post-S3cret!%26%3Dx" in call.body, call.body


def test_auth_none(rig):
    tok = new_token("none")
    rig.idp.answer(tok, active("n"))
    assert_ok(rig.get("/i/none", tok), "n")
    (call,) = rig.idp.calls_for(tok)
    assert call.method == "POST"
    assert "authorization" not in call.headers, call.headers
    assert call.form == {"token": [tok], "token_type_hint": ["access_token"]}, call.form
    # auth=none with client_id=: the id is sent in the form (public client), no secret
    tok2 = new_token("noneid")
    rig.idp.answer(tok2, active("n2"))
    assert_ok(rig.get("/i/none-id", tok2), "n2")
    (call2,) = rig.idp.calls_for(tok2)
    assert "authorization" not in call2.headers, call2.headers
    assert call2.form.get("client_id") == ["public-rs"] and "client_secret" not in call2.form, call2.form


def test_get_mode_token_in_query_no_body(rig):
    tok = new_token("get")
    rig.idp.answer(tok, active("g", scope="a b"))
    env = assert_ok(rig.get("/i/get", tok), "g")
    assert env["MCP_AUTH_SCOPE"] == "a b"
    (call,) = rig.idp.calls_for(tok)
    assert call.method == "GET" and call.path == "/tokeninfo", call
    assert call.query == {"alt": ["json"], "access_token": [tok]}, call.query
    assert call.body == b"" and "token" not in call.query
    assert "authorization" not in call.headers
    # tokeninfo-style endpoints answer 400 for a token they do not know: inactive
    unknown = new_token("get400")
    rig.idp.answer(unknown, {"error": "invalid_token"}, status=400)
    assert_401(rig.get("/i/get", unknown), "Token inactive")


def test_discover_from_issuer_introspection_endpoint_option(rig):
    tok = new_token("discb")
    rig.idp.answer(tok, active("db"))
    assert_ok(rig.get("/i/disc-opt", tok), "db")
    (call,) = rig.idp.calls_for(tok)
    assert call.path == "/introspect-b", call
    assert call.headers.get("authorization") == "Basic " + base64.b64encode(
        f"{DISC_B_ID}:{DISC_B_SECRET}".encode()).decode()


def test_discover_from_issuer_discovery_document(rig):
    docs_before = rig.idp.path_count("/.well-known/openid-configuration")
    toks = [new_token(f"discd{i}") for i in range(3)]
    for i, tok in enumerate(toks):
        rig.idp.answer(tok, active(f"dd{i}", iss=rig.idp.base_url))
        env = assert_ok(rig.get("/i/disc-doc", tok), f"dd{i}")
        assert env["MCP_AUTH_ISS"] == rig.idp.base_url
    for tok in toks:
        (call,) = rig.idp.calls_for(tok)
        assert call.path == "/introspect-d", call
        assert call.headers.get("authorization") == "Basic " + base64.b64encode(
            f"{DISC_D_ID}:{DISC_D_SECRET}".encode()).decode()
    # the discovery document was fetched (and only once for the three tokens)
    assert rig.idp.path_count("/.well-known/openid-configuration") - docs_before == 1


# ---------------------------------------------------------------------------
# 4. the answer's checks
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("answer,description", [
    ({"sub": "x", "scope": "a"}, "Token inactive"),                       # no "active"
    ({"active": False, "sub": "x"}, "Token inactive"),
    ({"active": "true", "sub": "x"}, "Token inactive"),                   # a string is not true
    ({"active": 1, "sub": "x"}, "Token inactive"),
    ({"active": True, "sub": "x", "exp": "PAST"}, "Token expired"),
    ({"active": True, "sub": "x", "iss": ISS_B}, "Invalid issuer"),       # configured elsewhere only
    ({"active": True, "sub": "x", "iss": "https://evil.example"}, "Invalid issuer"),
    ({"active": True, "sub": "x", "aud": "https://other.example/api"}, "Invalid audience"),
    ({"active": True, "sub": "x", "aud": ["https://a.example", "https://b.example"]}, "Invalid audience"),
], ids=["no-active", "active-false", "active-string", "active-1", "exp-past", "iss-other-location",
        "iss-unknown", "aud-mismatch", "aud-array-mismatch"])
def test_answer_refused(rig, answer, description):
    tok = new_token("bad")
    answer = dict(answer)
    if answer.get("exp") == "PAST":
        answer["exp"] = int(time.time()) - 3600
    rig.idp.answer(tok, answer)
    assert_401(rig.get("/i/basic", tok), description)
    assert rig.idp.count(tok) == 1


def test_answer_accepted_and_identity(rig):
    aud = rig.httpd.base_url + "/i/basic"
    now = int(time.time())
    cases = [
        ({"active": True, "sub": "bare"}, "bare"),  # no exp, iss, aud: fine
        ({"active": True, "sub": "full", "iss": ISS_A, "aud": aud, "exp": now + 600, "iat": now,
          "scope": "x y"}, "full"),
        ({"active": True, "sub": "arr", "aud": ["https://other.example", aud]}, "arr"),
        ({"active": True, "sub": "skew", "exp": now - 10}, "skew"),  # within the 30 s skew
        ({"active": True, "client_id": "cid", "username": "uname"}, "cid"),  # fallback sub -> client_id
        ({"active": True, "username": "uname"}, "uname"),                   # -> username
    ]
    for answer, user in cases:
        tok = new_token("good")
        rig.idp.answer(tok, answer)
        env = assert_ok(rig.get("/i/basic", tok), user)
        if user == "full":
            assert env["MCP_AUTH_ISS"] == ISS_A and env["MCP_AUTH_SCOPE"] == "x y" and env["MCP_AUTH_SUB"] == "full"


def test_scope_from_answer_feeds_require_mcp_scope(rig):
    ok, short = new_token("scopeok"), new_token("scopeno")
    rig.idp.answer(ok, active("s1", scope="mcp:tools notes:read"))
    rig.idp.answer(short, active("s2", scope="mcp:tools"))
    env = assert_ok(rig.get("/i/scope", ok), "s1")
    assert env["MCP_AUTH_SCOPE"] == "mcp:tools notes:read"
    r = rig.get("/i/scope", short)
    assert r.status == 403, r
    assert len(r.www) == 1 and 'error="insufficient_scope"' in r.www[0], r
    m = re.search(r'scope="([^"]*)"', r.www[0])
    assert m and "notes:read" in m.group(1).split(), r


def test_token_shapes(rig):
    # not three (or five) parts: introspected
    for tok in ("opqTwo" + secrets.token_hex(8) + ".part2", "a" + secrets.token_hex(8) + ".b.c.d"):
        SENT_TOKENS.add(tok)
        rig.idp.answer(tok, active("dotted"))
        assert_ok(rig.get("/i/basic", tok), "dotted")
        assert rig.idp.count(tok) == 1, tok
    # three parts: a JWT (malformed here), never introspected
    jwtish = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln" + secrets.token_hex(4)
    rig.idp.answer(jwtish, active("nope"))
    r = rig.get("/i/basic", jwtish)
    assert r.status == 401 and rig.idp.count(jwtish) == 0, r
    # five parts: JWE, refused without a call
    jwe = ".".join(["eyJhbGciOiJkaXIifQ", "", "aXY" + secrets.token_hex(4), "Y3Q", "dGFn"])
    rig.idp.answer(jwe, active("nope"))
    assert_401(rig.get("/i/basic", jwe), "Encrypted tokens (JWE) are not accepted")
    assert rig.idp.count(jwe) == 0
    # no MCPAuthIntrospection: an opaque token is malformed
    tok = new_token("nointro")
    rig.idp.answer(tok, active("nope"))
    assert_401(rig.get("/i/nointro", tok), "Malformed token")
    assert rig.idp.count(tok) == 0
    # MCPAuthMaxTokenSize applies before any call
    big = "opqBig" + "A" * 20000
    rig.idp.answer(big, active("nope"))
    assert_401(rig.get("/i/basic", big), "Token too large")
    assert rig.idp.count(big) == 0


# ---------------------------------------------------------------------------
# 5. the IdP failing
# ---------------------------------------------------------------------------

def prompt(r: Resp, limit=1.5) -> Resp:
    """After a failure the next request asks at once (no leftover claim
    making it wait for the single-flight lease)."""
    assert r.elapsed < limit, f"answered after {r.elapsed:.2f} s: {r}"
    return r


def after_backoff(r: Resp):
    """An endpoint that timed out, refused the connection or answered 5xx is
    not asked again before its backoff ends (issue 15): the 503's
    Retry-After (whole seconds, at most 10) says when."""
    ra = int(r.headers.get("retry-after") or 0)
    if ra <= 10:
        time.sleep(ra)


def _failure_line(text, url):
    return [ln for ln in text.splitlines() if "Introspection failed" in ln and url in ln]


@pytest.mark.slow
def test_idp_down_then_recovers(rig):
    h = rig.httpd
    tok, gtok = new_token("down"), new_token("getdown")
    off = h.log_offset()
    t0 = time.monotonic()
    r = rig.get("/i/down", tok)
    assert_503(r)
    assert time.monotonic() - t0 < HTTP_TIMEOUT + 2, r
    down = r
    url = f"http://127.0.0.1:{rig.down_port}/introspect"
    text = h.wait_for_log(url, since=off)
    assert _failure_line(text, url), text[-3000:]
    # GET mode: the logged URL has no query (the token would be in it)
    off = h.log_offset()
    gdown = rig.get("/i/get-down", gtok)
    assert_503(gdown)
    gurl = f"http://127.0.0.1:{rig.down_port}/tokeninfo"
    text = h.wait_for_log(gurl, since=off)
    lines = _failure_line(text, gurl)
    assert lines and not any("access_token" in ln or "alt=json" in ln for ln in lines), text[-3000:]

    # the endpoint comes back: the failure was not cached, the next request
    # after the endpoints' backoff is 200
    back = Introspector(port=rig.down_port)
    try:
        after_backoff(down)
        after_backoff(gdown)
        back.answer(tok, active("back"))
        back.answer(gtok, active("gback"))
        assert_ok(prompt(rig.get("/i/down", tok)), "back")
        assert_ok(prompt(rig.get("/i/get-down", gtok)), "gback")
        assert back.count(tok) == 1 and back.count(gtok) == 1
    finally:
        back.stop()


@pytest.mark.slow
def test_idp_slow_gives_503_within_timeout_and_frees_workers(rig):
    tok = new_token("slow")
    rig.idp.answer(tok, active("slow"), delay=HTTP_TIMEOUT + 2)
    off = rig.httpd.log_offset()
    r = rig.get("/i/basic", tok)
    assert_503(r)
    assert HTTP_TIMEOUT - 0.5 <= r.elapsed <= HTTP_TIMEOUT + 2, r
    url = rig.idp.url("/introspect")
    assert _failure_line(rig.httpd.wait_for_log("Introspection failed", since=off), url)

    # 20 at once, all slow: every one returns (503) in bounded time
    slow = [new_token(f"slow{i}") for i in range(20)]
    for t in slow:
        rig.idp.answer(t, active("slow"), delay=HTTP_TIMEOUT + 2)
    t0 = time.monotonic()
    results = simultaneously(rig.port, [("/i/basic", t) for t in slow], timeout=30)
    took = time.monotonic() - t0
    assert [s for s, _ in results] == [503] * 20, results
    assert took <= HTTP_TIMEOUT + 3, f"20 concurrent slow introspections took {took:.1f} s: {results}"
    # the workers are free again: a normal request is answered at once (503
    # while the endpoint's backoff lasts, at most 10 s, then 200)
    quick = new_token("quick")
    rig.idp.answer(quick, active("quick"))
    t0 = time.monotonic()
    r = rig.get("/i/basic", quick)
    while r.status == 503 and time.monotonic() - t0 < 12:
        assert r.elapsed < 1.5, r
        after_backoff(r)
        r = rig.get("/i/basic", quick)
    assert_ok(r, "quick")
    assert r.elapsed < 1.5, r
    # the endpoint is fast again: the slow token was not cached
    rig.idp.answer(tok, active("slow"))
    assert_ok(prompt(rig.get("/i/basic", tok)), "slow")


@pytest.mark.parametrize("status,ctype,body,log_words", [
    (500, "application/json", {"error": "server_error"}, None),
    (502, "text/html", "<html><body>Bad gateway</body></html>", None),
    (200, "text/html", "<html><body>Login</body></html>", None),
    (200, "application/json", "[true]", None),
    (200, "application/json", "{\"active\": true", None),
    (401, "application/json", {"error": "invalid_client"}, "credentials"),
    (403, "application/json", {"error": "access_denied"}, "credentials"),
    (400, "application/json", {"error": "invalid_client"}, "invalid_client"),
], ids=["500", "502-html", "200-html", "200-json-array", "200-truncated-json", "401", "403",
        "400-invalid_client"])
@pytest.mark.slow
def test_idp_error_answers_give_503_and_are_not_cached(rig, status, ctype, body, log_words):
    tok = new_token("err")
    rig.idp.answer(tok, body, status=status, ctype=ctype)
    off = rig.httpd.log_offset()
    r = rig.get("/i/basic", tok)
    assert_503(r)
    url = rig.idp.url("/introspect")
    text = rig.httpd.wait_for_log("Introspection failed", since=off)
    lines = _failure_line(text, url)
    assert lines, text[-3000:]
    if log_words:
        assert any(log_words in ln and "client" in ln for ln in lines), lines
    # the endpoint recovers: nothing was cached, the next request after the
    # backoff (5xx only) is 200
    rig.idp.answer(tok, active("recovered"))
    after_backoff(r)
    assert_ok(prompt(rig.get("/i/basic", tok)), "recovered")
    assert rig.idp.count(tok) == 2


# ---------------------------------------------------------------------------
# 6. negative caching
# ---------------------------------------------------------------------------

def test_inactive_answer_cached(rig):
    tok = new_token("neg")
    rig.idp.answer(tok, {"active": False})
    status, errors = concurrently(rig.port, [("/i/basic", tok)] * 50, clients=8, timeout=60)
    assert not errors and status == [401] * 50, (errors[:5], Counter(status))
    assert wait_count(rig.idp, tok, 1, timeout=0.3) == 1, f"{rig.idp.count(tok)} calls for 50 requests"


@pytest.mark.slow
def test_negative_answers_expire_after_30_seconds(rig):
    """The rig asked one inactive and one active token when it started
    (cache=300).  30 s later the inactive answer is gone, the active one is
    still cached.  (Last in the file, so the wait overlaps the other tests.)"""
    assert rig.idp.count(rig.early_inactive) == 1 and rig.idp.count(rig.early_active) == 1
    wait = rig.early_done + 30.5 - time.monotonic()
    if wait > 0:
        time.sleep(wait)
    assert_401(rig.get("/i/basic", rig.early_inactive), "Token inactive")
    assert rig.idp.count(rig.early_inactive) == 2, "inactive answer kept longer than 30 s"
    assert_ok(rig.get("/i/basic", rig.early_active), "early")
    assert rig.idp.count(rig.early_active) == 1, "active answer (cache=300) was not kept"


# ---------------------------------------------------------------------------
# 7. no token, no secret in the error log
# ---------------------------------------------------------------------------

def test_error_logs_never_contain_tokens_or_secrets(rig, real):
    logs = {"counting": rig.httpd.log_text(), "real": real.httpd.log_text()}
    # the logs did record what happened (or this check would prove nothing)
    assert "Introspection failed" in logs["counting"]
    assert "token accepted (introspection)" in logs["counting"]
    assert "token accepted (introspection)" in logs["real"]
    forbidden = set(SENT_TOKENS)
    for s in SECRETS:
        forbidden |= {s, form_encode(s), form_encode_plus(s)}
    forbidden.add(base64.b64encode(f"{form_encode(BASIC_ID)}:{form_encode(BASIC_SECRET)}".encode()).decode())
    forbidden.add(base64.b64encode(f"{form_encode_plus(BASIC_ID)}:{form_encode_plus(BASIC_SECRET)}".encode()).decode())
    assert len(SENT_TOKENS) > 50
    for name, text in logs.items():
        leaked = sorted(s[:40] for s in forbidden if s in text)
        assert not leaked, f"{name} error log contains tokens/secrets: {leaked}"
