# SPDX-License-Identifier: Apache-2.0
"""mod_mcp_auth between real MCP peers.

* test/mcp/idp.mjs     -- oidc-provider 9: the authorization server
* test/mcp/server.mjs  -- MCP SDK streamable-HTTP server (the backend)
* test/mcp/client.mjs  -- MCP SDK client running the real OAuth flow
* httpd + mod_mcp_auth + mod_proxy_http in front of server.mjs

The module only learns the IdP's issuer (discovery, no jwks_uri); the SDK
client only learns the MCP URL: everything else (401 -> RFC 9728 metadata ->
AS metadata -> token with ``resource`` -> MCP) is discovered at run time.

Node dependencies come from test/package-lock.json; if test/node_modules is
missing they are installed with ``npm ci`` (a failure is a test error).
"""

import hashlib
import http.client
import json
import re
import socket
import subprocess
import time
import urllib.parse
import urllib.request
from base64 import b64encode
from dataclasses import dataclass
from pathlib import Path

import pytest

from harness.env import APACHE_MODULES_DIR, free_port
from harness.asserts import challenge_params
from harness.httpd import Response
from harness.node import MCP_DIR, TEST_DIR, NodeProc
from harness.tokens import b64url_decode

WK = "/.well-known/oauth-protected-resource"
ALL_SCOPES = "mcp:tools notes:read notes:delete"
MIB = 1024 * 1024

CLIENTS = {
    "full": ("full-secret", ALL_SCOPES),
    "reader": ("reader-secret", "mcp:tools notes:read"),
    "stepper": ("stepper-secret", ALL_SCOPES),
}


# ---------------------------------------------------------------------------
# The stack: backend, httpd, IdP
# ---------------------------------------------------------------------------

def mcp_snippet(issuer, backend_url, scopes_supported):
    return "\n".join([
        "AuthType mcp-jwt",
        'AuthName "mcp"',
        f"MCPAuthIssuer {issuer}",
        "MCPAuthTokenType at+jwt",
        f"MCPAuthScopesSupported {scopes_supported}",
        "Require mcp-scope mcp:tools",
        "MCPAuthToolScope delete_notes notes:delete",
        f"ProxyPass {backend_url} flushpackets=on",
    ])


def idp_config(base):
    return {
        "clients": [
            {"client_id": cid, "client_secret": secret, "scope": scope,
             "extra_claims": {"email": f"{cid}@example.test"}}
            for cid, (secret, scope) in CLIENTS.items()
        ],
        "resources": {
            f"{base}/mcp": {"scopes": ALL_SCOPES},
            f"{base}/step": {"scopes": ALL_SCOPES},
            # tokens for /wrongaud are issued with another audience
            f"{base}/wrongaud": {"scopes": ALL_SCOPES, "audience": f"{base}/elsewhere"},
            f"{base}/elsewhere": {"scopes": ALL_SCOPES},
        },
    }


@dataclass
class Stack:
    httpd: object
    idp: NodeProc
    backend: NodeProc
    issuer: str
    base: str
    tmp: Path

    @property
    def url(self):
        return f"{self.base}/mcp"

    def token(self, client="full", scope=ALL_SCOPES, resource=None) -> str:
        secret = CLIENTS[client][0]
        data = urllib.parse.urlencode({"grant_type": "client_credentials", "scope": scope,
                                       "resource": resource or self.url}).encode()
        req = urllib.request.Request(self.idp.ready["token_endpoint"], data=data, headers={
            "Authorization": "Basic " + b64encode(f"{client}:{secret}".encode()).decode(),
            "Content-Type": "application/x-www-form-urlencoded"})
        with urllib.request.urlopen(req, timeout=10) as r:
            return json.loads(r.read())["access_token"]

    def access_lines(self):
        try:
            return self.httpd.access_log.read_text(errors="replace").splitlines()
        except FileNotFoundError:
            return []


@pytest.fixture(scope="module")
def stack(node, httpd_factory, mcp_auth_so, tmp_root):
    tmp = tmp_root / "mcp-sdk"
    tmp.mkdir(parents=True, exist_ok=True)
    procs = []
    httpd = None
    try:
        backend = NodeProc(node, "server.mjs", ["--port", "0"], tmp / "server.log")
        procs.append(backend)
        bport = backend.ready["port"]
        last = None
        for attempt in range(3):
            idp_port = free_port()
            issuer = f"http://127.0.0.1:{idp_port}"
            server_conf = "\n".join([
                f'LoadModule proxy_module "{APACHE_MODULES_DIR / "mod_proxy.so"}"',
                f'LoadModule proxy_http_module "{APACHE_MODULES_DIR / "mod_proxy_http.so"}"',
            ])
            backend_url = f"http://127.0.0.1:{bport}/mcp"
            httpd = httpd_factory.start({
                "/mcp": mcp_snippet(issuer, backend_url, ALL_SCOPES),
                # the 401 hint leaves out notes:delete: the SDK must step up
                "/step": mcp_snippet(issuer, backend_url, "mcp:tools notes:read"),
                "/wrongaud": mcp_snippet(issuer, backend_url, "mcp:tools notes:read"),
            }, server_conf=server_conf, module_so=mcp_auth_so, name="mcp-sdk")
            base = httpd.base_url
            cfg = tmp / f"idp-{attempt}.json"
            cfg.write_text(json.dumps(idp_config(base)))
            try:
                idp = NodeProc(node, "idp.mjs", ["--port", str(idp_port), "--config", str(cfg)],
                               tmp / f"idp-{attempt}.log")
            except RuntimeError as e:  # port taken meanwhile: new ports, new httpd
                last = e
                httpd.stop()
                httpd = None
                continue
            procs.append(idp)
            assert idp.ready["issuer"] == issuer
            yield Stack(httpd, idp, backend, issuer, base, tmp)
            return
        pytest.fail(f"could not start the IdP: {last}", pytrace=False)
    finally:
        if httpd is not None:
            httpd.stop()
        for p in reversed(procs):
            p.stop()


@dataclass
class ClientRun:
    rc: int
    lines: list
    stderr: str
    elapsed: float

    def step(self, action):
        found = [line for line in self.lines if line.get("action") == action]
        assert found, f"no {action!r} line in client output: {self.lines!r}\nstderr:\n{self.stderr[-2000:]}"
        return found[0]

    def steps(self, action):
        return [line for line in self.lines if line.get("action") == action]

    @property
    def trace(self):
        return self.step("trace")["http"]

    def __repr__(self):
        return f"<ClientRun rc={self.rc} {self.elapsed:.1f}s lines={self.lines!r} stderr={self.stderr[-1500:]!r}>"


def run_client(node, stack, *args, url=None, client=None, scope=None, timeout_ms=8000,
               deadline_ms=25000) -> ClientRun:
    cmd = [node, str(MCP_DIR / "client.mjs"), "--url", url or stack.url, "--issuer", stack.issuer,
           "--timeout", str(timeout_ms), "--deadline", str(deadline_ms), "--trace"]
    if client:
        cmd += ["--client-id", client, "--client-secret", CLIENTS[client][0]]
    if scope is not None:
        cmd += ["--scope", scope]
    cmd += list(args)
    t0 = time.monotonic()
    proc = subprocess.run(cmd, cwd=TEST_DIR, capture_output=True, text=True,
                          timeout=deadline_ms / 1000 + 10, stdin=subprocess.DEVNULL)
    lines = []
    for line in proc.stdout.splitlines():
        line = line.strip()
        if line.startswith("{"):
            lines.append(json.loads(line))
    return ClientRun(proc.returncode, lines, proc.stderr, time.monotonic() - t0)




def jwt_claims(token: str) -> dict:
    return json.loads(b64url_decode(token.split(".")[1]))


# ---------------------------------------------------------------------------
# (1) the SDK client end to end
# ---------------------------------------------------------------------------

def test_sdk_client_end_to_end(node, stack):
    before = len(stack.access_lines())
    run = run_client(node, stack, "list", "call:whoami", client="full", scope="mcp:tools notes:read")
    assert run.rc == 0, run
    conn = run.step("connect")
    assert conn["ok"] is True, run
    assert conn["session_id"], run
    oauth = conn["oauth"]
    assert oauth["authorization_server"].rstrip("/") == stack.issuer
    assert oauth["resource"] == stack.url
    tok = oauth["token"]
    assert tok["format"] == "jwt" and tok["header"]["typ"] == "at+jwt", tok
    assert tok["claims"]["aud"] == stack.url
    assert tok["claims"]["iss"] == stack.issuer
    assert set(tok["claims"]["scope"].split()) == {"mcp:tools", "notes:read"}

    assert set(run.step("list")["tools"]) >= {"whoami", "read_notes", "delete_notes", "stream_ticks"}
    who = run.step("call:whoami")
    assert who["ok"] is True, run
    assert who["json"]["authorization"] is True, who

    # The flow as the SDK ran it: 401 (no token) -> RFC 9728 document named
    # by the challenge -> token request with resource -> MCP with the token.
    trace = run.trace
    first = trace[0]
    assert first["url"] == stack.url and first["bearer"] is False and first["status"] == 401, trace
    # scope: what the location's Require mcp-scope needs (SPEC 3, MCP
    # 2026-07-28 least privilege), not MCPAuthScopesSupported's full list
    assert first["www_authenticate"] == (f'Bearer realm="mcp", resource_metadata="{stack.base}{WK}/mcp", '
                                         'scope="mcp:tools"')
    meta = [e for e in trace if e["url"] == f"{stack.base}{WK}/mcp"]
    assert meta and meta[0]["status"] == 200, trace
    token_reqs = [e for e in trace if e["url"] == stack.idp.ready["token_endpoint"]]
    assert token_reqs and token_reqs[0]["status"] == 200, trace
    form = token_reqs[0]["form"]
    assert form["grant_type"] == "client_credentials"
    assert form["resource"] == stack.url
    authed = [e for e in trace if e["url"] == stack.url and e["bearer"]]
    assert authed and all(e["status"] in (200, 202) for e in authed if e["method"] == "POST"), trace
    assert trace.index(first) < trace.index(meta[0]) < trace.index(token_reqs[0]) < trace.index(authed[0])

    # httpd authenticated the caller (REMOTE_USER = sub = the client id).
    new = stack.access_lines()[before:]
    assert any(re.search(r' - full \[.*\] "POST /mcp HTTP/1\.1" 200 ', line) for line in new), new
    assert any(re.search(r' - - \[.*\] "POST /mcp HTTP/1\.1" 401 ', line) for line in new), new


# ---------------------------------------------------------------------------
# (2) step-up
# ---------------------------------------------------------------------------

def test_reader_cannot_delete_but_can_read_in_the_same_session(node, stack):
    off = stack.httpd.log_offset()
    run = run_client(node, stack, "call:read_notes", "call:delete_notes", "call:read_notes",
                     client="reader", scope=ALL_SCOPES)
    assert run.rc == 1, run
    conn = run.step("connect")
    assert conn["ok"] is True, run
    assert set(conn["oauth"]["scope_granted"].split()) == {"mcp:tools", "notes:read"}, conn
    reads = run.steps("call:read_notes")
    assert len(reads) == 2 and all(r["ok"] for r in reads), run
    assert [n["id"] for n in reads[0]["json"]] == [1, 2]
    dele = run.step("call:delete_notes")
    assert dele["ok"] is False and dele["status"] == 403, dele
    p = challenge_params(dele["www_authenticate"])
    assert p["error"] == "insufficient_scope"
    assert p["scope"] == ALL_SCOPES, p  # granted + the tool's scope
    assert p["resource_metadata"] == f"{stack.base}{WK}/mcp"
    log = stack.httpd.wait_for_log("Insufficient scope", since=off)
    assert re.search(r"Insufficient scope: user reader calls a tool that needs notes:delete", log), log


def test_sdk_steps_up_from_the_challenge(node, stack):
    url = f"{stack.base}/step"
    run = run_client(node, stack, "call:read_notes", "call:delete_notes", url=url, client="stepper")
    assert run.rc == 0, run
    conn = run.step("connect")
    assert conn["ok"] is True, run
    # first token: what the 401 challenge hinted -- the location's Require
    # mcp-scope only (no notes:delete, a tool scope that comes by step-up)
    assert conn["oauth"]["scope_requested"] == "mcp:tools", conn
    assert "notes:delete" not in conn["oauth"]["token"]["claims"]["scope"].split()
    assert run.step("call:read_notes")["ok"] is True
    dele = run.step("call:delete_notes")
    assert dele["ok"] is True and dele["text"] == "deleted", run

    trace = run.trace
    refused = [e for e in trace if e["url"] == url and e.get("status") == 403]
    assert len(refused) == 1, trace
    p = challenge_params(refused[0]["www_authenticate"])
    # granted + what the operation needs: one step-up suffices
    assert p["error"] == "insufficient_scope" and p["scope"] == "mcp:tools notes:delete", p
    i = trace.index(refused[0])
    token_reqs = [e for e in trace[i:] if e["url"] == stack.idp.ready["token_endpoint"]]
    assert token_reqs and token_reqs[0]["status"] == 200, trace
    assert token_reqs[0]["form"]["scope"] == "mcp:tools notes:delete"
    assert token_reqs[0]["form"]["resource"] == url
    retried = [e for e in trace[trace.index(token_reqs[0]):] if e["url"] == url and e["method"] == "POST"]
    assert retried and retried[0]["status"] == 200, trace


# ---------------------------------------------------------------------------
# (3) wrong audience
# ---------------------------------------------------------------------------

def test_token_for_another_resource_is_refused(node, stack):
    tok = stack.token("full", resource=f"{stack.base}/elsewhere")
    assert jwt_claims(tok)["aud"] == f"{stack.base}/elsewhere"
    off = stack.httpd.log_offset()
    cmd_run = subprocess.run([node, str(MCP_DIR / "client.mjs"), "--url", stack.url, "--token", tok,
                              "--timeout", "5000", "--deadline", "15000", "list"],
                             cwd=TEST_DIR, capture_output=True, text=True, timeout=25)
    lines = [json.loads(x) for x in cmd_run.stdout.splitlines() if x.startswith("{")]
    assert cmd_run.returncode == 1, (cmd_run.returncode, lines, cmd_run.stderr[-1500:])
    conn = lines[0]
    assert conn["action"] == "connect" and conn["ok"] is False and conn["status"] == 401, lines
    assert not conn.get("timeout"), lines
    p = challenge_params(conn["www_authenticate"])
    assert p["error"] == "invalid_token", p
    assert p["resource_metadata"] == f"{stack.base}{WK}/mcp"
    log = stack.httpd.wait_for_log("Invalid audience", since=off)
    assert "Invalid audience" in log, log


def test_sdk_flow_ending_in_wrong_audience_fails_fast(node, stack):
    url = f"{stack.base}/wrongaud"
    run = run_client(node, stack, "list", url=url, client="full", timeout_ms=5000, deadline_ms=15000)
    assert run.rc == 1, run  # a failure, not the deadline (3)
    conn = run.step("connect")
    assert conn["ok"] is False and conn["status"] == 401, run
    assert not conn.get("timeout"), run
    assert challenge_params(conn["www_authenticate"])["error"] == "invalid_token"
    assert run.elapsed < 15, run
    # the SDK did get a token -- for the wrong audience -- and httpd refused it
    refused = [e for e in run.trace if e["url"] == url and e["bearer"] and e.get("status") == 401]
    assert refused, run.trace
    assert run.step("list").get("skipped") is True


# ---------------------------------------------------------------------------
# (4) SSE through mod_proxy
# ---------------------------------------------------------------------------

def test_sdk_streamed_notifications(node, stack):
    run = run_client(node, stack, 'call:stream_ticks:{"count":4,"interval_ms":150}', client="full",
                     scope="mcp:tools")
    assert run.rc == 0, run
    step = run.step('call:stream_ticks:{"count":4,"interval_ms":150}')
    assert step["ok"] is True and step["text"] == "ticks 4", step
    assert step["notifications"] == ["tick 1", "tick 2", "tick 3", "tick 4"], step


class McpSession:
    """A hand-driven streamable-HTTP session through httpd (timestamps per SSE event)."""

    def __init__(self, stack, token):
        self.stack = stack
        self.token = token
        self.sid = None
        self.proto = "2025-06-18"

    def headers(self, extra=()):
        h = {"Authorization": f"Bearer {self.token}", "Content-Type": "application/json",
             "Accept": "application/json, text/event-stream"}
        if self.sid:
            h["Mcp-Session-Id"] = self.sid
            h["MCP-Protocol-Version"] = self.proto
        h.update(dict(extra))
        return h

    def post_stream(self, msg, timeout=15):
        """POST; returns (status, headers, [(t, event-data-json)]) reading SSE incrementally."""
        conn = http.client.HTTPConnection("127.0.0.1", self.stack.httpd.port, timeout=timeout)
        try:
            t0 = time.monotonic()
            conn.request("POST", "/mcp", body=json.dumps(msg).encode(), headers=self.headers())
            r = conn.getresponse()
            hdrs = {k.lower(): v for k, v in r.getheaders()}
            events = []
            if r.status == 200 and hdrs.get("content-type", "").startswith("text/event-stream"):
                while True:
                    line = r.readline()
                    if not line:
                        break
                    if line.startswith(b"data:"):
                        data = json.loads(line[5:].strip())
                        events.append((time.monotonic() - t0, data))
                        if "id" in data and ("result" in data or "error" in data):
                            break
            else:
                body = r.read()
                if body and hdrs.get("content-type", "").startswith("application/json"):
                    events.append((time.monotonic() - t0, json.loads(body)))
            return r.status, hdrs, events
        finally:
            conn.close()

    def initialize(self):
        status, hdrs, events = self.post_stream({
            "jsonrpc": "2.0", "id": 1, "method": "initialize",
            "params": {"protocolVersion": self.proto, "capabilities": {},
                       "clientInfo": {"name": "pytest", "version": "1"}}})
        assert status == 200, (status, hdrs, events)
        self.sid = hdrs["mcp-session-id"]
        assert events and "result" in events[-1][1], events
        status, _, _ = self.post_stream({"jsonrpc": "2.0", "method": "notifications/initialized"})
        assert status == 202, status


def test_streamed_tool_notifications_arrive_incrementally(stack):
    s = McpSession(stack, stack.token("full", "mcp:tools"))
    s.initialize()
    count, interval = 4, 400
    status, hdrs, events = s.post_stream({"jsonrpc": "2.0", "id": 7, "method": "tools/call",
                                          "params": {"name": "stream_ticks",
                                                     "arguments": {"count": count, "interval_ms": interval}}})
    assert status == 200 and hdrs["content-type"].startswith("text/event-stream"), (status, hdrs)
    ticks = [(t, e["params"]["data"]) for t, e in events if e.get("method") == "notifications/message"]
    assert [d for _, d in ticks] == [f"tick {i}" for i in range(1, count + 1)], events
    final_t, final = events[-1]
    assert final["id"] == 7 and final["result"]["content"][0]["text"] == f"ticks {count}", events
    # Not buffered: each tick arrived about interval_ms after the previous
    # one, the first well before the result.
    span = ticks[-1][0] - ticks[0][0]
    assert span >= (count - 1) * interval / 1000 * 0.6, ticks
    assert final_t - ticks[0][0] >= count * interval / 1000 * 0.6, (ticks, final_t)


def test_get_sse_stream_opens_through_httpd(stack):
    tok = stack.token("full", "mcp:tools")
    s = McpSession(stack, tok)
    s.initialize()

    def open_get(token):
        sock = socket.create_connection(("127.0.0.1", stack.httpd.port), timeout=5)
        auth = f"Authorization: Bearer {token}\r\n" if token else ""
        sock.sendall((f"GET /mcp HTTP/1.1\r\nHost: 127.0.0.1:{stack.httpd.port}\r\n{auth}"
                      f"Accept: text/event-stream\r\nMcp-Session-Id: {s.sid}\r\n"
                      f"MCP-Protocol-Version: {s.proto}\r\n\r\n").encode())
        return sock

    sock = open_get(tok)
    try:
        t0 = time.monotonic()
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = sock.recv(4096)
            assert chunk, f"stream closed early: {head!r}"
            head += chunk
        elapsed = time.monotonic() - t0
        status_line = head.split(b"\r\n", 1)[0]
        assert status_line.startswith(b"HTTP/1.1 200"), head
        assert re.search(rb"(?im)^content-type: text/event-stream", head), head
        assert elapsed < 3, elapsed  # headers were not held back
        # the stream stays open (the backend holds it)
        sock.settimeout(1.0)
        try:
            more = sock.recv(4096)
            assert more != b"", "the SSE stream was closed right away"
        except socket.timeout:
            pass
    finally:
        sock.close()

    # the GET stream is authorized like POST
    for token, want in ((None, 401), (stack.token("reader", "notes:read"), 403)):
        sock = open_get(token)
        try:
            r = http.client.HTTPResponse(sock)
            r.begin()
            assert r.status == want, (token and "token", r.status)
            assert r.getheader("WWW-Authenticate"), r.getheaders()
        finally:
            sock.close()

    # DELETE ends the session through httpd
    conn = http.client.HTTPConnection("127.0.0.1", stack.httpd.port, timeout=10)
    try:
        conn.request("DELETE", "/mcp", headers=s.headers())
        r = conn.getresponse()
        r.read()
        assert r.status == 200, r.status
    finally:
        conn.close()


# ---------------------------------------------------------------------------
# (5) the metadata document the SDK used is the module's
# ---------------------------------------------------------------------------

def test_sdk_fetched_the_modules_metadata_document(node, stack):
    doc_path = f"{WK}/mcp"

    def count():
        return sum(1 for line in stack.access_lines() if f'"GET {doc_path} HTTP/1.1" 200 ' in line)

    start = count()
    served = stack.httpd.get(doc_path)
    assert served.status == 200, served
    want = {"resource": stack.url, "authorization_servers": [stack.issuer],
            "scopes_supported": ALL_SCOPES.split(), "bearer_methods_supported": ["header"]}
    assert served.json() == want
    # httpd writes the access log line after the response: wait for this
    # GET's own line before counting the SDK's (under ASan it came late and
    # was counted as one of the SDK's fetches).
    deadline = time.monotonic() + 3
    while count() == start and time.monotonic() < deadline:
        time.sleep(0.05)
    assert count() == start + 1
    before = count()
    run = run_client(node, stack, "ping", client="full", scope="mcp:tools")
    assert run.rc == 0, run
    fetched = [e for e in run.trace if e["url"] == f"{stack.base}{doc_path}"]
    assert fetched and all(e["status"] == 200 for e in fetched), run.trace
    # every fetch the SDK made was answered by httpd (the module: no
    # <Location> serves that path) and nothing else served PRM documents
    deadline = time.monotonic() + 3
    while count() - before < len(fetched) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert count() - before == len(fetched)
    assert not [e for e in run.trace if WK in e["url"] and e["url"] != f"{stack.base}{doc_path}"], run.trace
    assert run.step("connect")["oauth"]["resource_metadata"] == want


# ---------------------------------------------------------------------------
# mod_proxy: bodies, preflight
# ---------------------------------------------------------------------------

def _echo(stack, token, body, *, chunked=False):
    conn = http.client.HTTPConnection("127.0.0.1", stack.httpd.port, timeout=20)
    try:
        hdrs = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        if chunked:
            hdrs["Transfer-Encoding"] = "chunked"
            conn.request("POST", "/mcp/_echo", body=iter([body[i:i + 4099] for i in range(0, len(body), 4099)]),
                         headers=hdrs, encode_chunked=True)
        else:
            conn.request("POST", "/mcp/_echo", body=body, headers=hdrs)
        r = conn.getresponse()
        return Response(r.status, r.reason, list(r.getheaders()), r.read())
    finally:
        conn.close()


def test_proxied_bodies_arrive_byte_for_byte(stack):
    tok = stack.token("full", "mcp:tools")
    one = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
                      "params": {"name": "read_notes", "arguments": {"pad": "\u00e9" * 3000}}},
                     ensure_ascii=False).encode()
    head = b'{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"read_notes","arguments":{"p":"'
    tail = b'"}}}'
    mib = head + b"q" * (MIB - len(head) - len(tail)) + tail
    for body, chunked in ((one, False), (one, True), (mib, False), (mib, True)):
        resp = _echo(stack, tok, body, chunked=chunked)
        assert resp.status == 200, resp
        got = resp.json()
        assert got["sha256"] == hashlib.sha256(body).hexdigest() and got["length"] == len(body), (chunked, got)
    resp = _echo(stack, tok, mib + b" ")
    assert resp.status == 413, resp
    # Was: a non-JSON body passed untouched. SPEC 6 (amended): with tool
    # scopes it is refused with a JSON-RPC parse error and never forwarded.
    for chunked in (False, True):
        resp = _echo(stack, tok, b"{not json", chunked=chunked)
        assert resp.status == 400, resp
        assert resp.json() == {"jsonrpc": "2.0", "id": None, "error": {"code": -32700, "message": "Parse error"}}, resp
        assert "sha256" not in resp.text, resp


def test_proxied_expect_100_continue(stack):
    tok = stack.token("full", "mcp:tools")
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
                       "params": {"name": "read_notes", "arguments": {"pad": "e" * 70000}}}).encode()
    sock = socket.create_connection(("127.0.0.1", stack.httpd.port), timeout=10)
    try:
        sock.sendall((f"POST /mcp/_echo HTTP/1.1\r\nHost: 127.0.0.1:{stack.httpd.port}\r\n"
                      f"Authorization: Bearer {tok}\r\nContent-Type: application/json\r\n"
                      f"Content-Length: {len(body)}\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n").encode())
        interim = b""
        while b"\r\n\r\n" not in interim:
            chunk = sock.recv(4096)
            assert chunk, interim
            interim += chunk
        assert interim.startswith(b"HTTP/1.1 100"), interim
        sock.sendall(body)
        r = http.client.HTTPResponse(sock)
        r.begin()
        got = json.loads(r.read())
        assert r.status == 200
        assert got["sha256"] == hashlib.sha256(body).hexdigest(), got
    finally:
        sock.close()


def test_preflight_never_reaches_the_backend(stack):
    # Issue 10 item 5: this preflight used to be proxied to the MCP server.
    # Now the module answers it itself; this origin is neither the
    # resource's own nor listed in MCPAuthAllowedOrigins, so it is refused.
    resp = stack.httpd.request("OPTIONS", "/mcp/_headers", [("Origin", "https://app.example"),
                                                            ("Access-Control-Request-Method", "POST")])
    assert resp.status == 403, resp
    assert b"method" not in resp.body, resp
    assert resp.header_all("WWW-Authenticate") == []
    # OPTIONS without the CORS headers, and anything else, needs a token
    resp = stack.httpd.request("OPTIONS", "/mcp/_headers")
    assert resp.status == 401, resp
    resp = stack.httpd.request("GET", "/mcp/_headers")
    assert resp.status == 401, resp
