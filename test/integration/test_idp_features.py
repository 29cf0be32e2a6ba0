# SPDX-License-Identifier: Apache-2.0
"""Module features the IdPs need (issue 16, points 1-4; SPEC section 2)
against a real httpd. Each attack sits beside its legitimate neighbour:

* MCPAuthScopeClaim with several claims: the granted set is the union
  (Entra ``scp`` + ``roles``), for Require mcp-scope, tool scopes and
  MCP_AUTH_SCOPE alike; a location with a shorter list never gets the
  union from the shared verdict cache (in either order);
* MCPAuthIssuer ... alias=: the alias is accepted with the issuer's keys,
  MCP_AUTH_ISS is the token's own iss; a location without the alias
  refuses it even after the aliased location cached it; the metadata
  names only the URL; an alias equal to another issuer fails configtest;
* MCPAuthScopeRequestPrefix: challenges and scopes_supported spell the
  requestable (prefixed) scope, tokens match on the short form (and the
  prefixed one), never prefixed twice, offline_access never named;
* startup warnings (audience without the resource, MaxTokenSize above
  LimitRequestFieldSize, REMOTE_USER claim not required), each beside a
  clean neighbour.
"""

import json

import pytest

from harness.httpd import ENV_CGI, config_location, configtest, install_cgi
from harness.httpd import mcp_location
from conftest import AUDIENCE, ISSUER, _make_world_readable
from harness.asserts import challenge_params as challenge


ALIAS = "idp.mcp-test.example/realms/mcp"  # the schemeless spelling (Google's accounts.google.com)
PREFIX = "https://mcp.example.com/mcp/"



def protected(*lines, jwks, issuer_opts=""):
    return mcp_location(jwks_uri=jwks, issuer_opts=issuer_opts, lines=lines, require=None)


@pytest.fixture(scope="module")
def env_cgi(tmp_root):
    return install_cgi(tmp_root / "idp-features-cgi", ENV_CGI)


@pytest.fixture(scope="module")
def htdirs(tmp_root):
    out = {}
    for name, line in (("ht-prefix", f"MCPAuthScopeRequestPrefix {PREFIX}"),
                       ("ht-ok", "MCPAuthScopesSupported mcp.read")):
        d = tmp_root / "idp-features-ht" / name
        d.mkdir(parents=True, exist_ok=True)
        (d / "x.txt").write_text("ok\n")
        (d / ".htaccess").write_text(line + "\n")
        out[name] = d
    _make_world_readable(tmp_root / "idp-features-ht")
    return out


@pytest.fixture(scope="module")
def server(httpd_factory, jwks_server, mcp_auth_so, env_cgi, htdirs):
    jw = jwks_server.jwks_uri
    locations = [
        # 2. several scope claims
        ("/f/union", protected("MCPAuthScopeClaim scp roles", "MCPAuthToolScope admin_tool app.admin",
                               "Require mcp-scope app.admin", jwks=jw)),
        ("/f/union-read", protected("MCPAuthScopeClaim scp roles", "MCPAuthToolScope admin_tool app.admin",
                                    "Require mcp-scope mcp.read", jwks=jw)),
        ("/f/scp", protected("MCPAuthScopeClaim scp", "Require mcp-scope app.admin", jwks=jw)),
        ("/f/default", protected("Require mcp-scope mcp.read", jwks=jw)),
        # 3. issuer aliases: same issuer, keys and audience; only the alias differs
        ("/f/alias", protected("Require valid-user", jwks=jw, issuer_opts=f" alias={ALIAS}")),
        ("/f/noalias", protected("Require valid-user", jwks=jw)),
        # 1. requestable scope spelling (Entra)
        ("/f/prefix", protected(f"MCPAuthScopeRequestPrefix {PREFIX}", "MCPAuthScopeClaim scp",
                                "MCPAuthScopesSupported mcp.tools offline_access",
                                "MCPAuthToolScope admin_tool mcp.admin",
                                "Require mcp-scope mcp.tools", jwks=jw)),
        ("/f/prefix-hint", protected(f"MCPAuthScopeRequestPrefix {PREFIX}",
                                     "MCPAuthScopesSupported mcp.tools", "Require valid-user", jwks=jw)),
        ("/f/noprefix", protected("MCPAuthScopeClaim scp", "MCPAuthScopesSupported mcp.tools",
                                  "Require mcp-scope mcp.tools", jwks=jw)),
    ]
    server_conf = "\n".join([
        f'ScriptAliasMatch "^/f(/.*)?$" "{env_cgi}"',
        "MCPAuthRefusalLogInterval 0",
    ] + [f'Alias /{name} "{d}"\n<Directory "{d}">\n  AllowOverride AuthConfig\n  AuthType mcp-jwt\n'
         f'  MCPAuthIssuer {ISSUER} jwks_uri={jw}\n  MCPAuthAudience {AUDIENCE}\n  Require valid-user\n</Directory>'
         for name, d in htdirs.items()])
    h = httpd_factory.start(locations, server_conf=server_conf, module_so=mcp_auth_so, name="idp-features")
    try:
        yield h
    finally:
        h.stop()


def call(server, path, token, tool):
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
                       "params": {"name": tool, "arguments": {}}}).encode()
    hdrs = [("Content-Type", "application/json"), ("Accept", "application/json, text/event-stream"),
            ("Authorization", f"Bearer {token}")]
    return server.request("POST", path, hdrs, body)


# ---------------------------------------------------------------------------
# 2. MCPAuthScopeClaim <claim>...
# ---------------------------------------------------------------------------

@pytest.mark.slow
def test_scope_claims_union_satisfies_require(server, minter):
    """Entra: delegated scp string + app-only roles array. The role grants
    what Require asks; MCP_AUTH_SCOPE is the union."""
    tok = minter.token(scp="mcp.read", roles=["app.admin"])
    r = server.get("/f/union", tok)
    assert r.status == 200, r
    env = r.cgi_env()
    assert env["SCRIPT_OK"] == "1"
    assert set(env["MCP_AUTH_SCOPE"].split()) == {"mcp.read", "app.admin"}, env
    # neighbour: an app-only token (roles only, no scp) passes too
    r = server.get("/f/union", minter.token(roles=["app.admin"]))
    assert r.status == 200, r
    # attack: neither claim carries the scope -> 403 naming it
    r = server.get("/f/union", minter.token(scp="mcp.read", roles=["app.reader"]))
    assert r.status == 403, r
    assert "app.admin" in challenge(r)["scope"].split()


def test_scope_claims_union_satisfies_tool_scope(server, minter):
    tok = minter.token(scp="mcp.read", roles=["app.admin"])
    r = call(server, "/f/union-read", tok, "admin_tool")
    assert r.status == 200, r
    r = call(server, "/f/union-read", minter.token(scp="mcp.read app.admin.not"), "admin_tool")
    assert r.status == 403, r
    assert "app.admin" in challenge(r)["scope"].split()


@pytest.mark.parametrize("order", ["union-first", "scp-first"])
def test_scope_claim_list_is_part_of_the_cache_key(server, minter, order):
    """Same issuer, audience, token: a location reading only scp must never
    be served the union cached by the scp+roles location, nor the other way
    round get only scp."""
    tok = minter.token(scp="mcp.read", roles=["app.admin"])
    paths = ["/f/union", "/f/scp"] if order == "union-first" else ["/f/scp", "/f/union"]
    got = {}
    for _ in range(2):  # the second round is served from the caches
        for p in paths:
            got.setdefault(p, []).append(server.get(p, tok).status)
    assert got["/f/union"] == [200, 200], got
    assert got["/f/scp"] == [403, 403], got


def test_default_scope_claim_unchanged(server, minter):
    r = server.get("/f/default", minter.token(scope="mcp.read", scp="other"))
    assert r.status == 200, r
    assert r.cgi_env()["MCP_AUTH_SCOPE"] == "mcp.read"
    r = server.get("/f/default", minter.token(scp="mcp.read"))
    assert r.status == 200, r
    # roles is not read unless configured
    r = server.get("/f/default", minter.token(roles=["mcp.read"]))
    assert r.status == 403, r


@pytest.mark.slow
def test_scope_claim_configtest(tmp_path, mcp_auth_so):
    r = configtest(tmp_path, mcp_auth_so, config_location(
        "MCPAuthIssuer https://idp.example", "MCPAuthScopeClaim scp roles $.realm_access.roles"))
    assert r.returncode == 0, r.stderr
    r = configtest(tmp_path, mcp_auth_so, config_location(
        "MCPAuthIssuer https://idp.example", 'MCPAuthScopeClaim "scp roles"'))
    assert r.returncode != 0 and "MCPAuthScopeClaim" in r.stderr, r.stderr


# ---------------------------------------------------------------------------
# 3. MCPAuthIssuer ... alias=<iss>
# ---------------------------------------------------------------------------

def test_issuer_alias_accepted_with_the_issuers_keys(server, minter, keys):
    r = server.get("/f/alias", minter.token(iss=ALIAS))
    assert r.status == 200, r
    env = r.cgi_env()
    assert env["REMOTE_USER"] == "alice"
    assert env["MCP_AUTH_ISS"] == ALIAS, env  # the token's iss as sent
    r = server.get("/f/alias", minter.token())
    assert r.status == 200, r
    assert r.cgi_env()["MCP_AUTH_ISS"] == ISSUER
    # attack: the alias does not make an unpublished key good
    bad = minter.token(key=keys.attacker, iss=ALIAS)
    assert server.get("/f/alias", bad).status == 401
    # near misses of the alias are other issuers
    for iss in (ALIAS + "/", "https://" + ALIAS + "/", ALIAS.upper()):
        r = server.get("/f/alias", minter.token(iss=iss))
        assert r.status == 401, (iss, r)


@pytest.mark.parametrize("order", ["alias-first", "noalias-first"])
def test_issuer_alias_is_part_of_the_cache_key(server, minter, order):
    """A token accepted under the alias at /f/alias must not be served from
    the verdict cache at /f/noalias (same issuer URL, keys, audience)."""
    tok = minter.token(iss=ALIAS)
    paths = ["/f/alias", "/f/noalias"] if order == "alias-first" else ["/f/noalias", "/f/alias"]
    got = {}
    for _ in range(2):
        for p in paths:
            got.setdefault(p, []).append(server.get(p, tok).status)
    assert got["/f/alias"] == [200, 200], got
    assert got["/f/noalias"] == [401, 401], got
    ch = challenge(server.get("/f/noalias", tok))
    assert ch["error"] == "invalid_token", ch


def test_issuer_alias_not_in_metadata(server):
    r = server.get("/.well-known/oauth-protected-resource/f/alias")
    assert r.status == 200, r
    assert r.json()["authorization_servers"] == [ISSUER], r.json()


@pytest.mark.slow
def test_issuer_alias_configtest(tmp_path, mcp_auth_so):
    ok = configtest(tmp_path, mcp_auth_so, config_location(
        "MCPAuthIssuer https://accounts.google.com alias=accounts.google.com"))
    assert ok.returncode == 0, ok.stderr
    # an alias that is another configured issuer (anywhere): refused, naming both
    r = configtest(tmp_path, mcp_auth_so, config_location(
        "MCPAuthIssuer https://idp-a.example alias=https://idp-b.example") +
        "<Location /other>\nAuthType mcp-jwt\nMCPAuthIssuer https://idp-b.example\nRequire valid-user\n</Location>\n")
    assert r.returncode != 0, r.stderr
    assert "alias=https://idp-b.example" in r.stderr and "httpd.conf:" in r.stderr, r.stderr
    # an alias of two different issuers: refused
    r = configtest(tmp_path, mcp_auth_so, config_location(
        "MCPAuthIssuer https://idp-a.example alias=idp.example",
        "MCPAuthIssuer https://idp-b.example alias=idp.example"))
    assert r.returncode != 0 and "alias=idp.example" in r.stderr, r.stderr
    # the issuer itself as alias: refused
    r = configtest(tmp_path, mcp_auth_so, config_location(
        "MCPAuthIssuer https://idp-a.example alias=https://idp-a.example"))
    assert r.returncode != 0 and "alias" in r.stderr, r.stderr


# ---------------------------------------------------------------------------
# 1. MCPAuthScopeRequestPrefix
# ---------------------------------------------------------------------------

def test_prefix_in_401_hint(server):
    ch = challenge(server.get("/f/prefix"))
    assert ch["scope"] == PREFIX + "mcp.tools", ch  # from Require mcp-scope
    ch = challenge(server.get("/f/prefix-hint"))
    assert ch["scope"] == PREFIX + "mcp.tools", ch  # from MCPAuthScopesSupported
    # neighbour without the directive: unchanged
    ch = challenge(server.get("/f/noprefix"))
    assert ch["scope"] == "mcp.tools", ch


def test_prefix_in_403_step_up(server, minter):
    """Entra puts the short form in scp; the step-up challenge names the
    granted and the missing scopes in the requestable form, the prefixed
    granted one not twice, offline_access never."""
    tok = minter.token(scp=f"mcp.read {PREFIX}mcp.other offline_access")
    r = server.get("/f/prefix", tok)
    assert r.status == 403, r
    ch = challenge(r)
    assert ch["error"] == "insufficient_scope"
    scopes = ch["scope"].split()
    assert sorted(scopes) == sorted([PREFIX + "mcp.read", PREFIX + "mcp.other", PREFIX + "mcp.tools"]), scopes
    assert not any(s.startswith(PREFIX + PREFIX) for s in scopes)
    assert not any(s.endswith("offline_access") for s in scopes)
    # a tool scope missing on a permitted location: step-up names it prefixed
    r = call(server, "/f/prefix", minter.token(scp="mcp.tools"), "admin_tool")
    assert r.status == 403, r
    assert PREFIX + "mcp.admin" in challenge(r)["scope"].split()


def test_prefix_tokens_match_short_and_prefixed(server, minter):
    r = server.get("/f/prefix", minter.token(scp="mcp.tools"))
    assert r.status == 200, r
    assert r.cgi_env()["MCP_AUTH_SCOPE"] == "mcp.tools"
    r = server.get("/f/prefix", minter.token(scp=PREFIX + "mcp.tools"))
    assert r.status == 200, r
    assert r.cgi_env()["MCP_AUTH_SCOPE"] == PREFIX + "mcp.tools"  # the token's own
    r = call(server, "/f/prefix", minter.token(scp=f"mcp.tools {PREFIX}mcp.admin"), "admin_tool")
    assert r.status == 200, r
    # attack: another prefix, or a prefix-looking near miss, is not the short form
    for scp in ("https://other.example.com/mcp/mcp.tools", PREFIX.rstrip("/") + "mcp.tools", PREFIX):
        r = server.get("/f/prefix", minter.token(scp=scp))
        assert r.status == 403, (scp, r)
    # without the directive the prefixed form is just another scope
    r = server.get("/f/noprefix", minter.token(scp=PREFIX + "mcp.tools"))
    assert r.status == 403, r


def test_prefix_in_metadata(server):
    doc = server.get("/.well-known/oauth-protected-resource/f/prefix").json()
    assert doc["scopes_supported"] == [PREFIX + "mcp.tools"], doc
    doc = server.get("/.well-known/oauth-protected-resource/f/noprefix").json()
    assert doc["scopes_supported"] == ["mcp.tools"], doc


def test_prefix_not_allowed_in_htaccess(server, htdirs):
    """It changes which granted scopes count (a prefixed one satisfies the
    short rule), so it is server configuration only: in .htaccess httpd
    answers 500 "not allowed here"; the neighbour .htaccess that only
    changes MCPAuthScopesSupported (allowed there) still gets its 401."""
    r = server.get("/ht-prefix/x.txt")
    assert r.status == 500, r
    assert "MCPAuthScopeRequestPrefix not allowed here" in server.log_text()
    r = server.get("/ht-ok/x.txt")
    assert r.status == 401, r
    assert challenge(r)["scope"] == "mcp.read"


# ---------------------------------------------------------------------------
# 4. startup warnings: each with its file:line, beside a clean neighbour
# ---------------------------------------------------------------------------

RES = "https://mcp.example.com/mcp"


def warnings_of(tmp_path, so, *lines, extra=""):
    r = configtest(tmp_path, so, extra + config_location("MCPAuthIssuer https://idp.example", *lines))
    assert r.returncode == 0, r.stderr
    return [l for l in r.stderr.splitlines() if "warn" in l.lower()], r.stderr


def line_of(tmp_path, directive):
    text = (tmp_path / "httpd.conf").read_text().splitlines()
    return next(i + 1 for i, l in enumerate(text) if l.strip().startswith(directive))


@pytest.mark.slow
def test_warning_audience_without_resource(tmp_path, mcp_auth_so):
    w, err = warnings_of(tmp_path, mcp_auth_so, f"MCPAuthResource {RES}", "MCPAuthAudience api://mcp-server https://other.example/api")
    hits = [l for l in w if "MCPAuthAudience at" in l and "does not contain the resource" in l]
    assert len(hits) == 1, err
    assert f"httpd.conf:{line_of(tmp_path, 'MCPAuthAudience')}" in hits[0], hits[0]
    assert RES in hits[0]
    # neighbours: the resource among the audiences (RFC 8707 equal form), a
    # GUID audience (Entra v2), no MCPAuthAudience (default = resource)
    for aud in (f"MCPAuthAudience {RES}/ https://other.example/api", "MCPAuthAudience 00000000-1111-2222-3333-444444444444",
                None):
        lines = [f"MCPAuthResource {RES}"] + ([aud] if aud else [])
        w, err = warnings_of(tmp_path, mcp_auth_so, *lines)
        assert not [l for l in w if "does not contain the resource" in l], (aud, err)


@pytest.mark.slow
def test_warning_max_token_size_above_field_limit(tmp_path, mcp_auth_so):
    w, err = warnings_of(tmp_path, mcp_auth_so, "MCPAuthMaxTokenSize 16000")
    hits = [l for l in w if "MCPAuthMaxTokenSize 16000" in l and "LimitRequestFieldSize 8190" in l]
    assert len(hits) == 1, err
    assert f"httpd.conf:{line_of(tmp_path, 'MCPAuthMaxTokenSize')}" in hits[0], hits[0]
    # neighbours: a size that fits; the same size with the limit raised
    w, err = warnings_of(tmp_path, mcp_auth_so, "MCPAuthMaxTokenSize 8000")
    assert not [l for l in w if "MCPAuthMaxTokenSize" in l], err
    w, err = warnings_of(tmp_path, mcp_auth_so, "MCPAuthMaxTokenSize 16000", extra="LimitRequestFieldSize 16384\n")
    assert not [l for l in w if "MCPAuthMaxTokenSize" in l], err


@pytest.mark.slow
def test_warning_remote_user_claim_not_required(tmp_path, mcp_auth_so):
    w, err = warnings_of(tmp_path, mcp_auth_so, "MCPAuthRemoteUserClaim oid")
    hits = [l for l in w if "MCPAuthRemoteUserClaim oid" in l and "falls back to sub" in l]
    assert len(hits) == 1, err
    assert f"httpd.conf:{line_of(tmp_path, 'MCPAuthRemoteUserClaim')}" in hits[0], hits[0]
    # neighbours: required; sub (required by default); inherited required list
    for lines in (["MCPAuthRemoteUserClaim oid", "MCPAuthRequiredClaims sub oid"], ["MCPAuthRemoteUserClaim sub"]):
        w, err = warnings_of(tmp_path, mcp_auth_so, *lines)
        assert not [l for l in w if "MCPAuthRemoteUserClaim" in l], (lines, err)
    w, err = warnings_of(tmp_path, mcp_auth_so, "MCPAuthRemoteUserClaim oid",
                         extra="<Location />\nMCPAuthRequiredClaims sub oid\n</Location>\n")
    assert not [l for l in w if "MCPAuthRemoteUserClaim" in l], err


@pytest.mark.slow
def test_cli_issuer_aliases(tmp_path, mcp_auth_cli, minter, keys):
    """mcp-auth-token verify: a repeated --issuer is an alias of the first."""
    import subprocess
    jwks = tmp_path / "jwks.json"
    jwks.write_text(json.dumps(keys.jwks()))
    tok = minter.token(iss=ALIAS)

    def verify(*issuers, token=None):
        args = [str(mcp_auth_cli), "verify", "--jwks", str(jwks), "--audience", AUDIENCE]
        for i in issuers:
            args += ["--issuer", i]
        return subprocess.run(args + [token or tok], capture_output=True, text=True, timeout=30)

    r = verify(ISSUER, ALIAS)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["claims"]["iss"] == ALIAS, r.stdout
    # the first --issuer stays the issuer: its own iss still passes
    r = verify(ISSUER, ALIAS, token=minter.token())
    assert r.returncode == 0, r.stderr
    r = verify(ISSUER)
    assert r.returncode == 1 and "Invalid issuer" in r.stderr, r.stderr
    r = verify(ISSUER, ALIAS + "/")
    assert r.returncode == 1 and "Invalid issuer" in r.stderr, r.stderr
