# SPDX-License-Identifier: Apache-2.0
"""IdP faults and load against a real httpd (event MPM, several children).

Part 1 -- the IdP misbehaves.  A fault-injecting HTTPS "IdP" of our own
(``FaultServer``, one per mode and phase, on 127.0.0.1) answers JWKS requests
in one of these ways:

    slow            headers only after 6 s (beyond MCPAuthHTTPTimeout 2)
    drip            headers at once, then the body one byte every 0.2 s
    tls-stall       accepts the TCP connection, never answers the TLS handshake
    http500         500 with a JSON error body
    truncated       200, the first half of the JWKS (Content-Length matches)
    short-read      200, Content-Length of the whole JWKS, half of it, then FIN
    html            200 text/html (a login page)
    huge            10 MB body announced by Content-Length
    huge-stream     10 MB body without Content-Length (connection close)
    redirect-loop   302 to itself, forever
    untrusted-tls   TLS with a self-signed certificate (not in MCPAuthCAFile)
    reset           reads the request, then RST (SO_LINGER 0)

For every mode:
  (a) warm, then fault: keys fetched while the IdP was healthy keep valid
      tokens at 200 while the IdP fails (MCPAuthJWKSCacheTTL 1 and
      MCPAuthJWKSRefreshCooldown 1, so refreshes really happen during the
      fault); the error log says "JWKS fetch failed" with the URL and cause;
  (b) cold start with the fault: 30 concurrent requests all get 503 with
      Retry-After within MCPAuthHTTPTimeout + 2 s (measured), then the IdP
      recovers and tokens are accepted again.
No crash lines ("exit signal", AH00052) in the error log (LogLevel core:notice).

Part 2 -- load (wrk).  100,000 requests at concurrency 50 mixing valid
(several distinct, cached, plus 1,500 that keep getting evicted from a small
verified-token cache), expired, forged-signature and garbage tokens.  httpd
echoes the request's X-Class header (mod_headers), so the wrk Lua script
counts statuses per token class.  Zero 5xx, valid all 200, invalid all 401,
no socket errors, no crash lines; the httpd children's RSS may grow < 5 %
between the 20,000th and the 100,000th request.  Then five `apache2 -k
graceful` under load: zero failed requests; after `-k stop` no shared
memory segment or semaphore of that httpd remains.

The load goes to a static file protected by the module, not to the CGI:
forking 100,000 CGIs would measure fork(), and mod_cgid's daemon answers
requests in flight with 503 during a graceful restart.
"""

import datetime
import http.client
import ipaddress
import json
import os
import random
import secrets
import shutil
import signal
import socket
import ssl
import struct
import subprocess
import threading
import time
from collections import Counter
from pathlib import Path

import http.server
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from harness.checks import crash_lines
from harness.procs import children_of, worker_rss
from harness.servers import QuietHandler, ThreadedServer
from harness.httpd import mcp_location
from conftest import (
    APACHE2,
    AUDIENCE,
    Minter,
    SigningKey,
    b64url_decode,
    make_jws,
)

HTTP_TIMEOUT = 2          # MCPAuthHTTPTimeout of the fault httpd
SLOW_SECONDS = 6          # the "slow" IdP answers after this long
HUGE_BYTES = 10 * 1024 * 1024

MODES = ["slow", "drip", "tls-stall", "http500", "truncated", "short-read", "html", "huge", "huge-stream",
         "redirect-loop", "untrusted-tls", "reset"]

# What the log line should say about the cause (any one of these substrings;
# curl's wording differs between versions).
CAUSES = {
    "slow": ["timed out", "Timeout"],
    "drip": ["timed out", "Timeout"],
    "tls-stall": ["timed out", "Timeout", "timeout"],
    "http500": ["HTTP 500"],
    "truncated": ["not a JSON object"],
    "short-read": ["transfer closed", "unexpected eof", "outstanding read data", "Partial",
                   "SSL_read", "end of file", "EOF"],
    "html": ["not a JSON object"],
    "huge": ["larger than"],
    "huge-stream": ["larger than"],
    "redirect-loop": ["redirect"],
    "untrusted-tls": ["certificate", "self-signed", "self signed"],
    "reset": ["reset", "Recv failure", "SSL_read", "Empty reply"],
}

FAULT_CONF = "\n".join([
    f"MCPAuthHTTPTimeout {HTTP_TIMEOUT}",
    "MCPAuthJWKSCacheTTL 1",
    "MCPAuthJWKSRefreshCooldown 1",
    # Every request goes to the key ring (no verified-token cache hits).
    "MCPAuthTokenCacheTTL 0",
])


def tail(text, n=30):
    return "\n".join(text.splitlines()[-n:])


# ---------------------------------------------------------------------------
# The fault-injecting IdP
# ---------------------------------------------------------------------------

def _untrusted_cert_files(directory: Path):
    """A self-signed certificate for IP:127.0.0.1 that no configured CA signed."""
    directory.mkdir(parents=True, exist_ok=True)
    now = datetime.datetime.now(datetime.timezone.utc)
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=30))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.IPv4Address("127.0.0.1"))]),
                           critical=False)
            .sign(key, hashes.SHA256()))
    cert_pem, key_pem = directory / "untrusted.pem", directory / "untrusted.key"
    cert_pem.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_pem.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                          serialization.NoEncryption()))
    return cert_pem, key_pem


class _FaultHandler(QuietHandler):
    def setup(self):
        srv = self.server.owner
        if srv.mode == "tls-stall":
            srv.note_request("tls-stall")
            srv.stopping.wait(SLOW_SECONDS)
            raise ConnectionAbortedError("tls-stall: no handshake")
        self.request.settimeout(self.timeout)
        self.request.do_handshake()
        self.accepted_in = srv.mode
        http.server.BaseHTTPRequestHandler.setup(self)  # the handshake is done

    def do_GET(self):
        srv = self.server.owner
        mode = srv.mode
        if mode != self.accepted_in:
            # The module keeps connections alive: one made before the fault
            # is dropped unanswered (as by an IdP restarting into its fault),
            # so the fault applies to every fetch, reused connection or not.
            self.close_connection = True
            return
        srv.note_request(mode)
        getattr(self, "mode_" + mode.replace("-", "_"))(srv)

    def _send(self, status, ctype, body, extra=()):
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        for k, v in extra:
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    # -- modes ------------------------------------------------------------
    def mode_ok(self, srv):
        if srv.discovery_issuer and "/.well-known/" in self.path:
            self._send(200, "application/json", json.dumps(
                {"issuer": srv.discovery_issuer, "jwks_uri": srv.url("/jwks")}).encode())
            return
        self._send(200, "application/json", srv.good)

    def mode_untrusted_tls(self, srv):  # only reached by a client that skips verification
        self._send(200, "application/json", srv.good)

    def mode_slow(self, srv):
        srv.stopping.wait(SLOW_SECONDS)
        self._send(200, "application/json", srv.good)

    def mode_drip(self, srv):
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(srv.good)))
        self.end_headers()
        self.wfile.flush()
        try:
            for i in range(len(srv.good)):
                if srv.stopping.wait(0.2):
                    return
                self.wfile.write(srv.good[i:i + 1])
                self.wfile.flush()
        except OSError:
            pass  # the client gave up

    def mode_tls_stall(self, srv):  # never reached: setup() gives up first
        self._send(200, "application/json", srv.good)

    def mode_http500(self, srv):
        self._send(500, "application/json", b'{"error":"internal_server_error"}')

    def mode_truncated(self, srv):
        self._send(200, "application/json", srv.good[: len(srv.good) // 2])

    def mode_short_read(self, srv):
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(srv.good)))
        self.end_headers()
        self.wfile.write(srv.good[: len(srv.good) // 2])
        self.wfile.flush()
        self.close_connection = True

    def mode_html(self, srv):
        self._send(200, "text/html; charset=utf-8",
                   b"<!DOCTYPE html>\n<html><head><title>Sign in</title></head>"
                   b"<body><form action=/login><input name=user></form></body></html>\n")

    def _stream(self, srv, total):
        head = b'{"keys":[' + srv.jwk + b'],"padding":"'
        chunk = b"A" * 65536
        sent = 0
        try:
            self.wfile.write(head)
            sent = len(head)
            while sent < total - 2 and not srv.stopping.is_set():
                n = min(len(chunk), total - 2 - sent)
                self.wfile.write(chunk[:n])
                sent += n
            self.wfile.write(b'"}')
        except OSError:
            pass  # the client gave up, as it should
        srv.note_streamed(sent)

    def mode_huge(self, srv):
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(HUGE_BYTES))
        self.end_headers()
        self._stream(srv, HUGE_BYTES)

    def mode_huge_stream(self, srv):
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Connection", "close")
        self.end_headers()
        self.close_connection = True
        self._stream(srv, HUGE_BYTES)

    def mode_redirect_loop(self, srv):
        self.send_response(302)
        self.send_header("Location", srv.url(self.path))
        self.send_header("Content-Length", "0")
        self.end_headers()

    def mode_reset(self, srv):
        # RST instead of FIN: linger 0, and the server skips shutdown().
        self.request.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.request.reset_on_close = True
        self.close_connection = True


class _FaultTLSServer(ThreadedServer):
    request_queue_size = 64

    def context_for_next(self):
        owner = self.owner
        return owner.bad_ctx if owner.mode == "untrusted-tls" else owner.good_ctx

    def shutdown_request(self, request):
        if getattr(request, "reset_on_close", False):
            self.close_request(request)  # no FIN first: the close sends RST
        else:
            super().shutdown_request(request)


class FaultServer:
    """HTTPS on 127.0.0.1:<random>; every path answers according to ``mode``."""

    def __init__(self, tls, untrusted, good_jwks: dict, mode="ok"):
        self.good_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.good_ctx.load_cert_chain(str(tls.cert_pem), str(tls.key_pem))
        self.bad_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.bad_ctx.load_cert_chain(str(untrusted[0]), str(untrusted[1]))
        self.good = json.dumps(good_jwks).encode()
        self.jwk = json.dumps(good_jwks["keys"][0]).encode()
        self.mode = mode
        self.discovery_issuer = None  # set: "ok" also serves a discovery document
        self.stopping = threading.Event()
        self._lock = threading.Lock()
        self.accepts = 0
        self.requests = Counter()
        self.streamed = []
        self._httpd = _FaultTLSServer(self, _FaultHandler, name=f"fault-idp-{mode}", on_accept=self.note_accept)
        self.port = self._httpd.port

    def url(self, path="/jwks"):
        return f"https://127.0.0.1:{self.port}{path}"

    def note_accept(self):
        with self._lock:
            self.accepts += 1

    def note_request(self, mode):
        with self._lock:
            self.requests[mode] += 1

    def note_streamed(self, n):
        with self._lock:
            self.streamed.append(n)

    def stop(self):
        self.stopping.set()
        self._httpd.stop()


class FaultRig:
    def __init__(self, httpd, servers, key, issuers):
        self.h = httpd
        self.servers = servers   # (mode, "warm"|"cold") -> FaultServer
        self.key = key
        self.issuers = issuers   # (mode, phase) -> issuer

    def minter(self, mode, phase):
        return Minter(None, issuer=self.issuers[(mode, phase)])

    def token(self, mode, phase, **claims):
        return self.minter(mode, phase).token("ES256", key=self.key, **claims)


@pytest.fixture(scope="module")
def rig(httpd_factory, tls, tmp_root, mcp_auth_so):
    key = SigningKey("ES256", f"fault-{secrets.token_hex(6)}", ec.generate_private_key(ec.SECP256R1()))
    good = {"keys": [key.jwk]}
    untrusted = _untrusted_cert_files(tmp_root / "untrusted-tls")
    servers, issuers, locations = {}, {}, {}
    try:
        for mode in MODES:
            for phase in ("warm", "cold"):
                srv = FaultServer(tls, untrusted, good, mode="ok" if phase == "warm" else mode)
                servers[(mode, phase)] = srv
                issuers[(mode, phase)] = f"https://{phase}-{mode}.fault.example/realm"
                locations[f"/{phase}-{mode}"] = mcp_location(issuers[(mode, phase)], srv.url("/jwks"))
        # Discovery (no jwks_uri) against a slow IdP.
        disc = FaultServer(tls, untrusted, good, mode="slow")
        servers[("slow", "discovery")] = disc
        issuers[("slow", "discovery")] = disc.url("/realm")
        disc.discovery_issuer = disc.url("/realm")
        locations["/discovery-slow"] = "\n".join([
            "AuthType mcp-jwt", 'AuthName "mcp"', f"MCPAuthIssuer {disc.url('/realm')}",
            f"MCPAuthAudience {AUDIENCE}", "Require valid-user"])
        h = httpd_factory.start(locations, server_conf=FAULT_CONF, module_so=mcp_auth_so, name="faults")
        try:
            yield FaultRig(h, servers, key, issuers)
        finally:
            h.stop()
    finally:
        for srv in servers.values():
            srv.stop()


def timed_get(port, path, token, timeout=30):
    """(status, headers dict lower-case, seconds) or (None, repr(exception), seconds)."""
    t0 = time.monotonic()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", path, headers={"Authorization": f"Bearer {token}", "Connection": "close"})
        resp = conn.getresponse()
        resp.read()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, time.monotonic() - t0
    except Exception as e:  # noqa: BLE001 - reported by the caller
        return None, repr(e), time.monotonic() - t0
    finally:
        conn.close()


def fetch_failed_lines(log, url):
    return [l for l in log.splitlines() if "JWKS fetch failed" in l and url in l]


# ---------------------------------------------------------------------------
# (a) warm, then fault: stale keys keep valid tokens working
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("mode", MODES)
@pytest.mark.slow
def test_warm_then_fault_keeps_serving_with_stale_keys(rig, mode):
    h = rig.h
    srv = rig.servers[(mode, "warm")]
    path = f"/warm-{mode}"
    url = srv.url("/jwks")

    status, hdrs, _ = timed_get(h.port, path, rig.token(mode, "warm"))
    assert status == 200, f"healthy IdP, first request: {status} {hdrs}\n{tail(h.log_text())}"
    assert srv.requests["ok"] >= 1, "the JWKS was not fetched from the healthy IdP"
    time.sleep(1.1)  # past MCPAuthJWKSCacheTTL 1: the next request refreshes
    status, hdrs, _ = timed_get(h.port, path, rig.token(mode, "warm"))
    assert status == 200, (status, hdrs)

    mark = h.log_offset()
    accepts0 = srv.accepts
    tokens = [rig.token(mode, "warm", sub=f"w{i}") for i in range(400)]
    results, lock = [], threading.Lock()
    stop = threading.Event()
    srv.mode = mode
    t_fault = time.monotonic()

    def worker(n):
        i = n
        while not stop.is_set():
            r = timed_get(h.port, path, tokens[i % len(tokens)])
            i += 4
            with lock:
                results.append(r)

    threads = [threading.Thread(target=worker, args=(n,), daemon=True) for n in range(4)]
    for t in threads:
        t.start()
    # Long enough for several refresh attempts (TTL 1, cooldown 1), and for
    # a slow fetch to run into the 2 s timeout at least once.
    time.sleep(3.5)
    stop.set()
    for t in threads:
        t.join(HTTP_TIMEOUT + 15)
    fault_seconds = time.monotonic() - t_fault
    srv.mode = "ok"
    assert not any(t.is_alive() for t in threads), "client threads hung"

    statuses = Counter(r[0] for r in results)
    lat = sorted(r[2] for r in results)
    # Requests, not only connections: a refresh may reuse a kept-alive one.
    attempts = max(srv.accepts - accepts0, srv.requests[mode])
    log = h.wait_for_log("JWKS fetch failed", since=mark)
    failed = fetch_failed_lines(log, url)
    print(f"\n[warm {mode}] {len(results)} requests in {fault_seconds:.1f} s: {dict(statuses)}; "
          f"latency median {lat[len(lat) // 2] * 1000:.0f} ms max {lat[-1] * 1000:.0f} ms; "
          f"IdP attempts (connections or requests) during the fault: {attempts}; "
          f"'JWKS fetch failed' lines: {len(failed)}"
          + (f"; first: {failed[0].split('] ', 3)[-1][:300]}" if failed else ""))

    problems = []
    if set(statuses) != {200}:
        bad = [r for r in results if r[0] != 200][:5]
        problems.append(f"valid tokens must keep 200 on stale keys: {dict(statuses)}; e.g. {bad}")
    if len(results) < 20:
        problems.append(f"only {len(results)} requests during the fault")
    if attempts < 1:
        problems.append("no JWKS refresh reached the IdP during the fault (TTL 1 / cooldown 1)")
    if not failed:
        problems.append(f"no 'JWKS fetch failed' line naming {url}:\n{tail(log)}")
    else:
        if not any(any(c in l for c in CAUSES[mode]) for l in failed):
            problems.append(f"the log does not name the cause (one of {CAUSES[mode]}): {failed[:3]}")
        if not any("still using the last good keys" in l for l in failed):
            problems.append(f"the log does not say the last good keys are still used: {failed[:3]}")
    if mode == "slow" and lat[-1] > HTTP_TIMEOUT + 2:
        problems.append(f"a request waited {lat[-1]:.1f} s on the slow IdP (timeout {HTTP_TIMEOUT} s)")
    crashes = crash_lines(h.log_text())
    if crashes:
        problems.append(f"crash lines: {crashes[:5]}")
    assert not problems, "\n".join(problems)

    # The IdP is healthy again: the next refresh succeeds.
    time.sleep(1.1)
    status, hdrs, _ = timed_get(h.port, path, rig.token(mode, "warm"))
    assert status == 200, (status, hdrs)


# ---------------------------------------------------------------------------
# (b) cold start with the fault: 503 + Retry-After, quickly, no hung worker
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("mode", MODES)
@pytest.mark.slow
def test_cold_start_with_fault_answers_503_quickly(rig, mode):
    h = rig.h
    srv = rig.servers[(mode, "cold")]
    path = f"/cold-{mode}"
    url = srv.url("/jwks")
    assert srv.accepts == 0, f"the cold IdP was contacted before the first request ({srv.accepts})"

    n = 30
    tokens = [rig.token(mode, "cold", sub=f"c{i}") for i in range(n)]
    barrier = threading.Barrier(n)
    results = [None] * n
    mark = h.log_offset()

    def one(i):
        try:
            barrier.wait(10)
        except threading.BrokenBarrierError:
            pass
        results[i] = timed_get(h.port, path, tokens[i], timeout=HTTP_TIMEOUT * 3 + 20)

    threads = [threading.Thread(target=one, args=(i,), daemon=True) for i in range(n)]
    t0 = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join(HTTP_TIMEOUT * 3 + 30)
    wall = time.monotonic() - t0
    hung = [i for i, t in enumerate(threads) if t.is_alive()]

    answered = [r for r in results if r is not None and r[0] is not None]
    lat = sorted(r[2] for r in answered) or [float("nan")]
    statuses = Counter(r[0] if r else "no answer" for r in results)
    retry_after = Counter(r[1].get("retry-after") for r in answered)
    log = h.wait_for_log("JWKS fetch failed", since=mark)
    failed = fetch_failed_lines(log, url)
    print(f"\n[cold {mode}] {dict(statuses)} Retry-After {dict(retry_after)}; latency min "
          f"{lat[0] * 1000:.0f} ms median {lat[len(lat) // 2] * 1000:.0f} ms max {lat[-1] * 1000:.0f} ms "
          f"(wall {wall:.1f} s); IdP connections {srv.accepts}; 'JWKS fetch failed' lines {len(failed)}"
          + (f"; first: {failed[0].split('] ', 3)[-1][:300]}" if failed else ""))

    problems = []
    if hung:
        problems.append(f"{len(hung)} of {n} requests never answered (hung workers?)")
    errs = [r for r in results if r is None or r[0] is None]
    if errs:
        problems.append(f"{len(errs)} requests failed at the socket level: {errs[:3]}")
    if set(statuses) != {503}:
        problems.append(f"expected 503 for all {n}: {dict(statuses)}")
    if any(not r[1].get("retry-after") for r in answered if r[0] == 503):
        problems.append(f"503 without Retry-After: {dict(retry_after)}")
    if answered and lat[-1] > HTTP_TIMEOUT + 2:
        problems.append(f"slowest answer {lat[-1]:.2f} s > MCPAuthHTTPTimeout {HTTP_TIMEOUT} + 2 s")
    if not failed:
        problems.append(f"no 'JWKS fetch failed' line naming {url}:\n{tail(log)}")
    elif not any(any(c in l for c in CAUSES[mode]) for l in failed):
        problems.append(f"the log does not name the cause (one of {CAUSES[mode]}): {failed[:3]}")
    if srv.accepts < 1:
        problems.append("the IdP was never contacted")
    if srv.accepts > 6:
        problems.append(f"{srv.accepts} IdP connections for one cold start of {n} requests "
                        "(expected one fetch, plus at most a few redirects/retries)")
    crashes = crash_lines(h.log_text())
    if crashes:
        problems.append(f"crash lines: {crashes[:5]}")
    assert not problems, "\n".join(problems)

    # Recovery: once the IdP answers again, tokens are accepted within the
    # cooldown (1 s) plus a little.
    srv.mode = "ok"
    t0 = time.monotonic()
    status = None
    while time.monotonic() - t0 < 6:
        status, hdrs, _ = timed_get(h.port, path, rig.token(mode, "cold"))
        if status == 200:
            break
        time.sleep(0.25)
    assert status == 200, f"no recovery within 6 s after the IdP came back: {status}"
    print(f"[cold {mode}] recovered after {time.monotonic() - t0:.2f} s")


@pytest.mark.slow
def test_cold_start_discovery_with_slow_idp(rig):
    """Without jwks_uri the module asks two discovery URLs (OpenID, then
    RFC 8414), each bounded by MCPAuthHTTPTimeout: a cold start against a
    slow IdP answers 503 after at most both of them, never hangs."""
    h = rig.h
    srv = rig.servers[("slow", "discovery")]
    n = 30
    tokens = [rig.token("slow", "discovery", sub=f"d{i}") for i in range(n)]
    barrier = threading.Barrier(n)
    results = [None] * n
    mark = h.log_offset()

    def one(i):
        try:
            barrier.wait(10)
        except threading.BrokenBarrierError:
            pass
        results[i] = timed_get(h.port, "/discovery-slow", tokens[i], timeout=HTTP_TIMEOUT * 3 + 20)

    threads = [threading.Thread(target=one, args=(i,), daemon=True) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(HTTP_TIMEOUT * 3 + 30)
    answered = [r for r in results if r is not None and r[0] is not None]
    lat = sorted(r[2] for r in answered) or [float("nan")]
    statuses = Counter(r[0] if r else "no answer" for r in results)
    log = h.wait_for_log("Discovery failed", since=mark)
    disc_lines = [l for l in log.splitlines() if "Discovery failed" in l]
    print(f"\n[cold discovery slow] {dict(statuses)}; latency min {lat[0] * 1000:.0f} ms max "
          f"{lat[-1] * 1000:.0f} ms; IdP requests {dict(srv.requests)}; "
          + (disc_lines[0].split("] ", 3)[-1][:400] if disc_lines else "no 'Discovery failed' line"))
    problems = []
    if set(statuses) != {503}:
        problems.append(f"expected 503 for all {n}: {dict(statuses)} {[r for r in results if not r or r[0] != 503][:3]}")
    if any(not r[1].get("retry-after") for r in answered if r[0] == 503):
        problems.append("503 without Retry-After")
    if answered and lat[-1] > 2 * HTTP_TIMEOUT + 2:
        problems.append(f"slowest answer {lat[-1]:.2f} s > two discovery calls of {HTTP_TIMEOUT} s + 2 s")
    if not disc_lines:
        problems.append(f"no 'Discovery failed' line:\n{tail(log)}")
    if sum(srv.requests.values()) > 4:
        problems.append(f"{dict(srv.requests)} IdP requests for one cold start (2 discovery URLs expected)")
    crashes = crash_lines(h.log_text())
    if crashes:
        problems.append(f"crash lines: {crashes[:5]}")
    assert not problems, "\n".join(problems)

    srv.mode = "ok"
    t0 = time.monotonic()
    status = None
    while time.monotonic() - t0 < 8:
        status, hdrs, _ = timed_get(h.port, "/discovery-slow", rig.token("slow", "discovery"))
        if status == 200:
            break
        time.sleep(0.25)
    assert status == 200, f"no recovery within 8 s after the IdP came back: {status}"


# ---------------------------------------------------------------------------
# Part 2: load with wrk
# ---------------------------------------------------------------------------

def ensure_wrk() -> str:
    path = shutil.which("wrk")
    if path:
        return path
    if os.geteuid() == 0 and shutil.which("apt-get"):
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        r = subprocess.run(["apt-get", "install", "-y", "--no-install-recommends", "wrk"], capture_output=True,
                           text=True, timeout=300, env=env)
        if r.returncode != 0:
            subprocess.run(["apt-get", "update"], capture_output=True, text=True, timeout=300, env=env)
            r = subprocess.run(["apt-get", "install", "-y", "--no-install-recommends", "wrk"],
                               capture_output=True, text=True, timeout=300, env=env)
        path = shutil.which("wrk")
        if path:
            return path
        pytest.fail(f"wrk is not installed and apt-get install wrk failed:\n{r.stdout[-2000:]}\n{r.stderr[-2000:]}",
                    pytrace=False)
    pytest.fail("wrk is not installed (Debian package 'wrk'); install it or run the tests as root",
                pytrace=False)


LUA_TEMPLATE = r"""
-- generated by test_faults.py
local tokens = {%(tokens)s}
local classes = {%(classes)s}
local seq = {%(seq)s}
local extra = %(extra)s
local threads = {}
local nthreads = 0

function setup(thread)
  thread:set("id", nthreads)
  nthreads = nthreads + 1
  table.insert(threads, thread)
end

function init(args)
  counts = {}
  reqs = {}
  for j = 1, #tokens do
    local h = {["Authorization"] = "Bearer " .. tokens[j], ["X-Class"] = classes[j]}
    for k, v in pairs(extra) do h[k] = v end
    reqs[j] = wrk.format("GET", "/index.txt", h)
  end
  pos = (id * 997) %% #seq
end

function request()
  pos = pos %% #seq + 1
  return reqs[seq[pos]]
end

function response(status, headers, body)
  local k = (headers["X-Class"] or "?") .. " " .. status
  counts[k] = (counts[k] or 0) + 1
end

function done(summary, latency, requests)
  for _, t in ipairs(threads) do
    local c = t:get("counts")
    if c then
      for k, v in pairs(c) do io.write("CLASS ", k, " ", v, "\n") end
    end
  end
  local e = summary.errors
  io.write("ERRORS ", e.connect, " ", e.read, " ", e.write, " ", e.status, " ", e.timeout, "\n")
  io.write("REQUESTS ", summary.requests, "\n")
  io.write(string.format("LATENCY_US %%d %%d %%d %%d %%d\n", latency.mean, latency:percentile(50),
                         latency:percentile(99), latency:percentile(99.9), latency.max))
end
"""


def _lua_str(s):
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def write_wrk_script(path: Path, token_classes, seq, extra_headers=None):
    """token_classes: [(token, class)]; seq: indices (0-based) into it."""
    extra = "{" + ", ".join(f"[{_lua_str(k)}] = {_lua_str(v)}" for k, v in (extra_headers or {}).items()) + "}"
    path.write_text(LUA_TEMPLATE % {
        "tokens": ",\n".join(_lua_str(t) for t, _ in token_classes),
        "classes": ",".join(_lua_str(c) for _, c in token_classes),
        "seq": ",".join(str(i + 1) for i in seq),
        "extra": extra,
    })


class WrkResult:
    def __init__(self, text):
        self.text = text
        self.by_class = {}  # class -> Counter(status -> n)
        self.errors = None
        self.requests = None
        self.latency_us = None
        for line in text.splitlines():
            parts = line.split()
            if parts[:1] == ["CLASS"] and len(parts) == 4:
                self.by_class.setdefault(parts[1], Counter())[int(parts[2])] += int(parts[3])
            elif parts[:1] == ["ERRORS"] and len(parts) == 6:
                self.errors = dict(zip(["connect", "read", "write", "status", "timeout"], map(int, parts[1:])))
            elif parts[:1] == ["REQUESTS"]:
                self.requests = int(parts[1])
            elif parts[:1] == ["LATENCY_US"]:
                self.latency_us = dict(zip(["mean", "p50", "p99", "p999", "max"], map(int, parts[1:])))

    @property
    def responses(self):
        return sum(sum(c.values()) for c in self.by_class.values())

    def statuses(self):
        total = Counter()
        for c in self.by_class.values():
            total.update(c)
        return total

    def summary(self):
        return (f"responses={self.responses} by class={ {k: dict(v) for k, v in sorted(self.by_class.items())} } "
                f"socket errors={self.errors} latency(us)={self.latency_us}")


def start_wrk(wrk, script, port, *, connections=50, threads=2, duration=180, timeout_s=10):
    cmd = [wrk, f"-t{threads}", f"-c{connections}", f"-d{duration}s", f"--timeout={timeout_s}s", "-s", str(script),
           f"http://127.0.0.1:{port}/index.txt"]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def finish_wrk(proc, interrupt=True, timeout=30) -> WrkResult:
    if interrupt and proc.poll() is None:
        proc.send_signal(signal.SIGINT)
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, _ = proc.communicate(timeout=10)
        pytest.fail(f"wrk did not stop within {timeout} s:\n{out[-3000:]}")
    return WrkResult(out)


class AccessLogCounter:
    """Counts lines of the access log incrementally."""

    def __init__(self, path: Path):
        self.path = path
        self.offset = 0
        self.lines = 0
        self.statuses = Counter()

    def poll(self):
        try:
            with open(self.path, "rb") as f:
                f.seek(self.offset)
                data = f.read()
        except FileNotFoundError:
            return self.lines
        end = data.rfind(b"\n") + 1
        chunk = data[:end]
        self.offset += end
        self.lines += chunk.count(b"\n")
        for line in chunk.split(b"\n"):
            parts = line.rsplit(b" ", 3)
            if len(parts) == 4 and parts[2].isdigit():
                self.statuses[int(parts[2])] += 1
        return self.lines


# -- IPC attribution (SysV segments, semaphores, POSIX /dev/shm) -----------

def ipc_snapshot():
    def ids(flag):
        out = subprocess.run(["ipcs", flag], capture_output=True, text=True, timeout=10).stdout
        rows = set()
        for line in out.splitlines():
            parts = line.split()
            if len(parts) >= 2 and parts[0].startswith("0x") and parts[1].isdigit():
                rows.add(int(parts[1]))
        return rows

    devshm = set(os.listdir("/dev/shm")) if os.path.isdir("/dev/shm") else set()
    return {"shm": ids("-m"), "sem": ids("-s"), "devshm": devshm}


def _sem_last_pids(semid):
    out = subprocess.run(["ipcs", "-s", "-i", str(semid)], capture_output=True, text=True, timeout=10).stdout
    rows = [l.split() for l in out.splitlines()]
    return {int(r[4]) for r in rows if len(r) == 5 and all(x.isdigit() for x in r)}


def _shm_pids():
    """shmid -> {cpid, lpid}"""
    out = subprocess.run(["ipcs", "-m", "-p"], capture_output=True, text=True, timeout=10).stdout
    res = {}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) >= 4 and parts[0].isdigit() and parts[2].isdigit() and parts[3].isdigit():
            res[int(parts[0])] = {int(parts[2]), int(parts[3])}
    return res


def _mapped_devshm(pids):
    names = set()
    for pid in pids:
        try:
            with open(f"/proc/{pid}/maps") as f:
                for line in f:
                    if "/dev/shm/" in line:
                        names.add(line.split("/dev/shm/", 1)[1].split()[0])
        except OSError:
            pass
    return names


def owned_ipc(pids):
    """IPC objects used right now by these processes."""
    snap = ipc_snapshot()
    shm_pids = _shm_pids()
    return {"shm": {i for i in snap["shm"] if shm_pids.get(i, set()) & pids},
            "sem": {i for i in snap["sem"] if _sem_last_pids(i) & pids},
            "devshm": _mapped_devshm(pids)}


def _alive(pid):
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        return True


def foreign_explained(new, our_pids):
    """Objects that appeared meanwhile but belong to some other live process."""
    all_pids = {int(d) for d in os.listdir("/proc") if d.isdigit()} - our_pids
    mapped = _mapped_devshm(all_pids) if new["devshm"] else set()
    shm_pids = _shm_pids()
    return {"shm": {i for i in new["shm"] if any(_alive(p) for p in shm_pids.get(i, set()) - our_pids)},
            "sem": {i for i in new["sem"] if any(_alive(p) for p in _sem_last_pids(i) - our_pids)},
            "devshm": new["devshm"] & mapped}


# -- the load httpd ----------------------------------------------------------

def load_server_conf(jwks_uri):
    return "\n".join([
        "MaxConnectionsPerChild 0",
        "MaxKeepAliveRequests 0",
        # Every child has more worker threads than wrk has connections: when
        # all workers of a child are busy, the event MPM closes the keep-alive
        # connections it holds (its overload behaviour), which wrk counts as
        # read errors -- and connections are not spread evenly over children.
        "StartServers 4",
        "ServerLimit 4",
        "ThreadsPerChild 64",
        "ThreadLimit 64",
        "MaxRequestWorkers 256",
        "MinSpareThreads 64",
        "MaxSpareThreads 256",
        # Semaphores are visible to ipcs: the leftover check covers them too.
        "Mutex sysvsem mcp-auth-shm",
        # 1,500 distinct valid tokens cycle through 512 slots: constant eviction.
        "MCPAuthCacheEntries 512",
        "MCPAuthHTTPTimeout 3",
        # Echo the class so wrk can count statuses per token class.  "early"
        # (post_read_request): the module answers refusals itself, before
        # mod_headers' output filter would be inserted.
        'Header always set X-Class "expr=%{req:X-Class}" early',
        '<Location "/index.txt">',
        mcp_location(jwks_uri=jwks_uri),
        "</Location>",
    ])


def token_mix(minter, keys, n_fresh=1500):
    """[(token, class)] and the class of each; a forged token never verifies."""
    now = int(time.time())
    out = []
    for alg in ["RS256", "PS256", "ES256", "ES384", "EdDSA", "RS512"]:
        out.append((minter.token(alg, sub=f"load-{alg.lower()}"), "valid"))
    for i in range(n_fresh):
        alg = "ES256" if i % 2 else "EdDSA"
        out.append((minter.token(alg, sub=f"fresh{i}"), "valid_nocache"))
    for alg in ["RS256", "ES256", "EdDSA"]:
        out.append((minter.token(alg, iat=now - 7200, exp=now - 3600), "expired"))
    out.append((minter.token("RS256", key=keys.rs256_impostor), "forged"))
    forged_es = SigningKey("ES256", keys["ES256"].kid, ec.generate_private_key(ec.SECP256R1()))
    out.append((minter.token("ES256", key=forged_es), "forged"))
    good = minter.token("EdDSA")
    h, p, s = good.split(".")
    tampered = json.loads(b64url_decode(p))
    tampered["sub"] = "mallory"
    out.append((make_jws(h, tampered, signature=s), "forged"))
    rnd = random.Random(7)
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    out.append(("garbage", "garbage"))
    out.append(("a.b.c", "garbage"))
    out.append(("eyJhbGciOiJSUzI1NiJ9.e30.AAAA", "garbage"))
    out.append(("....", "garbage"))  # five parts: a JWE
    out.append(("".join(rnd.choice(alphabet) for _ in range(300)), "garbage"))
    out.append((".".join("".join(rnd.choice(alphabet) for _ in range(120)) for _ in range(3)), "garbage"))
    return out


def build_sequence(mix, length=6000, seed=11):
    """Indices into mix: 30 % valid, 25 % valid_nocache (each once), 15 % each of
    expired, forged, garbage."""
    by_class = {}
    for i, (_, c) in enumerate(mix):
        by_class.setdefault(c, []).append(i)
    rnd = random.Random(seed)
    seq = []
    share = {"valid": 0.30, "expired": 0.15, "forged": 0.15, "garbage": 0.15}
    for c, f in share.items():
        idx = by_class[c]
        seq += [idx[k % len(idx)] for k in range(int(length * f))]
    seq += by_class["valid_nocache"]
    rnd.shuffle(seq)
    return seq


EXPECTED = {"valid": 200, "valid_nocache": 200, "expired": 401, "forged": 401, "garbage": 401}


def check_classes(res: WrkResult):
    problems = []
    for cls, counts in res.by_class.items():
        want = EXPECTED.get(cls)
        if want is None:
            problems.append(f"responses of unknown class {cls!r}: {dict(counts)}")
            continue
        wrong = {s: n for s, n in counts.items() if s != want}
        if wrong:
            problems.append(f"{cls}: expected all {want}, got {dict(counts)}")
    missing = set(EXPECTED) - set(res.by_class)
    if missing:
        problems.append(f"no responses at all for {sorted(missing)}")
    five = {s: n for s, n in res.statuses().items() if s >= 500}
    if five:
        problems.append(f"5xx responses: {five}")
    if res.errors is None:
        problems.append(f"wrk printed no error counts:\n{res.text[-2000:]}")
    elif any(n for k, n in res.errors.items() if k != "status"):  # "status" counts non-2xx/3xx
        problems.append(f"socket errors/timeouts: {res.errors}")
    return problems


def sanity_check_classes(h, mix):
    """One request per class through Python first: a setup mistake fails here
    with a readable response instead of as 100,000 wrong counters."""
    seen = set()
    for tok, cls in mix:
        if cls in seen:
            continue
        seen.add(cls)
        conn = http.client.HTTPConnection("127.0.0.1", h.port, timeout=20)
        try:
            conn.request("GET", "/index.txt", headers={"Authorization": f"Bearer {tok}", "X-Class": cls})
            r = conn.getresponse()
            body = r.read()
            assert r.status == EXPECTED[cls], (cls, r.status, r.getheaders(), body[:300])
            assert r.getheader("X-Class") == cls, f"X-Class is not echoed: {r.getheaders()}"
            if r.status == 200:
                assert body == b"ok\n", body[:200]
        finally:
            conn.close()


@pytest.fixture
def load_httpd(httpd_factory, jwks_server, mcp_auth_so):
    started = []

    def start(name):
        h = httpd_factory.start({"/mcp": mcp_location(jwks_uri=jwks_server.jwks_uri)},
                                server_conf=load_server_conf(jwks_server.jwks_uri), module_so=mcp_auth_so, name=name)
        started.append(h)
        return h

    try:
        yield start
    finally:
        for h in started:
            h.stop()


@pytest.mark.slow
def test_load_100k_mixed_tokens_no_5xx_no_leak(load_httpd, minter, keys):
    wrk = ensure_wrk()
    h = load_httpd("load")
    mix = token_mix(minter, keys)
    sanity_check_classes(h, mix)
    seq = build_sequence(mix)
    script = h.root / "load.lua"
    write_wrk_script(script, mix, seq)

    target_first, target_total = 20_000, 100_000
    acc = AccessLogCounter(h.access_log)
    base_lines = acc.poll()
    pids_start = set(children_of(h.pid))
    mark = h.log_offset()
    proc = start_wrk(wrk, script, h.port, connections=50, threads=2, duration=240)
    t0 = time.monotonic()
    rss_first = rss_last = None
    t_first = t_last = None
    try:
        deadline = t0 + 200
        while time.monotonic() < deadline:
            n = acc.poll() - base_lines
            if rss_first is None and n >= target_first:
                rss_first, t_first = worker_rss(h), time.monotonic() - t0
            if n >= target_total:
                rss_last, t_last = worker_rss(h), time.monotonic() - t0
                break
            if proc.poll() is not None:
                break
            time.sleep(0.05)
    finally:
        res = finish_wrk(proc)
    elapsed = time.monotonic() - t0
    served = acc.poll() - base_lines
    log = h.log_since(mark)

    rate = served / elapsed if elapsed else 0
    print(f"\n[load] {served} requests served in {elapsed:.1f} s ({rate:.0f}/s); wrk: {res.summary()}")
    print(f"[load] access-log statuses {dict(acc.statuses)}")
    print(f"[load] RSS kB at request ~{target_first} (t={t_first}): {rss_first}")
    print(f"[load] RSS kB at request ~{target_total} (t={t_last}): {rss_last}")

    problems = []
    if rss_last is None:
        problems.append(f"only {served} requests within the time limit; wrk output:\n{res.text[-2000:]}")
    problems += check_classes(res)
    if res.responses < target_total * 0.99:
        problems.append(f"wrk counted only {res.responses} responses")
    crashes = crash_lines(log)
    if crashes:
        problems.append(f"crash lines ({len(crashes)}): {crashes[:5]}")
    errors = [l for l in log.splitlines() if "[mcp_auth:error]" in l or "[mcp_auth:crit]" in l]
    if errors:
        problems.append(f"mcp_auth error lines ({len(errors)}): {errors[:3]}")
    if rss_first and rss_last:
        common = set(rss_first) & set(rss_last)
        if set(rss_first) != set(rss_last):
            problems.append(f"httpd children changed during the load: {sorted(rss_first)} -> {sorted(rss_last)}")
        before = sum(rss_first[p] for p in common)
        after = sum(rss_last[p] for p in common)
        growth = (after - before) / before * 100 if before else 0
        per_child = {p: f"{rss_first[p]}->{rss_last[p]} ({(rss_last[p] - rss_first[p]) / rss_first[p] * 100:+.1f}%)"
                     for p in sorted(common)}
        print(f"[load] RSS growth of the children between the samples: {before} -> {after} kB "
              f"({growth:+.2f} %); per child {per_child}")
        if growth >= 5:
            problems.append(f"RSS of the httpd children grew {growth:.1f} % (>= 5 %): {per_child}")
    pids_end = set(children_of(h.pid))
    if pids_start != pids_end:
        print(f"[load] children at start {sorted(pids_start)}, at end {sorted(pids_end)}")
    assert not problems, "\n".join(problems)


@pytest.mark.slow
def test_graceful_restarts_under_load_then_stop_leaves_no_ipc(load_httpd, minter, keys):
    wrk = ensure_wrk()
    before = ipc_snapshot()
    h = load_httpd("graceful")
    mix = token_mix(minter, keys, n_fresh=300)
    sanity_check_classes(h, mix)
    seq = build_sequence(mix, length=3000)
    script = h.root / "graceful.lua"
    # A new connection per request: a graceful restart closes idle keep-alive
    # connections, and a request racing that close is lost by any HTTP/1.1
    # client that does not retry -- httpd's behaviour, not the module's.
    write_wrk_script(script, mix, seq, extra_headers={"Connection": "close"})

    our_pids = {h.pid} | set(children_of(h.pid))
    used = owned_ipc(our_pids)
    mark = h.log_offset()
    # wrk runs until interrupted, 1.5 s after the fifth restart.
    proc = start_wrk(wrk, script, h.port, connections=50, threads=2, duration=120)
    graceful = []
    try:
        time.sleep(1.5)
        for _ in range(5):
            t_next = time.monotonic() + 1.4
            graceful.append(subprocess.run([APACHE2, "-f", str(h.conf), "-k", "graceful"], capture_output=True,
                                           text=True, timeout=30))
            time.sleep(0.4)
            our_pids |= set(children_of(h.pid))
            u = owned_ipc(our_pids)
            for k in used:
                used[k] |= u[k]
            time.sleep(max(0.0, t_next - time.monotonic()))
        time.sleep(1.5)
        alive = proc.poll() is None
    finally:
        res = finish_wrk(proc, interrupt=True, timeout=40)
    assert alive, f"wrk ended before the restarts were over:\n{res.text[-2000:]}"
    our_pids |= set(children_of(h.pid))
    u = owned_ipc(our_pids)
    for k in used:
        used[k] |= u[k]
    log = h.log_since(mark)
    restarts = log.count("resuming normal operations")
    print(f"\n[graceful] {restarts} graceful restarts during the load; wrk: {res.summary()}")

    problems = []
    for g in graceful:
        if g.returncode != 0:
            problems.append(f"apache2 -k graceful failed: {g.stderr}")
    if restarts < 5:
        problems.append(f"{restarts} graceful restarts in the log, 5 expected:\n{tail(log)}")
    problems += check_classes(res)
    valid_bad = sum(n for c in ("valid", "valid_nocache") for s, n in res.by_class.get(c, {}).items() if s != 200)
    if valid_bad:
        problems.append(f"{valid_bad} valid-token requests did not get 200")
    if res.responses < 1000:
        problems.append(f"only {res.responses} responses during the graceful restarts")
    crashes = crash_lines(log)
    if crashes:
        problems.append(f"crash lines: {crashes[:5]}")
    if not (used["devshm"] or used["shm"]):
        problems.append(f"no shared memory segment of this httpd found while it ran: {used}")
    if not used["sem"]:
        problems.append(f"Mutex sysvsem configured but no semaphore of this httpd found: {used}")

    h.stop()
    time.sleep(0.2)
    after = ipc_snapshot()
    left = {k: used[k] & after[k] for k in used}
    new = {k: after[k] - before[k] for k in before}
    unexplained = {k: new[k] - foreign_explained(new, our_pids)[k] for k in new}
    print(f"[graceful] IPC used by this httpd: {used}; left after stop: {left}; "
          f"new since start (any owner): {new}; not owned by a live process: {unexplained}")
    if any(left.values()):
        problems.append(f"IPC objects of this httpd left after -k stop: {left}")
    if any(unexplained.values()):
        problems.append(f"IPC objects created since this httpd started, owned by no live process: {unexplained}")
    assert not problems, "\n".join(problems)
