# SPDX-License-Identifier: Apache-2.0
"""Shared-memory features of mod_mcp_auth against a real httpd (event MPM,
3+ children): one JWKS / discovery copy per issuer for all children, the
shared verified-token cache, the unknown-kid refetch cooldown, stale keys
while the IdP is down, the JWKS size limit, graceful restarts, cleanup of
IPC objects, cache pressure, and the Mutex mechanisms.

Every test starts its own httpd (stopped at the end of the test) and, where
it changes routes, its own HTTPS "IdP", so request counts are exact.  Log
lines are read at ``LogLevel mcp_auth:trace1``:

* "signature verified (<alg>), verdict cached"  (debug, a fresh verification)
* "verified-token cache hit"                    (trace1, a cache hit)
"""

import datetime
import http.client
import os
import re
import secrets
import subprocess
import threading
import time

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from harness.asserts import assert_ok
from harness.procs import children_of
from harness.httpd import mcp_location as location
from conftest import (
    APACHE2,
    HTTPSServer,
    Minter,
    SigningKey,
    es256_key,
    free_port,
    json_bytes,
    wait_for_port,
)

TRACE = "LogLevel warn core:notice mcp_auth:trace1"
VERIFIED = "signature verified ("
CACHE_HIT = "verified-token cache hit"
PID_RE = re.compile(r"\[pid (\d+)")


# ---------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------

def server_conf(*lines) -> str:
    return "\n".join([TRACE, "MCPAuthHTTPTimeout 3", *lines])


def jwks_of(*keys) -> dict:
    return {"keys": [k.jwk for k in keys]}


def lines_with(text, phrase):
    return [l for l in text.splitlines() if phrase in l]


def pids_of(lines):
    return {int(m.group(1)) for m in (PID_RE.search(l) for l in lines) if m}


def tail(text, n=40):
    return "\n".join(text.splitlines()[-n:])


@pytest.fixture
def idp(tls):
    """A fresh HTTPS IdP for one test (own routes, own counts)."""
    srv = HTTPSServer(tls)
    try:
        yield srv
    finally:
        srv.stop()


class Client:
    """One client connection to httpd.  keepalive=False opens a fresh
    connection per request.  With keep-alive, a reused connection that the
    server closed (RemoteDisconnected / reset / broken pipe before any
    response byte) is retried once on a fresh connection and counted in
    ``retries``; an error on a fresh connection is never retried."""

    RETRYABLE = (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError)

    def __init__(self, port, keepalive=True, timeout=20):
        self.port = port
        self.keepalive = keepalive
        self.timeout = timeout
        self.conn = None
        self.retries = 0

    def close(self):
        if self.conn is not None:
            self.conn.close()
            self.conn = None

    def get(self, path, token):
        for attempt in (0, 1):
            fresh = self.conn is None
            if fresh:
                self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=self.timeout)
            try:
                self.conn.request("GET", path, headers={"Authorization": f"Bearer {token}"})
                resp = self.conn.getresponse()
                body = resp.read()
                headers = dict((k.lower(), v) for k, v in resp.getheaders())
                if resp.will_close or not self.keepalive:
                    self.close()
                return resp.status, headers, body
            except self.RETRYABLE:
                self.close()
                if fresh or attempt:
                    raise
                self.retries += 1
            except Exception:
                self.close()
                raise


class Load:
    """Result of run_load: per-job status (None when the job raised)."""

    def __init__(self, n):
        self.status = [None] * n
        self.errors = []  # (job index, repr(exception))
        self.retries = 0
        self.no_cgi = []  # 200 without the CGI's output

    def non_200(self):
        return [(i, s) for i, s in enumerate(self.status) if s != 200]

    def summary(self, limit=10):
        from collections import Counter
        return (f"statuses={dict(Counter(self.status))} errors={len(self.errors)} "
                f"{self.errors[:limit]} retries={self.retries} no_cgi={len(self.no_cgi)}")


def run_load(port, jobs, *, clients=8, keepalive=True, timeout=120):
    """Send jobs [(path, token)] from ``clients`` threads, each with its own
    connection (keep-alive or one per request)."""
    res = Load(len(jobs))
    lock = threading.Lock()
    nxt = iter(range(len(jobs)))

    def worker():
        c = Client(port, keepalive=keepalive)
        try:
            while True:
                with lock:
                    i = next(nxt, None)
                if i is None:
                    return
                path, token = jobs[i]
                try:
                    status, _, body = c.get(path, token)
                    res.status[i] = status
                    if status == 200 and b"SCRIPT_OK=1" not in body:
                        with lock:
                            res.no_cgi.append(i)
                except Exception as e:  # noqa: BLE001 - counted and reported
                    with lock:
                        res.errors.append((i, repr(e)))
        finally:
            c.close()
            with lock:
                res.retries += c.retries

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(clients)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + timeout
    for t in threads:
        t.join(max(0.1, deadline - time.monotonic()))
    assert not any(t.is_alive() for t in threads), f"load did not finish within {timeout} s"
    return res


def assert_401(resp):
    assert resp.status == 401, resp
    assert 'error="invalid_token"' in (resp.header("WWW-Authenticate") or ""), resp


def wait_until_ok(h, path, mint, timeout=6.0):
    """Poll with fresh tokens until a 200 arrives; returns (response, seconds)."""
    t0 = time.monotonic()
    resp = None
    while time.monotonic() - t0 < timeout:
        resp = h.get(path, mint())
        if resp.status == 200:
            return resp, time.monotonic() - t0
        time.sleep(0.2)
    return resp, time.monotonic() - t0


# ---------------------------------------------------------------------------
# 1. discovery + JWKS fetched once for all children
# ---------------------------------------------------------------------------

@pytest.mark.slow
def test_discovery_and_jwks_fetched_once_under_concurrent_load(idp, start_httpd, keys):
    issuer = idp.url("/t1")
    oidc, jwks_path = "/t1/.well-known/openid-configuration", "/t1/keys"
    key = es256_key("t1")
    idp.set(oidc, {"issuer": issuer, "jwks_uri": idp.url(jwks_path)})
    idp.set(jwks_path, jwks_of(key))
    h = start_httpd({"/mcp": location(issuer)}, server_conf())
    m = Minter(keys, issuer=issuer)

    repeated = m.token("ES256", key=key)
    distinct = [m.token("ES256", key=key, sub=f"user{i}") for i in range(200)]
    jobs = [("/mcp", distinct[(i // 2) % 200] if i % 2 else repeated) for i in range(2000)]
    res = run_load(h.port, jobs, clients=8, keepalive=True)

    assert not res.errors and not res.non_200() and not res.no_cgi, res.summary()
    assert idp.count(oidc) == 1, f"discovery requests: {idp.counts}"
    assert idp.count(jwks_path) == 1, f"JWKS requests: {idp.counts}"
    assert idp.count("/.well-known/oauth-authorization-server/t1") == 0, idp.counts
    log = h.log_text()
    assert len(pids_of(lines_with(log, "[mcp_auth:"))) >= 2, \
        "all requests were served by one child; the test did not exercise sharing"


@pytest.mark.slow
def test_rfc8414_path_inserted_discovery_fallback(idp, start_httpd, keys):
    issuer = idp.url("/tenants/acme")
    oidc = "/tenants/acme/.well-known/openid-configuration"           # not served: 404
    rfc8414 = "/.well-known/oauth-authorization-server/tenants/acme"  # path-inserted
    appended = "/tenants/acme/.well-known/oauth-authorization-server"  # the wrong form
    jwks_path = "/acme/jwks"
    key = es256_key("acme")
    idp.set(rfc8414, {"issuer": issuer, "jwks_uri": idp.url(jwks_path)})
    idp.set(appended, {"issuer": issuer, "jwks_uri": idp.url("/wrong/jwks")})
    idp.set(jwks_path, jwks_of(key))
    h = start_httpd({"/mcp": location(issuer)}, server_conf())
    m = Minter(keys, issuer=issuer)

    jobs = [("/mcp", m.token("ES256", key=key, sub=f"u{i}")) for i in range(300)]
    res = run_load(h.port, jobs, clients=8)

    assert not res.errors and not res.non_200() and not res.no_cgi, res.summary()
    assert idp.count(oidc) == 1, idp.counts
    assert idp.count(rfc8414) == 1, idp.counts
    assert idp.count(jwks_path) == 1, idp.counts
    assert idp.count(appended) == 0 and idp.count("/wrong/jwks") == 0, idp.counts


@pytest.mark.slow
def test_discovery_document_for_another_issuer_is_refused(idp, start_httpd, keys):
    """The discovery document must name the configured issuer exactly (here it
    adds a trailing slash): its jwks_uri is never used."""
    issuer = idp.url("/t3")
    key = es256_key("t3")
    idp.set("/t3/.well-known/openid-configuration", {"issuer": issuer + "/", "jwks_uri": idp.url("/t3/keys")})
    idp.set("/t3/keys", jwks_of(key))
    h = start_httpd({"/mcp": location(issuer)}, server_conf())
    mark = h.log_offset()
    resp = h.get("/mcp", Minter(keys, issuer=issuer).token("ES256", key=key))
    assert resp.status == 503, resp
    log = h.wait_for_log("does not equal", since=mark)
    assert "does not equal the configured issuer" in log, tail(log)
    assert idp.count("/t3/keys") == 0, idp.counts


# ---------------------------------------------------------------------------
# 2. the verified-token cache is shared by all children
# ---------------------------------------------------------------------------

@pytest.mark.slow
def test_verified_token_cache_is_shared_between_children(idp, start_httpd, keys):
    key = es256_key("shared")
    idp.set("/jwks", jwks_of(key))
    issuer = "https://idp.shared.example"
    h = start_httpd({"/mcp": location(issuer, idp.url("/jwks"))}, server_conf())
    token = Minter(keys, issuer=issuer).token("ES256", key=key)

    mark = h.log_offset()
    assert_ok(h.get("/mcp", token))
    res = run_load(h.port, [("/mcp", token)] * 299, clients=16, keepalive=False)
    assert not res.errors and not res.non_200() and not res.no_cgi, res.summary()

    time.sleep(0.3)  # the last children's log lines
    log = h.log_since(mark)
    verified, hits = lines_with(log, VERIFIED), lines_with(log, CACHE_HIT)
    assert len(verified) == 1, f"{len(verified)} fresh verifications:\n" + "\n".join(verified[:10])
    assert len(hits) == 299, f"{len(hits)} cache hits for 299 repeated requests\n{tail(log)}"
    verifier = pids_of(verified)
    hit_pids = pids_of(hits)
    print(f"\n[shared-cache] verifier {verifier}, cache hits from {len(hit_pids)} children {sorted(hit_pids)}")
    assert hit_pids - verifier, (f"every cache hit came from the verifying child {verifier}; "
                                 "no other child was exercised")
    assert len(hit_pids | verifier) >= 2, hit_pids


# ---------------------------------------------------------------------------
# 3. a flood of unknown kids costs at most one forced refetch
# ---------------------------------------------------------------------------

@pytest.mark.slow
def test_forged_kid_flood_is_rate_limited(idp, start_httpd, keys):
    key = es256_key("real")
    attacker = ec.generate_private_key(ec.SECP256R1())
    idp.set("/jwks", jwks_of(key))
    issuer = "https://idp.flood.example"
    h = start_httpd({"/mcp": location(issuer, idp.url("/jwks"))},
                    server_conf("MCPAuthJWKSRefreshCooldown 30"))
    m = Minter(keys, issuer=issuer)

    forged = [m.token("ES256", key=SigningKey("ES256", f"forged-{secrets.token_hex(8)}", attacker))
              for _ in range(1000)]
    valid = [m.token("ES256", key=key, sub=f"v{i}") for i in range(100)]
    jobs, kinds = [], []
    for i, t in enumerate(forged):
        jobs.append(("/mcp", t))
        kinds.append("forged")
        if i % 10 == 0:
            jobs.append(("/mcp", valid[i // 10]))
            kinds.append("valid")
    mark = h.log_offset()
    res = run_load(h.port, jobs, clients=16)  # cold start: the first fetch is inside the burst

    assert not res.errors, res.summary()
    bad_forged = [(i, s) for i, s in enumerate(res.status) if kinds[i] == "forged" and s != 401]
    bad_valid = [(i, s) for i, s in enumerate(res.status) if kinds[i] == "valid" and s != 200]
    assert not bad_forged, f"forged tokens not 401: {bad_forged[:10]} ({len(bad_forged)})"
    assert not bad_valid, f"valid tokens not 200 during the flood: {bad_valid[:10]} ({len(bad_valid)})"
    print(f"\n[flood] JWKS requests: {idp.count('/jwks')}")
    assert 1 <= idp.count("/jwks") <= 2, f"JWKS requests during the flood: {idp.count('/jwks')}"
    # Every forged token was refused as an unknown kid: one line per reason
    # and second in each child, the rest counted in summary lines (issue 15
    # item 11; this counted 1,000 lines before), which the children write
    # at the latest when they exit.
    h.stop()
    log = h.log_since(mark)
    logged = len(lines_with(log, "Unknown key id: "))
    held = sum(int(n) for n in re.findall(r'(\d+) more "Unknown key id" refusals suppressed', log))
    assert logged + held >= 1000, (logged, held)
    assert logged < 100, f"{logged} lines: the refusal log is not rate-limited"


# ---------------------------------------------------------------------------
# 4. key rotation: new key picked up, removed key stops working (even cached)
# ---------------------------------------------------------------------------

@pytest.mark.slow
def test_key_rotation_and_removed_key_invalidates_cached_verdict(idp, start_httpd, keys):
    key1, key2, unknown = es256_key("k1"), es256_key("k2"), es256_key("never-published")
    idp.set("/jwks", jwks_of(key1))
    issuer = "https://idp.rotate.example"
    # The last step reads why token A was refused right after another
    # "Unknown key id": every refusal is logged.
    h = start_httpd({"/mcp": location(issuer, idp.url("/jwks"))},
                    server_conf("MCPAuthJWKSRefreshCooldown 1", "MCPAuthRefusalLogInterval 0"))
    m = Minter(keys, issuer=issuer)

    token_a = m.token("ES256", key=key1, sub="alice")
    mark = h.log_offset()
    assert_ok(h.get("/mcp", token_a))
    assert_ok(h.get("/mcp", token_a))
    log = h.wait_for_log(CACHE_HIT, since=mark)
    assert len(lines_with(log, CACHE_HIT)) == 1, f"token A is not in the verified-token cache:\n{tail(log)}"
    assert idp.count("/jwks") == 1

    # The IdP publishes key2 next to key1.
    idp.set("/jwks", jwks_of(key1, key2))
    time.sleep(1.3)
    token_b = m.token("ES256", key=key2, sub="bob")
    assert_ok(h.get("/mcp", token_b), user="bob")
    assert idp.count("/jwks") == 2, f"a new kid must cause exactly one refetch: {idp.count('/jwks')}"
    assert_ok(h.get("/mcp", token_a))

    # key1 is withdrawn; an unknown kid after the cooldown forces the refetch.
    idp.set("/jwks", jwks_of(key2))
    time.sleep(1.3)
    assert_401(h.get("/mcp", m.token("ES256", key=unknown)))
    assert idp.count("/jwks") == 3, f"the unknown kid did not force a refetch: {idp.count('/jwks')}"

    mark = h.log_offset()
    resp = h.get("/mcp", token_a)
    log = h.wait_for_log("Unknown key id", since=mark)
    assert resp.status == 401, (f"token A (key1, cached verdict) still accepted after key1 was removed: "
                                f"{resp!r}\n{tail(log)}")
    assert "Unknown key id" in log, tail(log)
    assert CACHE_HIT not in log, tail(log)
    assert_ok(h.get("/mcp", token_b), user="bob")
    assert_ok(h.get("/mcp", m.token("ES256", key=key2, sub="carol")), user="carol")
    assert idp.count("/jwks") <= 4, idp.count("/jwks")


# ---------------------------------------------------------------------------
# 5. IdP down: stale keys after warm-up; 503 + recovery on a cold start
# ---------------------------------------------------------------------------

@pytest.mark.slow
def test_idp_down_after_warmup_uses_last_good_keys(idp, start_httpd, keys):
    key = es256_key("stale")
    idp.set("/jwks", jwks_of(key))
    issuer = "https://idp.stale.example"
    h = start_httpd({"/mcp": location(issuer, idp.url("/jwks"))},
                    server_conf("MCPAuthJWKSCacheTTL 1", "MCPAuthJWKSRefreshCooldown 30"))
    m = Minter(keys, issuer=issuer)

    warm = m.token("ES256", key=key)
    assert_ok(h.get("/mcp", warm))
    idp.set("/jwks", '{"error":"down"}', status=500)
    before = idp.count("/jwks")
    time.sleep(1.5)

    mark = h.log_offset()
    assert_ok(h.get("/mcp", warm))
    fresh = [m.token("ES256", key=key, sub=f"n{i}") for i in range(30)]
    for i, t in enumerate(fresh[:5]):  # new tokens: not in the verified-token cache
        assert_ok(h.get("/mcp", t), user=f"n{i}")
    res = run_load(h.port, [("/mcp", t) for t in fresh[5:]], clients=8)
    assert not res.errors and not res.non_200(), res.summary()

    log = h.wait_for_log("still using the last good keys", since=mark)
    failed = lines_with(log, "JWKS fetch failed")
    assert failed, f"no 'JWKS fetch failed' line:\n{tail(log)}"
    assert any(idp.url("/jwks") in l and "still using the last good keys" in l for l in failed), "\n".join(failed)
    assert idp.count("/jwks") - before == 1, \
        f"a failed fetch must not be retried within the cooldown: {idp.count('/jwks') - before} attempts"


@pytest.mark.slow
def test_cold_start_idp_500_then_recovers(idp, start_httpd, keys):
    key = es256_key("cold")
    idp.set("/jwks", '{"error":"down"}', status=500)
    issuer = "https://idp.cold.example"
    h = start_httpd({"/mcp": location(issuer, idp.url("/jwks"))},
                    server_conf("MCPAuthJWKSRefreshCooldown 1"))
    m = Minter(keys, issuer=issuer)

    mark = h.log_offset()
    resp = h.get("/mcp", m.token("ES256", key=key))
    assert resp.status == 503, resp
    assert (resp.header("Retry-After") or "").isdigit(), resp
    log = h.wait_for_log("JWKS fetch failed", since=mark)
    assert any(idp.url("/jwks") in l for l in lines_with(log, "JWKS fetch failed")), tail(log)

    idp.set("/jwks", jwks_of(key))
    resp, took = wait_until_ok(h, "/mcp", lambda: m.token("ES256", key=key), timeout=6)
    assert resp.status == 200, f"not recovered after {took:.1f} s: {resp!r}\n{tail(h.log_since(mark))}"


@pytest.mark.slow
def test_cold_start_idp_not_listening_then_recovers(tls, start_httpd, keys):
    key = es256_key("port")
    port = free_port()
    jwks_uri = f"https://127.0.0.1:{port}/jwks.json"
    issuer = "https://idp.closed.example"
    h = start_httpd({"/mcp": location(issuer, jwks_uri)}, server_conf("MCPAuthJWKSRefreshCooldown 1"))
    m = Minter(keys, issuer=issuer)

    mark = h.log_offset()
    resp = h.get("/mcp", m.token("ES256", key=key))
    assert resp.status == 503, resp
    assert (resp.header("Retry-After") or "").isdigit(), resp
    log = h.wait_for_log("JWKS fetch failed", since=mark)
    assert any(jwks_uri in l for l in lines_with(log, "JWKS fetch failed")), tail(log)

    srv = HTTPSServer(tls, port=port, name="https-idp-port")
    try:
        srv.set("/jwks.json", jwks_of(key))
        resp, took = wait_until_ok(h, "/mcp", lambda: m.token("ES256", key=key), timeout=6)
        assert resp.status == 200, f"not recovered after {took:.1f} s: {resp!r}\n{tail(h.log_since(mark))}"
        assert srv.count("/jwks.json") >= 1
    finally:
        srv.stop()


# ---------------------------------------------------------------------------
# 6. a big JWKS (x5c chains) and MCPAuthJWKSMaxSize
# ---------------------------------------------------------------------------

def _name(cn):
    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "mod_mcp_auth integration tests"),
                      x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "identity provider signing keys"),
                      x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _cert(subject, issuer_name, pub, signer, ca, now):
    b = (x509.CertificateBuilder().subject_name(_name(subject)).issuer_name(_name(issuer_name))
         .public_key(pub).serial_number(x509.random_serial_number())
         .not_valid_before(now - datetime.timedelta(days=1))
         .not_valid_after(now + datetime.timedelta(days=365))
         .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    return b.sign(signer, hashes.SHA256())


def _der_b64(cert):
    import base64
    return base64.b64encode(cert.public_bytes(serialization.Encoding.DER)).decode()


@pytest.fixture(scope="module")
def big_jwks():
    """20 RSA-2048 keys; each JWK carries x5c = [leaf, intermediate, root]
    (its own chain: a leaf signed by an intermediate signed by a root)."""
    now = datetime.datetime.now(datetime.timezone.utc)
    signing, jwks = [], {"keys": []}
    for i in range(20):
        root_key = ec.generate_private_key(ec.SECP256R1())
        inter_key = ec.generate_private_key(ec.SECP256R1())
        priv = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        root = _cert(f"Big JWKS Root {i}", f"Big JWKS Root {i}", root_key.public_key(), root_key, True, now)
        inter = _cert(f"Big JWKS Intermediate {i}", f"Big JWKS Root {i}", inter_key.public_key(), root_key,
                      True, now)
        leaf = _cert(f"signing key {i}", f"Big JWKS Intermediate {i}", priv.public_key(), inter_key, False, now)
        sk = SigningKey("RS256", f"big-{i:02d}-{secrets.token_hex(4)}", priv)
        jwk = sk.jwk
        jwk["x5c"] = [_der_b64(leaf), _der_b64(inter), _der_b64(root)]
        jwks["keys"].append(jwk)
        signing.append(sk)
    body = json_bytes(jwks)
    return signing, body


@pytest.mark.slow
def test_big_jwks_with_x5c_chains(idp, start_httpd, keys, big_jwks):
    signing, body = big_jwks
    print(f"\n[big-jwks] {len(body)} bytes")
    assert 40 * 1024 < len(body) < 65536, f"JWKS is {len(body)} bytes"
    idp.set("/big/jwks", body)
    issuer = "https://idp.big.example"
    h = start_httpd({"/mcp": location(issuer, idp.url("/big/jwks"))}, server_conf())
    m = Minter(keys, issuer=issuer)

    resp = h.get("/mcp", m.token("RS256", key=signing[16]))
    assert resp.status == 200, f"{resp!r}\n{tail(h.log_text())}"
    jobs = [("/mcp", m.token("RS256", key=signing[i % 20], sub=f"b{i}")) for i in range(200)]
    res = run_load(h.port, jobs, clients=8)
    assert not res.errors and not res.non_200() and not res.no_cgi, res.summary()
    assert idp.count("/big/jwks") == 1, idp.count("/big/jwks")


@pytest.mark.slow
def test_jwks_larger_than_max_size_is_refused(idp, start_httpd, keys, big_jwks):
    signing, body = big_jwks
    assert len(body) > 16384
    idp.set("/big/jwks", body)
    issuer = "https://idp.toobig.example"
    h = start_httpd({"/mcp": location(issuer, idp.url("/big/jwks"))},
                    server_conf("MCPAuthJWKSMaxSize 16384"))
    m = Minter(keys, issuer=issuer)

    mark = h.log_offset()
    resp = h.get("/mcp", m.token("RS256", key=signing[16]))
    assert resp.status == 503, resp
    assert (resp.header("Retry-After") or "").isdigit(), resp
    log = h.wait_for_log("larger than", since=mark)
    failed = lines_with(log, "JWKS fetch failed")
    assert any("larger than" in l and idp.url("/big/jwks") in l for l in failed), tail(log)


# ---------------------------------------------------------------------------
# 7. graceful restart under load
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("mutex", [None, "sysvsem"], ids=["default-mutex", "sysvsem"])
@pytest.mark.slow
def test_graceful_restart_under_load_keeps_serving_and_keeps_cache(idp, start_httpd, keys, mutex):
    """The load goes to a static file protected by the module (DocumentRoot's
    index.txt): mod_cgid's daemon is restarted on every graceful restart and
    answers CGI requests in flight with its own 503 ("failed reading PID from
    cgi daemon"), which says nothing about mod_mcp_auth."""
    key = es256_key("graceful")
    idp.set("/jwks", jwks_of(key))
    issuer = "https://idp.graceful.example"
    loc = location(issuer, idp.url("/jwks"))
    extra = [f"Mutex {mutex} mcp-auth-shm"] if mutex else []
    h = start_httpd({"/mcp": loc}, server_conf(*extra, f'<Location "/index.txt">\n{loc}\n</Location>'))
    m = Minter(keys, issuer=issuer)

    assert h.get("/index.txt").status == 401, "the static file is not protected by the module"
    cached = m.token("ES256", key=key, sub="cached")
    resp = h.get("/index.txt", cached)
    assert resp.status == 200 and resp.body == b"ok\n", resp
    mark = h.log_offset()
    assert h.get("/index.txt", cached).status == 200
    assert CACHE_HIT in h.wait_for_log(CACHE_HIT, since=mark), "the token was not cached before the restarts"
    # The load never sends `cached`: after the restarts it must still be in the cache.
    pool = [m.token("ES256", key=key, sub=f"g{i}") for i in range(60)]

    stop = threading.Event()
    lock = threading.Lock()
    stats = {"ok": 0, "non200": [], "errors": [], "retries": 0}

    def worker(n, keepalive):
        c = Client(h.port, keepalive=keepalive, timeout=20)
        i = n
        try:
            while not stop.is_set():
                i += 1
                try:
                    status, _, body = c.get("/index.txt", pool[i % len(pool)])
                    with lock:
                        if status == 200 and body == b"ok\n":
                            stats["ok"] += 1
                        else:
                            stats["non200"].append((status, body[:200]))
                except Exception as e:  # noqa: BLE001 - counted and reported
                    with lock:
                        stats["errors"].append(f"{'keep-alive' if keepalive else 'fresh'}: {e!r}")
        finally:
            c.close()
            with lock:
                stats["retries"] += c.retries

    # 3 keep-alive clients (a reused connection closed by the server is
    # retried once and counted) and 3 clients with a new connection each time.
    threads = [threading.Thread(target=worker, args=(n, n % 2 == 0), daemon=True) for n in range(6)]
    mark = h.log_offset()
    for t in threads:
        t.start()
    graceful = []
    try:
        time.sleep(1.0)
        for _ in range(3):
            graceful.append(subprocess.run([APACHE2, "-f", str(h.conf), "-k", "graceful"],
                                           capture_output=True, text=True, timeout=30))
            time.sleep(1.2)
        time.sleep(1.0)
    finally:
        stop.set()
        for t in threads:
            t.join(30)
    assert not any(t.is_alive() for t in threads), "load threads hung"
    for g in graceful:
        assert g.returncode == 0, g.stderr

    log = h.log_since(mark)
    assert log.count("resuming normal operations") >= 3, f"3 graceful restarts expected:\n{tail(log)}"
    summary = (f"ok={stats['ok']} non200={len(stats['non200'])} {stats['non200'][:5]} "
               f"errors={len(stats['errors'])} {stats['errors'][:5]} keep-alive retries={stats['retries']}")
    print(f"\n[graceful] {summary}")
    assert stats["ok"] > 200, summary

    # Everything that went wrong, in one report.
    problems = []
    if stats["non200"] or stats["errors"]:
        problems.append(f"responses: {summary}")
    for phrase in ("exit signal", "[slotmem_shm:", "[mcp_auth:error]", "[mcp_auth:crit]"):
        hits = lines_with(log, phrase)
        if hits:
            problems.append(f"log lines with {phrase!r} ({len(hits)}):\n  " + "\n  ".join(hits[:6]))

    mark = h.log_offset()
    resp = h.get("/index.txt", cached)
    after = h.wait_for_log(CACHE_HIT, since=mark)
    if resp.status != 200:
        problems.append(f"the cached token after the restarts: {resp!r}")
    if VERIFIED in after or CACHE_HIT not in after:
        problems.append("the token cached before the graceful restarts was verified again "
                        "(the verified-token cache did not survive)")
    if idp.count("/jwks") != 1:
        problems.append(f"{idp.count('/jwks')} JWKS requests (1 expected: the JWKS did not survive)")
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("mutex", [None, "sysvsem", "flock", "fcntl"],
                         ids=["default-mutex", "sysvsem", "flock", "fcntl"])
@pytest.mark.slow
def test_request_finishing_in_old_generation_child_after_graceful(idp, start_httpd, keys, mutex):
    """A graceful restart lets old children finish what they have: a request
    whose headers were still arriving when the restart happened is served by
    an old-generation child after the parent set up the new generation.  Its
    token must still be checked normally (200), not fail because the old
    generation's lock or memory went away."""
    import socket

    key = es256_key("oldgen")
    idp.set("/jwks", jwks_of(key))
    issuer = "https://idp.oldgen.example"
    loc = location(issuer, idp.url("/jwks"))
    extra = [f"Mutex {mutex} mcp-auth-shm"] if mutex else []
    h = start_httpd({"/mcp": loc}, server_conf(*extra, f'<Location "/index.txt">\n{loc}\n</Location>'))
    m = Minter(keys, issuer=issuer)
    resp = h.get("/index.txt", m.token("ES256", key=key))
    assert resp.status == 200, resp

    token = m.token("ES256", key=key, sub="late")
    s = socket.create_connection(("127.0.0.1", h.port), timeout=20)
    try:
        s.sendall(b"GET /index.txt HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        time.sleep(0.3)  # a worker of the current generation is now reading this request
        mark = h.log_offset()
        g = subprocess.run([APACHE2, "-f", str(h.conf), "-k", "graceful"], capture_output=True, text=True,
                           timeout=30)
        assert g.returncode == 0, g.stderr
        log = h.wait_for_log("resuming normal operations", since=mark, timeout=10)
        assert "resuming normal operations" in log, tail(log)
        time.sleep(0.3)
        s.sendall(f"Authorization: Bearer {token}\r\nConnection: close\r\n\r\n".encode())
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    finally:
        s.close()
    status_line = data.split(b"\r\n", 1)[0].decode("latin-1")
    log = h.log_since(mark)
    assert status_line.startswith("HTTP/1.1 200"), (
        f"{status_line!r} {data[-200:]!r}; JWKS requests so far: {idp.count('/jwks')}\n" + "\n".join(lines_with(log, "[mcp_auth:error]")
                                                   + lines_with(log, "[mcp_auth:crit]")))
    assert data.endswith(b"ok\n"), data[-200:]


@pytest.mark.slow
def test_graceful_restarts_do_not_accumulate_mutexes(idp, start_httpd, keys):
    """With `Mutex sysvsem mcp-auth-shm` the semaphores are visible: however
    the module ties its mutex to configuration generations, graceful restarts
    must not leave one more semaphore behind each time."""
    key = es256_key("gmutex")
    idp.set("/jwks", jwks_of(key))
    issuer = "https://idp.gmutex.example"
    h = start_httpd({"/mcp": location(issuer, idp.url("/jwks"))},
                    server_conf("Mutex sysvsem mcp-auth-shm"), name="gmutex")
    m = Minter(keys, issuer=issuer)
    tok = m.token("ES256", key=key)
    assert_ok(h.get("/mcp", tok))
    # Every process this httpd ever had: a semaphore last used by any of them is its own.
    seen = httpd_pids(h)
    running = sems_of(seen)
    assert running, "Mutex sysvsem configured but this httpd uses no semaphore"

    sets = []
    for n in range(3):
        mark = h.log_offset()
        g = subprocess.run([APACHE2, "-f", str(h.conf), "-k", "graceful"], capture_output=True, text=True,
                           timeout=30)
        assert g.returncode == 0, g.stderr
        log = h.wait_for_log("resuming normal operations", since=mark, timeout=10)
        assert "resuming normal operations" in log, tail(log)
        assert wait_for_port(h.port, 5)
        seen |= httpd_pids(h)
        assert_ok(h.get("/mcp", m.token("ES256", key=key)))
        time.sleep(0.3)
        seen |= httpd_pids(h)
        sets.append(sems_of(seen))
    assert all(len(x) == len(running) for x in sets), (
        f"semaphores of this httpd: after start {sorted(running)}, after graceful restarts "
        f"{[sorted(x) for x in sets]} -- one more per configuration generation")


# ---------------------------------------------------------------------------
# 8. a cached verdict does not outlive exp
# ---------------------------------------------------------------------------

@pytest.mark.slow
def test_cached_token_expires(idp, start_httpd, keys):
    key = es256_key("exp")
    idp.set("/jwks", jwks_of(key))
    issuer = "https://idp.exp.example"
    h = start_httpd({"/mcp": location(issuer, idp.url("/jwks"), extra="MCPAuthClockSkew 0")}, server_conf())
    m = Minter(keys, issuer=issuer)

    frac = time.time() % 1
    if frac > 0.5:
        time.sleep(1.02 - frac)
    now = int(time.time())
    token = m.token("ES256", key=key, iat=now, exp=now + 2)
    mark = h.log_offset()
    assert_ok(h.get("/mcp", token))
    assert_ok(h.get("/mcp", token))
    log = h.wait_for_log(CACHE_HIT, since=mark)
    assert CACHE_HIT in log, f"the token was not cached:\n{tail(log)}"

    time.sleep(max(0.0, now + 3 + 0.1 - time.time()))
    mark = h.log_offset()
    resp = h.get("/mcp", token)
    assert_401(resp)
    log = h.wait_for_log("Token expired", since=mark)
    assert "Token expired" in log, tail(log)


# ---------------------------------------------------------------------------
# 9. no IPC objects left behind
# ---------------------------------------------------------------------------

def ipc_snapshot():
    """Every SysV segment / semaphore id and every POSIX segment (/dev/shm/ShM.*)."""
    def ids(flag):
        out = subprocess.run(["ipcs", flag], capture_output=True, text=True, timeout=10).stdout
        rows = set()
        for line in out.splitlines():
            parts = line.split()
            if len(parts) >= 2 and parts[0].startswith("0x") and parts[1].isdigit():
                rows.add(int(parts[1]))
        return rows

    return {"shm": ids("-m"), "sem": ids("-s"),
            "devshm": {n for n in os.listdir("/dev/shm") if n.startswith("ShM.")} if os.path.isdir("/dev/shm")
            else set()}


def httpd_pids(h):
    """The httpd parent and its direct children (workers, cgid daemon)."""
    return {h.pid, *children_of(h.pid)}


def sems_of(pids):
    """Semaphores whose last user (semctl SETVAL at creation, or semop) is one of pids."""
    sem = set()
    for semid in ipc_snapshot()["sem"]:
        out = subprocess.run(["ipcs", "-s", "-i", str(semid)], capture_output=True, text=True, timeout=10).stdout
        rows = [l.split() for l in out.splitlines()]
        last_pids = {int(r[4]) for r in rows if len(r) == 5 and all(x.isdigit() for x in r)}
        if last_pids & pids:
            sem.add(semid)
    return sem


def owned_ipc(h, pids=None):
    """IPC objects this httpd uses right now, attributed by process (so other
    programs creating or removing objects meanwhile cannot confuse the test):
    POSIX segments mapped by its processes, SysV segments they created,
    semaphores last used by one of them."""
    pids = httpd_pids(h) | (pids or set())
    devshm = set()
    for pid in pids:
        try:
            with open(f"/proc/{pid}/maps") as f:
                for line in f:
                    if "/dev/shm/ShM." in line:
                        devshm.add(line.split("/dev/shm/", 1)[1].split()[0])
        except OSError:
            pass
    shm = set()
    out = subprocess.run(["ipcs", "-m", "-p"], capture_output=True, text=True, timeout=10).stdout
    for line in out.splitlines():
        parts = line.split()
        if len(parts) >= 4 and parts[0].isdigit() and int(parts[2]) in pids:
            shm.add(int(parts[0]))
    return {"shm": shm, "sem": sems_of(pids), "devshm": devshm}


@pytest.mark.parametrize("mutex", [None, "sysvsem"], ids=["default-mutex", "sysvsem"])
@pytest.mark.slow
def test_no_ipc_objects_left_after_stop(idp, start_httpd, keys, mutex):
    key = es256_key("ipc")
    idp.set("/jwks", jwks_of(key))
    issuer = "https://idp.ipc.example"
    before = ipc_snapshot()
    extra = [f"Mutex {mutex} mcp-auth-shm"] if mutex else []
    h = start_httpd({"/mcp": location(issuer, idp.url("/jwks"))}, server_conf(*extra), name="ipc")
    m = Minter(keys, issuer=issuer)
    tok = m.token("ES256", key=key)
    assert_ok(h.get("/mcp", tok))
    used = [owned_ipc(h)]
    # A graceful restart: the objects of every configuration generation must go too.
    mark = h.log_offset()
    g = subprocess.run([APACHE2, "-f", str(h.conf), "-k", "graceful"], capture_output=True, text=True, timeout=30)
    assert g.returncode == 0, g.stderr
    assert "resuming normal operations" in h.wait_for_log("resuming normal operations", since=mark, timeout=10)
    assert wait_for_port(h.port, 5)
    assert_ok(h.get("/mcp", m.token("ES256", key=key)))
    used.append(owned_ipc(h))
    created = {k: ipc_snapshot()[k] - before[k] for k in before}
    owned = {k: used[0][k] | used[1][k] for k in used[0]}
    assert owned["devshm"] or owned["shm"], f"no shared memory segment of this httpd found: {used}"
    if mutex == "sysvsem":
        assert owned["sem"], f"Mutex sysvsem configured but this httpd uses no semaphore: {used}"
    run_files_during = sorted(os.listdir(h.root / "run"))

    h.stop()
    now = ipc_snapshot()
    left = {k: owned[k] & now[k] for k in owned}
    assert not any(left.values()), (f"left behind after stop: {left} (used while running: {used}; "
                                    f"new while running: {created}; run dir: {run_files_during})")
    leftovers = [f for f in os.listdir(h.root / "run") if "slotmem" in f or "mcp" in f.lower()]
    assert not leftovers, f"files left in the runtime dir after stop: {leftovers}"


@pytest.mark.slow
def test_stop_and_start_begins_with_an_empty_cache(idp, start_httpd, keys):
    """Shared content may survive a graceful restart, never a stop: the next
    start fetches the JWKS again and verifies the token again."""
    key = es256_key("fresh")
    idp.set("/jwks", jwks_of(key))
    issuer = "https://idp.fresh.example"
    h = start_httpd({"/mcp": location(issuer, idp.url("/jwks"))}, server_conf())
    m = Minter(keys, issuer=issuer)
    tok = m.token("ES256", key=key)
    assert_ok(h.get("/mcp", tok))
    assert_ok(h.get("/mcp", tok))
    assert idp.count("/jwks") == 1

    h.stop()
    h.start()
    mark = h.log_offset()
    assert_ok(h.get("/mcp", tok))
    log = h.wait_for_log(VERIFIED, since=mark)
    assert VERIFIED in log and CACHE_HIT not in log, f"the verdict survived httpd stop/start:\n{tail(log)}"
    assert idp.count("/jwks") == 2, f"the JWKS survived httpd stop/start: {idp.count('/jwks')} fetches"


# ---------------------------------------------------------------------------
# 10. cache pressure never fails a request
# ---------------------------------------------------------------------------

@pytest.mark.slow
def test_full_token_cache_still_serves(idp, start_httpd, keys):
    key = es256_key("full")
    idp.set("/jwks", jwks_of(key))
    issuer = "https://idp.full.example"
    h = start_httpd({"/mcp": location(issuer, idp.url("/jwks"))}, server_conf("MCPAuthCacheEntries 8"))
    m = Minter(keys, issuer=issuer)

    mark = h.log_offset()
    jobs = [("/mcp", m.token("ES256", key=key, sub=f"f{i}")) for i in range(200)]
    res = run_load(h.port, jobs, clients=8)
    assert not res.errors and not res.non_200() and not res.no_cgi, res.summary()
    log = h.wait_for_log("raise MCPAuthCacheEntries", since=mark)
    assert "raise MCPAuthCacheEntries" in log, tail(log)
    assert len(lines_with(log, "raise MCPAuthCacheEntries")) <= 8, "the warning is not rate-limited"


@pytest.mark.slow
def test_token_too_big_for_a_cache_slot_is_never_in_the_shared_cache(idp, start_httpd, keys):
    """Claims larger than MCPAuthCacheEntrySize never reach the shared cache
    (no overflow, no truncated entry) and never fail a request: each child
    verifies such a token itself, once, and keeps it in its own small cache."""
    key = es256_key("big-claims")
    idp.set("/jwks", jwks_of(key))
    issuer = "https://idp.slot.example"
    h = start_httpd({"/mcp": location(issuer, idp.url("/jwks"))}, server_conf("MCPAuthCacheEntrySize 512"))
    m = Minter(keys, issuer=issuer)

    groups = [f"group-{i:04d}-{secrets.token_hex(6)}" for i in range(80)]
    big = m.token("ES256", key=key, groups=groups)
    claims_len = len(json_bytes(m.claims(groups=groups)))
    assert 1800 < claims_len < 3000, claims_len

    mark = h.log_offset()
    for _ in range(6):
        assert_ok(h.get("/mcp", big))
    log = h.log_since(mark)
    verified = lines_with(log, VERIFIED)
    shared_hits = [line for line in lines_with(log, CACHE_HIT) if "(this process)" not in line]
    # ServerLimit 4: at most one verification per child, never a shared hit.
    assert 1 <= len(verified) <= 4, f"{len(verified)} verifications:\n{tail(log)}"
    assert not shared_hits, tail(log)

    # Control: a small token is cached in the same configuration.
    small = m.token("ES256", key=key)
    mark = h.log_offset()
    assert_ok(h.get("/mcp", small))
    assert_ok(h.get("/mcp", small))
    log = h.wait_for_log(CACHE_HIT, since=mark)
    assert len(lines_with(log, VERIFIED)) == 1 and len(lines_with(log, CACHE_HIT)) == 1, tail(log)


# ---------------------------------------------------------------------------
# 11. Mutex mechanisms
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("mechanism", ["sysvsem", "flock", "fcntl"])
@pytest.mark.slow
def test_mutex_mechanisms(idp, start_httpd, keys, mechanism):
    key = es256_key(mechanism)
    idp.set("/jwks", jwks_of(key))
    issuer = f"https://idp.{mechanism}.example"
    h = start_httpd({"/mcp": location(issuer, idp.url("/jwks"))},
                    server_conf(f"Mutex {mechanism} mcp-auth-shm"), name=f"mutex-{mechanism}")
    m = Minter(keys, issuer=issuer)

    t = subprocess.run([APACHE2, "-t", "-f", str(h.conf)], capture_output=True, text=True, timeout=30)
    assert t.returncode == 0 and "Syntax OK" in t.stdout + t.stderr, t.stdout + t.stderr

    tok = m.token("ES256", key=key)
    mark = h.log_offset()
    assert_ok(h.get("/mcp", tok))
    jobs = [("/mcp", tok)] * 40 + [("/mcp", m.token("ES256", key=key, sub=f"x{i}")) for i in range(40)]
    res = run_load(h.port, jobs, clients=8, keepalive=False)
    assert not res.errors and not res.non_200() and not res.no_cgi, res.summary()
    log = h.log_since(mark)
    assert len(lines_with(log, CACHE_HIT)) == 40, tail(log)
    assert "cannot attach" not in log and "exit signal" not in log, tail(log)
    assert idp.count("/jwks") == 1
