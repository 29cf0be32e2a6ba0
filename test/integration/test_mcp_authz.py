# SPDX-License-Identifier: Apache-2.0
"""The MCP authorization surface of mod_mcp_auth against a real httpd.

Tokens are minted by the harness (conftest.Minter) and verified against the
HTTPS JWKS server; the backend is CGI.  Covered:

* ``Require mcp-scope`` / ``Require mcp-claim`` alone and inside
  ``<RequireAll>`` / ``<RequireAny>``; where the scopes live (``scope``,
  ``scp`` array or string, ``MCPAuthScopeClaim`` incl. a nested path);
* the 403 ``insufficient_scope`` challenge (exactly one, granted + required
  scopes, ``resource_metadata``, JSON body), also with
  ``AuthzSendForbiddenOnFailure On``, and its absence when a RequireAny
  sibling grants;
* the 401 challenge's ``scope`` hint (``MCPAuthScopesSupported``);
* the RFC 9728 document: path form, root form, 404s, CORS, ``Off``,
  ``MCPAuthResource``, the default audience (= the resource);
* ``MCPAuthToolScope``: single and batch JSON-RPC, case variants, the
  ambiguous bodies SPEC 6 refuses with a JSON-RPC 400 (duplicate or
  case-folded members, not exactly one JSON value), big numbers, non-JSON
  bodies, Content-Encoding, size limit, and the body
  reaching the backend byte for byte (plain, chunked, Expect: 100-continue,
  exactly 1 MiB) -- checked by a CGI that prints the SHA-256 of its stdin;
* GET / DELETE / OPTIONS authorized like POST; a token-less OPTIONS never reaches the backend.
"""

import hashlib
import http.client
import json
import socket
import time

import pytest

from harness.httpd import install_cgi, mcp_location
from conftest import AUDIENCE, ISSUER, Response
from harness.asserts import assert_invalid_token, assert_ok, bearer, challenge_pairs, only_challenge

# The backend of /tools: prints the SHA-256 and length of what it read on
# stdin, CONTENT_LENGTH, REMOTE_USER and the method.
HASH_CGI = r"""#!/usr/bin/python3
import hashlib, os, sys
data = sys.stdin.buffer.read()
out = sys.stdout.buffer
out.write(b"Content-Type: text/plain\r\n\r\n")
for k, v in (("SHA256", hashlib.sha256(data).hexdigest()),
             ("BODY_LENGTH", str(len(data))),
             ("CONTENT_LENGTH", os.environ.get("CONTENT_LENGTH", "")),
             ("REMOTE_USER", os.environ.get("REMOTE_USER", "")),
             ("AUTH_TYPE", os.environ.get("AUTH_TYPE", "")),
             ("REQUEST_METHOD", os.environ.get("REQUEST_METHOD", "")),
             ("SCRIPT_OK", "1")):
    out.write(("%s=%s\n" % (k, v)).encode())
out.flush()
"""

MIB = 1024 * 1024
WK = "/.well-known/oauth-protected-resource"
SUPPORTED = "mcp:tools notes:read notes:delete"



def protected(extra: str, *, jwks: str, audience: str = AUDIENCE) -> str:
    return mcp_location(jwks_uri=jwks, audience=audience, extra=extra, require=None)


@pytest.fixture(scope="module")
def hash_cgi(tmp_root):
    return install_cgi(tmp_root / "mcp-authz-cgi", HASH_CGI, "hash.cgi")


@pytest.fixture(scope="module")
def server(httpd_factory, jwks_server, mcp_auth_so, hash_cgi):
    jw = jwks_server.jwks_uri
    locations = {
        "/scope1": protected("Require mcp-scope mcp:tools", jwks=jw),
        "/scope2": protected("Require mcp-scope mcp:tools notes:read", jwks=jw),
        "/hint": protected(f"MCPAuthScopesSupported {SUPPORTED}\nRequire mcp-scope mcp:tools", jwks=jw),
        "/roles": protected("MCPAuthScopeClaim roles\nRequire mcp-scope admin", jwks=jw),
        "/realm": protected("MCPAuthScopeClaim $.realm_access.roles\nRequire mcp-scope mcp-admin", jwks=jw),
        "/cstr": protected("Require mcp-claim $.email alice@example.test bob@example.test", jwks=jw),
        "/cnum": protected("Require mcp-claim $.tier 3 5", jwks=jw),
        "/cbool": protected("Require mcp-claim $.email_verified true", jwks=jw),
        "/carr": protected("Require mcp-claim $.groups admins ops", jwks=jw),
        "/cnest": protected("Require mcp-claim $.org.dept.name research", jwks=jw),
        "/all": protected("<RequireAll>\nRequire mcp-scope mcp:tools\n"
                          "Require mcp-claim $.groups admins\n</RequireAll>", jwks=jw),
        "/anyof": protected("<RequireAny>\nRequire mcp-scope notes:delete\n"
                            "Require mcp-claim $.groups admins\n</RequireAny>", jwks=jw),
        "/anyscopes": protected("<RequireAny>\nRequire mcp-scope notes:delete\n"
                                "Require mcp-scope admin:all\n</RequireAny>", jwks=jw),
        "/nested": protected("<RequireAny>\n<RequireAll>\nRequire mcp-scope mcp:tools\n"
                             "Require mcp-claim $.groups admins\n</RequireAll>\n"
                             "Require mcp-scope superuser\n</RequireAny>", jwks=jw),
        "/forbid": protected("AuthzSendForbiddenOnFailure On\nRequire mcp-scope notes:delete", jwks=jw),
        "/forbidclaim": protected("AuthzSendForbiddenOnFailure On\nRequire mcp-claim $.groups admins",
                                  jwks=jw),
        "/forbidany": protected("AuthzSendForbiddenOnFailure On\n<RequireAny>\n"
                                "Require mcp-scope notes:delete\nRequire mcp-claim $.groups admins\n"
                                "</RequireAny>", jwks=jw),
        "/nometa": protected("MCPAuthResourceMetadata Off\nMCPAuthScopesSupported mcp:tools\n"
                             "Require mcp-scope mcp:tools", jwks=jw),
        "/tools": protected("MCPAuthToolScope delete_notes notes:delete\n"
                            "MCPAuthToolScope purge_all notes:delete admin:purge\n"
                            "MCPAuthToolScope admin/reset admin:reset\n"
                            "Require mcp-scope mcp:tools", jwks=jw),
        # no MCPAuthAudience: the audience is the resource
        "/aud": protected("Require valid-user", jwks=jw, audience=None),
        "/res": protected("MCPAuthResource https://mcp.example.test/res\n"
                          "MCPAuthScopesSupported mcp:tools\nRequire valid-user", jwks=jw, audience=None),
        "/bare": protected("MCPAuthResource https://mcp.example.test\nRequire valid-user",
                           jwks=jw, audience=None),
        "/open": "Require all granted",
    }
    # Before the harness's own ScriptAliasMatch lines, so /tools gets the hash CGI.
    server_conf = f'ScriptAliasMatch "^/tools(/.*)?$" "{hash_cgi}"'
    # Tests read their own refusal's log line, several of one reason in a row.
    server_conf += "\nMCPAuthRefusalLogInterval 0"
    h = httpd_factory.start(locations, server_conf=server_conf, module_so=mcp_auth_so, name="authz")
    try:
        yield h
    finally:
        h.stop()


# ---------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------

def meta_url(server, loc):
    return f"{server.base_url}{WK}{loc}"


def assert_insufficient(server, resp, loc, scope):
    """403 with exactly one insufficient_scope challenge naming ``scope``
    (granted + required, in that order; None: no scope parameter) and the
    location's metadata URL, and a JSON body."""
    assert resp.status == 403, resp
    params = challenge_pairs(only_challenge(resp))
    keys = [k for k, _ in params]
    d = dict(params)
    want_keys = ["error"] + (["scope"] if scope is not None else []) + ["resource_metadata", "error_description"]
    assert keys == want_keys, params
    assert d["error"] == "insufficient_scope"
    if scope is not None:
        assert d["scope"] == scope, params
    assert d["resource_metadata"] == meta_url(server, loc)
    assert d["error_description"]
    assert resp.header("Content-Type").split(";")[0].strip() == "application/json", resp
    body = resp.json()
    assert body["error"] == "insufficient_scope", body
    assert isinstance(body.get("error_description"), str) and body["error_description"], body
    assert "SCRIPT_OK" not in resp.text


# ---------------------------------------------------------------------------
# Require mcp-scope
# ---------------------------------------------------------------------------

@pytest.mark.slow
def test_scope_single_granted(server, minter):
    assert_ok(server.get("/scope1", minter.token(scope="mcp:tools")))
    assert_ok(server.get("/scope1", minter.token(scope="notes:read mcp:tools other")))


def test_scope_single_missing_gives_exact_403(server, minter):
    resp = server.get("/scope1", minter.token(scope="notes:read"))
    assert_insufficient(server, resp, "/scope1", "notes:read mcp:tools")


def test_scope_token_without_any_scope(server, minter):
    resp = server.get("/scope1", minter.token())
    assert_insufficient(server, resp, "/scope1", "mcp:tools")


def test_scope_is_not_a_prefix_or_substring_match(server, minter):
    resp = server.get("/scope1", minter.token(scope="mcp:tools:extra mcp:tool MCP:TOOLS"))
    assert_insufficient(server, resp, "/scope1", "mcp:tools:extra mcp:tool MCP:TOOLS mcp:tools")


def test_scope_multiple_all_needed(server, minter):
    assert_ok(server.get("/scope2", minter.token(scope="notes:read mcp:tools")))
    resp = server.get("/scope2", minter.token(scope="mcp:tools"))
    assert_insufficient(server, resp, "/scope2", "mcp:tools notes:read")
    resp = server.get("/scope2", minter.token(scope="other"))
    assert_insufficient(server, resp, "/scope2", "other mcp:tools notes:read")


def test_scope_from_scp_array(server, minter):
    assert_ok(server.get("/scope2", minter.token(scp=["mcp:tools", "notes:read"])))
    resp = server.get("/scope2", minter.token(scp=["mcp:tools"]))
    assert_insufficient(server, resp, "/scope2", "mcp:tools notes:read")


def test_scope_from_scp_string(server, minter):
    assert_ok(server.get("/scope2", minter.token(scp="mcp:tools notes:read")))
    resp = server.get("/scope2", minter.token(scp="notes:read"))
    assert_insufficient(server, resp, "/scope2", "notes:read mcp:tools")


def test_scope_claim_wins_over_scp(server, minter):
    resp = server.get("/scope1", minter.token(scope="notes:read", scp=["mcp:tools"]))
    assert_insufficient(server, resp, "/scope1", "notes:read mcp:tools")


def test_scope_claim_custom(server, minter):
    assert_ok(server.get("/roles", minter.token(roles=["user", "admin"])))
    assert_ok(server.get("/roles", minter.token(roles="user admin")))
    # With MCPAuthScopeClaim set, "scope" no longer counts.
    resp = server.get("/roles", minter.token(scope="admin", roles=["user"]))
    assert_insufficient(server, resp, "/roles", "user admin")


def test_scope_claim_nested_path(server, minter):
    tok = minter.token(realm_access={"roles": ["offline_access", "mcp-admin"]})
    assert_ok(server.get("/realm", tok))
    resp = server.get("/realm", minter.token(realm_access={"roles": ["offline_access"]},
                                             scope="mcp-admin", roles=["mcp-admin"]))
    # the granted offline_access is not repeated: a challenge never names it
    # (MCP 2026-07-28; SPEC 3)
    assert_insufficient(server, resp, "/realm", "mcp-admin")
    resp = server.get("/realm", minter.token(realm_access="mcp-admin-not-an-object"))
    assert_insufficient(server, resp, "/realm", "mcp-admin")


def test_no_token_is_still_401_on_scope_location(server):
    resp = server.get("/scope1")
    assert resp.status == 401, resp
    # scope names what the location's Require mcp-scope needs (SPEC 3)
    assert only_challenge(resp) == (f'Bearer realm="mcp", resource_metadata="{meta_url(server, "/scope1")}", '
                                    'scope="mcp:tools"')


def test_invalid_token_is_401_not_403(server, minter):
    tok = minter.token(scope="mcp:tools", exp=int(time.time()) - 3600)
    assert_invalid_token(server.get("/scope1", tok))


# ---------------------------------------------------------------------------
# Require mcp-claim
# ---------------------------------------------------------------------------

def test_claim_string(server, minter):
    assert_ok(server.get("/cstr", minter.token(email="alice@example.test")))
    assert_ok(server.get("/cstr", minter.token(email="bob@example.test")))
    for bad in ("carol@example.test", "ALICE@example.test", ["alice"], None):  # None: no email claim
        tok = minter.token(email=bad, scope="mcp:tools")
        assert_insufficient(server, server.get("/cstr", tok), "/cstr", "mcp:tools")


def test_claim_number(server, minter):
    assert_ok(server.get("/cnum", minter.token(tier=3)))
    assert_ok(server.get("/cnum", minter.token(tier=5)))
    assert_insufficient(server, server.get("/cnum", minter.token(tier=4)), "/cnum", None)
    assert_insufficient(server, server.get("/cnum", minter.token(tier=33)), "/cnum", None)


def test_claim_boolean(server, minter):
    assert_ok(server.get("/cbool", minter.token(email_verified=True)))
    assert_insufficient(server, server.get("/cbool", minter.token(email_verified=False)), "/cbool", None)
    assert_insufficient(server, server.get("/cbool", minter.token()), "/cbool", None)


def test_claim_array_contains(server, minter):
    assert_ok(server.get("/carr", minter.token(groups=["users", "ops"])))
    assert_ok(server.get("/carr", minter.token(groups=["admins"])))
    assert_ok(server.get("/carr", minter.token(groups="ops")))
    assert_insufficient(server, server.get("/carr", minter.token(groups=["users", "administrators"])),
                        "/carr", None)
    assert_insufficient(server, server.get("/carr", minter.token(groups=[])), "/carr", None)


def test_claim_nested(server, minter):
    assert_ok(server.get("/cnest", minter.token(org={"dept": {"name": "research"}})))
    assert_insufficient(server, server.get("/cnest", minter.token(org={"dept": {"name": "sales"}})),
                        "/cnest", None)
    # a flat member whose name contains dots is not the nested path
    assert_insufficient(server, server.get("/cnest", minter.token(**{"org.dept.name": "research"})),
                        "/cnest", None)


# ---------------------------------------------------------------------------
# RequireAll / RequireAny
# ---------------------------------------------------------------------------

def test_require_all(server, minter):
    assert_ok(server.get("/all", minter.token(scope="mcp:tools", groups=["admins"])))
    # scope missing
    resp = server.get("/all", minter.token(scope="notes:read", groups=["admins"]))
    assert_insufficient(server, resp, "/all", "notes:read mcp:tools")
    # claim missing: nothing more to ask for than what is granted
    resp = server.get("/all", minter.token(scope="mcp:tools", groups=["users"]))
    assert_insufficient(server, resp, "/all", "mcp:tools")


def test_require_any_sibling_grants_without_challenge(server, minter):
    # The scope branch refuses first, the claim branch grants: 200 and no
    # WWW-Authenticate at all.
    resp = server.get("/anyof", minter.token(scope="mcp:tools", groups=["admins"]))
    assert_ok(resp)
    assert resp.header_all("WWW-Authenticate") == []
    assert_ok(server.get("/anyof", minter.token(scope="notes:delete", groups=["users"])))


def test_require_any_all_refuse(server, minter):
    resp = server.get("/anyof", minter.token(scope="mcp:tools", groups=["users"]))
    assert_insufficient(server, resp, "/anyof", "mcp:tools notes:delete")


def test_require_any_of_two_scopes(server, minter):
    assert_ok(server.get("/anyscopes", minter.token(scope="admin:all")))
    assert_ok(server.get("/anyscopes", minter.token(scope="notes:delete")))
    resp = server.get("/anyscopes", minter.token(scope="mcp:tools"))
    assert_insufficient(server, resp, "/anyscopes", "mcp:tools notes:delete admin:all")


def test_nested_require_blocks(server, minter):
    assert_ok(server.get("/nested", minter.token(scope="mcp:tools", groups=["admins"])))
    assert_ok(server.get("/nested", minter.token(scope="superuser")))
    resp = server.get("/nested", minter.token(scope="superuser-not", groups=["admins"]))
    assert_insufficient(server, resp, "/nested", "superuser-not mcp:tools superuser")


def test_forbidden_on_failure_still_insufficient_scope(server, minter):
    resp = server.get("/forbid", minter.token(scope="mcp:tools"))
    assert_insufficient(server, resp, "/forbid", "mcp:tools notes:delete")
    assert_ok(server.get("/forbid", minter.token(scope="notes:delete")))
    # no token: still the 401 challenge
    resp = server.get("/forbid")
    assert resp.status == 401, resp
    assert only_challenge(resp) == (f'Bearer realm="mcp", resource_metadata="{meta_url(server, "/forbid")}", '
                                    'scope="notes:delete"')


def test_forbidden_on_failure_claim_refusal(server, minter):
    resp = server.get("/forbidclaim", minter.token(scope="mcp:tools", groups=["users"]))
    assert_insufficient(server, resp, "/forbidclaim", "mcp:tools")
    assert_ok(server.get("/forbidclaim", minter.token(groups=["admins"])))


def test_forbidden_on_failure_require_any(server, minter):
    resp = server.get("/forbidany", minter.token(scope="mcp:tools", groups=["admins"]))
    assert_ok(resp)
    assert resp.header_all("WWW-Authenticate") == []
    resp = server.get("/forbidany", minter.token(scope="mcp:tools", groups=["users"]))
    assert_insufficient(server, resp, "/forbidany", "mcp:tools notes:delete")


# ---------------------------------------------------------------------------
# 401 challenge and the RFC 9728 document
# ---------------------------------------------------------------------------

def test_401_challenge_scope_hint(server, minter):
    resp = server.get("/hint")
    assert resp.status == 401, resp
    # the location's Require mcp-scope wins over MCPAuthScopesSupported (the
    # least privilege that works here, SPEC 3)
    assert only_challenge(resp) == (f'Bearer realm="mcp", resource_metadata="{meta_url(server, "/hint")}", '
                                    'scope="mcp:tools"')
    # without a Require mcp-scope: MCPAuthScopesSupported
    resp = server.get("/res")
    assert resp.status == 401, resp
    assert dict(challenge_pairs(only_challenge(resp)))["scope"] == "mcp:tools"
    # a bad token: invalid_token, realm and resource_metadata kept
    resp = server.get("/hint", minter.token(scope="mcp:tools", aud="https://elsewhere.example/"))
    assert_invalid_token(resp)
    d = dict(challenge_pairs(only_challenge(resp)))
    assert d["realm"] == "mcp" and d["resource_metadata"] == meta_url(server, "/hint")


def test_metadata_document_path_form(server):
    # CORS: the echo of an allowed origin (by default the resource's own),
    # never "*" unless MCPAuthAllowedOrigins * (issue 11)
    resp = server.get(f"{WK}/hint", headers=[("Origin", server.base_url)])
    assert resp.status == 200, resp
    assert resp.header("Content-Type").split(";")[0].strip() == "application/json"
    assert resp.header("Access-Control-Allow-Origin") == server.base_url
    assert resp.json() == {
        "resource": f"{server.base_url}/hint",
        "authorization_servers": [ISSUER],
        "scopes_supported": SUPPORTED.split(),
        "bearer_methods_supported": ["header"],
    }
    assert resp.header_all("WWW-Authenticate") == []


def test_metadata_document_needs_no_token_even_with_a_bad_one(server):
    resp = server.get(f"{WK}/scope1", "not.a.token")
    assert resp.status == 200, resp
    doc = resp.json()
    assert doc["resource"] == f"{server.base_url}/scope1"
    assert doc["authorization_servers"] == [ISSUER]
    assert doc["bearer_methods_supported"] == ["header"]


def test_metadata_options_cors(server):
    resp = server.request("OPTIONS", f"{WK}/hint", [("Origin", server.base_url),
                                                   ("Access-Control-Request-Method", "GET")])
    assert resp.status == 204, resp
    assert resp.header("Access-Control-Allow-Origin") == server.base_url
    assert "GET" in (resp.header("Access-Control-Allow-Methods") or ""), resp
    assert resp.body == b""


def test_metadata_404_for_unprotected_and_unknown(server):
    for path in (f"{WK}/open", f"{WK}/nosuchthing", f"{WK}/nometa"):
        resp = server.get(path)
        assert resp.status == 404, (path, resp)
        assert "authorization_servers" not in resp.text


def test_metadata_root_form_404_with_many_locations(server):
    resp = server.get(WK)
    assert resp.status == 404, resp


def test_challenge_url_fetches_the_document(server):
    resp = server.get("/hint")
    url = dict(challenge_pairs(only_challenge(resp)))["resource_metadata"]
    assert url.startswith(server.base_url + "/")
    doc = server.get(url[len(server.base_url):])
    assert doc.status == 200, doc
    assert doc.json()["resource"] == f"{server.base_url}/hint"
    # the 403 challenge names the same document
    assert url == meta_url(server, "/hint")


def test_metadata_off(server, minter):
    resp = server.get("/nometa")
    assert resp.status == 401
    v = only_challenge(resp)
    assert v == 'Bearer realm="mcp", scope="mcp:tools"', v
    resp = server.get("/nometa", minter.token(scope="notes:read"))
    assert resp.status == 403, resp
    params = challenge_pairs(only_challenge(resp))
    assert [k for k, _ in params] == ["error", "scope", "error_description"], params
    assert dict(params)["scope"] == "notes:read mcp:tools"
    assert server.get(f"{WK}/nometa").status == 404
    assert_ok(server.get("/nometa", minter.token(scope="mcp:tools")))


def test_resource_override_in_document_challenge_and_audience(server, minter):
    doc = server.get(f"{WK}/res")
    assert doc.status == 200, doc
    assert doc.json() == {"resource": "https://mcp.example.test/res", "authorization_servers": [ISSUER],
                          "scopes_supported": ["mcp:tools"], "bearer_methods_supported": ["header"]}
    resp = server.get("/res")
    assert resp.status == 401
    assert only_challenge(resp) == ('Bearer realm="mcp", resource_metadata='
                                    '"https://mcp.example.test/.well-known/oauth-protected-resource/res", '
                                    'scope="mcp:tools"')
    # the audience defaults to the configured resource, not the request URL
    assert_ok(server.get("/res", minter.token(aud="https://mcp.example.test/res")))
    assert_ok(server.get("/res", minter.token(aud=["https://other.example", "https://mcp.example.test/res"])))
    assert_invalid_token(server.get("/res", minter.token(aud=f"{server.base_url}/res")))


def test_default_audience_is_the_resource(server, minter):
    res = f"{server.base_url}/aud"
    assert server.get(f"{WK}/aud").json()["resource"] == res
    assert_ok(server.get("/aud", minter.token(aud=res)))
    assert_ok(server.get("/aud", minter.token(aud=res + "/")))          # lone trailing slash
    assert_ok(server.get("/aud", minter.token(aud=res.replace("http://", "HTTP://"))))
    assert_invalid_token(server.get("/aud", minter.token(aud=f"{server.base_url}/other")))
    assert_invalid_token(server.get("/aud", minter.token(aud=f"{server.base_url}/AUD")))
    assert_invalid_token(server.get("/aud", minter.token(aud=res + "//")))
    assert_invalid_token(server.get("/aud", minter.token()))            # AUDIENCE of the harness


def test_bare_origin_resource_tolerates_trailing_slash(server, minter):
    # the TS SDK sends https://host/ for a bare origin
    assert_ok(server.get("/bare", minter.token(aud="https://mcp.example.test/")))
    assert_ok(server.get("/bare", minter.token(aud="https://mcp.example.test")))
    assert_ok(server.get("/bare", minter.token(aud="https://MCP.Example.TEST/")))
    assert_invalid_token(server.get("/bare", minter.token(aud="https://mcp.example.test/x")))
    assert_invalid_token(server.get("/bare", minter.token(aud="https://mcp.example.test.evil/")))


@pytest.fixture(scope="module")
def single_server(httpd_factory, jwks_server, mcp_auth_so):
    jw = jwks_server.jwks_uri
    h = httpd_factory.start({
        "/only": protected("MCPAuthScopesSupported mcp:tools\nRequire mcp-scope mcp:tools", jwks=jw),
        "/public": "Require all granted",
    }, module_so=mcp_auth_so, name="authz-single")
    try:
        yield h
    finally:
        h.stop()


@pytest.fixture(scope="module")
def pair_server(httpd_factory, jwks_server, mcp_auth_so):
    jw = jwks_server.jwks_uri
    h = httpd_factory.start({
        "/one": protected("Require mcp-scope mcp:tools", jwks=jw),
        "/two": protected("Require mcp-scope mcp:tools", jwks=jw),
    }, module_so=mcp_auth_so, name="authz-pair")
    try:
        yield h
    finally:
        h.stop()


def test_metadata_root_form_with_one_protected_location(single_server):
    want = {"resource": f"{single_server.base_url}/only", "authorization_servers": [ISSUER],
            "scopes_supported": ["mcp:tools"], "bearer_methods_supported": ["header"]}
    root = single_server.get(WK, headers=[("Origin", single_server.base_url)])
    assert root.status == 200, root
    assert root.header("Access-Control-Allow-Origin") == single_server.base_url
    assert root.json() == want
    path = single_server.get(f"{WK}/only")
    assert path.status == 200 and path.json() == want
    assert single_server.get(f"{WK}/public").status == 404
    resp = single_server.request("OPTIONS", WK, [("Origin", single_server.base_url)])
    assert resp.status == 204 and resp.header("Access-Control-Allow-Origin") == single_server.base_url, resp


def test_metadata_root_form_404_with_two_protected_locations(pair_server):
    assert pair_server.get(WK).status == 404
    for loc in ("/one", "/two"):
        resp = pair_server.get(f"{WK}{loc}")
        assert resp.status == 200, resp
        assert resp.json()["resource"] == f"{pair_server.base_url}{loc}"


# ---------------------------------------------------------------------------
# MCPAuthToolScope
# ---------------------------------------------------------------------------

def rpc(method, params=None, id_=1):
    m = {"jsonrpc": "2.0", "id": id_, "method": method}
    if params is not None:
        m["params"] = params
    return m


def call(name, id_=1, **arguments):
    return rpc("tools/call", {"name": name, "arguments": arguments}, id_)


def post(server, token, body, *, path="/tools", headers=(), ctype="application/json"):
    if not isinstance(body, (bytes, bytearray)):
        body = json.dumps(body).encode()
    hdrs = [("Content-Type", ctype), ("Accept", "application/json, text/event-stream")] + list(headers)
    if token is not None:
        hdrs += bearer(token)
    return server.request("POST", path, hdrs, bytes(body))


def assert_passed_intact(resp, body: bytes, *, content_length=True):
    env = assert_ok(resp)
    assert env["SHA256"] == hashlib.sha256(body).hexdigest(), (len(body), env)
    assert env["BODY_LENGTH"] == str(len(body)), env
    if content_length:
        assert env["CONTENT_LENGTH"] == str(len(body)), env
    return env


def test_tool_call_allowed_passes_body_intact(server, minter):
    body = json.dumps(call("read_notes")).encode()
    env = assert_passed_intact(post(server, minter.token(scope="mcp:tools"), body), body)
    assert env["REQUEST_METHOD"] == "POST"


def test_tool_call_missing_scope(server, minter):
    resp = post(server, minter.token(scope="mcp:tools notes:read"), call("delete_notes"))
    assert_insufficient(server, resp, "/tools", "mcp:tools notes:read notes:delete")


def test_tool_call_with_scope_passes(server, minter):
    body = json.dumps(call("delete_notes")).encode()
    assert_passed_intact(post(server, minter.token(scope="mcp:tools notes:delete"), body), body)


def test_tool_with_several_scopes(server, minter):
    resp = post(server, minter.token(scope="mcp:tools notes:delete"), call("purge_all"))
    assert_insufficient(server, resp, "/tools", "mcp:tools notes:delete admin:purge")
    resp = post(server, minter.token(scope="mcp:tools"), call("purge_all"))
    assert_insufficient(server, resp, "/tools", "mcp:tools notes:delete admin:purge")
    body = json.dumps(call("purge_all")).encode()
    assert_passed_intact(post(server, minter.token(scope="admin:purge mcp:tools notes:delete"), body), body)


def test_location_require_still_applies_to_tool_calls(server, minter):
    resp = post(server, minter.token(scope="notes:delete"), call("delete_notes"))
    assert resp.status == 403, resp
    d = dict(challenge_pairs(only_challenge(resp)))
    assert d["error"] == "insufficient_scope"
    assert "mcp:tools" in d["scope"].split()


def test_batch_one_call_lacking_scope(server, minter):
    batch = [call("read_notes", 1), rpc("notifications/initialized"), call("delete_notes", 2)]
    resp = post(server, minter.token(scope="mcp:tools"), batch)
    assert_insufficient(server, resp, "/tools", "mcp:tools notes:delete")
    body = json.dumps(batch).encode()
    assert_passed_intact(post(server, minter.token(scope="mcp:tools notes:delete"), body), body)


def test_batch_of_allowed_calls_passes(server, minter):
    body = json.dumps([call("read_notes", 1), rpc("tools/list", {}, 2), call("whoami", 3)]).encode()
    assert_passed_intact(post(server, minter.token(scope="mcp:tools"), body), body)


def test_tool_name_outside_tools_call_is_not_a_call(server, minter):
    body = json.dumps([rpc("tools/list", {"cursor": "delete_notes"}),
                       rpc("prompts/get", {"name": "delete_notes"}, 2)]).encode()
    assert_passed_intact(post(server, minter.token(scope="mcp:tools"), body), body)


@pytest.mark.parametrize("body", [
    b'{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"DELETE_NOTES"}}',
    b'{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"Delete_Notes"}}',
    b'{"jsonrpc":"2.0","id":1,"method":"TOOLS/CALL","params":{"name":"delete_notes"}}',
    b'{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"delete\\u005fnotes"}}',
    b'{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"delete_note\\u017f"}}',
    b'[{"jsonrpc":"2.0","id":1,"method":"ping"},'
    b'{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"delete_NOTES"}}]',
], ids=["upper-name", "mixed-name", "method-value-case", "unicode-escape", "long-s-in-name", "batch-mixed"])
def test_tool_call_case_and_escape_variants_need_scope(server, minter, body):
    resp = post(server, minter.token(scope="mcp:tools"), body)
    assert_insufficient(server, resp, "/tools", "mcp:tools notes:delete")


def assert_jsonrpc_400(resp, code, id_=None):
    """SPEC 6: 400, no challenge, the JSON-RPC error body, nothing forwarded."""
    assert resp.status == 400, resp
    assert resp.header_all("WWW-Authenticate") == [], resp
    assert resp.header("Content-Type").split(";")[0].strip() == "application/json", resp
    message = {-32700: "Parse error", -32600: "Invalid Request"}[code]
    assert resp.json() == {"jsonrpc": "2.0", "id": id_, "error": {"code": code, "message": message}}, resp
    assert "SCRIPT_OK" not in resp.text


DEEP = 100000
# issue 10 item 2, each reproduced against the old module (the tool ran)
# or a neighbour of it; all but the last: with the scope-lacking token.
INVALID_REQUEST_BODIES = {
    "five-case-variants": b'{"jsonrpc":"2.0","id":1,"method":"tools/call","params":'
                          b'{"NAME":"x","Name":"x","nAme":"x","naMe":"x","name":"delete_notes"}}',
    "decoy-methods": b'{"jsonrpc":"2.0","id":1,"METHOD":"x","Method":"x","mEthod":"x","meThod":"x",'
                     b'"method":"tools/call","params":{"name":"delete_notes"}}',
    "decoy-params": b'{"jsonrpc":"2.0","id":1,"method":"tools/call","PARAMS":{},"Params":{},"pArams":{},'
                    b'"paRams":{},"params":{"name":"delete_notes"}}',
    "long-s-params": b'{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"read_notes"},'
                     b'"param\\u017f":{"name":"delete_notes"}}',
    "long-s-params-raw": '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"read_notes"},'
                         '"param\u017f":{"name":"delete_notes"}}'.encode(),
    "nul-suffixed-name": b'{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"read_notes",'
                         b'"name\\u0000":"delete_notes"}}',
    "key-case": b'{"jsonrpc":"2.0","id":1,"method":"tools/call","Params":{"NAME":"delete_notes"}}',
    "method-key-case": b'{"jsonrpc":"2.0","id":1,"Method":"TOOLS/CALL","PARAMS":{"Name":"delete_notes"}}',
    "escaped-duplicate": b'{"jsonrpc":"2.0","id":1,"method":"tools/call",'
                         b'"params":{"name":"read_notes","na\\u006de":"delete_notes"}}',
    "batch-key-case": b'[{"jsonrpc":"2.0","id":1,"method":"ping"},'
                      b'{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"NAME":"delete_NOTES"}}]',
    "name-not-a-string": b'{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":["delete_notes"]}}',
}


@pytest.mark.parametrize("name", sorted(INVALID_REQUEST_BODIES))
def test_ambiguous_members_are_400_invalid_request(server, minter, name):
    body = INVALID_REQUEST_BODIES[name]
    resp = post(server, minter.token(scope="mcp:tools"), body)
    assert_jsonrpc_400(resp, -32600, None if body.startswith(b"[") else 1)
    # refused whatever the token may do: the body is ambiguous, not forbidden
    resp = post(server, minter.token(scope="mcp:tools notes:delete"), body)
    assert_jsonrpc_400(resp, -32600, None if body.startswith(b"[") else 1)


@pytest.mark.parametrize("body", [
    b'{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"read_notes","name":"delete_notes"}}',
    b'{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"read_notes"},"params":{"name":"x"}}',
    b'{"jsonrpc":"2.0","id":1,"method":"tools/list","method":"tools/call","params":{"name":"read_notes"}}',
], ids=["dup-name", "dup-params", "dup-method"])
def test_duplicate_member_names_are_400(server, minter, body):
    # Was: 400 with a Bearer invalid_request challenge; SPEC 6 (amended)
    # answers with a JSON-RPC error and no challenge.
    resp = post(server, minter.token(scope="mcp:tools notes:delete"), body)
    assert_jsonrpc_400(resp, -32600, 1)


def test_invalid_request_echoes_a_readable_id_only(server, minter):
    tok = minter.token(scope="mcp:tools")
    body = b'{"jsonrpc":"2.0","id":"req-7","method":"tools/call","params":{"Name":"delete_notes"}}'
    assert_jsonrpc_400(post(server, tok, body), -32600, "req-7")
    body = b'{"jsonrpc":"2.0","id":12345678901234567890123,"method":"tools/call","params":{"Name":"x"}}'
    resp = post(server, tok, body)
    assert resp.status == 400 and b'"id":12345678901234567890123,' in resp.body, resp
    body = b'{"jsonrpc":"2.0","id":1,"ID":2,"method":"tools/call","params":{"name":"read_notes"}}'
    assert_jsonrpc_400(post(server, tok, body), -32600, None)


def _deep(open_, close, inner=b"1", depth=None):
    depth = DEEP if depth is None else depth
    return open_ * depth + inner + close * depth


# Nesting within SPEC 6's limit (128 levels for the whole body) once the
# message, params, arguments and "x" levels are added.
LEGAL_DEEP = 120


PARSE_ERROR_BODIES = {
    "bom": b"\xef\xbb\xbf" + json.dumps(call("delete_notes")).encode(),
    "trailing-bytes": json.dumps(call("read_notes")).encode() + b"x",
    "second-value": json.dumps(call("read_notes")).encode() + json.dumps(call("delete_notes")).encode(),
    "trailing-comma": b'{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"delete_notes"},}',
    "nan": b'{"method":"tools/call","params":{"name":"DeLeTe_NoTeS", NaN}}',
    "unterminated": b'{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"read_notes"}',
    "binary": b'not json at all \x00\xff\xfe binary',
    "invalid-utf8": b'{"jsonrpc":"2.0","id":"\xff","method":"tools/call","params":{"name":"delete_notes"}}',
    "lone-surrogate": b'{"jsonrpc":"2.0","id":"\\ud800","method":"tools/call","params":{"name":"delete_notes"}}',
    "empty": b"",
    # within the nesting limit (SPEC 6: 128 levels); deeper is -32600 (below)
    "deep-unclosed": b'{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"delete_notes","arguments":'
                     + b"[" * LEGAL_DEEP + b"]" * (LEGAL_DEEP - 1) + b"}}",
}


@pytest.mark.parametrize("name", sorted(PARSE_ERROR_BODIES))
def test_not_exactly_one_json_value_is_400_parse_error(server, minter, name):
    # Was: passed to the backend untouched (malformed JSON), or 403 when its
    # bytes spelled a protected tool ("opaque body"); SPEC 6 (amended): -32700.
    body = PARSE_ERROR_BODIES[name]
    since = server.log_offset()
    resp = post(server, minter.token(scope="mcp:tools notes:delete"), body)
    assert_jsonrpc_400(resp, -32700, None)
    log = server.wait_for_log("JSON-RPC body refused", since)
    assert "JSON-RPC body refused (-32700 Parse error): not JSON" in log, log
    assert "delete_notes" not in log and "read_notes" not in log, log  # never the body


@pytest.mark.slow
def test_big_numbers_and_deep_nesting_are_json(server, minter):
    """The legitimate neighbours: numbers of any size are numbers (jansson
    refused 1e400), nesting up to the limit is read, and the tool they call
    is seen. (Was: "deep nesting has no cap", 100000 levels passed; issue 15
    item 2 caps it at 128 levels, deeper is -32600 -- see below.)"""
    bodies = [
        b'{"jsonrpc":"2.0","id":1e400,"method":"tools/call","params":{"name":"delete_notes"}}',
        b'{"jsonrpc":"2.0","id":1234567890123456789012345,"method":"tools/call","params":{"name":"delete_notes"}}',
        b'{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"delete_notes","arguments":{"x":'
        + _deep(b"[", b"]", depth=LEGAL_DEEP) + b"}}}",
    ]
    for body in bodies:
        resp = post(server, minter.token(scope="mcp:tools"), body)
        assert_insufficient(server, resp, "/tools", "mcp:tools notes:delete")
        assert_passed_intact(post(server, minter.token(scope="mcp:tools notes:delete"), body), body)


def test_nesting_deeper_than_the_limit_is_invalid_request(server, minter):
    for depth in (129, DEEP):
        body = (b'{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"read_notes","arguments":'
                + _deep(b"[", b"]", depth=depth) + b"}}")
        resp = post(server, minter.token(scope="mcp:tools notes:delete"), body)
        assert_jsonrpc_400(resp, -32600, None)


def test_escaped_slash_in_a_tool_name_behind_a_huge_id(server, minter):
    # The old "opaque body" fallback: jansson could not read 1e400, and the
    # bytes never spelled admin/reset, so the call ran without admin:reset.
    body = b'{"jsonrpc":"2.0","id":1e400,"method":"tools/call","params":{"name":"admin\\/reset"}}'
    resp = post(server, minter.token(scope="mcp:tools notes:delete"), body)
    assert_insufficient(server, resp, "/tools", "mcp:tools notes:delete admin:reset")
    assert_passed_intact(post(server, minter.token(scope="mcp:tools admin:reset"), body), body)


@pytest.mark.slow
def test_well_formed_non_calls_pass_untouched(server, minter):
    for body in (b' {"jsonrpc":"2.0","id":1,"method":"tools/list"}\r\n',
                 b'[]', b'"text"', b'{"jsonrpc":"2.0","method":"notifications/initialized"}',
                 '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"read_notes",'
                 '"arguments":{"NAME":"\u017f","name":1,"Params":2}}}'.encode()):
        assert_passed_intact(post(server, minter.token(scope="mcp:tools"), body), body)


def test_every_post_is_read_whatever_its_content_type(server, minter):
    body = json.dumps(call("delete_notes")).encode()
    for ctype in ("text/plain", "application/x-www-form-urlencoded", "application/json-rpc"):
        resp = post(server, minter.token(scope="mcp:tools"), body, ctype=ctype)
        assert_insufficient(server, resp, "/tools", "mcp:tools notes:delete")


def test_content_encoding_is_415(server, minter):
    body = json.dumps(call("read_notes")).encode()
    resp = post(server, minter.token(scope="mcp:tools"), body, headers=[("Content-Encoding", "gzip")])
    assert resp.status == 415, resp
    assert "SCRIPT_OK" not in resp.text
    assert_passed_intact(post(server, minter.token(scope="mcp:tools"), body,
                              headers=[("Content-Encoding", "identity")]), body)


@pytest.mark.slow
def test_exactly_one_mib_passes_intact(server, minter):
    head = b'{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"read_notes","arguments":{"pad":"'
    tail = b'"}}}'
    body = head + b"x" * (MIB - len(head) - len(tail)) + tail
    assert len(body) == MIB
    json.loads(body)
    assert_passed_intact(post(server, minter.token(scope="mcp:tools"), body), body)


def test_one_mib_plus_one_is_413(server, minter):
    head = b'{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"read_notes","arguments":{"pad":"'
    tail = b'"}}}'
    body = head + b"x" * (MIB + 1 - len(head) - len(tail)) + tail
    assert len(body) == MIB + 1
    resp = post(server, minter.token(scope="mcp:tools"), body)
    assert resp.status == 413, resp
    assert "SCRIPT_OK" not in resp.text


def chunked_post(server, token, chunks, path="/tools"):
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=20)
    try:
        conn.request("POST", path, body=iter(chunks),
                     headers={"Content-Type": "application/json", "Transfer-Encoding": "chunked",
                              "Authorization": f"Bearer {token}"},
                     encode_chunked=True)
        r = conn.getresponse()
        return Response(r.status, r.reason, list(r.getheaders()), r.read())
    finally:
        conn.close()


def test_chunked_body_passes_intact(server, minter):
    body = json.dumps([call("read_notes", i, pad="y" * 5000) for i in range(20)]).encode()
    chunks = [body[i:i + 3001] for i in range(0, len(body), 3001)]
    resp = chunked_post(server, minter.token(scope="mcp:tools"), chunks)
    assert_passed_intact(resp, body, content_length=False)


def test_chunked_body_is_inspected(server, minter):
    body = json.dumps([call("read_notes", 1), call("delete_notes", 2)]).encode()
    chunks = [body[i:i + 7] for i in range(0, len(body), 7)]  # the tool name spans chunks
    resp = chunked_post(server, minter.token(scope="mcp:tools"), chunks)
    assert_insufficient(server, resp, "/tools", "mcp:tools notes:delete")


@pytest.mark.slow
def test_chunked_body_over_the_limit_is_413(server, minter):
    head = b'{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"read_notes","arguments":{"pad":"'
    tail = b'"}}}'
    body = head + b"c" * (MIB + 1 - len(head) - len(tail)) + tail
    chunks = [body[i:i + 65536] for i in range(0, len(body), 65536)]
    resp = chunked_post(server, minter.token(scope="mcp:tools"), chunks)
    assert resp.status == 413, resp
    assert "SCRIPT_OK" not in resp.text
    # exactly 1 MiB, chunked: passes intact
    body = body[:len(head)] + body[len(head) + 1:]
    assert len(body) == MIB
    chunks = [body[i:i + 65536] for i in range(0, len(body), 65536)]
    assert_passed_intact(chunked_post(server, minter.token(scope="mcp:tools"), chunks), body,
                         content_length=False)


def expect_continue_post(server, token, body, path="/tools"):
    """POST with Expect: 100-continue; the body is sent only after the 100."""
    s = socket.create_connection(("127.0.0.1", server.port), timeout=10)
    try:
        head = (f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\n"
                f"Authorization: Bearer {token}\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(body)}\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n")
        s.sendall(head.encode())
        interim = b""
        while b"\r\n\r\n" not in interim:
            chunk = s.recv(4096)
            assert chunk, f"connection closed before 100 Continue: {interim!r}"
            interim += chunk
        first, _, rest = interim.partition(b"\r\n\r\n")
        assert first.startswith(b"HTTP/1.1 100"), interim[:200]
        assert rest == b""
        s.sendall(body)
        r = http.client.HTTPResponse(s)
        r.begin()
        return Response(r.status, r.reason, list(r.getheaders()), r.read())
    finally:
        s.close()


def test_expect_100_continue_body_passes_intact(server, minter):
    body = json.dumps(call("read_notes", pad="z" * 100000)).encode()
    resp = expect_continue_post(server, minter.token(scope="mcp:tools"), body)
    assert_passed_intact(resp, body)


def test_expect_100_continue_body_is_inspected(server, minter):
    body = json.dumps(call("delete_notes")).encode()
    resp = expect_continue_post(server, minter.token(scope="mcp:tools"), body)
    assert_insufficient(server, resp, "/tools", "mcp:tools notes:delete")


@pytest.mark.slow
def test_keepalive_connection_after_a_checked_post(server, minter):
    """The replayed body must not leak into the next request on the same connection."""
    tok = minter.token(scope="mcp:tools")
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=20)
    try:
        results = []
        for i in range(3):
            body = json.dumps(call("read_notes", i, pad="k" * (i * 40000))).encode()
            conn.request("POST", "/tools", body=body, headers={"Content-Type": "application/json",
                                                               "Authorization": f"Bearer {tok}"})
            r = conn.getresponse()
            text = r.read().decode()
            results.append((r.status, text, hashlib.sha256(body).hexdigest()))
        for status, text, digest in results:
            assert status == 200, text
            assert f"SHA256={digest}" in text, text
    finally:
        conn.close()


# ---------------------------------------------------------------------------
# other methods
# ---------------------------------------------------------------------------

@pytest.mark.slow
def test_get_and_delete_with_token_pass(server, minter):
    tok = minter.token(scope="mcp:tools")
    env = assert_ok(server.request("GET", "/tools", bearer(tok) + [("Accept", "text/event-stream")]))
    assert env["REQUEST_METHOD"] == "GET"
    env = assert_ok(server.request("DELETE", "/tools", bearer(tok) + [("Mcp-Session-Id", "abc")]))
    assert env["REQUEST_METHOD"] == "DELETE"


def test_get_and_delete_are_authorized_like_post(server, minter):
    for method in ("GET", "DELETE", "POST"):
        resp = server.request(method, "/tools", [], b"" if method == "POST" else None)
        assert resp.status == 401, (method, resp)
        assert "SCRIPT_OK" not in resp.text
        resp = server.request(method, "/tools", bearer(minter.token(scope="notes:read")),
                              b"" if method == "POST" else None)
        assert_insufficient(server, resp, "/tools", "notes:read mcp:tools")


def test_options_without_token_does_not_reach_the_backend(server, minter):
    # Issue 10 item 5: this OPTIONS used to reach the backend unauthenticated.
    # Now a preflight from a foreign origin is refused (403, no challenge) ...
    resp = server.request("OPTIONS", "/tools", [("Origin", "https://app.example"),
                                                ("Access-Control-Request-Method", "POST")])
    assert resp.status == 403, resp
    assert resp.header_all("WWW-Authenticate") == []
    assert "SCRIPT_OK" not in resp.text, resp
    # ... a plain OPTIONS without a token gets the 401 challenge ...
    resp = server.request("OPTIONS", "/tools")
    assert resp.status == 401, resp
    assert "SCRIPT_OK" not in resp.text, resp
    # ... a valid token passes like any method, and a bad one is refused
    env = server.request("OPTIONS", "/tools", bearer(minter.token(scope="mcp:tools"))).cgi_env()
    assert env.get("SCRIPT_OK") == "1" and env.get("REQUEST_METHOD") == "OPTIONS", env
    resp = server.request("OPTIONS", "/tools", bearer(minter.token(scope="mcp:tools", exp=1)))
    assert_invalid_token(resp)


# ---- refusals go through httpd's error path ---------------------------------

@pytest.fixture(scope="module")
def cors_server(httpd_factory, jwks_server, mcp_auth_so):
    """`Header always` (mod_headers) must reach the module's own refusals:
    a browser MCP client can only read the challenge when CORS headers are on
    the 401/403/400 too."""
    jw = jwks_server.jwks_uri
    cors = ('Header always set Access-Control-Allow-Origin "*"\n'
            'Header always set Access-Control-Expose-Headers "WWW-Authenticate"')
    h = httpd_factory.start({
        "/cors": protected(cors + "\nRequire mcp-scope mcp:tools\nMCPAuthToolScope delete_notes notes:delete", jwks=jw),
    }, module_so=mcp_auth_so, name="authz-cors")
    try:
        yield h
    finally:
        h.stop()


def _has_cors_and_json(resp):
    assert resp.header("Access-Control-Allow-Origin") == "*", resp
    assert resp.header("Access-Control-Expose-Headers") == "WWW-Authenticate", resp
    assert resp.header("Content-Type", ).startswith("application/json"), resp
    return resp.json()


def test_header_always_reaches_401_without_token(cors_server):
    resp = cors_server.get("/cors")
    assert resp.status == 401
    assert "error_description" in _has_cors_and_json(resp)
    assert len(resp.header_all("WWW-Authenticate")) == 1


def test_header_always_reaches_401_invalid_token(cors_server, minter):
    resp = cors_server.get("/cors", minter.token(scope="mcp:tools") + "x")
    assert resp.status == 401
    assert _has_cors_and_json(resp)["error"] == "invalid_token"


def test_header_always_reaches_400(cors_server):
    resp = cors_server.request("GET", "/cors", [("Authorization", "Bearer a b")])
    assert resp.status == 400
    assert _has_cors_and_json(resp)["error"] == "invalid_request"


def test_header_always_reaches_the_jsonrpc_400(cors_server, minter):
    body = b'{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"x","Name":"delete_notes"}}'
    resp = cors_server.request("POST", "/cors", [("Authorization", "Bearer " + minter.token(scope="mcp:tools")),
                                                  ("Content-Type", "application/json")], body)
    assert resp.status == 400, resp
    assert _has_cors_and_json(resp) == {"jsonrpc": "2.0", "id": 3,
                                        "error": {"code": -32600, "message": "Invalid Request"}}
    assert resp.header_all("WWW-Authenticate") == []


def test_header_always_reaches_403_require_and_tool(cors_server, minter):
    resp = cors_server.get("/cors", minter.token(scope="notes:read"))
    assert resp.status == 403
    assert _has_cors_and_json(resp)["error"] == "insufficient_scope"
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "delete_notes"}}).encode()
    resp = cors_server.request("POST", "/cors", [("Authorization", "Bearer " + minter.token(scope="mcp:tools")),
                                                  ("Content-Type", "application/json")], body)
    assert resp.status == 403
    assert _has_cors_and_json(resp)["error"] == "insufficient_scope"


@pytest.mark.slow
def test_refused_post_keeps_the_connection_usable(cors_server, minter):
    """The refused request's body is consumed: the next request on the same
    keep-alive connection is parsed correctly."""
    conn = http.client.HTTPConnection("127.0.0.1", cors_server.port, timeout=10)
    try:
        body = b'{"jsonrpc":"2.0","id":1,"method":"tools/list"}' * 100
        conn.request("POST", "/cors", body=body, headers={"Content-Type": "application/json"})
        r1 = conn.getresponse()
        r1.read()
        assert r1.status == 401
        conn.request("GET", "/cors", headers={"Authorization": "Bearer " + minter.token(scope="mcp:tools")})
        r2 = conn.getresponse()
        r2.read()
        assert r2.status == 200
    finally:
        conn.close()
