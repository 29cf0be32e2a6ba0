# SPDX-License-Identifier: Apache-2.0
"""MCP authorization 2026-07-28 against a real httpd: the challenges name
exactly what the operation needs, and the Mcp-Method / Mcp-Name headers a
2026-07-28 client mirrors from the body are checked against it.

* 401 without a token: ``scope`` is what this location's ``Require
  mcp-scope`` rules name (never a tool-only scope, never ``offline_access``),
  else ``MCPAuthScopesSupported``, else no ``scope``.
* 403 ``insufficient_scope``: ONE challenge names the location's scopes and
  those of every tool the body calls (a batch: the union), so one
  re-authorization with what it names succeeds -- shown by doing it.
* ``Mcp-Method`` must equal ``method``; ``Mcp-Name`` must equal
  ``params.name`` (tools/call, prompts/get) or ``params.uri``
  (resources/read), the ``=?base64?...?=`` form decoded; a mismatch, a header
  with no body counterpart, or a required one missing beside its sibling is
  400 with a JSON-RPC -32020 body and the backend never runs.  Requests
  without the headers (2025-06-18 / 2025-11-25 clients) are unchanged.

The backend is a CGI that appends one line per run to a file, so "the
backend sees nothing" is counted, not assumed.
"""

import base64
import hashlib
import json
import os
import re

import pytest

from conftest import ISSUER
from harness.asserts import bearer, challenge_params, only_challenge
from test_mcp_authz import protected

RECORD_CGI = r"""#!/usr/bin/python3
import hashlib, os, sys
data = sys.stdin.buffer.read()
with open(%(hits)r, "a") as f:
    f.write("%%s %%s\n" %% (os.environ.get("REQUEST_METHOD", ""), hashlib.sha256(data).hexdigest()))
out = sys.stdout.buffer
out.write(b"Content-Type: text/plain\r\n\r\n")
for k in ("REMOTE_USER", "HTTP_MCP_METHOD", "HTTP_MCP_NAME", "HTTP_MCP_PARAM_REGION"):
    out.write(("%%s=%%s\n" %% (k, os.environ.get(k, ""))).encode())
out.write(("SHA256=%%s\nSCRIPT_OK=1\n" %% hashlib.sha256(data).hexdigest()).encode())
out.flush()
"""

TOOLS = ("MCPAuthToolScope delete_notes notes:delete\n"
         "MCPAuthToolScope purge_all admin:purge\n"
         "MCPAuthToolScope renew offline_access notes:write\n")


class Backend:
    def __init__(self, path):
        self.path = path

    def hits(self) -> int:
        try:
            return len(self.path.read_text().splitlines())
        except FileNotFoundError:
            return 0


@pytest.fixture(scope="module")
def backend(tmp_root):
    d = tmp_root / "mcp-2026-cgi"
    d.mkdir(parents=True, exist_ok=True)
    os.chmod(d, 0o777)
    hits = d / "hits.log"
    p = d / "record.cgi"
    p.write_text(RECORD_CGI % {"hits": str(hits)})
    os.chmod(p, 0o755)
    return Backend(hits), p


@pytest.fixture(scope="module")
def server(httpd_factory, mcp_auth_so, jwks_server, backend):
    _, cgi = backend
    jw = jwks_server.url("/jwks.json")
    locations = {
        # location scope + tool scopes
        "/mcp": protected("MCPAuthScopesSupported mcp:tools notes:read\n" + TOOLS +
                          "Require mcp-scope mcp:tools", jwks=jw),
        # the same under AuthzSendForbiddenOnFailure (403 straight from authz_core)
        "/forbid": protected(TOOLS + "AuthzSendForbiddenOnFailure On\nRequire mcp-scope mcp:tools", jwks=jw),
        # no Require mcp-scope: the 401 names MCPAuthScopesSupported
        "/supported": protected("MCPAuthScopesSupported mcp:tools notes:read\nRequire valid-user", jwks=jw),
        # nothing to name
        "/bare": protected("Require valid-user", jwks=jw),
        # RequireAll of a scope rule and a claim rule, a negated scope rule,
        # and offline_access in a Require line
        "/all": protected("<RequireAll>\nRequire mcp-scope mcp:tools offline_access\n"
                          "Require mcp-claim $.groups admins\nRequire not mcp-scope banned\n</RequireAll>",
                          jwks=jw),
        # RequireAny of two scope rules: either would do, both are named
        "/any": protected("<RequireAny>\nRequire mcp-scope notes:read\nRequire mcp-scope notes:admin\n"
                          "</RequireAny>", jwks=jw),
        # a rule limited to POST is not owed by a GET
        "/limit": protected("<Limit POST>\nRequire mcp-scope notes:write\n</Limit>\n"
                            "Require valid-user", jwks=jw),
        # a hierarchy: the 403 lists the token's own scopes, not what they imply
        "/hier": protected("MCPAuthScopeImplies notes:admin notes:read\n"
                           "MCPAuthToolScope purge_all admin:purge\nRequire mcp-scope notes:read", jwks=jw),
        # no tool scopes: the body is read only because Mcp-* headers came
        "/plain": protected("Require valid-user", jwks=jw),
    }
    conf = f'ScriptAliasMatch "^/(mcp|forbid|plain|hier)(/.*)?$" "{cgi}"\nMCPAuthRefusalLogInterval 0'
    h = httpd_factory.start(locations, server_conf=conf, module_so=mcp_auth_so, name="mcp2026")
    try:
        yield h
    finally:
        h.stop()


def rpc(method, params=None, id_=1):
    m = {"jsonrpc": "2.0", "id": id_, "method": method}
    if params is not None:
        m["params"] = params
    return m


def call(name, id_=1):
    return rpc("tools/call", {"name": name, "arguments": {}}, id_)


def post(server, token, body, headers=(), path="/mcp"):
    if not isinstance(body, (bytes, bytearray)):
        body = json.dumps(body).encode()
    hdrs = [("Content-Type", "application/json"), ("Accept", "application/json, text/event-stream")]
    hdrs += list(headers)
    if token is not None:
        hdrs += bearer(token)
    return server.request("POST", path, hdrs, bytes(body))


def scope_of(resp):
    return dict(challenge_params(only_challenge(resp))).get("scope")


def assert_403_names(resp, scopes):
    """One insufficient_scope challenge whose scope is exactly ``scopes``."""
    assert resp.status == 403, resp
    d = dict(challenge_params(only_challenge(resp)))
    assert d["error"] == "insufficient_scope", d
    assert d.get("scope") == scopes, d
    assert "SCRIPT_OK" not in resp.text


def assert_through(resp, backend_obj, before, body=None):
    assert resp.status == 200, resp
    env = resp.cgi_env()
    assert env.get("SCRIPT_OK") == "1", resp
    assert backend_obj.hits() == before + 1
    if body is not None:
        assert env["SHA256"] == hashlib.sha256(body).hexdigest()
    return env


# ---------------------------------------------------------------------------
# 401 without a token: least privilege
# ---------------------------------------------------------------------------

def test_401_names_the_location_scopes_not_tool_scopes(server):
    resp = post(server, None, call("delete_notes"))
    assert resp.status == 401, resp
    # the location's Require (mcp:tools) -- not notes:delete (tool-only, comes
    # by step-up) and not MCPAuthScopesSupported's notes:read
    assert scope_of(resp) == "mcp:tools"
    assert server.get("/mcp").status == 401
    assert scope_of(server.get("/mcp")) == "mcp:tools"


def test_401_without_require_scope_names_scopes_supported(server):
    resp = server.get("/supported")
    assert resp.status == 401, resp
    assert scope_of(resp) == "mcp:tools notes:read"


def test_401_with_nothing_to_name_has_no_scope(server):
    resp = server.get("/bare")
    assert resp.status == 401, resp
    assert "scope" not in dict(challenge_params(only_challenge(resp)))


def test_401_requireall_names_scopes_never_offline_access_or_negated(server):
    resp = server.get("/all")
    assert resp.status == 401, resp
    # offline_access is dropped from what is asked for; "banned" is what the
    # token must NOT carry
    assert scope_of(resp) == "mcp:tools"


def test_401_requireany_names_each_alternative(server):
    assert scope_of(server.get("/any")) == "notes:read notes:admin"


def test_401_rule_limited_to_other_methods_is_not_named(server):
    assert "scope" not in dict(challenge_params(only_challenge(server.get("/limit"))))
    resp = post(server, None, rpc("ping"), path="/limit")
    assert resp.status == 401, resp
    assert scope_of(resp) == "notes:write"


# ---------------------------------------------------------------------------
# 403: one challenge for the whole operation
# ---------------------------------------------------------------------------

def test_403_missing_location_scope_get(server, minter):
    assert_403_names(server.get("/mcp", minter.token(scope="other")), "other mcp:tools")


def test_403_missing_tool_scope_only(server, minter, backend):
    b, _ = backend
    before = b.hits()
    assert_403_names(post(server, minter.token(scope="mcp:tools"), call("delete_notes")),
                     "mcp:tools notes:delete")
    assert b.hits() == before


@pytest.mark.parametrize("loc", ["/mcp", "/forbid"])
def test_403_missing_both_names_both_in_one_challenge(server, minter, backend, loc):
    b, _ = backend
    before = b.hits()
    resp = post(server, minter.token(scope="other"), call("delete_notes"), path=loc)
    assert_403_names(resp, "other mcp:tools notes:delete")
    assert b.hits() == before
    # one re-authorization with what the challenge named suffices
    body = json.dumps(call("delete_notes")).encode()
    assert_through(post(server, minter.token(scope=scope_of(resp)), body, path=loc), b, before, body)


def test_403_batch_names_the_union_of_its_tools(server, minter, backend):
    b, _ = backend
    batch = [call("delete_notes", 1), call("purge_all", 2), call("read_notes", 3)]
    before = b.hits()
    resp = post(server, minter.token(scope="mcp:tools"), batch)
    assert_403_names(resp, "mcp:tools notes:delete admin:purge")
    # the location scope missing as well: still one challenge with all of it
    resp2 = post(server, minter.token(scope="x"), batch)
    assert_403_names(resp2, "x mcp:tools notes:delete admin:purge")
    assert b.hits() == before
    body = json.dumps(batch).encode()
    assert_through(post(server, minter.token(scope=scope_of(resp2)), body), b, before, body)


def test_403_never_names_offline_access(server, minter, backend):
    # granted offline_access is not repeated, and a tool line that lists it
    # names only the rest
    resp = post(server, minter.token(scope="mcp:tools offline_access"), call("renew"))
    assert_403_names(resp, "mcp:tools notes:write")
    resp = server.get("/mcp", minter.token(scope="offline_access"))
    assert_403_names(resp, "mcp:tools")


def test_403_for_a_claim_rule_lists_no_unrelated_tool_scopes(server, minter):
    # /all refuses by claim; a GET calls no tool: nothing but the granted set
    resp = server.get("/all", minter.token(scope="mcp:tools", groups=["users"]))
    assert_403_names(resp, "mcp:tools")


def test_403_lists_the_tokens_own_scopes_not_what_they_imply(server, minter, backend):
    b, _ = backend
    before = b.hits()
    tok = minter.token(scope="notes:admin")
    assert_through(server.get("/hier", tok), b, before)
    # needs admin:purge; notes:read (implied) is not spelled out
    assert_403_names(post(server, tok, call("purge_all"), path="/hier"), "notes:admin admin:purge")
    # a token without the broad scope is asked for the narrow one
    assert_403_names(server.get("/hier", minter.token(scope="other")), "other notes:read")
    assert b.hits() == before + 1


def test_allowed_calls_pass_untouched(server, minter, backend):
    b, _ = backend
    body = json.dumps(call("delete_notes")).encode()
    before = b.hits()
    assert_through(post(server, minter.token(scope="mcp:tools notes:delete"), body), b, before, body)


# ---------------------------------------------------------------------------
# Mcp-Method / Mcp-Name
# ---------------------------------------------------------------------------

FULL = "mcp:tools notes:delete admin:purge notes:write offline_access"


def b64(s: str) -> str:
    return "=?base64?" + base64.b64encode(s.encode()).decode() + "?="


def assert_mismatch(resp, backend_obj, before, id_=1):
    assert resp.status == 400, resp
    assert resp.header_all("WWW-Authenticate") == [], resp
    assert resp.header("Content-Type").split(";")[0].strip() == "application/json", resp
    assert resp.json() == {"jsonrpc": "2.0", "id": id_, "error": {"code": -32020, "message": "Header mismatch"}}
    assert backend_obj.hits() == before, "the backend ran a request whose headers disagree with its body"


@pytest.mark.parametrize("loc", ["/mcp", "/plain"])
@pytest.mark.parametrize("msg,method,name", [
    (call("delete_notes"), "tools/call", "delete_notes"),
    (rpc("resources/read", {"uri": "file:///srv/notes/a.txt"}), "resources/read", "file:///srv/notes/a.txt"),
    (rpc("prompts/get", {"name": "summarize"}), "prompts/get", "summarize"),
    (rpc("tools/list"), "tools/list", None),
    (rpc("notifications/initialized"), "notifications/initialized", None),
])
@pytest.mark.slow
def test_matching_headers_pass(server, minter, backend, loc, msg, method, name):
    b, _ = backend
    hdrs = [("Mcp-Method", method)] + ([("Mcp-Name", name)] if name is not None else [])
    body = json.dumps(msg).encode()
    before = b.hits()
    env = assert_through(post(server, minter.token(scope=FULL), body, hdrs, path=loc), b, before, body)
    # forwarded as the client sent them
    assert env["HTTP_MCP_METHOD"] == method
    assert env["HTTP_MCP_NAME"] == (name or "")


@pytest.mark.parametrize("loc", ["/mcp", "/plain"])
def test_no_headers_is_unchanged(server, minter, backend, loc):
    b, _ = backend
    body = json.dumps(call("delete_notes")).encode()
    before = b.hits()
    env = assert_through(post(server, minter.token(scope=FULL), body, path=loc), b, before, body)
    assert env["HTTP_MCP_METHOD"] == ""


@pytest.mark.slow
def test_base64_name_decoded_and_compared(server, minter, backend):
    b, _ = backend
    for name in ("météo 天気", " padded ", "line1\nline2", "=?base64?literal?="):
        body = json.dumps(call(name)).encode()
        before = b.hits()
        assert_through(post(server, minter.token(scope=FULL), body,
                            [("Mcp-Method", "tools/call"), ("Mcp-Name", b64(name))]), b, before, body)
        before = b.hits()
        assert_mismatch(post(server, minter.token(scope=FULL), body,
                             [("Mcp-Method", "tools/call"), ("Mcp-Name", b64(name + "x"))]), b, before)


@pytest.mark.parametrize("loc", ["/mcp", "/plain"])
@pytest.mark.parametrize("msg,hdrs", [
    # the routing attack: a router sends "read_notes" one way, the body deletes
    (call("delete_notes"), [("Mcp-Method", "tools/call"), ("Mcp-Name", "read_notes")]),
    (call("delete_notes"), [("Mcp-Method", "tools/list"), ("Mcp-Name", "delete_notes")]),
    (call("delete_notes"), [("Mcp-Method", "Tools/Call"), ("Mcp-Name", "delete_notes")]),
    (call("delete_notes"), [("Mcp-Method", "tools/call"), ("Mcp-Name", "Delete_Notes")]),
    (call("delete_notes"), [("Mcp-Method", "tools/call"), ("Mcp-Name", b64("read_notes"))]),
    (rpc("resources/read", {"uri": "file:///srv/secret"}),
     [("Mcp-Method", "resources/read"), ("Mcp-Name", "file:///srv/public")]),
    (rpc("prompts/get", {"name": "a"}), [("Mcp-Method", "prompts/get"), ("Mcp-Name", "b")]),
    # a header without a body counterpart
    (rpc("tools/list"), [("Mcp-Method", "tools/list"), ("Mcp-Name", "delete_notes")]),
    # a required header missing beside its sibling
    (call("delete_notes"), [("Mcp-Method", "tools/call")]),
    (call("delete_notes"), [("Mcp-Name", "delete_notes")]),
    (rpc("tools/list"), [("Mcp-Name", "x")]),
    # two header lines (httpd joins them: "a, a")
    (call("delete_notes"), [("Mcp-Method", "tools/call"), ("Mcp-Method", "tools/call"),
                            ("Mcp-Name", "delete_notes")]),
    # not canonical base64, or not base64
    (call("ab"), [("Mcp-Method", "tools/call"), ("Mcp-Name", "=?base64?YWI?=")]),
    (call("ab"), [("Mcp-Method", "tools/call"), ("Mcp-Name", "=?base64?YWJ=?=")]),
    (call("ab"), [("Mcp-Method", "tools/call"), ("Mcp-Name", "=?base64?YW-=?=")]),
    (call("ab"), [("Mcp-Method", "tools/call"), ("Mcp-Name", "=?BASE64?YWI=?=")]),
    # a value a header may not carry
    (call("météo"), [("Mcp-Method", "tools/call"), ("Mcp-Name", "météo".encode())]),
    (call("delete_notes"), [("Mcp-Method", ""), ("Mcp-Name", "delete_notes")]),
])
def test_mismatch_is_400_32020_and_never_forwarded(server, minter, backend, loc, msg, hdrs):
    b, _ = backend
    before = b.hits()
    assert_mismatch(post(server, minter.token(scope=FULL), msg, hdrs, path=loc), b, before)


def test_escaped_nul_in_the_body_name_is_compared_in_full(server, minter, backend):
    b, _ = backend
    body = b'{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"read_notes\\u0000x"}}'
    before = b.hits()
    assert_mismatch(post(server, minter.token(scope=FULL), body,
                         [("Mcp-Method", "tools/call"), ("Mcp-Name", "read_notes")]), b, before, id_=7)
    # the full value, base64 encoded as the spec asks: passes
    assert_through(post(server, minter.token(scope=FULL), body,
                        [("Mcp-Method", "tools/call"), ("Mcp-Name", b64("read_notes\0x"))]), b, before, body)


def test_headers_on_a_batch_are_a_mismatch_with_null_id(server, minter, backend):
    b, _ = backend
    before = b.hits()
    batch = [call("delete_notes", 1), call("delete_notes", 2)]
    assert_mismatch(post(server, minter.token(scope=FULL), batch,
                         [("Mcp-Method", "tools/call"), ("Mcp-Name", "delete_notes")]), b, before, id_=None)
    assert_through(post(server, minter.token(scope=FULL), batch), b, before)


def test_headers_on_a_bodyless_request_are_a_mismatch(server, minter, backend):
    b, _ = backend
    before = b.hits()
    tok = minter.token(scope=FULL)
    for method in ("GET", "DELETE"):
        resp = server.request(method, "/mcp", bearer(tok) + [("Mcp-Method", "tools/call"),
                                                              ("Mcp-Name", "delete_notes")])
        assert_mismatch(resp, b, before, id_=None)
    assert_through(server.request("GET", "/mcp", bearer(tok)), b, before)


def test_id_of_the_refused_message_is_echoed(server, minter, backend):
    b, _ = backend
    before = b.hits()
    resp = post(server, minter.token(scope=FULL), call("delete_notes", id_="req-42"),
                [("Mcp-Method", "tools/call"), ("Mcp-Name", "x")])
    assert_mismatch(resp, b, before, id_="req-42")


def test_mismatch_log_line_names_the_cause(server, minter, backend):
    b, _ = backend
    off = server.log_offset()
    post(server, minter.token(scope=FULL), call("delete_notes"), [("Mcp-Method", "tools/call"),
                                                                  ("Mcp-Name", "read_notes")])
    text = server.wait_for_log("Header mismatch", since=off)
    assert "Header mismatch (-32020 Header mismatch): Mcp-Name does not match" in text, text


def test_without_a_token_the_401_comes_first(server, backend):
    b, _ = backend
    before = b.hits()
    resp = post(server, None, call("delete_notes"), [("Mcp-Method", "tools/list")])
    assert resp.status == 401, resp
    assert b.hits() == before


def test_policy_is_decided_from_the_body_not_the_headers(server, minter, backend):
    # headers naming a harmless tool cannot carry a protected call past the
    # tool scope: refused (400 mismatch here; and the matching pair is 403)
    b, _ = backend
    before = b.hits()
    tok = minter.token(scope="mcp:tools")
    assert_mismatch(post(server, tok, call("delete_notes"),
                         [("Mcp-Method", "tools/call"), ("Mcp-Name", "read_notes")]), b, before)
    assert_403_names(post(server, tok, call("delete_notes"),
                          [("Mcp-Method", "tools/call"), ("Mcp-Name", "delete_notes")]),
                     "mcp:tools notes:delete")
    assert b.hits() == before


def test_mcp_param_headers_are_forwarded_untouched(server, minter, backend):
    b, _ = backend
    body = json.dumps(call("delete_notes")).encode()
    before = b.hits()
    env = assert_through(post(server, minter.token(scope=FULL), body,
                              [("Mcp-Method", "tools/call"), ("Mcp-Name", "delete_notes"),
                               ("Mcp-Param-Region", "us-west1")]), b, before, body)
    assert env["HTTP_MCP_PARAM_REGION"] == "us-west1"


# ---------------------------------------------------------------------------
# offline_access in a rule: a startup warning (a client is never told)
# ---------------------------------------------------------------------------

def test_offline_access_in_require_or_tool_scope_warns_at_startup(tmp_path, mcp_auth_so):
    from test_config import configtest, location
    r = configtest(tmp_path, mcp_auth_so, location(
        f"MCPAuthIssuer {ISSUER}",
        "Require mcp-scope mcp:tools offline_access",
        "MCPAuthToolScope renew offline_access notes:write"))
    out = r.stdout + r.stderr
    assert r.returncode == 0, out
    assert re.search(r"Require mcp-scope offline_access \(.*httpd\.conf:\d+\): challenges never name", out), out
    assert re.search(r"MCPAuthToolScope renew offline_access \(.*httpd\.conf:\d+\)", out), out
    # the neighbour: no offline_access, no warning
    r = configtest(tmp_path, mcp_auth_so, location(f"MCPAuthIssuer {ISSUER}", "Require mcp-scope mcp:tools",
                                                   "MCPAuthToolScope renew notes:write"))
    assert r.returncode == 0 and "offline_access" not in r.stdout + r.stderr, r.stderr
