# SPDX-License-Identifier: Apache-2.0
"""Differential test of MCPAuthToolScope's body reading (SPEC 6, issue 10 item 2).

Three real backends, each decoding JSON-RPC the way a typical server in its
language does, sit behind httpd + mod_proxy + mod_mcp_auth:

* ``/node`` -- the MCP TypeScript SDK (test/mcp/jsonrpc_backend.mjs: JSON.parse + zod)
* ``/py``   -- Python ``json.loads`` + dict lookups (jsonrpc_backends/py_backend.py)
* ``/go``   -- Go ``encoding/json`` into tagged structs (jsonrpc_backends/go_backend.go,
  built here with Debian's golang-go, stdlib only, no network)

Each runs the protected tool ``delete_notes`` and the unprotected
``read_notes`` and records every ``delete_notes`` run with the request's
``X-Diff-Id``. A seeded generator (seed printed on failure; set
``MCP_DIFF_SEED`` to replay, ``MCP_DIFF_BODIES`` for the count) plus the
corpus in ``jsonrpc_corpus/`` produce bodies: random member order, case and
Unicode-fold variants of member names, escapes in keys and values, big and
odd numbers, BOM, trailing bytes, other encodings, batches, deep nesting,
duplicate members. Every body goes through httpd to every backend with a
valid token that LACKS ``notes:delete``, and straight to every backend.

Fails when a backend ran ``delete_notes`` for a body the module let through,
or when the module let through a body that any backend runs as
``delete_notes`` when it gets it directly.
"""

import http.client
import json
import os
import random
import shutil
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from conftest import APACHE_MODULES_DIR, AUDIENCE, ISSUER
from harness.node import NodeProc, ReadyProc

HERE = Path(__file__).resolve().parent
CORPUS = HERE / "jsonrpc_corpus"
BACKEND_SRC = HERE / "jsonrpc_backends"
BACKENDS = ("node", "py", "go")
N_BODIES = int(os.environ.get("MCP_DIFF_BODIES", "1500"))
SEED = int(os.environ.get("MCP_DIFF_SEED") or random.SystemRandom().randrange(2 ** 32))
WORKERS = 8


# ---------------------------------------------------------------------------
# backends
# ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def go_backend_bin(tmp_root):
    go = shutil.which("go") or "/usr/lib/go/bin/go"
    if not os.path.exists(go):
        pytest.fail("go (Debian golang-go) is not installed; make -f apxs.mk deps installs it", pytrace=False)
    d = tmp_root / "jsonrpc-diff-go"
    d.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, GOCACHE=str(d / "cache"), GOPATH=str(d / "gopath"), GO111MODULE="off",
               GOFLAGS="", GOPROXY="off", GOTOOLCHAIN="local", GOENV="off")
    out = d / "go_backend"
    proc = subprocess.run([go, "build", "-o", str(out), str(BACKEND_SRC / "go_backend.go")],
                          cwd=d, env=env, capture_output=True, text=True, timeout=300)
    if proc.returncode != 0:
        pytest.fail(f"go build failed:\n{proc.stdout}\n{proc.stderr}", pytrace=False)
    return out


@pytest.fixture(scope="module")
def stack(node, go_backend_bin, httpd_factory, jwks_server, mcp_auth_so, tmp_root):
    tmp = tmp_root / "jsonrpc-diff"
    tmp.mkdir(parents=True, exist_ok=True)
    procs = {}
    httpd = None
    try:
        nodeproc = NodeProc(node, "jsonrpc_backend.mjs", ["--port", "0"], tmp / "node.log")
        procs["node"] = nodeproc
        ports = {"node": nodeproc.ready["port"]}
        procs["py"] = ReadyProc(["/usr/bin/python3", str(BACKEND_SRC / "py_backend.py")], tmp / "py.log")
        procs["go"] = ReadyProc([str(go_backend_bin)], tmp / "go.log")
        ports.update(py=procs["py"].port, go=procs["go"].port)
        server_conf = "\n".join([
            f'LoadModule proxy_module "{APACHE_MODULES_DIR / "mod_proxy.so"}"',
            f'LoadModule proxy_http_module "{APACHE_MODULES_DIR / "mod_proxy_http.so"}"',
        ])
        locations = {}
        for b in BACKENDS:
            locations[f"/{b}"] = "\n".join([
                "AuthType mcp-jwt", 'AuthName "mcp"',
                f"MCPAuthIssuer {ISSUER} jwks_uri={jwks_server.jwks_uri}",
                f"MCPAuthAudience {AUDIENCE}",
                "Require mcp-scope mcp:tools",
                "MCPAuthToolScope delete_notes notes:delete",
                f"ProxyPass http://127.0.0.1:{ports[b]}/mcp",
            ])
        httpd = httpd_factory.start(locations, server_conf=server_conf, module_so=mcp_auth_so,
                                    name="jsonrpc-diff")
        yield httpd, ports
    finally:
        if httpd is not None:
            httpd.stop()
        for p in procs.values():
            p.stop()


# ---------------------------------------------------------------------------
# HTTP: keep-alive connections per thread
# ---------------------------------------------------------------------------

_local = threading.local()


def _conn(port):
    conns = getattr(_local, "conns", None)
    if conns is None:
        conns = _local.conns = {}
    if port not in conns:
        conns[port] = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    return conns[port]


def send(port, path, body, *, token=None, diff_id="-", method="POST"):
    headers = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream",
               "X-Diff-Id": diff_id}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    for attempt in (0, 1):
        conn = _conn(port)
        try:
            conn.request(method, path, body=body, headers=headers)
            r = conn.getresponse()
            data = r.read()
            reached = r.getheader("X-Backend") is not None
            if r.will_close:
                conn.close()
            return r.status, data, reached
        except (http.client.HTTPException, ConnectionError, OSError):
            conn.close()
            _local.conns.pop(port, None)
            if attempt:
                raise
    raise AssertionError("unreachable")


def executions(port):
    status, data, _ = send(port, "/_executions", None, method="GET")
    assert status == 200, data
    return json.loads(data)


def reset(port):
    assert send(port, "/_reset", b"")[0] == 200


# ---------------------------------------------------------------------------
# the generator
# ---------------------------------------------------------------------------

class Gen:
    """Random JSON-RPC bodies around a tools/call of delete_notes. Text is
    built by hand so every escape, spelling and byte is chosen here."""

    HOMOGLYPHS = {"a": "\u0430", "e": "\u0435", "o": "\u043e", "p": "\u0440", "i": "\u0131", "m": "\uff4d"}

    def __init__(self, rng: random.Random):
        self.r = rng

    def chance(self, p):
        return self.r.random() < p

    # -- text ---------------------------------------------------------------
    def ws(self):
        if not self.chance(0.15):
            return ""
        if self.chance(0.03):
            return self.r.choice(["\f", "\v", "\u00a0", "\u2028", "\ufeff"])  # not JSON whitespace
        return "".join(self.r.choice(" \t\r\n") for _ in range(self.r.randint(1, 3)))

    def jstr(self, s, escape=0.0):
        out = ['"']
        for ch in s:
            cp = ord(ch)
            if ch in '"\\' or cp < 0x20 or (escape and self.chance(escape)):
                if ch == "/" and self.chance(0.5):
                    out.append("\\/")
                elif cp > 0xFFFF:
                    v = cp - 0x10000
                    out.append("\\u%04x\\u%04x" % (0xD800 + (v >> 10), 0xDC00 + (v & 0x3FF)))
                elif ch in '"\\' and self.chance(0.5):
                    out.append("\\" + ch)
                else:
                    out.append(("\\u%04x" if self.chance(0.5) else "\\u%04X") % cp)
            else:
                out.append(ch)
        out.append('"')
        return "".join(out)

    def spelling(self, s):
        """A spelling of a member name or value: usually exact, else a case
        or fold variant, or a different string that only looks alike."""
        k = self.r.random()
        if k < 0.45:
            return s
        if k < 0.60:
            return "".join(c.upper() if self.chance(0.5) else c for c in s)
        if k < 0.68:
            return s.upper()
        if k < 0.78 and ("s" in s or "k" in s):
            return "".join("\u017f" if c == "s" and self.chance(0.7) else
                           "\u212a" if c == "k" and self.chance(0.7) else c for c in s)
        if k < 0.83:
            return s + self.r.choice(["\u0000", " ", "\u0000x", "\u200b"])
        if k < 0.90:
            cands = [i for i, c in enumerate(s) if c in self.HOMOGLYPHS]
            if cands:
                i = self.r.choice(cands)
                return s[:i] + self.HOMOGLYPHS[s[i]] + s[i + 1:]
            return s
        if k < 0.95:
            return s.replace("_", "-").replace("/", "\\")
        return s

    def key(self, name, variant=0.25):
        return self.jstr(self.spelling(name) if self.chance(variant) else name, escape=self.r.choice([0, 0, 0.3]))

    def obj(self, members):
        if self.chance(0.7):
            self.r.shuffle(members)
        inner = ",".join(f"{self.ws()}{k}{self.ws()}:{self.ws()}{v}{self.ws()}" for k, v in members)
        if members and self.chance(0.01):
            inner += ","  # trailing comma: not JSON
        return "{" + inner + self.ws() + "}"

    # -- values -------------------------------------------------------------
    def number(self):
        good = ["1", "0", "-0", "42", "1e400", "-1e400", "1E+2", "1.5e-400", "0.0", "123456789012345678901234567890",
                "9007199254740993", "-9223372036854775809", "1." + "0" * 40 + "1", "2e-0"]
        bad = ["NaN", "Infinity", "-Infinity", "01", "+1", ".5", "1.", "0x10", "1e", "--1", "1_000"]
        return self.r.choice(bad) if self.chance(0.06) else self.r.choice(good)

    def id_value(self):
        k = self.r.random()
        if k < 0.5:
            return str(self.r.randint(0, 99999))
        if k < 0.7:
            return self.number()
        if k < 0.85:
            return self.jstr(self.r.choice(["a", "req-1", "tools/call", "delete_notes", "\u017f"]), escape=0.2)
        return self.r.choice(["null", "true", "{}", "[]", '{"name":"delete_notes"}'])

    def deep(self):
        d = self.r.choice([10, 100, 1000, 5000, 20000]) if not self.chance(0.05) else 100000
        o, c = self.r.choice([("[", "]"), ('{"a":', "}")])
        inner = o * d + self.r.choice(["1", '"delete_notes"', "{}"]) + c * d
        if self.chance(0.1):
            inner = inner[:-1]  # one short: not JSON
        return inner

    def arguments(self):
        k = self.r.random()
        if k < 0.5:
            return "{}"
        if k < 0.75:
            return self.obj([(self.key("name", 0.5), self.jstr("delete_notes")),
                             (self.key("method", 0.5), self.jstr("tools/call"))])
        if k < 0.85:
            return self.obj([(self.jstr("x"), self.deep())])
        return self.obj([(self.jstr("n"), self.number()), (self.jstr("s"), self.jstr("\u017f\u212a\U0001f600", 0.5))])

    def tool_name(self, real):
        v = self.spelling(real) if self.chance(0.3) else real
        return self.jstr(v, escape=self.r.choice([0, 0, 0.3]))

    def params(self, tool):
        members = []
        if not self.chance(0.05):
            name = self.tool_name(tool) if not self.chance(0.04) else self.r.choice(
                ["null", "1", '["delete_notes"]', '{"name":"delete_notes"}'])
            members.append((self.key("name", 0.15), name))
        if self.chance(0.7):
            members.append((self.key("arguments", 0.1), self.arguments()))
        for _ in range(self.r.choice([0, 0, 0, 1, 2, 5])):  # decoys
            members.append((self.key("name", 0.8), self.tool_name(self.r.choice(["delete_notes", "read_notes"]))))
        if self.chance(0.05):
            members.append((self.key("params", 0.3), self.obj([(self.jstr("name"), self.jstr("delete_notes"))])))
        return self.obj(members)

    def message(self):
        tool = "delete_notes" if self.chance(0.8) else "read_notes"
        method = self.r.choice(["tools/call"] * 8 + ["tools/list", "ping", "prompts/get"])
        members = []
        if self.chance(0.9):
            members.append((self.key("jsonrpc", 0.1), self.jstr("2.0")))
        if self.chance(0.85):
            members.append((self.key("id", 0.1), self.id_value()))
        members.append((self.key("method", 0.15), self.jstr(self.spelling(method) if self.chance(0.15) else method,
                                                          escape=self.r.choice([0, 0, 0.3]))))
        if self.chance(0.97):
            members.append((self.key("params", 0.15), self.params(tool) if not self.chance(0.03)
                            else self.r.choice(['["delete_notes"]', '"delete_notes"', "null"])))
        for _ in range(self.r.choice([0, 0, 0, 0, 1, 2, 4])):  # decoy members
            which = self.r.choice(["method", "params", "id", "jsonrpc", "name"])
            value = {"method": lambda: self.jstr(self.r.choice(["tools/call", "ping", "tools/list"])),
                     "params": lambda: self.params(self.r.choice(["delete_notes", "read_notes"])),
                     "id": self.id_value, "jsonrpc": lambda: self.jstr("2.0"),
                     "name": lambda: self.jstr("delete_notes")}[which]()
            members.append((self.key(which, 0.7), value))
        return self.obj(members)

    def body(self) -> bytes:
        k = self.r.random()
        if k < 0.72:
            text = self.message()
        else:
            msgs = [self.message() for _ in range(self.r.randint(0, 4))]
            if self.chance(0.3):
                msgs.insert(self.r.randint(0, len(msgs)),
                            '{"jsonrpc":"2.0","id":9,"method":"tools/call","params":{"name":"read_notes"}}')
            if self.chance(0.05):
                msgs = ["[" + ",".join(msgs) + "]"]
            text = "[" + ",".join(self.ws() + m + self.ws() for m in msgs) + "]"
        text = self.ws() + text + self.ws()
        data = text.encode("utf-8", "surrogatepass")
        k = self.r.random()
        if k < 0.03:
            data = b"\xef\xbb\xbf" + data
        elif k < 0.06:
            data += self.r.choice([b"x", b"\x00", b"{}", b'{"jsonrpc":"2.0","id":2,"method":"tools/call",'
                                   b'"params":{"name":"delete_notes"}}', b"\xc2\xa0", b"\n\n", b"//"])
        elif k < 0.08:
            data = text.encode(self.r.choice(["utf-16-le", "utf-16-be", "utf-16", "utf-32-le", "utf-8-sig"]))
        elif k < 0.10:
            quotes = [i for i, b in enumerate(data) if b == 0x22]
            if quotes:
                i = self.r.choice(quotes) + 1
                data = data[:i] + self.r.choice([b"\xff", b"\xc0\xaf", b"\xed\xa0\x80", b"\\ud800", b"\\udc00",
                                                 b"\xe2\x82", b"\x7f", b"\x1f"]) + data[i:]
        return data


def load_corpus():
    return [(p.name, p.read_bytes()) for p in sorted(CORPUS.iterdir()) if p.is_file()]


# ---------------------------------------------------------------------------
# tests
# ---------------------------------------------------------------------------

PLAIN_DELETE = b'{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"delete_notes","arguments":{}}}'
PLAIN_READ = b'{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"read_notes","arguments":{}}}'


def test_legitimate_neighbours_on_every_backend(stack, minter):
    """With notes:delete a plain call runs on each backend; without it, 403
    and nothing runs; the unprotected tool runs either way."""
    httpd, ports = stack
    with_scope = minter.token(scope="mcp:tools notes:delete")
    without = minter.token(scope="mcp:tools")
    for b in BACKENDS:
        reset(ports[b])
        status, data, reached = send(httpd.port, f"/{b}", PLAIN_DELETE, token=without, diff_id="no-scope")
        assert status == 403 and not reached, (b, data)
        status, data, reached = send(httpd.port, f"/{b}", PLAIN_READ, token=without, diff_id="read")
        assert status == 200 and reached and b"notes" in data, (b, status, data)
        assert executions(ports[b]) == [], b
        status, data, reached = send(httpd.port, f"/{b}", PLAIN_DELETE, token=with_scope, diff_id="with-scope")
        assert status == 200 and reached and b"deleted" in data, (b, status, data)
        assert executions(ports[b]) == ["with-scope"], b
        reset(ports[b])


def test_corpus_attacks_run_on_some_backend_directly(stack):
    """The corpus is not toothless: each backend, handed the bodies directly,
    runs delete_notes for some of them (so a module that let them through
    would fail the differential test)."""
    _, ports = stack
    corpus = load_corpus()
    assert len(corpus) >= 20, [n for n, _ in corpus]
    ran = {}
    for b in BACKENDS:
        reset(ports[b])
        for name, body in corpus:
            send(ports[b], "/mcp", body, diff_id=name)
        ran[b] = set(executions(ports[b]))
        reset(ports[b])
    for b in BACKENDS:
        assert ran[b], (b, ran)
    # the Go backend runs the case-folded and ſ-spelled ones, the others don't
    assert any("fold" in n or "case" in n for n in ran["go"]), ran["go"]


def test_differential(stack, minter):
    httpd, ports = stack
    token = minter.token(scope="mcp:tools")  # valid, lacks notes:delete
    gen = Gen(random.Random(SEED))
    bodies = load_corpus() + [(f"gen-{i}", gen.body()) for i in range(N_BODIES)]
    for b in BACKENDS:
        reset(ports[b])
    t0 = time.monotonic()

    def through(job):
        i, b = job
        return i, b, send(httpd.port, f"/{b}", bodies[i][1], token=token, diff_id=f"h:{i}:{b}")

    def direct(job):
        i, b = job
        return i, b, send(ports[b], "/mcp", bodies[i][1], diff_id=f"d:{i}:{b}")

    jobs = [(i, b) for i in range(len(bodies)) for b in BACKENDS]
    with ThreadPoolExecutor(WORKERS) as pool:
        via_httpd = {(i, b): res for i, b, res in pool.map(through, jobs)}
        list(pool.map(direct, jobs))
    ran = {b: executions(ports[b]) for b in BACKENDS}
    elapsed = time.monotonic() - t0

    def refused(i, b):
        return not via_httpd[(i, b)][2]

    def show(i):
        name, body = bodies[i]
        st = {b: via_httpd[(i, b)][0] if not refused(i, b) else f"module {via_httpd[(i, b)][0]}" for b in BACKENDS}
        return f"  {name} httpd={st} body={body[:300]!r}{'...' if len(body) > 300 else ''}"

    replay = f"(seed {SEED}: MCP_DIFF_SEED={SEED} MCP_DIFF_BODIES={N_BODIES} to replay)"
    # 1. Nothing the module let through ran the protected tool.
    leaked = sorted({int(e.split(":")[1]) for b in BACKENDS for e in ran[b] if e.startswith("h:")})
    assert not leaked, (f"delete_notes ran without its scope behind the module {replay}:\n"
                        + "\n".join(show(i) for i in leaked[:20]))
    # 2. Whatever any backend runs as delete_notes was refused on every location.
    dangerous = {b: {int(e.split(":")[1]) for e in ran[b] if e.startswith("d:")} for b in BACKENDS}
    let_through = sorted(i for i in set().union(*dangerous.values())
                         if not all(refused(i, b) for b in BACKENDS))
    assert not let_through, (f"bodies a backend runs as delete_notes passed the module {replay}:\n"
                             + "\n".join(show(i) for i in let_through[:20]))
    # 3. The module's refusals are the SPEC 6 ones: 403, a 400 JSON-RPC error,
    #    413 over 1 MiB (deep nesting in UTF-16/32).
    for (i, b), (status, data, reached) in via_httpd.items():
        if reached:
            continue
        assert status in (400, 403) or (status == 413 and len(bodies[i][1]) > 1024 * 1024), (show(i), b, status)
        if status == 400:
            err = json.loads(data)["error"]
            assert err["code"] in (-32700, -32600), (show(i), data)
    # 4. The generator has teeth, and the module is not refusing everything.
    n = len(bodies)
    passed = sum(1 for i in range(n) if not refused(i, "py"))
    counts = {b: len(dangerous[b]) for b in BACKENDS}
    print(f"\njsonrpc differential: seed {SEED}, {n} bodies x {len(BACKENDS)} backends in {elapsed:.1f}s; "
          f"run directly as delete_notes: {counts}; passed the module: {passed}")
    for b in BACKENDS:
        assert counts[b] >= n // 20, (b, counts, replay)
    assert passed >= n // 10, (passed, replay)
    # 5. The module's verdict does not depend on the backend behind it.
    for i in range(n):
        verdicts = {(refused(i, b), via_httpd[(i, b)][0] if refused(i, b) else None) for b in BACKENDS}
        assert len(verdicts) == 1, show(i)
