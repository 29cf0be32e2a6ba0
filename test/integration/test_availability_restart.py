# SPDX-License-Identifier: Apache-2.0
"""Issue 15 (availability), items 6, 7, 8, 10 and parts of 14: what a
graceful restart, a configuration change, a crash or an IdP that is not up
yet at boot costs the valid callers.  Each test is the operator action (or
the outage) with the bound it must stay within, beside the neighbour that
must keep working:

* a graceful restart during a first JWKS fetch: the new generation answers
  200 within one MCPAuthHTTPTimeout (no lease or cooldown inherited from a
  fetch that will never land in it);
* a graceful restart after adding an issuer, changing MCPAuthCacheEntries
  or MCPAuthJWKSMaxSize while the IdP is unreachable: the old issuer's
  tokens keep working on the cached keys;
* a graceful restart with a large shared cache: no request stalls for a
  copy of it;
* a crash (kill -9) then a fresh start: no persist file is left behind;
* a changed `Mutex ... mcp-auth-shm` line takes effect at the graceful
  restart (and says so);
* an IdP down at boot that comes up 2 s later: tokens work within ~3 s,
  not after MCPAuthJWKSRefreshCooldown.
"""

import os
import signal
import socket
import subprocess
import threading
import time

import pytest

from harness.httpd import mcp_location as loc
from harness.servers import QuietHandler, ThreadedServer
from conftest import APACHE2, Minter, es256_key, free_port, json_bytes, pid_alive, wait_for_port

HTTP_TIMEOUT = 3
COOLDOWN = 30


# ---------------------------------------------------------------------------
# a plain-HTTP IdP on a fixed port: can be slow, down, or come up later
# ---------------------------------------------------------------------------

class _Handler(QuietHandler):
    timeout = None  # kept-alive connections stay open as long as the module keeps them

    def do_GET(self):
        idp = self.server.owner
        with idp.lock:
            idp.hits += 1
        time.sleep(idp.delay)
        body = idp.body
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class FlakyIdP:
    """Serves one JWKS at http://127.0.0.1:<port>/jwks; down() closes the
    port (connections refused), up() listens again on the same port."""

    def __init__(self, jwks, port=None, start=True):
        self.port = port or free_port()
        self.body = json_bytes(jwks)
        self.delay = 0.0
        self.hits = 0
        self.lock = threading.Lock()
        self._srv = None
        if start:
            self.up()

    @property
    def jwks_uri(self):
        return f"http://127.0.0.1:{self.port}/jwks"

    def up(self):
        self._srv = ThreadedServer(self, _Handler, port=self.port, poll_interval=0.05, name="flaky-idp")

    def down(self):
        if self._srv:
            self._srv.shutdown()
            self._srv.server_close()
            self._srv = None


@pytest.fixture
def flaky():
    made = []

    def make(jwks, **kw):
        idp = FlakyIdP(jwks, **kw)
        made.append(idp)
        return idp

    yield make
    for idp in made:
        idp.down()


def conf(*lines):
    return "\n".join(["LogLevel warn core:notice mcp_auth:info", f"MCPAuthHTTPTimeout {HTTP_TIMEOUT}",
                      f"MCPAuthJWKSRefreshCooldown {COOLDOWN}", *lines])


# A static file protected by the module: mod_cgid restarts its daemon at
# every graceful restart and answers CGI requests in flight with its own 503,
# which says nothing about this module (see test_shared_cache.py).
PATH = "/index.txt"


def serve(start_httpd, location, *lines, **kw):
    return start_httpd({"/mcp": location}, conf(*lines, f'<Location "{PATH}">\n{location}\n</Location>'), **kw)


def graceful(h, how="graceful"):
    mark = h.log_offset()
    g = subprocess.run([APACHE2, "-f", str(h.conf), "-k", how], capture_output=True, text=True, timeout=30)
    assert g.returncode == 0, g.stderr
    # An ASan-built httpd under the full suite has been seen to take longer
    # than 15 s to start its next generation once (not reproduced alone).
    slow = os.environ.get("MCP_AUTH_SANITIZER")
    log = h.wait_for_log("resuming normal operations", since=mark, timeout=40 if slow else 15)
    assert "resuming normal operations" in log, log[-2000:]
    assert wait_for_port(h.port, 10)
    return mark


def first_200_after(h, token, budget):
    """Requests (each on a new connection) until one answers 200; returns
    (seconds to that answer, statuses seen) or (None, statuses)."""
    t0 = time.monotonic()
    seen = []
    while time.monotonic() - t0 < budget:
        try:
            status = h.get(PATH, token).status
        except OSError as e:
            status = repr(e)
        seen.append(status)
        if status == 200:
            return time.monotonic() - t0, seen
        time.sleep(0.1)
    return None, seen


# ---------------------------------------------------------------------------
# item 6: graceful restart during a first fetch
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("mpm", ["event", "worker", "prefork"])
@pytest.mark.slow
def test_graceful_during_first_fetch_serves_within_one_timeout(start_httpd, keys, flaky, mpm):
    key = es256_key("first")
    idp = flaky({"keys": [key.jwk]})
    idp.delay = 2.0  # healthy but slow: every JWKS answer takes 2 s (< the 3 s timeout)
    issuer = "https://idp.first-fetch.example"
    h = serve(start_httpd, loc(issuer, idp.jwks_uri), mpm=mpm)
    m = Minter(keys, issuer=issuer)

    early = {}
    t = threading.Thread(target=lambda: early.update(r=h.get(PATH, m.token("ES256", key=key, sub="early"))))
    t.start()
    time.sleep(0.5)  # the first fetch is in flight in a child of the first generation
    graceful(h)
    took, seen = first_200_after(h, m.token("ES256", key=key, sub="after"), budget=12)
    t.join(20)
    print(f"\n[graceful during first fetch, {mpm}] first 200 after {took} s; statuses {seen}")
    assert took is not None and took < HTTP_TIMEOUT + 1.5, (
        f"no 200 within one MCPAuthHTTPTimeout after the restart: {took} s, statuses {seen}\n"
        f"{h.log_text()[-3000:]}")
    # The neighbour: the request that started the fetch in the old generation is answered too.
    assert early.get("r") is not None and early["r"].status == 200, early
    # And later requests use the shared keys (no fetch per request).
    hits = idp.hits
    for i in range(5):
        assert h.get(PATH, m.token("ES256", key=key, sub=f"later{i}")).status == 200
    assert idp.hits == hits


# ---------------------------------------------------------------------------
# item 7: configuration changes keep the cached keys
# ---------------------------------------------------------------------------

CHANGES = {
    "add-issuer": None,
    "cache-entries": ("MCPAuthCacheEntries 1024", "MCPAuthCacheEntries 2048"),
    "jwks-max-size": ("MCPAuthJWKSMaxSize 65536", "MCPAuthJWKSMaxSize 131072"),
}


@pytest.mark.parametrize("change", list(CHANGES))
@pytest.mark.slow
def test_config_change_with_idp_unreachable_keeps_cached_keys(start_httpd, keys, flaky, change):
    key = es256_key("kept")
    idp = flaky({"keys": [key.jwk]})
    issuer = "https://idp.kept.example"
    before = CHANGES[change][0] if CHANGES[change] else ""
    h = serve(start_httpd, loc(issuer, idp.jwks_uri), before)
    m = Minter(keys, issuer=issuer)
    assert h.get(PATH, m.token("ES256", key=key, sub="warm")).status == 200
    assert idp.hits == 1

    idp.down()  # the IdP is unreachable from now on
    text = h.conf.read_text()
    if change == "add-issuer":
        other = "https://idp.other.example"
        # A new issuer in front of the old one (its documents come first in the layout).
        new_loc = f'<Location "/other">\n{loc(other, "http://127.0.0.1:9/jwks")}\n</Location>\n'
        text = text.replace("<Location", new_loc + "<Location", 1)
    else:
        text = text.replace(CHANGES[change][0], CHANGES[change][1])
    assert text != h.conf.read_text()
    h.conf.write_text(text)
    mark = graceful(h)

    t0 = time.monotonic()
    resp = h.get(PATH, m.token("ES256", key=key, sub="after"))
    took = time.monotonic() - t0
    log = h.log_since(mark)
    print(f"\n[{change}, IdP down] status {resp.status} in {took:.2f} s")
    assert resp.status == 200, f"{change}: the cached keys were lost: {resp!r}\n{log[-3000:]}"
    assert took < HTTP_TIMEOUT, took
    assert "Shared document layout changed" in log or change == "cache-entries", log[-3000:]


# ---------------------------------------------------------------------------
# item 8: a graceful restart with a large cache stalls nobody
# ---------------------------------------------------------------------------

def worst_latency_during_graceful(h, tokens):
    """Three clients send cached tokens (a new connection each) from 0.5 s
    before a graceful restart to 1 s after it: the worst latency and the
    failures seen."""
    lat, stop, errors = [], threading.Event(), []

    def load(n):
        i = n
        while not stop.is_set():
            i += 1
            t0 = time.monotonic()
            try:
                status = h.get(PATH, tokens[i % len(tokens)]).status
                if status != 200:
                    errors.append(status)
            except OSError as e:
                errors.append(repr(e))
            lat.append(time.monotonic() - t0)

    threads = [threading.Thread(target=load, args=(n,), daemon=True) for n in range(3)]
    for t in threads:
        t.start()
    time.sleep(0.5)
    graceful(h)
    time.sleep(1.0)
    stop.set()
    for t in threads:
        t.join(30)
    return max(lat), len(lat), errors


@pytest.mark.slow
def test_graceful_with_large_cache_has_small_max_latency(start_httpd, keys, flaky):
    key = es256_key("big")
    idp = flaky({"keys": [key.jwk]})
    issuer = "https://idp.big.example"
    h = serve(start_httpd, loc(issuer, idp.jwks_uri), "MCPAuthCacheEntries 1024", "MCPAuthCacheEntrySize 4096")
    m = Minter(keys, issuer=issuer)
    tokens = [m.token("ES256", key=key, sub=f"u{i}") for i in range(20)]
    for t in tokens:
        assert h.get(PATH, t).status == 200
    # The baseline: what any graceful restart costs with a 4 MiB cache on this machine.
    small, n_small, errors = worst_latency_during_graceful(h, tokens)
    assert not errors, (errors[:10], [l for l in h.log_text().splitlines() if "mcp_auth:" in l][-10:])
    # Then 256 MiB of entries (the old design copied all of it while holding
    # the lock and again into the next generation: 8.5 s here).
    h.conf.write_text(h.conf.read_text().replace("MCPAuthCacheEntries 1024", "MCPAuthCacheEntries 65536"))
    graceful(h)
    for t in tokens:
        assert h.get(PATH, t).status == 200
    large, n_large, errors = worst_latency_during_graceful(h, tokens)
    print(f"\n[graceful] worst latency: 4 MiB cache {small:.3f} s ({n_small} requests), "
          f"256 MiB cache {large:.3f} s ({n_large} requests), errors {errors[:5]}")
    assert not errors, (errors[:10], [l for l in h.log_text().splitlines() if "mcp_auth:" in l][-10:])
    assert large < small + 0.5, f"a request waited {large:.3f} s during the graceful restart (baseline {small:.3f} s)"
    # The neighbour: the keys survived every restart (one fetch in all).
    assert idp.hits == 1


# ---------------------------------------------------------------------------
# item 10: nothing left behind, even after a crash
# ---------------------------------------------------------------------------

def mcp_run_files(h):
    return sorted(f for f in os.listdir(h.root / "run") if "mcp_auth" in f)


@pytest.mark.slow
def test_fresh_start_after_kill_removes_persist_files(start_httpd, keys, flaky):
    key = es256_key("crash")
    idp = flaky({"keys": [key.jwk]})
    issuer = "https://idp.crash.example"
    h = serve(start_httpd, loc(issuer, idp.jwks_uri), "MCPAuthCacheEntries 512")
    m = Minter(keys, issuer=issuer)
    assert h.get(PATH, m.token("ES256", key=key)).status == 200
    graceful(h)
    assert mcp_run_files(h) == [], "a graceful restart wrote persist files"
    # Files an earlier version (or configuration) left, then a crash: nothing runs cleanups.
    for name in ("slotmem-shm-mcp_auth_e4096x4096.shm.persist", "slotmem-shm-mcp_auth_d2x65664.shm.persist"):
        with open(h.root / "run" / name, "wb") as f:
            f.truncate(4 * 1024 * 1024)
    pgid = os.getpgid(h.pid)
    os.killpg(pgid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while pid_alive(h.pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not pid_alive(h.pid)
    (h.root / "run" / "httpd.pid").unlink(missing_ok=True)
    h.pid = None
    assert mcp_run_files(h), "the crash should have left the planted files"
    h.start()
    left = mcp_run_files(h)
    assert left == [], f"persist files left after a fresh start: {left}"
    # The neighbour: the fresh start works (and fetched the keys again: it began empty).
    assert h.get(PATH, m.token("ES256", key=key)).status == 200
    assert idp.hits == 2


# ---------------------------------------------------------------------------
# item 14: Mutex changes, boot backoff
# ---------------------------------------------------------------------------

@pytest.mark.slow
def test_changed_mutex_line_takes_effect_at_graceful(start_httpd, keys, flaky, tmp_root):
    key = es256_key("mutex")
    idp = flaky({"keys": [key.jwk]})
    issuer = "https://idp.mutex.example"
    lockdir = tmp_root / f"locks-{os.getpid()}-{time.monotonic_ns()}"
    lockdir.mkdir()
    os.chmod(lockdir, 0o777)
    h = serve(start_httpd, loc(issuer, idp.jwks_uri), "Mutex sysvsem mcp-auth-shm")
    m = Minter(keys, issuer=issuer)
    assert h.get(PATH, m.token("ES256", key=key)).status == 200

    # The neighbour first: an unchanged line keeps the lock, silently.
    mark = graceful(h)
    assert "lock changed" not in h.log_since(mark)

    h.conf.write_text(h.conf.read_text().replace("Mutex sysvsem mcp-auth-shm", f"Mutex flock:{lockdir} mcp-auth-shm"))
    mark = graceful(h)
    log = h.log_since(mark)
    assert "lock changed from sysvsem to flock" in log, log[-2000:]
    assert os.listdir(lockdir), "the flock lock file of the new Mutex line was not created"
    for i in range(5):
        assert h.get(PATH, m.token("ES256", key=key, sub=f"m{i}")).status == 200
    assert idp.hits == 1, "the shared keys did not survive the change of lock"


@pytest.mark.slow
def test_idp_down_at_boot_is_retried_with_backoff(start_httpd, keys, flaky):
    key = es256_key("boot")
    idp = flaky({"keys": [key.jwk]}, start=False)  # not up yet
    issuer = "https://idp.boot.example"
    h = serve(start_httpd, loc(issuer, idp.jwks_uri))
    m = Minter(keys, issuer=issuer)
    assert h.get(PATH, m.token("ES256", key=key, sub="too-early")).status == 503
    time.sleep(2.0)
    idp.up()
    took, seen = first_200_after(h, m.token("ES256", key=key, sub="boot"), budget=10)
    print(f"\n[IdP up 2 s after boot] first 200 after {took} s (cooldown {COOLDOWN} s); statuses {seen}")
    assert took is not None and took < 4.5, f"keys only after {took} s: statuses {seen}"
    # The backoff spaces the attempts: a handful while down, not one per request.
    assert idp.hits <= 2, idp.hits


# ---------------------------------------------------------------------------
# item 6, introspection: a question in flight at the restart
# ---------------------------------------------------------------------------

@pytest.mark.slow
def test_graceful_while_introspection_in_flight_no_wait_for_its_marker(start_httpd, keys, flaky):
    from test_introspection import Introspector

    key = es256_key("intro")
    jwks = flaky({"keys": [key.jwk]})
    intro = Introspector()
    try:
        token = "opaque-" + os.urandom(12).hex()
        intro.answer(token, {"active": True, "sub": "alice"}, delay=2.0)
        issuer = "https://idp.intro.example"
        location = "\n".join(["AuthType mcp-jwt", 'AuthName "mcp"', f"MCPAuthIssuer {issuer} jwks_uri={jwks.jwks_uri}",
                              f"MCPAuthIntrospection {intro.url('/introspect')} auth=none", "Require valid-user"])
        h = serve(start_httpd, location)
        early = {}
        t = threading.Thread(target=lambda: early.update(r=h.get(PATH, token)))
        t.start()
        time.sleep(0.5)  # the first child is asking the IdP (its marker is in the shared store)
        graceful(h)
        took, seen = first_200_after(h, token, budget=15)
        t.join(20)
        print(f"\n[graceful during introspection] first 200 after {took} s; statuses {seen}")
        # The marker's lease is 2 x timeout + 1 = 7 s: a new child must not poll it out.
        assert took is not None and took < HTTP_TIMEOUT + 1, f"{took} s, statuses {seen}"
        assert early.get("r") is not None and early["r"].status == 200, early
    finally:
        intro.stop()
