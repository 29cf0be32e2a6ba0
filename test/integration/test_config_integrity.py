# SPDX-License-Identifier: Apache-2.0
"""Configuration integrity (issue 10, items 1, 4, 6 and parts of 12 and 8)
against a real httpd: every decision rests on configuration the client
cannot steer.

* Item 1: the default resource (expected audience, RFC 9728 ``resource``,
  the challenge's ``resource_metadata``) comes from ServerName, never from
  ``Host`` or ``X-Forwarded-*``; no usable ServerName and no
  MCPAuthResource fails configtest.
* Item 4: trust-defining and widening directives are refused in .htaccess
  ("not allowed here"); what only narrows still works there.
* Item 6: nested sections inherit and add MCPAuthClaimHeader /
  MCPAuthClaimEnv / MCPAuthToolScope; the scrub covers every identity
  header of the virtual host.
* Item 12 (parts) and 8 (startup warning): MCPAuthClaimEnv HTTP_*,
  MCPAuthAudience * warning, HMAC length against the merged algorithm set,
  plain-http MCPAuthIntrospection warning.

Each attack sits beside the legitimate neighbour that must still pass.
"""
import http.client
import json
import os

import pytest

from conftest import HMAC_SECRET, ISSUER, AUDIENCE, mcp_location, _make_world_readable
from harness.asserts import bearer, challenge_params
from harness.httpd import config_location as location, configtest
from harness.httpd import JSON_ENV_CGI as ENV_CGI, json_cgi_env as cgi_env

WK = "/.well-known/oauth-protected-resource"
# The env CGI, reading the request body first (a POST's body must be taken).
BODY_ENV_CGI = ENV_CGI.replace("import json, os, sys\n", "import json, os, sys\nsys.stdin.buffer.read()\n")
assert BODY_ENV_CGI != ENV_CGI


def raw_request(server, method, path, *, host, headers=(), body=None):
    """A request with a Host header of our choosing (http.client would add
    the real one)."""
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=20)
    try:
        conn.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
        conn.putheader("Host", host)
        for k, v in headers:
            conn.putheader(k, v)
        if body is not None:
            conn.putheader("Content-Length", str(len(body)))
        conn.endheaders(body)
        resp = conn.getresponse()
        return resp.status, dict((k.lower(), v) for k, v in resp.getheaders()), resp.read()
    finally:
        conn.close()


# ---------------------------------------------------------------------------
# Item 1: the resource comes from ServerName
# ---------------------------------------------------------------------------

def bare_location(jwks_uri, extra=""):
    """Protected, with neither MCPAuthAudience nor MCPAuthResource."""
    return mcp_location(jwks_uri=jwks_uri, audience=None, extra=extra)


@pytest.fixture(scope="module")
def res_server(httpd_factory, jwks_server, mcp_auth_so):
    h = httpd_factory.start({"/res": bare_location(jwks_server.jwks_uri)}, module_so=mcp_auth_so, name="res")
    try:
        yield h
    finally:
        h.stop()


def test_forged_host_cannot_choose_the_audience(res_server, minter):
    """The attack: a token issued for another MCP server, sent with that
    server's name in Host. Before: 200 (the audience was built from Host)."""
    tok = minter.token(aud="http://other.example/res")
    off = res_server.log_offset()
    status, _, body = raw_request(res_server, "GET", "/res", host="other.example", headers=bearer(tok))
    assert status == 401, body
    assert "Invalid audience" in res_server.wait_for_log("Invalid audience", since=off)
    status, _, _ = raw_request(res_server, "GET", "/res", host="other.example:80", headers=bearer(tok))
    assert status == 401


def test_token_for_the_configured_resource_passes_with_any_host(res_server, minter):
    tok = minter.token(aud=f"http://127.0.0.1:{res_server.port}/res")
    for host in (f"127.0.0.1:{res_server.port}", "other.example", "localhost"):
        status, _, body = raw_request(res_server, "GET", "/res", host=host, headers=bearer(tok))
        assert status == 200, (host, body)
        assert b"REMOTE_USER=alice" in body


def test_forwarded_headers_are_ignored(res_server, minter):
    fwd = [("X-Forwarded-Host", "other.example"), ("X-Forwarded-Proto", "https"),
           ("X-Forwarded-Port", "443"), ("Forwarded", "host=other.example;proto=https")]
    bad = minter.token(aud="https://other.example/res")
    status, _, _ = raw_request(res_server, "GET", "/res", host="other.example", headers=fwd + bearer(bad))
    assert status == 401
    good = minter.token(aud=f"http://127.0.0.1:{res_server.port}/res")
    status, _, _ = raw_request(res_server, "GET", "/res", host="other.example", headers=fwd + bearer(good))
    assert status == 200


def test_metadata_and_challenge_name_the_configured_resource_under_a_forged_host(res_server):
    own = f"http://127.0.0.1:{res_server.port}"
    fwd = [("X-Forwarded-Host", "evil.example"), ("X-Forwarded-Proto", "https")]
    status, _, body = raw_request(res_server, "GET", f"{WK}/res", host="other.example", headers=fwd)
    assert status == 200, body
    assert json.loads(body)["resource"] == f"{own}/res"
    status, _, body = raw_request(res_server, "GET", WK, host="other.example")
    assert status == 200 and json.loads(body)["resource"] == f"{own}/res"
    status, hdrs, _ = raw_request(res_server, "GET", "/res", host="other.example", headers=fwd)
    assert status == 401
    assert challenge_params(hdrs["www-authenticate"]).get("resource_metadata") == f"{own}{WK}/res"
    # the neighbour: the real Host gets the same answer
    assert res_server.get(f"{WK}/res").json()["resource"] == f"{own}/res"


@pytest.fixture(scope="module")
def vhost_server(httpd_factory, jwks_server, mcp_auth_so):
    """Two name-based virtual hosts on every address: one with a scheme and
    port in ServerName, one with a scheme and its default port. The main
    server's <Location> applies in both."""
    vhosts = """
<VirtualHost *>
    ServerName https://mcp.example.test:8443
</VirtualHost>
<VirtualHost *>
    ServerName https://mcp2.example.test
    ServerAlias alias.example.test
</VirtualHost>
"""
    h = httpd_factory.start({"/vr": bare_location(jwks_server.jwks_uri)}, server_conf=vhosts,
                            module_so=mcp_auth_so, name="vhost")
    try:
        yield h
    finally:
        h.stop()


@pytest.mark.slow
def test_servername_scheme_and_port_make_the_resource(vhost_server, minter):
    tok_a = minter.token(aud="https://mcp.example.test:8443/vr")
    tok_b = minter.token(aud="https://mcp2.example.test/vr")
    # Host picks the virtual host (configuration), ServerName makes the URI
    status, _, body = raw_request(vhost_server, "GET", "/vr", host="mcp.example.test", headers=bearer(tok_a))
    assert status == 200, body
    status, _, _ = raw_request(vhost_server, "GET", "/vr", host="mcp2.example.test:8443", headers=bearer(tok_b))
    assert status == 200
    status, _, _ = raw_request(vhost_server, "GET", "/vr", host="alias.example.test", headers=bearer(tok_b))
    assert status == 200
    # the attacks: the port, scheme or alias name in Host do not count
    for host, aud in (("mcp2.example.test:9999", "https://mcp2.example.test:9999/vr"),
                      ("mcp2.example.test", "http://mcp2.example.test/vr"),
                      ("alias.example.test", "https://alias.example.test/vr"),
                      ("mcp.example.test", "https://mcp.example.test/vr")):
        status, _, _ = raw_request(vhost_server, "GET", "/vr", host=host, headers=bearer(minter.token(aud=aud)))
        assert status == 401, (host, aud)
    status, _, body = raw_request(vhost_server, "GET", f"{WK}/vr", host="mcp2.example.test:9999")
    assert json.loads(body)["resource"] == "https://mcp2.example.test/vr"
    status, hdrs, _ = raw_request(vhost_server, "GET", "/vr", host="mcp.example.test")
    assert challenge_params(hdrs["www-authenticate"]).get("resource_metadata") == \
        f"https://mcp.example.test:8443{WK}/vr"


def protected(path="/mcp", extra=()):
    return location("MCPAuthIssuer https://idp.example", *extra).replace("<Location /mcp>", f"<Location {path}>")


@pytest.mark.slow
def test_no_servername_and_no_resource_fails_configtest(tmp_path, mcp_auth_so):
    r = configtest(tmp_path, mcp_auth_so, protected(), server_name="")
    out = r.stdout + r.stderr
    assert r.returncode != 0, out
    assert "ServerName" in out and "MCPAuthResource" in out, out
    # the neighbours: either one is enough
    r = configtest(tmp_path, mcp_auth_so, protected(extra=["MCPAuthResource https://mcp.example.test/mcp"]),
                   server_name="")
    assert r.returncode == 0, r.stdout + r.stderr
    r = configtest(tmp_path, mcp_auth_so, protected())
    assert r.returncode == 0, r.stdout + r.stderr
    # a nested section inherits its parent's MCPAuthResource
    body = protected(extra=["MCPAuthResource https://mcp.example.test/mcp"]) + \
        "<Location /mcp/admin>\n    MCPAuthToolScope purge admin\n</Location>\n"
    r = configtest(tmp_path, mcp_auth_so, body, server_name="")
    assert r.returncode == 0, r.stdout + r.stderr


@pytest.mark.slow
def test_virtual_host_without_servername_fails_configtest(tmp_path, mcp_auth_so):
    # 127.0.0.1:1 is no default address: httpd makes up a name for it
    r = configtest(tmp_path, mcp_auth_so, f"<VirtualHost 127.0.0.1:1>\n{protected()}</VirtualHost>\n")
    out = r.stdout + r.stderr
    assert r.returncode != 0, out
    assert "ServerName" in out and "MCPAuthResource" in out and "VirtualHost" in out, out
    r = configtest(tmp_path, mcp_auth_so,
                   f"<VirtualHost 127.0.0.1:1>\nServerName https://mcp.example.test\n{protected()}</VirtualHost>\n")
    assert r.returncode == 0, r.stdout + r.stderr
    # *:1 is a default address: the main server's written ServerName is inherited
    r = configtest(tmp_path, mcp_auth_so, f"<VirtualHost *:1>\n{protected()}</VirtualHost>\n")
    assert r.returncode == 0, r.stdout + r.stderr


# ---------------------------------------------------------------------------
# Item 4: .htaccess narrows, never widens
# ---------------------------------------------------------------------------

REFUSED_IN_HTACCESS = {
    "MCPAuthIssuer": "MCPAuthIssuer https://evil.example jwks_uri=https://evil.example/jwks.json",
    "MCPAuthHMACSecret": "MCPAuthHMACSecret " + "e" * 64,
    "MCPAuthIntrospection": "MCPAuthIntrospection https://evil.example/introspect auth=none",
    "MCPAuthAlgorithms": "MCPAuthAlgorithms RS256 HS256",
    "MCPAuthAudience": "MCPAuthAudience *",
    "MCPAuthResource": "MCPAuthResource https://other.example/mcp",
    "MCPAuthClockSkew": "MCPAuthClockSkew 86400",
    "MCPAuthScopeClaim": "MCPAuthScopeClaim groups",
    "MCPAuthRemoteUserClaim": "MCPAuthRemoteUserClaim email",
    "MCPAuthPassToken": "MCPAuthPassToken On",
    "MCPAuthForwardToken": "MCPAuthForwardToken On",
    "MCPAuthTokenHeader": "MCPAuthTokenHeader Cookie",
    "MCPAuthTokenType": "MCPAuthTokenType JWT",
    "MCPAuthMaxTokenSize": "MCPAuthMaxTokenSize 1048576",
    "MCPAuthAllowedOrigins": "MCPAuthAllowedOrigins *",
    "MCPAuthScopeImplies": "MCPAuthScopeImplies mcp:tools admin",
}

NARROWING_HTACCESS = """\
AuthType mcp-jwt
AuthName "mcp"
MCPAuthRequiredClaims email
MCPAuthToolScope delete_notes notes:delete
MCPAuthClaimHeader X-Ht-User $.sub
MCPAuthClaimHeader X-Ht-Role $.role
MCPAuthClaimEnv ht-mail $.email
MCPAuthScopesSupported mcp:tools
MCPAuthResourceMetadata Off
Require mcp-scope mcp:tools
"""


@pytest.fixture(scope="module")
def ht_server(httpd_factory, jwks_server, mcp_auth_so, tmp_root):
    root = tmp_root / "htaccess-tree"
    dirs = {f"refused-{name}": line for name, line in REFUSED_IN_HTACCESS.items()}
    dirs.update({"plain": None, "narrow": NARROWING_HTACCESS, "none": "MCPAuthRequiredClaims none"})
    for d, text in dirs.items():
        (root / d).mkdir(parents=True, exist_ok=True)
        (root / d / "x.txt").write_text("ok\n")
        cgi = root / d / "env.cgi"
        cgi.write_text(BODY_ENV_CGI)
        if text is not None:
            (root / d / ".htaccess").write_text(text + "\n")
    _make_world_readable(root)
    for d in dirs:
        os.chmod(root / d / "env.cgi", 0o755)
    server_conf = f"""
Alias /ht "{root}"
<Directory "{root}">
    AllowOverride AuthConfig
    Options +ExecCGI
    AddHandler cgi-script .cgi
    AuthType mcp-jwt
    AuthName "mcp"
    MCPAuthIssuer {ISSUER} jwks_uri={jwks_server.jwks_uri}
    MCPAuthAudience {AUDIENCE}
    MCPAuthToolScope delete_notes admin
    Require valid-user
</Directory>
"""
    h = httpd_factory.start({}, server_conf=server_conf, module_so=mcp_auth_so, name="htaccess")
    try:
        yield h
    finally:
        h.stop()


@pytest.mark.parametrize("directive", sorted(REFUSED_IN_HTACCESS))
@pytest.mark.slow
def test_widening_directive_in_htaccess_is_not_allowed_here(ht_server, minter, directive):
    off = ht_server.log_offset()
    # a token the parent accepts gets nothing from a directory whose .htaccess tries to widen
    resp = ht_server.get(f"/ht/refused-{directive}/x.txt", minter.token(scope="mcp:tools"))
    assert resp.status == 500, resp
    log = ht_server.wait_for_log("not allowed here", since=off)
    assert f"{directive} not allowed here" in log, log


def test_parent_directory_accepts_the_tokens(ht_server, minter):
    resp = ht_server.get("/ht/plain/x.txt", minter.token())
    assert resp.status == 200, resp
    assert ht_server.get("/ht/plain/x.txt").status == 401


@pytest.mark.slow
def test_narrowing_directives_work_in_htaccess(ht_server, minter):
    # the parent accepts a token without email and without mcp:tools ...
    no_mail = minter.token(scope="mcp:tools")
    assert ht_server.get("/ht/plain/x.txt", no_mail).status == 200
    # ... the .htaccess adds email to the required claims (sub stays required)
    resp = ht_server.get("/ht/narrow/x.txt", no_mail)
    assert resp.status == 401, resp
    assert ht_server.get("/ht/narrow/x.txt", minter.token(scope="mcp:tools", email="a@example.test",
                                                         sub=None)).status == 401
    assert ht_server.get("/ht/narrow/x.txt", minter.token(email="a@example.test")).status == 403
    resp = ht_server.get("/ht/narrow/env.cgi", minter.token(scope="mcp:tools", email="a@example.test"),
                         headers=[("X-Ht-User", "admin"), ("X-Ht-Role", "admin")])
    env = cgi_env(resp)
    assert env["HTTP_X_HT_USER"] == "alice" and env["HT_MAIL"] == "a@example.test", env
    # a header named only in .htaccess is scrubbed too (no role claim: absent)
    assert "HTTP_X_HT_ROLE" not in env, env


@pytest.mark.slow
def test_htaccess_tool_scope_adds_to_the_parent_entry(ht_server, minter):
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
                       "params": {"name": "delete_notes", "arguments": {}}}).encode()
    hdrs = [("Content-Type", "application/json")]

    def post(scope):
        tok = minter.token(scope=scope, email="a@example.test")
        return ht_server.request("POST", "/ht/narrow/env.cgi", hdrs + bearer(tok), body)

    # the attack: the .htaccess entry must not replace the parent's "admin"
    assert post("mcp:tools notes:delete").status == 403
    assert post("mcp:tools admin").status == 403
    assert post("mcp:tools admin notes:delete").status == 200


def test_htaccess_directives_read_per_request_leave_no_trace(ht_server, minter):
    """.htaccess is parsed for every request, in worker threads: nothing of
    it may land in the configuration pool (no crash, same answers)."""
    good = minter.token(scope="mcp:tools", email="a@example.test")
    for i in range(60):
        path = "/ht/narrow/x.txt" if i % 3 else "/ht/refused-MCPAuthIssuer/x.txt"
        assert ht_server.get(path, good).status == (200 if i % 3 else 500)
    assert "exit signal" not in ht_server.log_text()


def test_required_claims_none_is_refused_in_htaccess(ht_server, minter):
    off = ht_server.log_offset()
    assert ht_server.get("/ht/none/x.txt", minter.token()).status == 500
    assert "MCPAuthRequiredClaims none" in ht_server.wait_for_log("MCPAuthRequiredClaims", since=off)


# ---------------------------------------------------------------------------
# Item 6: nested sections inherit and add
# ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def nested_server(httpd_factory, jwks_server, mcp_auth_so, tmp_root):
    d = tmp_root / "nested-cgi"
    d.mkdir(parents=True, exist_ok=True)
    (d / "env.cgi").write_text(BODY_ENV_CGI)
    _make_world_readable(d)
    os.chmod(d / "env.cgi", 0o755)
    jw = jwks_server.jwks_uri
    parent = mcp_location(ISSUER, jw, extra="\n".join([
        "MCPAuthClaimHeader X-MCP-User $.sub",
        "MCPAuthClaimHeader X-MCP-Role $.role",
        "MCPAuthClaimHeader X-MCP-Mail $.sub",
        "MCPAuthClaimEnv parent-env $.sub",
        "MCPAuthToolScope delete_notes notes:delete",
    ]))
    locations = [
        ("/nest", parent),
        ("/nest/child", "\n".join([
            "MCPAuthClaimHeader X-MCP-Team $.team",
            "MCPAuthClaimHeader x-mcp-mail $.email",   # replaces only the parent's X-MCP-Mail
            "MCPAuthClaimEnv child-env $.team",
            "MCPAuthToolScope other_tool other:scope",
        ])),
        ("/sib", mcp_location(ISSUER, jw)),
    ]
    server_conf = f'ScriptAliasMatch "^/(nest|sib)(/.*)?$" "{d / "env.cgi"}"'
    h = httpd_factory.start(locations, server_conf=server_conf, module_so=mcp_auth_so, name="nested")
    try:
        yield h
    finally:
        h.stop()


@pytest.mark.slow
def test_nested_location_keeps_and_scrubs_the_parents_identity_headers(nested_server, minter):
    tok = minter.token(sub="alice", team="red", email="alice@example.test")
    spoof = [("X-MCP-User", "admin"), ("X-MCP-Role", "admin"), ("x_mcp_role", "root"), ("X-MCP-Team", "blue")]
    env = cgi_env(nested_server.get("/nest/child", tok, headers=spoof))
    assert env.get("HTTP_X_MCP_USER") == "alice", env        # before: "admin" (parent's list dropped)
    assert "HTTP_X_MCP_ROLE" not in env, env                 # no role claim: scrubbed, never "admin"
    assert env.get("HTTP_X_MCP_TEAM") == "red", env
    assert env.get("HTTP_X_MCP_MAIL") == "alice@example.test", env  # the child's entry won
    assert env.get("PARENT_ENV") == "alice" and env.get("CHILD_ENV") == "red", env
    # the neighbour: the parent itself is unchanged
    env = cgi_env(nested_server.get("/nest", tok, headers=spoof))
    assert env.get("HTTP_X_MCP_USER") == "alice" and env.get("HTTP_X_MCP_MAIL") == "alice", env
    assert "HTTP_X_MCP_TEAM" not in env and "HTTP_X_MCP_ROLE" not in env, env


def test_sibling_location_scrubs_the_virtual_hosts_identity_headers(nested_server, minter):
    spoof = [("X-MCP-User", "admin"), ("X-MCP-Team", "blue"), ("X-Other", "kept")]
    env = cgi_env(nested_server.get("/sib", minter.token(), headers=spoof))
    assert "HTTP_X_MCP_USER" not in env and "HTTP_X_MCP_TEAM" not in env, env
    assert env.get("HTTP_X_OTHER") == "kept", env  # what is no identity header passes
    assert env.get("REMOTE_USER") == "alice"


@pytest.mark.slow
def test_nested_tool_scope_keeps_the_parents_protected_tool(nested_server, minter):
    hdrs = [("Content-Type", "application/json")]

    def post(path, tool, scope):
        body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
                           "params": {"name": tool, "arguments": {}}}).encode()
        return nested_server.request("POST", path, hdrs + bearer(minter.token(scope=scope)), body)

    assert post("/nest/child", "delete_notes", "mcp:tools").status == 403  # before: 200
    assert post("/nest/child", "delete_notes", "notes:delete").status == 200
    assert post("/nest/child", "other_tool", "notes:delete").status == 403
    assert post("/nest/child", "other_tool", "other:scope").status == 200
    assert post("/nest", "other_tool", "mcp:tools").status == 200  # the child's rule stays the child's


# ---------------------------------------------------------------------------
# Item 12 (parts) and the item 8 startup warning: configtest
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["HTTP_X_USER", "http-x-user", "Http_Proxy", "HTTP_"])
@pytest.mark.slow
def test_claim_env_named_like_a_request_header_fails_configtest(tmp_path, mcp_auth_so, name):
    r = configtest(tmp_path, mcp_auth_so, location("MCPAuthIssuer https://idp.example",
                                                   f"MCPAuthClaimEnv {name} $.sub"))
    out = r.stdout + r.stderr
    assert r.returncode != 0, out
    assert "MCPAuthClaimEnv" in out and "HTTP_" in out, out


@pytest.mark.parametrize("name", ["HTTPX_USER", "X_HTTP_USER", "MY-HTTP"])
def test_claim_env_with_other_names_passes_configtest(tmp_path, mcp_auth_so, name):
    r = configtest(tmp_path, mcp_auth_so, location("MCPAuthIssuer https://idp.example",
                                                   f"MCPAuthClaimEnv {name} $.sub"))
    assert r.returncode == 0, r.stdout + r.stderr


@pytest.mark.slow
def test_audience_star_logs_a_startup_warning(tmp_path, mcp_auth_so):
    r = configtest(tmp_path, mcp_auth_so, location("MCPAuthIssuer https://idp.example", "MCPAuthAudience *"))
    out = r.stdout + r.stderr
    assert r.returncode == 0, out
    assert "MCPAuthAudience *" in out and f"{tmp_path}/httpd.conf:" in out, out
    r = configtest(tmp_path, mcp_auth_so, location("MCPAuthIssuer https://idp.example",
                                                   "MCPAuthAudience https://mcp.example.test/mcp"))
    assert r.returncode == 0 and "MCPAuthAudience" not in r.stdout + r.stderr


def test_plain_http_introspection_logs_a_startup_warning(tmp_path, mcp_auth_so):
    r = configtest(tmp_path, mcp_auth_so, location("MCPAuthIssuer https://idp.example",
                                                   "MCPAuthIntrospection http://idp.example/introspect auth=none"))
    out = r.stdout + r.stderr
    assert r.returncode == 0, out
    assert "MCPAuthIntrospection" in out and "http://idp.example/introspect" in out and "plain http" in out, out
    r = configtest(tmp_path, mcp_auth_so, location("MCPAuthIssuer https://idp.example",
                                                   "MCPAuthIntrospection https://idp.example/introspect auth=none"))
    assert r.returncode == 0 and "plain http" not in r.stdout + r.stderr, r.stdout + r.stderr


SECRET_32 = "s" * 32
SECRET_64 = "t" * 64


@pytest.mark.parametrize("body,needle", [
    # a parent allows HS512, a nested section brings a 32-byte secret
    (protected(extra=["MCPAuthAlgorithms HS512", f"MCPAuthHMACSecret {SECRET_64}"]) +
     f"<Location /mcp/sub>\n    MCPAuthHMACSecret {SECRET_32}\n</Location>\n", "HS512"),
    # the reverse: a parent's 32-byte secret, a nested section allows HS384
    (protected(extra=["MCPAuthAlgorithms HS256", f"MCPAuthHMACSecret {SECRET_32}"]) +
     "<Location /mcp/sub>\n    MCPAuthAlgorithms HS256 HS384\n</Location>\n", "HS384"),
    # the server's top level allows HS512 for every section
    ("MCPAuthAlgorithms HS512\n" + protected(extra=[f"MCPAuthHMACSecret {SECRET_32}"]), "HS512"),
    # the main server's section allows HS512, a virtual host's top level brings the secret
    (protected(extra=["MCPAuthAlgorithms HS512"]) +
     f"<VirtualHost *:1>\n    MCPAuthHMACSecret {SECRET_32}\n</VirtualHost>\n", "HS512"),
], ids=["parent-hs512-child-short-secret", "parent-short-secret-child-hs384", "server-level-hs512",
        "main-section-hs512-vhost-short-secret"])
def test_hmac_secret_too_short_for_the_merged_algorithms_fails_configtest(tmp_path, mcp_auth_so, body, needle):
    r = configtest(tmp_path, mcp_auth_so, body)
    out = r.stdout + r.stderr
    assert r.returncode != 0, out
    assert "MCPAuthHMACSecret" in out and needle in out, out
    assert SECRET_32 not in out and SECRET_64 not in out


@pytest.mark.parametrize("body", [
    protected(extra=["MCPAuthAlgorithms HS512", f"MCPAuthHMACSecret {SECRET_64}"]) +
    f"<Location /mcp/sub>\n    MCPAuthHMACSecret {HMAC_SECRET}\n</Location>\n",
    protected(extra=["MCPAuthAlgorithms HS512", f"MCPAuthHMACSecret {SECRET_64}"]) +
    f"<Location /mcp/sub>\n    MCPAuthAlgorithms HS256\n    MCPAuthHMACSecret {SECRET_32}\n</Location>\n",
    # unrelated paths do not merge
    protected(extra=["MCPAuthAlgorithms HS512", f"MCPAuthHMACSecret {SECRET_64}"]) +
    protected("/other", extra=["MCPAuthAlgorithms HS256", f"MCPAuthHMACSecret {SECRET_32}"]),
    # the section's own secret wins over the virtual host's top level
    protected(extra=["MCPAuthAlgorithms HS512", f"MCPAuthHMACSecret {SECRET_64}"]) +
    f"<VirtualHost *:1>\n    MCPAuthHMACSecret {SECRET_32}\n</VirtualHost>\n",
], ids=["child-long-secret", "child-own-hs256", "unrelated-paths", "section-secret-over-vhost-secret"])
@pytest.mark.slow
def test_hmac_secret_long_enough_for_the_merged_algorithms_passes(tmp_path, mcp_auth_so, body):
    r = configtest(tmp_path, mcp_auth_so, body)
    assert r.returncode == 0, r.stdout + r.stderr
