# SPDX-License-Identifier: Apache-2.0
"""MCPAuthSharedCache: several httpd nodes sharing introspection answers
through httpd's socache providers (mod_socache_redis, mod_socache_memcache),
against a real ``redis-server`` and a real ``memcached`` that each test
starts on a free loopback port (no persistence) and stops.

Each behaviour is checked as the attack or the failure beside the legitimate
neighbour: one IdP call for a token used on two nodes at once, ``cache=0``
still asking every time, a cache server killed or silent (the request never
waits past MCPAuthHTTPTimeout, the IdP answers instead), hostile values in
the cache (garbage, another key's entry, an expired or truncated entry)
never accepted, a token refused on one node refused on the other, and
configtest naming the directive when the provider is not there.

The counting IdP is harness.servers.Introspector (plain HTTP, every call recorded).
"""

import concurrent.futures
import os
import secrets
import shutil
import signal
import socket
import subprocess
import threading
import time

import pytest

from harness.env import APACHE2, APACHE_MODULES_DIR, free_port, wait_for_port
from harness.prometheus import scrape, value
from harness.servers import Introspector
from test_config import configtest
from test_introspection import active, get

T = 2  # MCPAuthHTTPTimeout of every node here
STATIC = "/index.txt"  # DocumentRoot's file, behind the same rules as /a
REDIS_MOD = ("socache_redis_module", "mod_socache_redis.so")
MEMCACHE_MOD = ("socache_memcache_module", "mod_socache_memcache.so")
PROVIDERS = {"redis": REDIS_MOD, "memcache": MEMCACHE_MOD}


def token(label):
    """A fresh opaque token (no dots)."""
    return f"opq{label}{secrets.token_urlsafe(18)}"


# ---------------------------------------------------------------------------
# cache servers: the real ones, and one that accepts and never answers
# ---------------------------------------------------------------------------

class CacheServer:
    """redis-server or memcached on 127.0.0.1:<free port>, no persistence,
    in the foreground as a child of the test (never the system service)."""

    def __init__(self, kind, tmp):
        self.kind = kind
        self.port = free_port()
        self.log = open(tmp / f"{kind}-{self.port}.log", "wb")
        if kind == "redis":
            exe = shutil.which("redis-server")
            argv = [exe, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                    "--dir", str(tmp), "--protected-mode", "no"]
        else:
            exe = shutil.which("memcached")
            argv = [exe, "-l", "127.0.0.1", "-p", str(self.port), "-U", "0", "-m", "16"]
            if os.geteuid() == 0:
                argv += ["-u", "nobody"]
        if not exe:
            pytest.fail(f"{kind} server not installed (make -f apxs.mk deps installs redis-server and memcached)",
                        pytrace=False)
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=self.log, stderr=subprocess.STDOUT)
        if not wait_for_port(self.port, 10):
            self.stop()
            pytest.fail(f"{kind} did not come up on port {self.port}", pytrace=False)

    @property
    def spec(self):
        return f"{self.kind}:127.0.0.1:{self.port}"

    def kill(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=10)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()
        self.log.close()


class SilentServer:
    """Accepts connections and reads whatever comes, never answering."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.conns = []
        self._stop = threading.Event()
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        self.sock.settimeout(0.2)
        while not self._stop.is_set():
            try:
                c, _ = self.sock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            self.conns.append(c)
            threading.Thread(target=self._drain, args=(c,), daemon=True).start()

    def _drain(self, c):
        try:
            while not self._stop.is_set() and c.recv(4096):
                pass
        except OSError:
            pass

    def stop(self):
        self._stop.set()
        self.sock.close()
        for c in self.conns:
            try:
                c.close()
            except OSError:
                pass


def resp(port, *args):
    """One redis command over RESP; the reply (bytes, int, list or None)."""
    out = b"*%d\r\n" % len(args) + b"".join(
        b"$%d\r\n%s\r\n" % (len(a), a) for a in (x if isinstance(x, bytes) else str(x).encode() for x in args))
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(out)
        f = s.makefile("rb")
        return _read_reply(f)


def _read_reply(f):
    line = f.readline().rstrip(b"\r\n")
    kind, rest = line[:1], line[1:]
    if kind == b"$":
        n = int(rest)
        if n < 0:
            return None
        data = f.read(n + 2)[:-2]
        return data
    if kind == b"*":
        return [_read_reply(f) for _ in range(int(rest))]
    if kind == b":":
        return int(rest)
    if kind == b"-":
        raise RuntimeError(rest.decode())
    return rest


def redis_keys(port):
    return set(resp(port, "KEYS", "mcp_auth:*"))


@pytest.fixture
def idp():
    srv = Introspector()
    srv._srv.socket.listen(128)  # a backlog of 5 drops SYNs under the load below
    try:
        yield srv
    finally:
        srv.stop()


@pytest.fixture
def cache_servers(tmp_path):
    started = []

    def start(kind):
        c = CacheServer(kind, tmp_path)
        started.append(c)
        return c

    try:
        yield start
    finally:
        for c in started:
            c.stop()


def start_node(httpd_factory, mcp_auth_so, idp, spec, kind, *, name, cache=300, extra="", mpm="event"):
    loc = "\n".join([
        "AuthType mcp-jwt", 'AuthName "mcp"',
        # The nodes of a fleet serve one resource (one ServerName behind the
        # balancer); here each has its own port, so it is named.
        "MCPAuthResource https://mcp.fleet.test/a",
        f"MCPAuthIntrospection {idp.base_url}/introspect client_id=rs client_secret=rs-secret cache={cache}",
        "Require valid-user"])
    # STATIC: a static file behind the same rules, for the graceful restart
    # (mod_cgid restarts its daemon then and answers CGI requests in flight
    # with its own 503, which says nothing about this module); in the server
    # configuration, as the harness maps every location it is given to the CGI.
    conf = "\n".join([f"MCPAuthHTTPTimeout {T}", f"MCPAuthSharedCache {spec}" if spec else "", extra,
                      f'<Location "{STATIC}">\n{loc}\n</Location>'])
    # The server's counters (SPEC 10), to see which node asked and which
    # took the answer from the shared level.
    return httpd_factory.start({"/a": loc, "/mcp-auth-metrics": "SetHandler mcp-auth-metrics"}, server_conf=conf,
                               module_so=mcp_auth_so, name=name,
                               modules=[PROVIDERS[kind]], mpm=mpm)


@pytest.fixture
def nodes(httpd_factory, mcp_auth_so, idp):
    started = []

    def start(spec, kind, n=2, **kw):
        out = []
        for i in range(n):
            h = start_node(httpd_factory, mcp_auth_so, idp, spec, kind, name=f"fleet-{kind}-{i}", **kw)
            started.append(h)
            out.append(h)
        return out

    try:
        yield start
    finally:
        for h in started:
            h.stop()


def spread(nodes, tokens, n, workers=16, timeout=30, path="/a"):
    """n GET requests, round robin over the nodes and tokens, from a pool of
    threads; [(node index, status, elapsed)]."""
    def one(i):
        node = i % len(nodes)
        try:
            r = get(nodes[node].port, path, tokens[i % len(tokens)], timeout=timeout)
            return node, r.status, r.elapsed
        except Exception as e:  # noqa: BLE001
            return node, repr(e), 0.0
    with concurrent.futures.ThreadPoolExecutor(workers) as ex:
        return list(ex.map(one, range(n)))


# ---------------------------------------------------------------------------
# one IdP call for the fleet
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("kind,mpm", [("redis", "event"), ("memcache", "event"), ("redis", "prefork")])
def test_one_introspection_call_for_1000_requests_over_two_nodes(cache_servers, nodes, idp, kind, mpm):
    cache = cache_servers(kind)
    a, b = nodes(cache.spec, kind, mpm=mpm)
    tok = token("fleet")
    # The IdP takes 200 ms: both nodes' first requests certainly arrive
    # while the first call is under way (the other node must wait for it).
    idp.answer(tok, active("alice"), delay=0.2)
    results = spread([a, b], [tok], 1000, workers=24)
    bad = [r for r in results if r[1] != 200]
    assert not bad, bad[:10]
    per_node = [sum(1 for r in results if r[0] == i) for i in (0, 1)]
    assert per_node == [500, 500], per_node
    assert idp.count(tok) == 1, f"{idp.count(tok)} introspection calls for one token on two nodes ({kind})"
    # The nodes' own counters say the same: one call in the fleet, and the
    # node that did not ask took the answer from the shared level.
    seen = [scrape(h) for h in (a, b)]
    calls = [value(m, "mcp_auth_introspection_calls_total", result="ok") for m in seen]
    assert sorted(calls) == [0, 1], calls
    other = seen[calls.index(0)]
    assert value(other, "mcp_auth_cache_hits_total", level="remote") >= 1, other
    assert sum(value(m, "mcp_auth_requests_total", outcome="accepted", reason="none") for m in seen) == 1000

    # the neighbour without a shared cache: two nodes, two calls (what the
    # shared level saves)
    alone = token("alone")
    idp.answer(alone, active("bob"))
    c, d = nodes(None, kind)
    assert get(c.port, "/a", alone).status == 200 and get(d.port, "/a", alone).status == 200
    assert idp.count(alone) == 2


def test_a_token_refused_on_one_node_is_refused_on_the_other_without_asking(cache_servers, nodes, idp):
    cache = cache_servers("redis")
    a, b = nodes(cache.spec, "redis")
    bad, good = token("inactive"), token("good")
    idp.answer(bad, {"active": False})
    idp.answer(good, active("carol"))
    assert get(a.port, "/a", bad).status == 401
    assert idp.count(bad) == 1
    r = get(b.port, "/a", bad)
    assert r.status == 401, r
    assert idp.count(bad) == 1, "node B asked the IdP again for a token node A learnt is inactive"
    # neighbour: a good token on A is accepted on B from the shared answer
    assert get(a.port, "/a", good).status == 200
    assert get(b.port, "/a", good).status == 200
    assert idp.count(good) == 1


def test_a_shared_answer_lives_no_longer_than_cache_and_revocation_spreads(cache_servers, nodes, idp):
    """cache=3: node A's positive answer serves node B within those 3 s (as
    B's own cache would), never after them; once B has learnt the token was
    revoked, A (its own copy expired) takes B's negative answer without
    asking, and the positive answer never comes back."""
    cache = cache_servers("redis")
    a, b = nodes(cache.spec, "redis", cache=3)
    tok = token("revoke")
    idp.answer(tok, active("kim"))
    assert get(a.port, "/a", tok).status == 200
    assert get(b.port, "/a", tok).status == 200  # within cache=: from A's answer
    assert idp.count(tok) == 1
    idp.answer(tok, {"active": False})  # revoked
    time.sleep(3.5)  # past cache= for every copy, the shared one included
    assert get(b.port, "/a", tok).status == 401
    assert idp.count(tok) == 2, "the shared positive answer outlived cache="
    for _ in range(3):
        assert get(a.port, "/a", tok).status == 401
    assert idp.count(tok) == 2, "node A asked again instead of taking B's negative answer"


def test_cache_0_asks_every_time_and_revocation_is_immediate(cache_servers, nodes, idp):
    cache = cache_servers("redis")
    a, b = nodes(cache.spec, "redis", cache=0)
    tok = token("nocache")
    idp.answer(tok, active("dave"))
    results = spread([a, b], [tok], 20, workers=4)
    assert all(r[1] == 200 for r in results), results
    assert idp.count(tok) == 20
    assert not redis_keys(cache.port), "cache=0 wrote to the shared cache"
    idp.answer(tok, {"active": False})  # revoked
    assert get(a.port, "/a", tok).status == 401
    assert get(b.port, "/a", tok).status == 401
    assert idp.count(tok) == 22


def test_graceful_restart_keeps_the_shared_level(cache_servers, nodes, idp):
    """A graceful restart makes a new provider instance and new handles in
    the new children: no request fails, and answers written before it are
    still shared after it."""
    cache = cache_servers("redis")
    a, b = nodes(cache.spec, "redis")
    toks = [token(f"gr{i}") for i in range(10)]
    for t in toks:
        idp.answer(t, active("jay"))
    assert get(b.port, STATIC, None).status == 401, "the static file is not protected by the module"
    assert all(r[1] == 200 for r in spread([a], toks, 10, workers=2, path=STATIC))
    stop = threading.Event()
    seen = []

    def load():
        while not stop.is_set():
            seen.extend(spread([a, b], toks, 20, workers=4, path=STATIC))

    th = threading.Thread(target=load)
    th.start()
    time.sleep(0.3)
    r = subprocess.run([APACHE2, "-f", str(b.conf), "-k", "graceful"], capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    time.sleep(1.5)
    stop.set()
    th.join()
    bad = [x for x in seen if x[1] != 200]
    if bad:  # what the nodes said, for the report
        print(f"node A's error log:\n{a.log_text()[-6000:]}\nnode B's error log:\n{b.log_text()[-6000:]}")
    assert seen and not bad, bad[:5]
    assert all(idp.count(t) == 1 for t in toks), [idp.count(t) for t in toks]
    fresh = token("gr-after")
    idp.answer(fresh, active("jay"))
    assert get(a.port, STATIC, fresh).status == 200 and get(b.port, STATIC, fresh).status == 200
    assert idp.count(fresh) == 1


# ---------------------------------------------------------------------------
# a cache server that fails
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("kind", ["redis", "memcache"])
def test_cache_server_killed_mid_run_no_request_fails(cache_servers, nodes, idp, kind):
    cache = cache_servers(kind)
    a, b = nodes(cache.spec, kind)
    before = [token(f"pre{i}") for i in range(20)]
    for t in before:
        idp.answer(t, active("erin"))
    first = spread([a, b], before, 200, workers=8)
    assert all(r[1] == 200 for r in first), first[:10]
    assert sum(idp.count(t) for t in before) == 20  # one call per token for both nodes

    killer = threading.Timer(0.5, cache.kill)
    killer.start()
    after = [token(f"post{i}") for i in range(40)]
    for t in after:
        idp.answer(t, active("frank"))
    results = spread([a, b], after, 400, workers=8)
    killer.join()
    failed = [r for r in results if r[1] != 200]
    assert not failed, failed[:10]
    assert cache.proc.poll() is not None
    # the IdP answers instead: every token asked at least once, at most once per node
    calls = [idp.count(t) for t in after]
    assert all(1 <= n <= 2 for n in calls), calls
    # tokens new after the kill still work; the failure is logged, once per interval
    late = token("late")
    idp.answer(late, active("gina"))
    assert get(a.port, "/a", late).status == 200 and get(b.port, "/a", late).status == 200
    for h in (a, b):
        text = h.log_text()
        assert "MCPAuthSharedCache" in text and "asks the IdP meanwhile" in text, text[-2000:]


@pytest.mark.parametrize("kind", ["redis", "memcache"])
def test_silent_cache_server_never_holds_a_request_past_the_timeout(nodes, idp, kind):
    silent = SilentServer()
    try:
        (a,) = nodes(f"{kind}:127.0.0.1:{silent.port}", kind, n=1)
        toks = [token(f"silent{i}") for i in range(6)]
        for t in toks:
            idp.answer(t, active("hank"))
        results = spread([a], toks, 30, workers=6, timeout=30)
        assert all(r[1] == 200 for r in results), results
        slowest = max(r[2] for r in results)
        assert slowest < T + 1.0, f"a request waited {slowest:.2f} s on a silent cache (MCPAuthHTTPTimeout {T})"
        assert silent.conns, "the provider never connected: the test proved nothing"
        # after a child's first failure the level is skipped there (down for
        # 5 s; and at most 32 calls per child are under way): 20 new tokens
        # one after the other cost at most one more wait per child
        # (ServerLimit 4, +2 for a child whose 5 s end meanwhile), not one per
        # token. (Requests a child serves at once before its first call
        # times out each wait, within the bound above.)
        late = [token(f"silent-late{i}") for i in range(20)]
        for t in late:
            idp.answer(t, active("hank"))
        results = spread([a], late, 20, workers=1)
        assert all(r[1] == 200 for r in results), results
        waited = [r[2] for r in results if r[2] > 0.8]
        assert len(waited) <= 6, f"{len(waited)} of 20 requests waited on a cache server known to be down"
    finally:
        silent.stop()


# ---------------------------------------------------------------------------
# hostile values
# ---------------------------------------------------------------------------

def test_hostile_values_in_the_cache_are_never_accepted(cache_servers, nodes, idp):
    """Node A fills the cache; the tokens are revoked; their entries are
    replaced by garbage, another token's entry, an expired copy of their own
    entry and a truncated one. Node B must ask the IdP for each (and refuse
    them), never take the planted answer."""
    cache = cache_servers("redis")
    a, b = nodes(cache.spec, "redis", cache=3)
    cases = ["garbage", "foreign", "expired", "truncated"]
    toks = {c: token(c) for c in cases}
    other = token("other")
    keys, values = {}, {}
    for label, t in list(toks.items()) + [("other", other)]:
        idp.answer(t, active(f"user-{label}"))
        seen = redis_keys(cache.port)
        assert get(a.port, "/a", t).status == 200
        new = redis_keys(cache.port) - seen
        assert len(new) == 1, new
        keys[label] = new.pop()
        values[label] = resp(cache.port, "GET", keys[label])
        assert t.encode() not in keys[label] and t.encode() not in values[label]  # digests, never the token
    for t in toks.values():
        idp.answer(t, {"active": False})  # revoked at the IdP
    time.sleep(3.5)  # every entry's own expiry (cache=3) has passed
    resp(cache.port, "SET", keys["garbage"], b"\x00not an entry" * 10)
    # a live entry of another token (its copy on A expired: A asks again)
    resp(cache.port, "SET", keys["foreign"], _fresh(cache, a, idp, other, keys["other"]))
    resp(cache.port, "SET", keys["expired"], values["expired"])  # well formed, its own key, expired
    resp(cache.port, "SET", keys["truncated"], _fresh(cache, a, idp, toks["truncated"], keys["truncated"],
                                                        revoke_after=True)[:-7])
    asked_by_a = {"garbage": 1, "foreign": 1, "expired": 1, "truncated": 2}
    for label, t in toks.items():
        r = get(b.port, "/a", t)
        assert r.status == 401, (label, r)
        assert idp.count(t) == asked_by_a[label] + 1, f"{label}: node B took the planted value instead of asking"
    # neighbour: a value planted by nobody, written by node A, is used by node B
    fresh = token("fresh")
    idp.answer(fresh, active("ivy"))
    assert get(a.port, "/a", fresh).status == 200
    assert get(b.port, "/a", fresh).status == 200
    assert idp.count(fresh) == 1


def _fresh(cache, node, idp, tok, key, revoke_after=False):
    """A live, well-formed entry for tok (node A asks again: its own copy has
    expired), read back from the cache."""
    idp.answer(tok, active("planted"))
    assert get(node.port, "/a", tok).status == 200
    if revoke_after:
        idp.answer(tok, {"active": False})
    v = resp(cache.port, "GET", key)
    assert v, "no entry to plant"
    return v


# ---------------------------------------------------------------------------
# configuration
# ---------------------------------------------------------------------------

def test_configtest_names_the_directive_and_the_module_to_load(tmp_path, mcp_auth_so):
    redis = f'LoadModule socache_redis_module "{APACHE_MODULES_DIR / "mod_socache_redis.so"}"'
    shmcb = f'LoadModule socache_shmcb_module "{APACHE_MODULES_DIR / "mod_socache_shmcb.so"}"'
    ok = configtest(tmp_path, mcp_auth_so, f"{redis}\nMCPAuthSharedCache redis:127.0.0.1:6379\n")
    assert ok.returncode == 0, ok.stdout + ok.stderr
    for body, words in [
        ("MCPAuthSharedCache redis:127.0.0.1:6379\n", ["MCPAuthSharedCache", "mod_socache_redis"]),
        ("MCPAuthSharedCache memcache:127.0.0.1:11211\n", ["MCPAuthSharedCache", "mod_socache_memcache"]),
        ("MCPAuthSharedCache nosuch:x\n", ["MCPAuthSharedCache", "nosuch"]),
        (f"{redis}\nMCPAuthSharedCache redis\n", ["MCPAuthSharedCache", "name the server"]),
        (f"{redis}\nMCPAuthSharedCache redis:127.0.0.1:notaport\n", ["MCPAuthSharedCache", "is not HOST[:PORT]"]),
        (f"{redis}\nMCPAuthSharedCache redis:127.0.0.1:6379,:6380\n", ["MCPAuthSharedCache", "is not HOST[:PORT]"]),
        (f"{shmcb}\nMCPAuthSharedCache shmcb\n", ["MCPAuthSharedCache", "local to one machine"]),
    ]:
        r = configtest(tmp_path, mcp_auth_so, body)
        out = r.stdout + r.stderr
        assert r.returncode != 0, (body, out)
        assert all(w in out for w in words), (body, out)
