# SPDX-License-Identifier: Apache-2.0
"""Refusal states (src/httpd/refusal.c, its diagram) that no other file pins.

Each refusal sets its own error text, so an administrator's ``ErrorDocument``
for the same status never replaces the module's answer (the JSON body and
the challenge a client acts on):

* REFUSED_AUTHN, 401 invalid_token, behind ``ErrorDocument 401 /url``;
* REFUSED_AUTHN, 503 + Retry-After (the IdP cannot be reached), behind
  ``ErrorDocument 503 /url``;
* REFUSED_SCOPE from the tool scopes (fixups, after a valid token), behind
  ``ErrorDocument 403 /url``;
* REFUSED_RPC, 400 for a JSON-RPC body, behind ``ErrorDocument 400 /url``;
* REFUSED_ORIGIN, 403 before authentication, behind ``ErrorDocument 403 /url``.

And one transition back: DENIED_BY_RULE -> VERIFIED. A ``Require mcp-scope``
that refused inside a ``<RequireAny>`` whose sibling granted must leave no
trace: a later 403 of the handler (a file the server cannot read) is httpd's
own, with the administrator's page and no challenge.

(An invalid token on an OPTIONS "preflight" with Require is pinned by
test_request_integrity.py::test_options_with_a_token_is_a_request_like_any;
a Require mcp-scope denial behind ErrorDocument 401/403 by
test_request_integrity.py::test_error_document_401_keeps_the_403_step_up.)
"""
import json
import os
import re

import pytest

from conftest import AUDIENCE, ISSUER, free_port

ALLOWED = "https://app.example"
DEAD_ISSUER = "https://dead-idp.example.test"


def protected(*lines, jwks, issuer=ISSUER, require="Require valid-user"):
    body = ["AuthType mcp-jwt", 'AuthName "mcp"', f"MCPAuthIssuer {issuer} jwks_uri={jwks}",
            f"MCPAuthAudience {AUDIENCE}", *lines]
    if require:
        body.append(require)
    return "\n".join(body)


ERRDOCS = ("ErrorDocument 400 /errdocs/400.txt\nErrorDocument 401 /errdocs/401.txt\n"
           "ErrorDocument 403 /errdocs/403.txt\nErrorDocument 503 /errdocs/503.txt")


@pytest.fixture(scope="module")
def dirs(tmp_root):
    base = tmp_root / "refusal-states"
    errdocs = base / "errdocs"
    files = base / "files"
    for d in (base, errdocs, files):
        d.mkdir(parents=True, exist_ok=True)
        os.chmod(d, 0o755)
    for code in (400, 401, 403, 503):
        (errdocs / f"{code}.txt").write_text(f"ADMIN PAGE {code}\n")
        os.chmod(errdocs / f"{code}.txt", 0o644)
    # The harness's CGI reads no body: this one does (a tools/call that passes).
    (base / "drain.cgi").write_text("#!/bin/sh\ncat >/dev/null\nprintf 'Content-Type: text/plain\\n\\nread\\n'\n")
    os.chmod(base / "drain.cgi", 0o755)
    (files / "ok.txt").write_text("readable\n")
    os.chmod(files / "ok.txt", 0o644)
    # The server's children cannot open it: the handler answers 403.
    (files / "secret.txt").write_text("never served\n")
    os.chmod(files / "secret.txt", 0o000)
    return {"errdocs": errdocs, "files": files, "drain": base / "drain.cgi"}


@pytest.fixture(scope="module")
def server(httpd_factory, jwks_server, mcp_auth_so, dirs):
    jw = jwks_server.jwks_uri
    # Nothing listens there: discovery of the keys fails at once.
    dead = f"https://127.0.0.1:{free_port()}/jwks"
    locations = {
        "/authn": protected(ERRDOCS, jwks=jw),
        "/idp-down": protected(ERRDOCS, jwks=dead, issuer=DEAD_ISSUER),
        "/tools": protected(ERRDOCS, "MCPAuthToolScope delete_notes notes:delete",
                            jwks=jw, require="Require mcp-scope mcp:tools"),
        "/origin": protected(ERRDOCS, f"MCPAuthAllowedOrigins {ALLOWED}", jwks=jw),
    }
    files = dirs["files"]
    withdrawn = protected(ERRDOCS, "AuthzSendForbiddenOnFailure On", jwks=jw,
                          require="<RequireAny>\nRequire mcp-scope notes:delete\n"
                                  "Require mcp-claim $.groups admins\n</RequireAny>")
    server_conf = "\n".join([
        "MCPAuthRefusalLogInterval 0",
        # before the harness's ScriptAliasMatch lines
        f'ScriptAliasMatch "^/tools(/.*)?$" "{dirs["drain"]}"',
        f'Alias /errdocs "{dirs["errdocs"]}"',
        f'<Directory "{dirs["errdocs"]}">\n  Require all granted\n</Directory>',
        f'Alias /files "{files}"',
        f'<Directory "{files}">\n{withdrawn}\n</Directory>',
    ])
    h = httpd_factory.start(locations, server_conf=server_conf, module_so=mcp_auth_so, name="refusal-states")
    try:
        yield h
    finally:
        h.stop()


def bearer(token):
    return [("Authorization", f"Bearer {token}")]


def only_challenge(resp):
    vals = resp.header_all("WWW-Authenticate")
    assert len(vals) == 1, resp
    return vals[0]


def assert_module_answer(resp, status, error):
    """The module's own refusal: its status, JSON body, never the admin's page."""
    assert resp.status == status, resp
    assert b"ADMIN PAGE" not in resp.body, resp
    assert resp.header("Content-Type").startswith("application/json"), resp
    assert resp.json()["error"] == error, resp
    assert resp.header("Cache-Control") == "no-store", resp


def tools_call(name, rid=1):
    return json.dumps({"jsonrpc": "2.0", "id": rid, "method": "tools/call",
                       "params": {"name": name, "arguments": {}}}).encode()


def post(server, path, token, body):
    hdrs = [("Content-Type", "application/json"), ("Accept", "application/json, text/event-stream")]
    return server.request("POST", path, hdrs + bearer(token), body)


def test_invalid_token_keeps_its_401_behind_error_document(server, minter):
    resp = server.get("/authn", minter.token(exp=1))
    assert_module_answer(resp, 401, "invalid_token")
    assert 'error="invalid_token"' in only_challenge(resp), resp
    # neighbours: no token is the module's plain challenge; a good token passes
    resp = server.get("/authn")
    assert resp.status == 401 and b"ADMIN PAGE" not in resp.body, resp
    assert "error=" not in only_challenge(resp), resp
    assert server.get("/authn", minter.token()).status == 200


def test_unreachable_idp_keeps_its_503_behind_error_document(server, minter):
    resp = server.get("/idp-down", minter.token(iss=DEAD_ISSUER))
    assert resp.status == 503, resp
    assert b"ADMIN PAGE" not in resp.body, resp
    assert resp.header("Content-Type").startswith("application/json"), resp
    assert re.fullmatch(r"[1-9][0-9]*", resp.header("Retry-After") or ""), resp
    assert resp.header("Cache-Control") == "no-store", resp


def test_tool_scope_403_keeps_its_step_up_behind_error_document(server, minter):
    token = minter.token(scope="mcp:tools")
    resp = post(server, "/tools", token, tools_call("delete_notes"))
    assert_module_answer(resp, 403, "insufficient_scope")
    c = only_challenge(resp)
    assert 'error="insufficient_scope"' in c and 'scope="mcp:tools notes:delete"' in c, c
    # neighbour: a tool that needs nothing more reaches the backend
    resp = post(server, "/tools", token, tools_call("list_notes"))
    assert resp.status == 200 and resp.body == b"read\n", resp


def test_jsonrpc_400_keeps_its_body_behind_error_document(server, minter):
    resp = post(server, "/tools", minter.token(scope="mcp:tools"), b'{"jsonrpc":"2.0","id":7,')
    assert resp.status == 400, resp
    assert b"ADMIN PAGE" not in resp.body, resp
    assert resp.header("Content-Type").startswith("application/json"), resp
    assert resp.json()["error"]["code"] == -32700, resp
    assert resp.header_all("WWW-Authenticate") == [], resp


def test_origin_403_keeps_its_answer_behind_error_document(server, minter):
    resp = server.request("GET", "/origin", [("Origin", "https://evil.example")] + bearer(minter.token()))
    assert_module_answer(resp, 403, "access_denied")
    assert resp.header_all("WWW-Authenticate") == [], resp
    # neighbour: the allowed origin passes
    resp = server.request("GET", "/origin", [("Origin", ALLOWED)] + bearer(minter.token()))
    assert resp.status == 200, resp


def test_rule_refusal_withdrawn_when_a_sibling_grants(server, minter):
    admin = minter.token(scope="mcp:tools", groups=["admins"])
    # the sibling grants: the file is served
    resp = server.get("/files/ok.txt", admin)
    assert resp.status == 200 and resp.body == b"readable\n", resp
    # the handler's own 403: httpd's, with the administrator's page and no
    # step-up, although Require mcp-scope refused this token on the way
    resp = server.get("/files/secret.txt", admin)
    assert resp.status == 403, resp
    assert b"ADMIN PAGE 403" in resp.body, resp
    assert resp.header_all("WWW-Authenticate") == [], resp
    # neighbour: when nothing grants, the rule's refusal is the module's step-up
    resp = server.get("/files/ok.txt", minter.token(scope="mcp:tools", groups=["users"]))
    assert_module_answer(resp, 403, "insufficient_scope")
    assert 'scope="mcp:tools notes:delete"' in only_challenge(resp), resp
