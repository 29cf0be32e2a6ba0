# SPDX-License-Identifier: Apache-2.0
"""Availability against a slow, hung or merely remote IdP (issue 15, items 3, 4
and 13): what an unauthenticated caller, a hung IdP and an operator's stop
may cost the server, each bounded.

* CPU per random opaque token over HTTPS, once warm (the module keeps its
  curl handles: connections, DNS and the parsed CA bundle survive), with a
  CA file the size of the system bundle; the IdP sees reused connections.
* A hung introspection endpoint flooded with random tokens by 50
  connections: a static page and a cached JWT stay fast, later tokens get
  503 + Retry-After at once (per-endpoint backoff, per-process cap), and
  the IdP is used again once it answers.
* Discovery followed by the JWKS: both together within one
  MCPAuthHTTPTimeout.
* `apache2 -k stop` (and graceful-stop) with requests waiting on a hung IdP
  returns within 2 s, without SIGKILL.

The IdP here (``IdP``) is a small threaded HTTP(S) server: it counts TCP
accepts and requests, answers introspection per token (inactive by default)
and discovery/JWKS documents, and can hang every request until released.
"""

import http.client
import json
import os
import secrets
import shutil
import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest

from harness.procs import children_of as children, cpu_ticks
from harness.servers import QuietHandler, ThreadedServer, server_context
from conftest import APACHE2, AUDIENCE, Minter, mcp_location, pid_alive

SANITIZED = bool(os.environ.get("MCP_AUTH_SANITIZER"))
SYSTEM_CA = Path("/etc/ssl/certs/ca-certificates.crt")


def opaque():
    return "opq" + secrets.token_urlsafe(24)


# ---------------------------------------------------------------------------
# The IdP
# ---------------------------------------------------------------------------

class _Handler(QuietHandler):
    timeout = 60  # HTTP/1.1 keep-alive: the module may reuse connections

    def do_GET(self):
        self.server.owner.handle(self, None)

    def do_POST(self):
        n = int(self.headers.get("Content-Length") or 0)
        form = self.rfile.read(n).decode() if n else ""
        fields = dict(kv.split("=", 1) for kv in form.split("&") if "=" in kv)
        self.server.owner.handle(self, fields.get("token"))


class IdP:
    def __init__(self, tls=None):
        self.ctx = None
        if tls is not None:
            self.ctx = server_context(tls.cert_pem, tls.key_pem)
        self.lock = threading.Lock()
        self.accepts = 0
        self.requests = 0
        self.in_flight = 0
        self.active = {}      # token -> sub
        self.docs = {}        # path -> (delay, dict)
        self.released = threading.Event()
        self.released.set()   # not hung
        self.closing = threading.Event()
        self.srv = ThreadedServer(self, _Handler, ssl_context=self.ctx, poll_interval=0.05,
                                  on_accept=self.note_accept, name="avail-idp")
        self.port = self.srv.port

    @property
    def base(self):
        return f"{'https' if self.ctx else 'http'}://127.0.0.1:{self.port}"

    def note_accept(self):
        with self.lock:
            self.accepts += 1

    def hang(self):
        self.released.clear()

    def release(self):
        self.released.set()

    def handle(self, h, token):
        path = h.path.split("?", 1)[0]
        with self.lock:
            self.requests += 1
            self.in_flight += 1
        try:
            doc = self.docs.get(path)
            if doc is not None and doc[0] is None:
                self.closing.wait(60)  # this document never comes
                return
            if doc is not None:
                time.sleep(doc[0])
                body = doc[1]
            else:
                while not self.released.wait(0.05):
                    if self.closing.is_set():
                        return
                sub = self.active.get(token)
                body = {"active": True, "sub": sub} if sub else {"active": False}
            out = json.dumps(body).encode()
            h.send_response(200)
            h.send_header("Content-Type", "application/json")
            h.send_header("Content-Length", str(len(out)))
            h.end_headers()
            h.wfile.write(out)
        except OSError:
            pass
        finally:
            with self.lock:
                self.in_flight -= 1

    def stop(self):
        self.closing.set()
        self.released.set()
        self.srv.shutdown()
        self.srv.server_close()


@pytest.fixture
def idp():
    srv = IdP()
    yield srv
    srv.stop()


@pytest.fixture
def tls_idp(tls):
    srv = IdP(tls)
    yield srv
    srv.stop()


# ---------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------

def get(port, path, token=None, timeout=30, conn=None):
    """(status, retry_after, seconds); status None on a socket error."""
    own = conn is None
    if own:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    if own:
        headers["Connection"] = "close"
    t0 = time.monotonic()
    try:
        conn.request("GET", path, headers=headers)
        r = conn.getresponse()
        r.read()
        return r.status, r.getheader("Retry-After"), time.monotonic() - t0
    except (OSError, http.client.HTTPException):
        return None, None, time.monotonic() - t0
    finally:
        if own:
            conn.close()


def p99(values):
    v = sorted(values)
    return v[min(len(v) - 1, int(len(v) * 0.99))]


def introspection_location(idp):
    return mcp_location(jwks_uri=f"{idp.base}/jwks", lines=[f"MCPAuthIntrospection {idp.base}/introspect auth=none"])


# ---------------------------------------------------------------------------
# item 3: CPU per random opaque token over HTTPS
# ---------------------------------------------------------------------------

@pytest.mark.slow
def test_random_opaque_tokens_over_https_cost_little_cpu_and_reuse_connections(start_httpd, tls_idp, tls,
                                                                                tmp_root):
    # A CA file like the system's: ~140 certificates, the test CA last.
    bundle = tmp_root / f"system-like-ca-{secrets.token_hex(4)}.pem"
    bundle.write_bytes(SYSTEM_CA.read_bytes() + b"\n" + tls.ca_pem.read_bytes())
    os.chmod(bundle, 0o644)
    h = start_httpd({"/o": introspection_location(tls_idp)},
                    conf=f'MCPAuthCAFile "{bundle}"\nMCPAuthHTTPTimeout 5', name="avail-cpu")
    good = opaque()
    tls_idp.active[good] = "alice"
    assert get(h.port, "/o", good)[0] == 200
    for _ in range(30):  # warm every child: connections and trust store
        assert get(h.port, "/o", opaque())[0] == 401

    # CPU time is a measurement, and the rest of the machine inflates it:
    # ~1.25 ms per token alone, up to 3.3 ms in one CI round and
    # [2.25, 3.75, 3.1] ms in all three rounds of another CI run. What this
    # guards against is far above that: reading this ~140-certificate
    # bundle costs ~20 ms of CPU on this machine (python3's ssl, same
    # OpenSSL), so a trust store built per call costs every round ~20 ms
    # more. A TLS connection per call (a handshake, ~1-2 ms) is caught by
    # the connection count below, not by this bound. The best of up to
    # three rounds is held to it; every round's other checks must hold.
    n = 200
    bound = 16.0 if SANITIZED else 6.0
    rounds = []
    for _ in range(3):
        kids = children(h.pid)
        before, accepts0, requests0 = cpu_ticks(kids), tls_idp.accepts, tls_idp.requests
        statuses = [get(h.port, "/o", opaque())[0] for _ in range(n)]
        after = cpu_ticks(children(h.pid))
        ticks = sum(after[p] - before.get(p, 0) for p in after)
        per_token_ms = ticks * 1000.0 / os.sysconf("SC_CLK_TCK") / n
        accepts, calls = tls_idp.accepts - accepts0, tls_idp.requests - requests0
        print(f"\n[https cpu] {n} random tokens: {per_token_ms:.2f} ms CPU each in httpd's children; "
              f"IdP: {calls} calls over {accepts} new connections")
        assert statuses == [401] * n, statuses
        assert calls == n
        assert accepts <= 20, f"{accepts} new TLS connections for {n} calls: connections are not reused"
        rounds.append(per_token_ms)
        if per_token_ms < bound:
            break
    assert min(rounds) < bound, f"{rounds} ms of CPU per random token in each round (bound {bound} ms)"


# ---------------------------------------------------------------------------
# item 4: a hung introspection endpoint under a flood of random tokens
# ---------------------------------------------------------------------------

HUNG_T = 3  # MCPAuthHTTPTimeout of the flood tests


def flood(port, stop, results, lock, keepalive=True):
    conn = None
    while not stop.is_set():
        if not keepalive:
            t0 = time.monotonic()
            status, ra, took = get(port, "/o", opaque(), timeout=HUNG_T + 20)
            t_end = time.monotonic()
            with lock:
                results.append((t0, took, status, ra, t_end))
            continue
        if conn is None:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=HUNG_T + 20)
        t0 = time.monotonic()
        status, ra, took = get(port, "/o", opaque(), conn=conn)
        t_end = time.monotonic()
        with lock:
            results.append((t0, took, status, ra, t_end))
        if status is None:
            conn.close()
            conn = None
    if conn is not None:
        conn.close()


@pytest.mark.parametrize("mpm", ["event", "worker", "prefork"])
@pytest.mark.slow
def test_hung_introspection_flood_keeps_neighbours_fast_and_backs_off(start_httpd, idp, jwks_server, minter, mpm):
    conf = f"MCPAuthHTTPTimeout {HUNG_T}"
    if mpm == "prefork":
        # All 16 processes from the start: prefork spawns slowly (3 at first),
        # and the bound is half of the server's workers, not of those alive.
        conf += "\nStartServers 16\nMinSpareServers 16\nMaxSpareServers 16"
    h = start_httpd({"/o": introspection_location(idp),
                     "/jwt": mcp_location(jwks_uri=jwks_server.jwks_uri)},
                    conf=conf, name=f"avail-flood-{mpm}", mpm=mpm)
    jwt = minter.token("ES256")
    assert get(h.port, "/jwt", jwt)[0] == 200
    assert get(h.port, "/index.txt")[0] == 200
    good = opaque()
    idp.active[good] = "bob"

    idp.hang()
    stop, lock, results = threading.Event(), threading.Lock(), []
    # prefork: a kept-alive connection holds a whole process (16 here)
    # whatever the module does, so there the flood opens one per request.
    threads = [threading.Thread(target=flood, args=(h.port, stop, results, lock, mpm != "prefork"), daemon=True)
               for _ in range(50)]
    t_start = time.monotonic()
    for t in threads:
        t.start()
    neighbours = {"/index.txt": [], "/jwt": []}
    while time.monotonic() - t_start < HUNG_T + 4:
        for path, lat in neighbours.items():
            status, _, took = get(h.port, path, jwt if path == "/jwt" else None, timeout=20)
            assert status == 200, (path, status)
            lat.append(took)
        time.sleep(0.05)
    # The IdP answers again (the good token is active); the flood stops. The
    # time is taken before the release: a probe the release lets through can
    # be answered (401, a random token) before release() returns.
    t_release = time.monotonic()
    idp.release()
    stop.set()
    for t in threads:
        t.join(HUNG_T + 25)
    recovered = None
    while time.monotonic() - t_release < 15:
        status, ra, _ = get(h.port, "/o", good)
        if status == 200:
            recovered = time.monotonic() - t_release
            break
        time.sleep(0.2)

    with lock:
        res = list(results)
    timeouts = [r for r in res if r[2] == 503 and r[1] >= HUNG_T - 0.5]
    first_timeout = min((r[0] + r[1] for r in timeouts), default=None)
    # Answered while the IdP was still hung (a probe released with it may end
    # in 401). The end is the time taken after the answer arrived: t0 + took
    # can fall before t_release for an answer that came after it, when this
    # thread waited for the GIL between t0 and sending.
    later = [r for r in res if first_timeout and r[0] > first_timeout + 0.1 and r[4] < t_release]
    slow_later = [r for r in later if r[1] > 0.3]
    bad_ra = [r for r in later if r[2] == 503 and not (r[3] or "").isdigit()]
    print(f"\n[flood {mpm}] {len(res)} random-token requests, {idp.requests} reached the IdP; "
          f"static p99 {p99(neighbours['/index.txt']) * 1000:.0f} ms, cached JWT p99 "
          f"{p99(neighbours['/jwt']) * 1000:.0f} ms; after the first timeout: {len(later)} requests, "
          f"{len(slow_later)} slower than 0.3 s, statuses {sorted(set(r[2] for r in later))}, "
          f"Retry-After {sorted(set(str(r[3]) for r in later))}; recovered "
          f"{'after %.1f s' % recovered if recovered is not None else 'never'}")
    # Before: ~3 s (event, worker), ~9 s (prefork): every worker waits out
    # MCPAuthHTTPTimeout. Prefork queues 50 fresh connections on 16
    # processes: more room there.
    fast = 1.0 if SANITIZED or mpm == "prefork" else 0.5
    assert p99(neighbours["/index.txt"]) < fast, sorted(neighbours["/index.txt"])[-5:]
    assert p99(neighbours["/jwt"]) < fast, sorted(neighbours["/jwt"])[-5:]
    assert first_timeout is not None, "no request ran into the timeout"
    assert len(later) >= 50, f"only {len(later)} requests after the first timeout"
    assert {r[2] for r in later} == {503}, sorted(set(str(r[2]) for r in later))
    assert not bad_ra, bad_ra[:3]
    # Only the probes (one per backoff, for all processes) wait for the IdP
    # (before: every request waited MCPAuthHTTPTimeout); on a loaded machine
    # a few others can be slow for want of CPU, never for the IdP.
    waited = [r for r in later if r[1] >= 1.0]
    assert len(waited) <= 3, [(round(r[1], 2), r[2]) for r in waited]
    assert len(slow_later) <= max(3, len(later) // 100), [(round(r[1], 2), r[2]) for r in slow_later]
    assert idp.requests < len(res) / 5, f"{idp.requests} IdP calls for {len(res)} requests"
    # Back after the backoff: at most its 10 s ceiling, here far less.
    assert recovered is not None and recovered < 11, recovered


# ---------------------------------------------------------------------------
# item 4: discovery then JWKS within one MCPAuthHTTPTimeout
# ---------------------------------------------------------------------------

@pytest.mark.slow
def test_discovery_then_hung_jwks_waits_one_timeout_in_total(start_httpd, idp, keys):
    t = 3
    issuer = f"{idp.base}/realm"
    idp.docs["/realm/.well-known/openid-configuration"] = (
        0.8 * t, {"issuer": issuer, "jwks_uri": f"{idp.base}/jwks"})
    idp.docs["/jwks"] = (None, None)  # hangs
    loc = "\n".join(["AuthType mcp-jwt", 'AuthName "mcp"', f"MCPAuthIssuer {issuer}",
                     f"MCPAuthAudience {AUDIENCE}", "Require valid-user"])
    h = start_httpd({"/d": loc}, conf=f"MCPAuthHTTPTimeout {t}", name="avail-disc")
    token = Minter(keys, issuer=issuer).token("ES256")
    status, ra, took = get(h.port, "/d", token)
    print(f"\n[discovery {0.8 * t:.1f} s + hung JWKS, timeout {t} s] {status} after {took:.2f} s, "
          f"Retry-After {ra}")
    assert status == 503 and (ra or "").isdigit(), (status, ra)
    assert took < t + 1.2, f"discovery + JWKS took {took:.2f} s, more than MCPAuthHTTPTimeout {t} s"


# ---------------------------------------------------------------------------
# item 13: stop with requests waiting on a hung IdP
# ---------------------------------------------------------------------------

# The bug costs ~10.5 s (SIGKILL after httpd's reclaim timeouts); an
# ASan-built module makes `apache2 -k stop` itself slower to start. httpd
# sometimes delivers a stop to one child as a graceful one (its SIGTERM
# comes before the pipe-of-death message): that child's calls get the 2 s
# grace of a graceful stop, still well before httpd's first "still did
# not exit" (3 s) and its SIGKILL (10 s).
STOP_BOUND = 4.5 if SANITIZED else 3.0


def stop_and_time(h, how):
    t0 = time.monotonic()
    subprocess.run([APACHE2, "-f", str(h.conf), "-k", how], capture_output=True, text=True, timeout=60)
    while pid_alive(h.pid) and time.monotonic() - t0 < 30:
        time.sleep(0.02)
    return time.monotonic() - t0


def requests_waiting_on_hung_idp(h, idp, tokens):
    """Sends one request per token with the IdP hung and returns (threads,
    answers) once all of them are waiting at the IdP."""
    idp.hang()
    answers = []
    threads = [threading.Thread(target=lambda t=t: answers.append(get(h.port, "/o", t, timeout=40)),
                                daemon=True) for t in tokens]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 10
    while idp.in_flight < len(tokens) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert idp.in_flight == len(tokens), f"{idp.in_flight} calls waiting at the IdP"
    return threads, answers


def kill_lines(text):
    return [l for l in text.splitlines() if "SIGKILL" in l or "still did not exit" in l]


@pytest.mark.parametrize("mpm,how", [("event", "stop"), ("worker", "stop"), ("event", "graceful-stop")])
@pytest.mark.slow
def test_stop_with_requests_waiting_on_hung_idp_is_prompt(start_httpd, idp, mpm, how):
    # Room for six calls in one child, wherever the requests land.
    h = start_httpd({"/o": introspection_location(idp)},
                    conf="MCPAuthHTTPTimeout 60\nThreadsPerChild 16\nMaxRequestWorkers 64",
                    name=f"avail-stop-{mpm}", mpm=mpm)
    threads, answers = requests_waiting_on_hung_idp(h, idp, [opaque() for _ in range(6)])
    mark = h.log_offset()
    pid = h.pid
    took = stop_and_time(h, how)
    log = h.log_since(mark)
    print(f"\n[{how} {mpm}] 6 requests waiting on a hung IdP: httpd gone after {took:.2f} s; "
          f"answers {[a[0] for a in answers]}")
    assert not pid_alive(pid), "httpd still running"
    # A graceful stop gives calls in flight a 2 s grace (enough for a
    # healthy IdP) before they give up; httpd's graceful-stop adds ~1 s.
    assert took < STOP_BOUND + (1.0 if how == "graceful-stop" else 0), f"{how} took {took:.2f} s"
    assert not kill_lines(log), kill_lines(log)
    for t in threads:
        t.join(5)


@pytest.mark.parametrize("mpm", ["event", "worker"])
@pytest.mark.slow
def test_stop_without_pending_requests_is_unchanged(start_httpd, idp, mpm):
    h = start_httpd({"/o": introspection_location(idp)}, conf="MCPAuthHTTPTimeout 60",
                    name=f"avail-stop-idle-{mpm}", mpm=mpm)
    good = opaque()
    idp.active[good] = "carol"
    assert get(h.port, "/o", good)[0] == 200
    mark = h.log_offset()
    pid = h.pid
    took = stop_and_time(h, "stop")
    log = h.log_since(mark)
    print(f"\n[stop {mpm}] idle httpd gone after {took:.2f} s")
    assert not pid_alive(pid)
    assert took < STOP_BOUND, took
    assert not kill_lines(log), kill_lines(log)


@pytest.mark.parametrize("how", ["graceful", "graceful-stop"])
@pytest.mark.slow
def test_graceful_serves_requests_asking_a_slow_idp(start_httpd, idp, how):
    """A graceful restart (log rotation) or graceful-stop while requests
    wait on a slow but healthy IdP: they are served (200), not cut to 503,
    and nothing is SIGKILLed (before the grace: all six got 503)."""
    h = start_httpd({"/o": introspection_location(idp)},
                    conf="MCPAuthHTTPTimeout 10\nThreadsPerChild 16\nMaxRequestWorkers 64",
                    name=f"avail-graceful-{how}")
    tokens = [opaque() for _ in range(6)]
    for i, t in enumerate(tokens):
        idp.active[t] = f"user{i}"
    threads, answers = requests_waiting_on_hung_idp(h, idp, tokens)
    mark = h.log_offset()
    subprocess.run([APACHE2, "-f", str(h.conf), "-k", how], capture_output=True, text=True, timeout=60)
    time.sleep(0.3)
    idp.release()  # the IdP answers, 0.3 s after the signal (within the 2 s grace)
    for t in threads:
        t.join(20)
    print(f"\n[{how}] 6 requests asking a slow IdP: answers {sorted(a[0] for a in answers)}")
    assert sorted(a[0] for a in answers) == [200] * 6, answers
    if how == "graceful-stop":
        deadline = time.monotonic() + 10
        while pid_alive(h.pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not pid_alive(h.pid), "httpd still running after graceful-stop"
    else:
        assert get(h.port, "/o", tokens[0])[0] == 200
    assert not kill_lines(h.log_since(mark))
