# SPDX-License-Identifier: Apache-2.0
"""Golden token shapes: each IdP example of conf/idp-examples/, loaded into a
real httpd, against tokens shaped like the ones that IdP documents (claims
and JOSE headers), signed by a local key.

The example's own directives are used verbatim; only its MCPAuthIssuer line
is rewritten to point jwks_uri= at the local JWKS server (the issuer and
every other option, alias= included, stay as written). So a test here fails
when an example drifts from what its IdP issues: the right tokens must get
200 with the right REMOTE_USER, ID tokens where an access token is required
401, foreign-audience tokens 401, and a token without the needed scope 403
with a challenge naming the scope in the form the client must request.
"""
import json
import re
import secrets
import time

import pytest

from conftest import REPO_ROOT, make_jws

EXAMPLES_DIR = REPO_ROOT / "conf" / "idp-examples"
RESOURCE = "https://mcp.example.com/mcp"
METADATA_PATH = "/.well-known/oauth-protected-resource/mcp"


# ---------------------------------------------------------------------------
# Loading an example
# ---------------------------------------------------------------------------

def example_location(name, jwks_uri, *, uncomment=(), drop=()):
    """(issuer, snippet): the inner lines of the example's <Location /mcp>,
    with MCPAuthIssuer pointed at jwks_uri; lines equal to '#'+u for u in
    uncomment are switched on, lines equal to d in drop are removed."""
    text = (EXAMPLES_DIR / name).read_text()
    start = text.index("<Location /mcp>") + len("<Location /mcp>")
    body = text[start:text.index("</Location>")]
    issuer, out = None, []
    for line in body.splitlines():
        s = line.strip()
        if s in drop:
            continue
        if s.startswith("#") and s[1:] in uncomment:
            line, s = s[1:], s[1:]
        if s.startswith("MCPAuthIssuer "):
            parts = s.split()
            issuer = parts[1]
            kept = [p for p in parts[2:] if not p.startswith(("jwks_uri=", "jwks_file="))]
            line = " ".join(["MCPAuthIssuer", issuer, f"jwks_uri={jwks_uri}"] + kept)
        out.append(line)
    for u in uncomment:
        assert any(l.strip() == u for l in out), f"{name}: no '#{u}' line to switch on"
    assert issuer, f"{name} has no MCPAuthIssuer"
    return issuer, "\n".join(out)


@pytest.fixture
def load(start_httpd, jwks_server):
    def _load(name, **kw):
        issuer, snippet = example_location(name, jwks_server.jwks_uri, **kw)
        return issuer, start_httpd({"/mcp": snippet}, name=name.split(".")[0])
    return _load


# ---------------------------------------------------------------------------
# Token shapes
# ---------------------------------------------------------------------------

def now():
    return int(time.time())


def sign(keys, header, claims):
    key = keys["RS256"]
    h = {"alg": "RS256", "kid": key.kid}
    h.update(header)
    return make_jws(h, claims, key, alg="RS256")


def remote_user(r):
    assert r.status == 200, r
    return r.cgi_env().get("REMOTE_USER")


def challenge_scopes(r):
    wa = r.header("WWW-Authenticate") or ""
    m = re.search(r'scope="([^"]*)"', wa)
    assert m, f"no scope in challenge: {wa!r}"
    return m.group(1).split()


def assert_insufficient_scope(r, needed):
    assert r.status == 403, r
    assert 'error="insufficient_scope"' in r.header("WWW-Authenticate"), r
    assert needed in challenge_scopes(r), r


def assert_invalid_token(r):
    assert r.status == 401, r
    assert 'error="invalid_token"' in (r.header("WWW-Authenticate") or ""), r


# -- Microsoft Entra ID, v2.0 access tokens (access-token-claims-reference) --

TENANT = "00000000-0000-0000-0000-000000000000"
API_APP = "11111111-1111-1111-1111-111111111111"      # the MCP server's API app
CLIENT_APP = "22222222-2222-2222-2222-222222222222"   # an MCP client app
USER_OID = "33333333-3333-3333-3333-333333333333"
SP_OID = "44444444-4444-4444-4444-444444444444"       # the client's service principal


def entra_header(keys):
    # Entra v2 headers carry typ JWT and x5t (same value as kid).
    return {"typ": "JWT", "x5t": keys["RS256"].kid}


def entra_delegated(iss, **over):
    c = {"aud": API_APP, "iss": iss, "iat": now(), "nbf": now(), "exp": now() + 3600,
         "aio": "AWQAm/8YAAAA", "azp": CLIENT_APP, "azpacr": "0", "name": "Alice Example",
         "oid": USER_OID, "preferred_username": "alice@contoso.example", "rh": "0.AAAA.",
         "scp": "mcp.tools", "sub": "pairwise-sub-of-alice-for-this-api",
         "tid": TENANT, "uti": secrets.token_hex(8), "ver": "2.0"}
    c.update(over)
    return {k: v for k, v in c.items() if v is not None}


def entra_app_only(iss, **over):
    c = {"aud": API_APP, "iss": iss, "iat": now(), "nbf": now(), "exp": now() + 3600,
         "aio": "E2ZgYAAA", "azp": CLIENT_APP, "azpacr": "1", "idtyp": "app",
         "oid": SP_OID, "rh": "0.AAAA.", "roles": ["mcp.tools"], "sub": SP_OID,
         "tid": TENANT, "uti": secrets.token_hex(8), "ver": "2.0"}
    c.update(over)
    return {k: v for k, v in c.items() if v is not None}


@pytest.mark.slow
def test_entra_delegated_and_app_only_tokens_pass_with_oid_as_remote_user(load, keys):
    iss, h = load("entra.conf")
    r = h.get("/mcp", sign(keys, entra_header(keys), entra_delegated(iss)))
    assert remote_user(r) == USER_OID          # never preferred_username, never the pairwise sub
    r = h.get("/mcp", sign(keys, entra_header(keys), entra_app_only(iss)))
    assert remote_user(r) == SP_OID            # the role in "roles" satisfies Require mcp-scope


@pytest.mark.slow
def test_entra_refuses_id_v1_graph_and_oidless_tokens(load, keys):
    iss, h = load("entra.conf")
    hdr = entra_header(keys)
    # v2 ID token of the client app: aud is the client's id, no scp.
    id_token = {"aud": CLIENT_APP, "iss": iss, "iat": now(), "nbf": now(), "exp": now() + 3600,
                "name": "Alice Example", "oid": USER_OID, "preferred_username": "alice@contoso.example",
                "sub": "pairwise-sub-of-alice-for-client", "tid": TENANT, "ver": "2.0",
                "nonce": "n-0S6_WzA2Mj"}
    assert_invalid_token(h.get("/mcp", sign(keys, hdr, id_token)))
    # v1 token (manifest left at version 1): other issuer, aud = identifier URI.
    v1 = entra_delegated(f"https://sts.windows.net/{TENANT}/", aud=RESOURCE, ver="1.0",
                         appid=CLIENT_APP, azp=None)
    assert_invalid_token(h.get("/mcp", sign(keys, hdr, v1)))
    # A Microsoft Graph token sent by a client that asked for the wrong scope.
    graph = entra_delegated(iss, aud="00000003-0000-0000-c000-000000000000", scp="User.Read")
    assert_invalid_token(h.get("/mcp", sign(keys, hdr, graph)))
    # oid is required (MCPAuthRequiredClaims sub oid): no silent fallback to sub.
    assert_invalid_token(h.get("/mcp", sign(keys, hdr, entra_delegated(iss, oid=None))))


@pytest.mark.slow
def test_entra_challenges_and_metadata_spell_the_requestable_scope(load, keys):
    iss, h = load("entra.conf")
    long_form = "https://mcp.example.com/mcp/mcp.tools"
    # Token for this API without the needed scope: step-up must name the long form.
    r = h.get("/mcp", sign(keys, entra_header(keys), entra_delegated(iss, scp="mcp.read")))
    assert_insufficient_scope(r, long_form)
    assert "mcp.tools" not in challenge_scopes(r), r   # the bare name resolves against Graph
    # No token: the 401 hint and the metadata document use the same spelling.
    r = h.get("/mcp")
    assert r.status == 401, r
    assert long_form in challenge_scopes(r) and "mcp.tools" not in challenge_scopes(r), r
    doc = h.get(METADATA_PATH)
    assert doc.status == 200, doc
    meta = doc.json()
    assert meta["resource"] == RESOURCE
    assert meta["scopes_supported"] == [long_form], meta


# -- Okta, custom authorization server (access tokens: scp array, cid, uid) --

OKTA_CLIENT = "0oa1mcpclient0example7"


def okta_token(iss, **over):
    c = {"ver": 1, "jti": "AT." + secrets.token_urlsafe(16), "iss": iss, "aud": RESOURCE,
         "iat": now(), "exp": now() + 3600, "cid": OKTA_CLIENT, "uid": "00u1alice0example7",
         "scp": ["openid", "mcp:tools"], "auth_time": now() - 5, "sub": "alice@example.com"}
    c.update(over)
    return {k: v for k, v in c.items() if v is not None}


@pytest.mark.slow
def test_okta_custom_server_tokens(load, keys):
    iss, h = load("okta.conf")
    hdr = {}   # Okta access tokens: kid and alg only
    assert remote_user(h.get("/mcp", sign(keys, hdr, okta_token(iss)))) == "alice@example.com"
    m2m = okta_token(iss, uid=None, auth_time=None, scp=["mcp:tools"], sub=OKTA_CLIENT)
    assert remote_user(h.get("/mcp", sign(keys, hdr, m2m))) == OKTA_CLIENT
    # A token of the shared "default" server, meant for any API of the org.
    default = okta_token(iss.rsplit("/", 1)[0] + "/default", aud="api://default")
    assert_invalid_token(h.get("/mcp", sign(keys, hdr, default)))
    # Same issuer, audience of another API.
    assert_invalid_token(h.get("/mcp", sign(keys, hdr, okta_token(iss, aud="api://billing"))))
    # ID token: aud is the client id.
    id_token = {"sub": "00u1alice0example7", "ver": 1, "iss": iss, "aud": OKTA_CLIENT,
                "iat": now(), "exp": now() + 3600, "jti": "ID." + secrets.token_urlsafe(16),
                "amr": ["pwd"], "idp": "00o1idp", "nonce": "n", "auth_time": now() - 5,
                "preferred_username": "alice@example.com"}
    assert_invalid_token(h.get("/mcp", sign(keys, {"typ": "JWT"}, id_token)))
    assert_insufficient_scope(h.get("/mcp", sign(keys, hdr, okta_token(iss, scp=["openid"]))),
                              "mcp:tools")


# -- Auth0 (default token profile and RFC 9068 profile with RBAC permissions) --

AUTH0_CLIENT = "AbCdEfGhIjKlMnOpQrStUvWxYz012345"


def auth0_token(iss, **over):
    c = {"iss": iss, "sub": "auth0|64f0c0ffee0000000000abcd",
         "aud": [RESOURCE, iss + "userinfo"], "iat": now(), "exp": now() + 86400,
         "azp": AUTH0_CLIENT, "scope": "openid profile mcp:tools"}
    c.update(over)
    return {k: v for k, v in c.items() if v is not None}


@pytest.mark.slow
def test_auth0_default_and_rfc9068_profiles(load, keys):
    iss, h = load("auth0.conf")
    assert iss.endswith("/")
    default_hdr = {"typ": "JWT"}
    assert remote_user(h.get("/mcp", sign(keys, default_hdr, auth0_token(iss)))) \
        == "auth0|64f0c0ffee0000000000abcd"
    # RFC 9068 profile, RBAC on: the granted permission is only in "permissions".
    rfc9068 = auth0_token(iss, aud=RESOURCE, scope="openid profile", client_id=AUTH0_CLIENT,
                          azp=None, jti=secrets.token_hex(8), permissions=["mcp:tools"])
    assert remote_user(h.get("/mcp", sign(keys, {"typ": "at+jwt"}, rfc9068))) \
        == "auth0|64f0c0ffee0000000000abcd"
    # Client credentials: sub is <client-id>@clients.
    m2m = auth0_token(iss, sub=AUTH0_CLIENT + "@clients", aud=RESOURCE, scope="mcp:tools",
                      gty="client-credentials")
    assert remote_user(h.get("/mcp", sign(keys, default_hdr, m2m))) == AUTH0_CLIENT + "@clients"
    # No Resource Parameter Compatibility Profile: the client got a /userinfo token.
    userinfo_only = auth0_token(iss, aud=iss + "userinfo", scope="openid profile")
    assert_invalid_token(h.get("/mcp", sign(keys, default_hdr, userinfo_only)))
    # Issuer without the trailing slash is another issuer.
    assert_invalid_token(h.get("/mcp", sign(keys, default_hdr, auth0_token(iss.rstrip("/")))))
    id_token = {"nickname": "alice", "name": "alice@example.com", "iss": iss, "aud": AUTH0_CLIENT,
                "iat": now(), "exp": now() + 36000, "sub": "auth0|64f0c0ffee0000000000abcd",
                "sid": "s1", "nonce": "n"}
    assert_invalid_token(h.get("/mcp", sign(keys, default_hdr, id_token)))
    assert_insufficient_scope(
        h.get("/mcp", sign(keys, default_hdr, auth0_token(iss, scope="openid", permissions=[]))),
        "mcp:tools")


# -- AWS Cognito user pools (access and ID tokens) --

COGNITO_CLIENT = "1example23456789abcdefghij"
COGNITO_SUB = "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee"


def cognito_access(iss, **over):
    c = {"sub": COGNITO_SUB, "cognito:groups": ["admins"], "iss": iss, "version": 2,
         "client_id": COGNITO_CLIENT, "origin_jti": secrets.token_hex(8),
         "event_id": secrets.token_hex(8), "token_use": "access", "scope": "mcp/tools",
         "auth_time": now() - 5, "exp": now() + 3600, "iat": now(), "jti": secrets.token_hex(8),
         "username": "alice"}
    c.update(over)
    return {k: v for k, v in c.items() if v is not None}


def cognito_id(iss):
    return {"sub": COGNITO_SUB, "cognito:groups": ["admins"], "email_verified": True, "iss": iss,
            "cognito:username": "alice", "origin_jti": secrets.token_hex(8), "aud": COGNITO_CLIENT,
            "event_id": secrets.token_hex(8), "token_use": "id", "auth_time": now() - 5,
            "exp": now() + 3600, "iat": now(), "jti": secrets.token_hex(8),
            "email": "alice@example.com"}


@pytest.mark.slow
def test_cognito_access_tokens_without_aud(load, keys):
    iss, h = load("cognito.conf")
    assert remote_user(h.get("/mcp", sign(keys, {}, cognito_access(iss)))) == COGNITO_SUB
    m2m = cognito_access(iss, sub=COGNITO_CLIENT, username=None, auth_time=None,
                         **{"cognito:groups": None})
    assert remote_user(h.get("/mcp", sign(keys, {}, m2m))) == COGNITO_CLIENT
    # The ID token of the same session has no client_id: refused as a token.
    assert_invalid_token(h.get("/mcp", sign(keys, {}, cognito_id(iss))))
    # Another app client of the same pool: valid token, not allowed here.
    r = h.get("/mcp", sign(keys, {}, cognito_access(iss, client_id="9other0client0of0the0pool")))
    assert r.status == 403, r
    assert_insufficient_scope(h.get("/mcp", sign(keys, {}, cognito_access(iss, scope="openid"))),
                              "mcp/tools")


@pytest.mark.slow
def test_cognito_resource_binding_variant(load, keys):
    iss, h = load("cognito.conf", uncomment=("MCPAuthAudience https://mcp.example.com/mcp",),
                  drop=("MCPAuthAudience *",))
    assert remote_user(h.get("/mcp", sign(keys, {}, cognito_access(iss, aud=RESOURCE)))) == COGNITO_SUB
    # Unbound access token (client sent no resource) and ID token: wrong/no audience.
    assert_invalid_token(h.get("/mcp", sign(keys, {}, cognito_access(iss))))
    assert_invalid_token(h.get("/mcp", sign(keys, {}, cognito_id(iss))))


# -- Keycloak (audience mapper, basic scope, realm_access) --

KC_SUB = "f2b9a7c4-1d3e-4c5b-9a8f-0e1d2c3b4a59"


def keycloak_token(iss, **over):
    c = {"exp": now() + 300, "iat": now(), "auth_time": now() - 5, "jti": "onrtac:" + secrets.token_hex(8),
         "iss": iss, "aud": [RESOURCE, "account"], "sub": KC_SUB, "typ": "Bearer",
         "azp": "mcp-client", "sid": secrets.token_hex(8), "acr": "1",
         "allowed-origins": ["https://client.example.com"],
         "realm_access": {"roles": ["default-roles-agents", "offline_access", "uma_authorization"]},
         "resource_access": {"account": {"roles": ["manage-account", "view-profile"]}},
         "scope": "openid profile email mcp:tools", "email_verified": True,
         "name": "Alice Example", "preferred_username": "alice", "email": "alice@example.com"}
    c.update(over)
    return {k: v for k, v in c.items() if v is not None}


@pytest.mark.slow
def test_keycloak_tokens(load, keys):
    iss, h = load("keycloak.conf")
    hdr = {"typ": "JWT"}
    assert remote_user(h.get("/mcp", sign(keys, hdr, keycloak_token(iss)))) == KC_SUB
    # at+jwt header (client option on) is accepted too.
    assert remote_user(h.get("/mcp", sign(keys, {"typ": "at+jwt"}, keycloak_token(iss)))) == KC_SUB
    admin = keycloak_token(iss, scope="openid profile",
                           realm_access={"roles": ["default-roles-agents", "mcp-admin"]})
    assert remote_user(h.get("/mcp", sign(keys, hdr, admin))) == KC_SUB
    # Realm imported without the "basic" scope: no sub in the access token.
    assert_invalid_token(h.get("/mcp", sign(keys, hdr, keycloak_token(iss, sub=None))))
    # No audience mapper: only "account".
    assert_invalid_token(h.get("/mcp", sign(keys, hdr, keycloak_token(iss, aud="account"))))
    id_token = keycloak_token(iss, aud="mcp-client", typ="ID", scope=None, realm_access=None,
                              resource_access=None, nonce="n", at_hash="x")
    assert_invalid_token(h.get("/mcp", sign(keys, hdr, id_token)))
    assert_insufficient_scope(h.get("/mcp", sign(keys, hdr, keycloak_token(iss, scope="openid"))),
                              "mcp:tools")


# -- Google: service-account ID tokens, with and without email --

SA_ALLOWED = "112233445566778899001"


def google_id(iss, sub=SA_ALLOWED, email=False, **over):
    c = {"aud": RESOURCE, "azp": sub, "exp": now() + 3600, "iat": now(), "iss": iss, "sub": sub}
    if email:
        c.update(email=f"mcp-caller@project-{sub[-3:]}.iam.gserviceaccount.com", email_verified=True)
    c.update(over)
    return c


@pytest.mark.slow
def test_google_service_account_id_tokens(load, keys):
    iss, h = load("google.conf")
    assert iss == "https://accounts.google.com"
    hdr = {"typ": "JWT"}
    # gcloud auth print-identity-token --audiences=... : no email claims at all.
    assert remote_user(h.get("/mcp", sign(keys, hdr, google_id(iss)))) == SA_ALLOWED
    # --include-email, and the schemeless issuer Google also writes.
    tok = google_id("accounts.google.com", email=True)
    assert remote_user(h.get("/mcp", sign(keys, hdr, tok))) == SA_ALLOWED
    # Any other service account can mint a token for this audience: not allowed.
    r = h.get("/mcp", sign(keys, hdr, google_id(iss, sub="998877665544332211000", email=True)))
    assert r.status == 403, r
    # Minted for another service.
    assert_invalid_token(h.get("/mcp", sign(keys, hdr, google_id(iss, aud="https://other.example.com"))))
    # Look-alike issuers stay refused: the alias is one exact value.
    assert_invalid_token(h.get("/mcp", sign(keys, hdr, google_id("http://accounts.google.com"))))
    # Metadata Off: no document, no resource_metadata pointing clients at Google.
    r = h.get("/mcp")
    assert r.status == 401 and "resource_metadata" not in (r.header("WWW-Authenticate") or ""), r
    assert h.get(METADATA_PATH).status == 404


# -- The examples start clean: no startup warning but the one Cognito's
#    variant A documents (audience not checked). A warning here means the
#    example contradicts itself (audience vs resource, REMOTE_USER claim not
#    required, token size vs httpd's header limit).

EXPECTED_WARNINGS = {"cognito.conf": ["MCPAuthAudience *"]}


@pytest.mark.parametrize("example", sorted(p.name for p in EXAMPLES_DIR.glob("*.conf")))
@pytest.mark.slow
def test_example_starts_without_unexpected_warnings(tmp_path, mcp_auth_so, example):
    from test_config import configtest
    r = configtest(tmp_path, mcp_auth_so, f"Include {EXAMPLES_DIR / example}")
    out = r.stdout + r.stderr
    assert r.returncode == 0 and "Syntax OK" in out, out
    warnings = [l for l in out.splitlines() if "[mcp_auth:warn]" in l]
    expected = EXPECTED_WARNINGS.get(example, [])
    assert len(warnings) == len(expected), warnings
    for w, e in zip(warnings, expected):
        assert e in w, warnings
