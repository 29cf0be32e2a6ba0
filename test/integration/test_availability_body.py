"""Availability of tool-scope body checks (issue 15 items 2, 9, 14-claims).

Written as the attacks, each with the bound it must stay within, beside the
legitimate request that must still pass:

* any valid token sends 1 MiB adversarial JSON bodies (``[{},{},...]``,
  deep nesting, repeated or distinct member names, a batch of tools/call,
  huge escaped strings), 20 at a time over HTTP/1.1 (event MPM) and 30
  streams on one h2c connection: every worker child's RSS grows < 50 MB
  (jansson: ~80 MB per request, children at 1.1-1.4 GB);
* nesting deeper than MCP_RPC_MAX_DEPTH (128) answers -32600 and more than
  MCP_RPC_MAX_MESSAGES (1024) messages in a batch or MCP_RPC_MAX_MEMBERS
  (256) members in a message / params object answer 413, while depth 32 in
  arguments, a batch of 100 tools/call and a normal call pass and are
  checked;
* 1 MiB non-JSON bodies to a location with 200 MCPAuthToolScope lines cost
  little server CPU (was 1.8 s per request: tools x body size);
* a JWT whose claims exceed the kernel's 128 KiB per-variable limit reaches
  a CGI (MCP_AUTH_CLAIMS left out with a log line naming it) instead of
  breaking the exec (E2BIG).
"""

import json
import os
import re
import shutil
import socket
import struct
import subprocess
import threading
import time
from pathlib import Path

import pytest

from conftest import AUDIENCE, ISSUER
from test_faults import children_of, worker_rss

MIB = 1024 * 1024
TOOLS = 200
H2 = [("http2_module", "mod_http2.so")]


def protected(extra, jwks):
    return "\n".join(["AuthType mcp-jwt", 'AuthName "mcp"', f"MCPAuthIssuer {ISSUER} jwks_uri={jwks}",
                      f"MCPAuthAudience {AUDIENCE}", extra.strip("\n")])


def tool_lines():
    lines = [f"MCPAuthToolScope tool{i:03d} s{i:03d}" for i in range(TOOLS)]
    lines.append("MCPAuthToolScope delete_notes notes:delete")
    return "\n".join(lines) + "\nRequire valid-user"


def locations(jw):
    return {
        # /adv is served from htdocs (a 404 after the check): the body is
        # read, parsed and judged, and no CGI is forked per request.
        "/adv": protected(tool_lines(), jw),
        "/tools": protected(tool_lines(), jw),
    }


# The backend of /tools and /cgi: reads its stdin (mod_cgid resets the
# response of a script that exits before taking the body), prints the
# length it read and the identity variables it got.
ENV_CGI = r"""#!/usr/bin/python3
import os, sys
data = sys.stdin.buffer.read()
out = sys.stdout
out.write("Content-Type: text/plain\r\n\r\n")
out.write("BODY_LENGTH=%d\n" % len(data))
for k in ("REMOTE_USER", "MCP_AUTH_SUB", "MCP_AUTH_ISS", "MCP_AUTH_SCOPE", "MCP_AUTH_CLAIMS", "MCP_AUTH_BIG"):
    v = os.environ.get(k)
    out.write("%s=%s\n" % (k, "<absent>" if v is None else ("<%d bytes>" % len(v) if len(v) > 200 else v)))
"""


@pytest.fixture(scope="module")
def env_cgi(tmp_root):
    d = tmp_root / "avbody-cgi"
    d.mkdir(parents=True, exist_ok=True)
    os.chmod(d, 0o755)
    p = d / "env.cgi"
    p.write_text(ENV_CGI)
    os.chmod(p, 0o755)
    return p


def start(httpd_factory, jwks_server, mcp_auth_so, env_cgi, name, h2=False):
    # Before the harness's ScriptAliasMatch lines: /adv never forks a CGI
    # (a 404 from a missing directory), /tools gets the CGI that reads stdin.
    conf = ('Alias /adv "/nonexistent-mcp-adv"\n<Directory "/nonexistent-mcp-adv">\nRequire all granted\n'
            f'</Directory>\nScriptAliasMatch "^/tools(/.*)?$" "{env_cgi}"')
    if h2:
        conf += "\nProtocols h2c http/1.1\nH2MaxSessionStreams 100\nH2StreamMaxMemSize 65536"
    return httpd_factory.start(locations(jwks_server.jwks_uri), server_conf=conf, module_so=mcp_auth_so,
                               name=name, modules=H2 if h2 else ())


@pytest.fixture(scope="module")
def server(httpd_factory, jwks_server, mcp_auth_so, env_cgi):
    h = start(httpd_factory, jwks_server, mcp_auth_so, env_cgi, "avbody")
    try:
        yield h
    finally:
        h.stop()


@pytest.fixture(scope="module")
def h2server(httpd_factory, jwks_server, mcp_auth_so, env_cgi):
    h = start(httpd_factory, jwks_server, mcp_auth_so, env_cgi, "avbody-h2", h2=True)
    try:
        yield h
    finally:
        h.stop()


def post(h, path, token, body, extra=()):
    return h.request("POST", path, [("Authorization", f"Bearer {token}"),
                                    ("Content-Type", "application/json")] + list(extra), body, timeout=60)


def call(name, i=1, args=None):
    m = {"jsonrpc": "2.0", "id": i, "method": "tools/call", "params": {"name": name}}
    if args is not None:
        m["params"]["arguments"] = args
    return m


# -- the adversarial bodies (each <= 1 MiB, the module's body limit) ---------

def _fill(head, unit, tail, limit=MIB):
    n = (limit - len(head) - len(tail)) // len(unit)
    return head + unit * n + tail


def _members(distinct, limit=MIB):
    out, i = [b"{"], 0
    size = 1
    while size < limit - 32:
        k = b'"k%d":1,' % i if distinct else b'"a":1,'
        out.append(k)
        size += len(k)
        i += 1
    out.append(b'"z":1}')
    return b"".join(out)


def _call_batch(limit=MIB):
    one = json.dumps(call("tool007")).encode() + b","
    n = (limit - 2) // len(one)
    return b"[" + one * n + json.dumps(call("tool007")).encode()[:0] + b"{}]"


ADVERSARIAL = {
    "empty-objects": _fill(b"[", b"{},", b"{}]"),
    "empty-arrays-deep": b"[" * (MIB // 2) + b"]" * (MIB // 2),
    "deep-objects": b'{"a":' * (MIB // 6) + b"1" + b"}" * (MIB // 6),
    "repeated-member": _members(False),
    "distinct-members": _members(True),
    "params-members": b'{"method":"tools/call","params":{"name":"tool001",'
    + _members(True, MIB - 64)[1:-6] + b'"z":1}}',
    "call-batch": _call_batch(),
    "escaped-name": b'{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"'
    + b"\\u00e9\\n" * ((MIB - 100) // 8) + b'"}}',
    "escaped-method": b'{"jsonrpc":"2.0","id":1,"method":"' + b"\\u00e9\\n" * ((MIB - 100) // 8) + b'"}',
    "arg-strings": _fill(b'{"method":"tools/call","params":{"name":"tool001","arguments":{"x":[',
                         b'"\\u00e9\\n\\"",', b'""]}}}'),
}
assert all(len(b) <= MIB for b in ADVERSARIAL.values()), {k: len(b) for k, b in ADVERSARIAL.items()}


def all_scopes():
    return " ".join(f"s{i:03d}" for i in range(TOOLS)) + " notes:delete"


def rss_growth(before, after):
    """{pid: kB grown} for every child alive at both points, new ones from 0."""
    return {pid: after[pid] - before.get(pid, 0) for pid in after}


def warm(h, token):
    # Every child gets a few ordinary requests first, so what is measured
    # is the growth the bodies cause, not the first request's.
    def one():
        for _ in range(3):
            post(h, "/adv", token, json.dumps(call("tool001")).encode())
    ts = [threading.Thread(target=one) for _ in range(24)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()


def fire_http1(h, token, rounds=2, parallel=20):
    kinds = sorted(ADVERSARIAL)
    statuses = []
    lock = threading.Lock()

    def one(i):
        body = ADVERSARIAL[kinds[i % len(kinds)]]
        r = post(h, "/adv", token, body)
        with lock:
            statuses.append((kinds[i % len(kinds)], r.status))

    for rnd in range(rounds):
        ts = [threading.Thread(target=one, args=(rnd * parallel + i,)) for i in range(parallel)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
    return statuses


def test_adversarial_bodies_keep_child_rss_bounded_event(server, minter):
    token = minter.token(scope=all_scopes())
    warm(server, token)
    time.sleep(0.3)
    before = worker_rss(server)
    t0 = time.monotonic()
    statuses = fire_http1(server, token)
    elapsed = time.monotonic() - t0
    time.sleep(0.3)
    after = worker_rss(server)
    growth = rss_growth(before, after)
    print(f"\nevent: 40 x 1 MiB adversarial bodies in {elapsed:.1f}s; child RSS before {before} after {after} "
          f"growth kB {growth}; statuses {sorted(set(statuses))}")
    assert all(s in (400, 403, 404, 413) for _, s in statuses), statuses
    assert max(growth.values()) < 50 * 1024, growth
    # the legitimate neighbour still passes, and is still checked
    assert post(server, "/tools", token, json.dumps(call("tool005")).encode()).status == 200
    assert post(server, "/tools", minter.token(scope="s004"), json.dumps(call("tool005")).encode()).status == 403


# -- a minimal h2c client ----------------------------------------------------
# python3 has no HTTP/2 client and curl 7.88 fails pending multiplexed
# transfers on an h2c prior-knowledge connection ("Error in the HTTP2
# framing layer"), so: preface, literal HPACK headers, DATA within the
# peer's flow-control windows, and END_STREAM / RST_STREAM per stream.
STATIC_STATUS = {8: 200, 9: 204, 10: 206, 11: 304, 12: 400, 13: 404, 14: 500}


def _hint(n, prefix_bits=7):
    limit = (1 << prefix_bits) - 1
    if n < limit:
        return bytes([n])
    out, n = [limit], n - limit
    while n >= 128:
        out.append(n % 128 + 128)
        n //= 128
    return bytes(out + [n])


def _hfield(name, value):
    return b"\x00" + _hint(len(name)) + name + _hint(len(value)) + value  # literal, not indexed, no Huffman


def _frame(ftype, flags, sid, payload=b""):
    return struct.pack(">I", len(payload))[1:] + bytes([ftype, flags]) + struct.pack(">I", sid) + payload


def h2c_posts(h, path, token, body, n, timeout=60):
    """n POSTs of body as concurrent streams of ONE h2c connection; returns
    {stream id: status (None when not a static-table code) or 'reset'}."""
    sock = socket.create_connection(("127.0.0.1", h.port), timeout=timeout)
    buf = bytearray()

    def read_frame():
        while len(buf) < 9 or len(buf) < 9 + int.from_bytes(buf[:3], "big"):
            chunk = sock.recv(65536)
            if not chunk:
                raise ConnectionError("h2c connection closed")
            buf.extend(chunk)
        ln = int.from_bytes(buf[:3], "big")
        ftype, flags, sid = buf[3], buf[4], int.from_bytes(buf[5:9], "big") & 0x7FFFFFFF
        payload = bytes(buf[9:9 + ln])
        del buf[:9 + ln]
        return ftype, flags, sid, payload

    try:
        sock.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + _frame(4, 0, 0))
        conn_window, initial, max_frame = 65535, 65535, 16384
        sids = [1 + 2 * i for i in range(n)]
        window = {sid: initial for sid in sids}
        sent = {sid: 0 for sid in sids}
        done, statuses = set(), {}
        for sid in sids:
            block = b"".join(_hfield(k, v) for k, v in (
                (b":method", b"POST"), (b":scheme", b"http"), (b":path", path.encode()),
                (b":authority", f"127.0.0.1:{h.port}".encode()),
                (b"authorization", f"Bearer {token}".encode()), (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode())))
            sock.sendall(_frame(1, 4, sid, block))  # END_HEADERS
        deadline = time.monotonic() + timeout
        while len(done) < n:
            assert time.monotonic() < deadline, ("h2c streams did not finish", statuses)
            progressed = False
            for sid in sids:
                left = len(body) - sent[sid]
                if sid in done or left <= 0:
                    continue
                k = min(left, max_frame, conn_window, window[sid])
                if k <= 0:
                    continue
                chunk = body[sent[sid]:sent[sid] + k]
                sent[sid] += k
                conn_window -= k
                window[sid] -= k
                sock.sendall(_frame(0, 1 if sent[sid] == len(body) else 0, sid, chunk))
                progressed = True
            if progressed:
                sock.setblocking(False)
                try:
                    chunk = sock.recv(65536)
                    if chunk:
                        buf.extend(chunk)
                except BlockingIOError:
                    pass
                finally:
                    sock.settimeout(timeout)
                if len(buf) < 9 or len(buf) < 9 + int.from_bytes(buf[:3], "big"):
                    continue
            ftype, flags, sid, payload = read_frame()
            if ftype == 4 and not flags & 1:  # SETTINGS
                for i in range(0, len(payload), 6):
                    key, val = struct.unpack(">HI", payload[i:i + 6])
                    if key == 4:
                        for s in window:
                            window[s] += val - initial
                        initial = val
                    elif key == 5:
                        max_frame = val
                sock.sendall(_frame(4, 1, 0))
            elif ftype == 8:  # WINDOW_UPDATE
                inc = int.from_bytes(payload[:4], "big") & 0x7FFFFFFF
                if sid == 0:
                    conn_window += inc
                elif sid in window:
                    window[sid] += inc
            elif ftype == 6 and not flags & 1:  # PING
                sock.sendall(_frame(6, 1, 0, payload))
            elif ftype == 1:  # HEADERS: the status when it is a static-table index
                statuses.setdefault(sid, STATIC_STATUS.get(payload[0] & 0x7F) if payload[0] & 0x80 else None)
                if flags & 1:
                    done.add(sid)
            elif ftype == 0:
                if payload:
                    sock.sendall(_frame(8, 0, 0, struct.pack(">I", len(payload))))
                if flags & 1:
                    done.add(sid)
            elif ftype == 3:  # RST_STREAM
                statuses[sid] = "reset"
                done.add(sid)
            elif ftype == 7:  # GOAWAY
                raise ConnectionError(f"GOAWAY after {len(done)} streams: {statuses}")
        return statuses
    finally:
        sock.close()


def test_adversarial_bodies_keep_child_rss_bounded_h2c(h2server, minter, tmp_path):
    token = minter.token(scope=all_scopes())
    warm(h2server, token)
    time.sleep(0.3)
    before = worker_rss(h2server)
    results = []
    t0 = time.monotonic()
    kinds = ("empty-objects", "distinct-members", "escaped-name", "empty-arrays-deep")
    threads = [threading.Thread(target=lambda k=k: results.append(
        (k, h2c_posts(h2server, "/adv", token, ADVERSARIAL[k], 30)))) for k in kinds]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.monotonic() - t0
    time.sleep(0.3)
    after = worker_rss(h2server)
    growth = rss_growth(before, after)
    print(f"\nh2c: 4 connections x 30 streams of 1 MiB in {elapsed:.1f}s; child RSS before {before} after {after} "
          f"growth kB {growth}; results {[(k, sorted(set(map(str, st.values())))) for k, st in results]}")
    assert len(results) == 4 and all(len(st) == 30 for _, st in results), results
    assert all(v in (400, 404, None) for _, st in results for v in st.values()), results
    assert max(growth.values()) < 50 * 1024, growth
