# SPDX-License-Identifier: Apache-2.0
"""Introspection misses (and JWKS/discovery fetches) reuse keep-alive
connections to the IdP (issue 12, "Cached introspection").

``CountingIdP`` is a small threaded HTTP/1.1 keep-alive introspection
endpoint (plain or TLS) that counts the TCP connections it accepts and the
calls it answers, so a test can tell N calls over one connection from N
calls over N connections. httpd runs ONE child (prefork with one process,
or event with one process), so every call comes from the same process and
may use the same connection cache.

Neighbours of the reuse: an IdP that answers ``Connection: close``, an IdP
that drops a kept-alive connection while it is idle, TLS with the
configured CA, a hung IdP on a reused connection (cut at
MCPAuthHTTPTimeout), and a JWKS fetch after introspection to the same host.
"""

import http.client
import json
import os
import secrets
import threading
import time
import urllib.parse

import pytest

from harness.httpd import mcp_location
from harness.servers import QuietHandler, ThreadedServer, server_context
from conftest import AUDIENCE, _make_tls

HTTP_TIMEOUT = 2  # MCPAuthHTTPTimeout of every httpd here

ONE_CHILD = {
    "prefork": "StartServers 1\nMinSpareServers 1\nMaxSpareServers 1\nServerLimit 1\nMaxRequestWorkers 1",
    "event": "StartServers 1\nServerLimit 1\nThreadsPerChild 8\nMinSpareThreads 1\n"
             "MaxSpareThreads 8\nMaxRequestWorkers 8",
}


class _Handler(QuietHandler):
    def setup(self):
        # An idle kept-alive connection is dropped (silently, as servers
        # do) after idle_timeout seconds: the read of the next request times
        # out and the handler returns, closing the socket.
        self.timeout = self.server.owner.idle_timeout
        self.served = 0  # requests read on this connection
        super().setup()

    def do_GET(self):
        self.server.owner._handle(self)

    def do_POST(self):
        self.server.owner._handle(self)


class CountingIdP:
    """Introspection at /introspect (every token active, sub = "u-" + the
    token's last 8 characters), a JWKS at /jwks, 404 elsewhere. Counts the
    TCP connections it accepted (``connections``), those open right now
    (``open``) and the requests per path (``calls``).

    close: answer every call with ``Connection: close`` and close.
    idle_timeout: drop a kept-alive connection idle for that long.
    A token starting with "drop" is read and then the connection is closed
    without an answer when it is not the first request on its connection
    (what a client sees when the server closed an idle connection just as
    the request went out); otherwise a token starting with "hang" or
    "drophang" is answered after ``hang`` seconds."""

    def __init__(self, tls=None, jwks=None, close=False, idle_timeout=30.0, hang=0.0):
        self.ctx = None
        if tls is not None:
            self.ctx = server_context(tls.cert_pem, tls.key_pem)
        self.jwks = jwks or {"keys": []}
        self.close = close
        self.idle_timeout = idle_timeout
        self.hang = hang
        self._lock = threading.Lock()
        self.connections = 0
        self.open = 0
        self.calls = {}   # path -> count
        self.tokens = []  # introspected tokens, in order
        self._srv = ThreadedServer(self, _Handler, ssl_context=self.ctx, poll_interval=0.05, name="counting-idp",
                                   on_accept=lambda: self._opened(+1), on_close=lambda: self._opened(-1))
        self.port = self._srv.port

    def url(self, path):
        return f"{'https' if self.ctx else 'http'}://127.0.0.1:{self.port}{path}"

    def _opened(self, n):
        with self._lock:
            self.open += n
            if n > 0:
                self.connections += n

    def counts(self):
        with self._lock:
            return self.connections, dict(self.calls)

    def open_now(self):
        with self._lock:
            return self.open

    def _handle(self, h):
        h.served += 1
        path = urllib.parse.urlsplit(h.path).path
        n = int(h.headers.get("Content-Length") or 0)
        body = h.rfile.read(n).decode("utf-8", "replace") if n else ""
        token = urllib.parse.parse_qs(body).get("token", [""])[0]
        with self._lock:
            self.calls[path] = self.calls.get(path, 0) + 1
            if token:
                self.tokens.append(token)
        if path == "/introspect" and h.command == "POST":
            if token.startswith("drop") and h.served > 1:
                h.close_connection = True
                return
            if "hang" in token[:8]:
                time.sleep(self.hang)
            status, out = 200, {"active": True, "sub": "u-" + token[-8:], "scope": "mcp:read"}
        elif path == "/jwks" and h.command == "GET":
            status, out = 200, self.jwks
        else:
            status, out = 404, {"error": "not_found"}
        data = json.dumps(out).encode()
        try:
            h.send_response(status)
            h.send_header("Content-Type", "application/json")
            h.send_header("Content-Length", str(len(data)))
            if self.close:
                h.send_header("Connection", "close")
                h.close_connection = True
            h.end_headers()
            h.wfile.write(data)
        except OSError:
            pass

    def stop(self):
        self._srv.stop()


@pytest.fixture
def idps():
    made = []

    def make(**kw):
        srv = CountingIdP(**kw)
        made.append(srv)
        return srv

    try:
        yield make
    finally:
        for srv in made:
            srv.stop()


def location(idp, jwks=None, audience=None):
    return mcp_location(jwks_uri=jwks or idp.url('/jwks'), audience=audience,
                        lines=[f"MCPAuthIntrospection {idp.url('/introspect')} auth=none cache=300"])


def server_conf(mpm="prefork", extra=""):
    return "\n".join([ONE_CHILD[mpm], f"MCPAuthHTTPTimeout {HTTP_TIMEOUT}", "LogLevel warn mcp_auth:debug",
                      "MCPAuthRefusalLogInterval 0", extra])


def new_token(prefix="opq"):
    return f"{prefix}{secrets.token_urlsafe(24)}"


def ask(h, tok, path="/r", timeout=30):
    """One request on a new connection to httpd: (status, REMOTE_USER, seconds, body)."""
    t0 = time.monotonic()
    conn = http.client.HTTPConnection("127.0.0.1", h.port, timeout=timeout)
    try:
        conn.request("GET", path, headers={"Authorization": f"Bearer {tok}"})
        r = conn.getresponse()
        body = r.read().decode("utf-8", "replace")
        headers = {k.lower(): v for k, v in r.getheaders()}
    finally:
        conn.close()
    env = dict(line.split("=", 1) for line in body.splitlines() if "=" in line)
    return r.status, env.get("REMOTE_USER"), time.monotonic() - t0, body, headers


def miss(h, prefix="opq", path="/r"):
    """A new token (a cache miss): accepted as its own user, within the timeout."""
    tok = new_token(prefix)
    status, user, took, body, _ = ask(h, tok, path)
    assert (status, user) == (200, "u-" + tok[-8:]), (status, body, h.log_text()[-3000:])
    assert took < HTTP_TIMEOUT, f"{took:.2f} s for one miss"
    return tok


def misses(h, n, **kw):
    return [miss(h, **kw) for _ in range(n)]


# ---------------------------------------------------------------------------
# Reuse
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("mpm", ["prefork", "event"])
@pytest.mark.slow
def test_30_misses_from_one_child_use_at_most_2_connections(start_httpd, idps, mpm):
    idp = idps()
    h = start_httpd({"/r": location(idp)}, conf=server_conf(mpm), name=f"reuse-{mpm}", mpm=mpm)
    misses(h, 30)
    conns, calls = idp.counts()
    assert calls.get("/introspect") == 30, calls
    assert conns <= 2, f"{conns} connections for 30 introspection calls from one child"


@pytest.mark.slow
def test_concurrent_misses_in_one_event_child_share_a_few_connections(start_httpd, idps):
    """Four clients at once against one event child (8 threads: at most 4
    calls in flight): 40 misses, every one served, over at most 4
    connections -- one per call that can be in flight, each kept by the
    handles of that call."""
    idp = idps()
    h = start_httpd({"/r": location(idp)}, conf=server_conf("event"), name="reuse-concurrent", mpm="event")
    errors = []

    def client():
        try:
            misses(h, 10)
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(repr(e))

    threads = [threading.Thread(target=client) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors[:2]
    conns, calls = idp.counts()
    assert calls == {"/introspect": 40}, calls
    assert conns <= 4, f"{conns} connections for 40 calls, at most 4 at a time"


@pytest.mark.slow
def test_idp_answering_connection_close_gets_a_new_connection_per_call(start_httpd, idps):
    """The neighbour of reuse: an IdP that closes after every answer is
    still served, every call on a connection of its own (which is also what
    shows that the counter counts)."""
    idp = idps(close=True)
    h = start_httpd({"/r": location(idp)}, conf=server_conf(), name="reuse-close", mpm="prefork")
    misses(h, 10)
    assert idp.counts() == (10, {"/introspect": 10})
    assert "Introspection failed" not in h.log_text()


@pytest.mark.slow
def test_idp_dropping_idle_connections_between_calls(start_httpd, idps):
    """An IdP that drops a kept-alive connection after 1 s idle: the next
    call notices the closed connection and opens a new one, at once (miss()
    checks the time)."""
    idp = idps(idle_timeout=1.0)
    h = start_httpd({"/r": location(idp)}, conf=server_conf(), name="reuse-idle", mpm="prefork")
    for _ in range(3):
        miss(h)
        time.sleep(2.0)
    assert idp.counts() == (3, {"/introspect": 3})
    # calls close together still share one connection
    misses(h, 5)
    assert idp.counts() == (4, {"/introspect": 8})
    assert "Introspection failed" not in h.log_text()


@pytest.mark.slow
def test_reused_connection_closed_without_answer_is_retried_once_on_a_new_one(start_httpd, idps):
    """The race that reuse brings: the IdP closes the kept-alive connection
    as the request goes out (here: reads it and closes without answering).
    libcurl sends it once more on a fresh connection: the request succeeds
    within the timeout, and the IdP sees that token twice -- harmless, as
    introspection only reads (RFC 7662) -- and never more."""
    idp = idps()
    h = start_httpd({"/r": location(idp)}, conf=server_conf(), name="reuse-drop", mpm="prefork")
    misses(h, 2)
    assert idp.counts()[0] == 1
    tok = miss(h, prefix="drop")
    assert idp.tokens.count(tok) == 2, idp.tokens
    assert idp.counts() == (2, {"/introspect": 4})
    misses(h, 3)  # and the new connection is kept in turn
    assert idp.counts() == (2, {"/introspect": 7})


@pytest.mark.slow
def test_retry_after_a_dropped_reused_connection_stays_within_the_timeout(start_httpd, idps):
    """The same race, and then the fresh connection hangs: the request is
    still answered 503 at MCPAuthHTTPTimeout (libcurl's total timeout covers
    the retry), after exactly two attempts."""
    idp = idps(hang=HTTP_TIMEOUT + 4)
    h = start_httpd({"/r": location(idp)}, conf=server_conf(), name="reuse-drophang", mpm="prefork")
    misses(h, 2)
    tok = new_token("drophang")
    status, _, took, body, _ = ask(h, tok)
    assert status == 503, body
    assert HTTP_TIMEOUT - 0.5 < took < HTTP_TIMEOUT + 1.5, f"{took:.2f} s"
    time.sleep(0.5)
    assert idp.tokens.count(tok) == 2, idp.tokens
    assert idp.counts()[0] == 2


@pytest.mark.slow
def test_hung_idp_is_cut_at_the_timeout_on_a_reused_connection(start_httpd, idps):
    idp = idps(hang=HTTP_TIMEOUT + 4)
    h = start_httpd({"/r": location(idp)}, conf=server_conf(), name="reuse-hang", mpm="prefork")
    misses(h, 3)
    assert idp.counts()[0] == 1
    status, _, took, body, headers = ask(h, new_token("hang"))
    assert status == 503, body
    assert HTTP_TIMEOUT - 0.5 < took < HTTP_TIMEOUT + 1.5, f"{took:.2f} s"
    # The hung connection is closed, never reused: after the IdP's pause a
    # new token is served on a new connection.
    time.sleep(int(headers.get("retry-after", "1")) + 0.2)
    miss(h)
    assert idp.counts()[0] == 2


# ---------------------------------------------------------------------------
# TLS
# ---------------------------------------------------------------------------

@pytest.mark.slow
def test_tls_connections_are_reused_and_still_verified(start_httpd, idps, tls, tmp_root):
    """Over https with MCPAuthCAFile (the harness sets it to tls.ca_pem):
    one TLS connection for 20 calls. A second endpoint whose certificate
    comes from another CA is refused by the same warm process, and the
    trusted one is still served on its kept connection."""
    good = idps(tls=tls)
    bad = idps(tls=_make_tls(tmp_root / f"other-ca-{secrets.token_hex(4)}"))
    h = start_httpd({"/r": location(good), "/bad": location(bad, jwks=good.url("/jwks"))},
                    conf=server_conf(), name="reuse-tls", mpm="prefork")
    misses(h, 20)
    assert good.counts() == (1, {"/introspect": 20})
    status, _, _, body, _ = ask(h, new_token(), "/bad")
    assert status == 503, body
    assert bad.counts()[1] == {}, "a request went to the IdP with the untrusted certificate"
    misses(h, 5)
    assert good.counts() == (1, {"/introspect": 25})


# ---------------------------------------------------------------------------
# Documents on the same connection
# ---------------------------------------------------------------------------

@pytest.mark.slow
def test_jwks_fetch_after_introspection_to_the_same_host(start_httpd, idps, keys, minter):
    idp = idps(jwks=keys.jwks())
    h = start_httpd({"/r": location(idp, audience=AUDIENCE)}, conf=server_conf(), name="reuse-jwks",
                    mpm="prefork")
    misses(h, 5)
    status, user, _, body, _ = ask(h, minter.token("RS256"))
    assert (status, user) == (200, "alice"), body
    misses(h, 5)
    conns, calls = idp.counts()
    assert calls == {"/introspect": 10, "/jwks": 1}, calls
    assert conns == 1, f"{conns} connections for 10 introspections and a JWKS fetch"


# ---------------------------------------------------------------------------
# Bounds
# ---------------------------------------------------------------------------

@pytest.mark.slow
def test_idle_connections_per_process_are_bounded(start_httpd, idps):
    """One process talks to four endpoints in turn: it keeps at most two of
    their connections open (libcurl's default would keep four)."""
    four = [idps() for _ in range(4)]
    h = start_httpd({f"/r{i}": location(idp) for i, idp in enumerate(four)}, conf=server_conf(),
                    name="reuse-bound", mpm="prefork")
    for _ in range(2):
        for i in range(4):
            miss(h, path=f"/r{i}")
    deadline = time.monotonic() + 3
    while sum(i.open_now() for i in four) > 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert sum(i.open_now() for i in four) <= 2, [i.open_now() for i in four]
    # ... and with one endpoint the kept connection is used again
    before = four[0].counts()[0]
    misses(h, 5, path="/r0")
    assert four[0].counts()[0] <= before + 1


# An output filter program (mod_ext_filter): forked by the httpd child for
# the response, like a CGI under mod_cgi. It passes the body through and
# adds its parent's pid and the targets of its own descriptors.
FD_FILTER = """#!/bin/sh
cat
printf 'PPID=%s\\n' "$PPID"
for f in /proc/$$/fd/*; do printf 'FD=%s\\n' "$(readlink "$f")"; done
"""


def _tcp_inodes(port):
    """Inodes of the established TCP sockets whose peer is 127.0.0.1:port."""
    out = set()
    with open("/proc/net/tcp") as f:
        next(f)
        for line in f:
            cols = line.split()
            if int(cols[2].split(":")[1], 16) == port and cols[3] == "01":
                out.add(cols[9])
    return out


def _fd_inodes(pid):
    out = set()
    fd_dir = f"/proc/{pid}/fd"
    for name in os.listdir(fd_dir):
        try:
            target = os.readlink(f"{fd_dir}/{name}")
        except OSError:
            continue
        if target.startswith("socket:["):
            out.add(target[8:-1])
    return out


@pytest.mark.slow
def test_programs_the_child_starts_do_not_inherit_idp_connections(start_httpd, idps, tmp_root):
    """A program the child forks for a request (here an ExtFilterDefine
    filter; a CGI under mod_cgi is the same) runs while the process keeps
    its connection to the IdP (its parent holds it). The program must not
    hold it too: it could read the IdP's answers, and would keep the
    connection open after the module closed it."""
    d = tmp_root / f"fd-filter-{secrets.token_hex(4)}"
    d.mkdir()
    os.chmod(d, 0o755)
    prog = d / "fd.sh"
    prog.write_text(FD_FILTER)
    os.chmod(prog, 0o755)
    idp = idps()
    conf = server_conf(extra=f'ExtFilterDefine fdlist mode=output cmd="/bin/sh {prog}"')
    h = start_httpd({"/fd": location(idp) + "\nSetOutputFilter fdlist"}, conf=conf, name="reuse-fork",
                    mpm="prefork", modules=[("ext_filter_module", "mod_ext_filter.so")])
    tok = new_token()
    status, user, _, body, _ = ask(h, tok, "/fd")
    assert (status, user) == (200, "u-" + tok[-8:]), body
    env = [line.split("=", 1) for line in body.splitlines() if "=" in line]
    ppid = int(dict(env)["PPID"])
    forked_sockets = {v[8:-1] for k, v in env if k == "FD" and v.startswith("socket:[")}
    idp_sockets = _tcp_inodes(idp.port)
    assert idp_sockets & _fd_inodes(ppid), \
        "the filter's parent holds no connection to the IdP: not forked by the child, or no kept connection"
    assert not forked_sockets & idp_sockets, "the filter program inherited the connection to the IdP"
