# SPDX-License-Identifier: Apache-2.0
"""SPEC 10, audit: each request the module decides carries its record as
request notes and environment variables, and README's JSON-lines LogFormat
(written verbatim into a real httpd) gives one line per request that
``json.loads`` reads -- also when the body's tool name holds quotes,
backslashes, control bytes and non-ASCII, and when a verified subject does.

* accepted: decision allow, the token's sub, iss, client_id and scopes;
* refused: decision deny and the reason word (no token, expired, a tool's
  missing scope with the tools named and the scopes required);
* values percent-decode to exactly what the token or the body said;
* never the token (the harness checks every log for it).
"""

import json
import time
import re
import urllib.parse

from harness.httpd import ENV_CGI, install_cgi, mcp_location
from conftest import ISSUER, REPO_ROOT

WEIRD_TOOL = 'evil"\\\x01\n\u00fc,%41 name'


def readme_audit_lines():
    """The LogFormat and CustomLog lines of README's audit example, verbatim."""
    text = (REPO_ROOT / "README.md").read_text()
    section = text.split("## Metrics and audit log", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```apache\n(.*?)```", section, re.S)
    block = next(b for b in blocks if "LogFormat" in b)
    lines = [line for line in block.splitlines() if line.startswith(("LogFormat", "CustomLog"))]
    assert len(lines) == 2, block
    return "\n".join(lines)


def rpc_call(name, id_=1):
    return {"jsonrpc": "2.0", "id": id_, "method": "tools/call", "params": {"name": name, "arguments": {}}}


def post(h, token, payload):
    body = json.dumps(payload).encode()
    return h.request("POST", "/mcp", headers=[("Authorization", f"Bearer {token}"),
                                              ("Content-Type", "application/json"),
                                              ("Accept", "application/json, text/event-stream")], body=body)


def log_lines(path, n, timeout=5.0):
    """The log's lines once it has n: httpd writes a request's line after
    its response, so the last one may still be on its way."""
    deadline = time.monotonic() + timeout
    while True:
        lines = path.read_text(encoding="ascii").splitlines() if path.exists() else []
        if len(lines) >= n or time.monotonic() > deadline:
            return lines
        time.sleep(0.02)


def records(h, n):
    path = h.root / "logs" / "mcp-audit.log"
    out = []
    for line in log_lines(path, n):
        out.append(json.loads(line))  # every line, strictly
    return out


def decode(v):
    return None if v == "-" else urllib.parse.unquote(v, errors="strict")


def test_readme_logformat_writes_json_lines(start_httpd, jwks_server, minter):
    loc = mcp_location(jwks_uri=jwks_server.jwks_uri, lines=["MCPAuthToolScope delete_notes notes:delete"])
    h = start_httpd({"/mcp": loc}, readme_audit_lines())
    install_cgi(h.root / "cgi-bin", ENV_CGI, "whoami.cgi")  # a backend that reads the body
    good = minter.token(sub="alice", client_id="app-1", scope="notes:read")
    odd_sub = 'J\u00fcrgen "J" \\ 100%'
    assert h.get("/mcp", good).status == 200
    assert h.get("/mcp").status == 401
    assert h.get("/mcp", minter.token(exp=1000, iat=900)).status == 401
    # A batch naming the weird tool and a scoped one: 403, both named.
    r = post(h, good, [rpc_call(WEIRD_TOOL, 1), rpc_call("delete_notes", 2)])
    assert r.status == 403, r
    # The weird tool alone needs no scope: allowed, and named.
    r = post(h, good, rpc_call(WEIRD_TOOL))
    assert r.status == 200, r
    assert h.get("/mcp", minter.token(sub=odd_sub, azp="web\u00e9", scope="a b")).status == 200

    recs = records(h, 6)
    assert len(recs) == 6, recs
    # httpd writes each line after its response: in any order. Sorted back
    # by what each request was.
    def which(rec):
        if rec["method"] == "POST":
            return 3 if rec["decision"] == "deny" else 4
        return {"alice": 0, "-": 1 if rec["reason"] == "no_token" else 2}.get(rec["sub"], 5)
    ok, none, expired, tool_403, tool_ok, odd = sorted(recs, key=which)

    assert ok["decision"] == "allow" and ok["reason"] == "-" and ok["status"] == 200
    assert decode(ok["sub"]) == "alice" and decode(ok["client_id"]) == "app-1"
    assert decode(ok["iss"]) == ISSUER and decode(ok["scope"]) == "notes:read"
    assert ok["method"] == "GET" and ok["tool"] == "-"

    assert none["decision"] == "deny" and none["reason"] == "no_token" and none["status"] == 401
    assert none["sub"] == "-" and none["client_id"] == "-"

    assert expired["decision"] == "deny" and expired["reason"] == "expired" and expired["status"] == 401
    assert expired["sub"] == "-"  # a refused token says nothing about who

    assert tool_403["decision"] == "deny" and tool_403["reason"] == "tool_scope" and tool_403["status"] == 403
    assert [decode(t) for t in tool_403["tool"].split(",")] == [WEIRD_TOOL, "delete_notes"]
    assert decode(tool_403["scope_required"]) == "notes:delete"
    assert decode(tool_403["sub"]) == "alice"  # the token was valid: who asked is known

    assert tool_ok["decision"] == "allow" and [decode(t) for t in tool_ok["tool"].split(",")] == [WEIRD_TOOL]

    assert odd["decision"] == "allow"
    assert decode(odd["sub"]) == odd_sub and decode(odd["client_id"]) == "web\u00e9"
    assert decode(odd["scope"]) == "a b"


def test_notes_and_env_reach_the_access_log(start_httpd, jwks_server, minter):
    """The same fields as %{..}e: the variables the audit adds, and those
    identity export already set (raw)."""
    fmt = ('LogFormat "%{MCP_AUTH_DECISION}e|%{MCP_AUTH_REASON}e|%{MCP_AUTH_CLIENT_ID}e|%{MCP_AUTH_SUB}e|'
           '%{MCP_AUTH_DECISION}n" envs\nCustomLog "logs/envs.log" envs')
    h = start_httpd({"/mcp": mcp_location(jwks_uri=jwks_server.jwks_uri)}, fmt)
    assert h.get("/mcp", minter.token(sub="bob", client_id="cli-9")).status == 200
    assert h.get("/mcp", minter.token(aud="someone-else")).status == 401
    assert h.get("/index.txt").status in (200, 404)  # not ours: no record
    # httpd writes each line after its response: in any order.
    lines = sorted(log_lines(h.root / "logs" / "envs.log", 3))
    assert lines == ["-|-|-|-|-", "allow|-|cli-9|bob|allow", "deny|invalid_audience|-|-|deny"], lines
