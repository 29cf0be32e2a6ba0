# SPDX-License-Identifier: Apache-2.0
"""Identity for the backend (SPEC section 4) against a real httpd.

Two backends behind one httpd:

* mod_proxy (``/px/...``) to a small local HTTP server started here that
  answers every request with the request line and the header lines it
  received, raw (bytes decoded as latin-1), in order, duplicates kept.
  Checks: ``MCPAuthClaimHeader`` values and their encoding (string, number,
  boolean, array, object, nested path, ``$``), removal of client-sent
  copies in every case / ``_`` spelling (also when the claim is missing; an
  OPTIONS preflight never reaches the backend), the CR/LF injection refusal,
  ``MCPAuthForwardToken`` (Authorization and ``MCPAuthTokenHeader``), and
  mod_headers reading the module's environment (``%{VAR}e``,
  ``expr=%{ENV:VAR}``).
* CGI (``/env/...``) printing its whole environment as JSON: ``REMOTE_USER``,
  ``AUTH_TYPE``, ``MCP_AUTH_SUB/ISS/SCOPE/CLAIMS``, ``MCPAuthClaimEnv``
  naming, ``MCP_AUTH_TOKEN`` only with ``MCPAuthPassToken On``, UTF-8 values.

An open location (``/px/plain``, no token asked) proves that the proxy and
the echo server pass every spelling of an unconfigured header through, so the
scrubbing assertions can only hold because of mod_mcp_auth -- which removes
the virtual host's identity headers there too (SPEC 4: on every request).
"""

import json

import pytest

from harness.servers import RawBackend
from harness.httpd import JSON_ENV_CGI as ENV_CGI, install_cgi, json_cgi_env as cgi_env
from conftest import APACHE_MODULES_DIR, AUDIENCE, ISSUER, mcp_location

# Client-sent spellings of X-User-Sub that must never reach the backend.
SPOOF_VARIANTS = ["X-User-Sub", "x-user-sub", "X_User_Sub", "X-USER_SUB", "x_user_sub",
                  "X-USER-SUB", "x-User_sub"]

UTF8_NAME = "Zoë 山田"


# ---------------------------------------------------------------------------
# The echo backend: raw request head back as JSON
# ---------------------------------------------------------------------------

class EchoBackend(RawBackend):
    """Threaded HTTP/1.1 server on 127.0.0.1:<random>.  Every request is
    answered 200 with {"request_line": ..., "headers": [[name, value], ...]}
    exactly as received (values: raw bytes decoded as latin-1, stripped of the
    optional whitespace around them).  Connection: close after each answer."""

    def __init__(self):
        super().__init__("echo-backend")

    @staticmethod
    def _handle(conn):
        try:
            conn.settimeout(10)
            data = b""
            while b"\r\n\r\n" not in data:
                chunk = conn.recv(65536)
                if not chunk:
                    return
                data += chunk
                if len(data) > 1024 * 1024:
                    return
            head, rest = data.split(b"\r\n\r\n", 1)
            lines = head.split(b"\r\n")
            headers = []
            length = 0
            for line in lines[1:]:
                name, _, value = line.partition(b":")
                headers.append([name.decode("latin-1"), value.strip(b" \t").decode("latin-1")])
                if name.lower() == b"content-length":
                    length = int(value.strip())
            while len(rest) < length:
                chunk = conn.recv(65536)
                if not chunk:
                    break
                rest += chunk
            body = json.dumps({"request_line": lines[0].decode("latin-1"),
                               "headers": headers}).encode()
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                         b"Content-Length: " + str(len(body)).encode() +
                         b"\r\nConnection: close\r\n\r\n" + body)
        except OSError:
            pass
        finally:
            conn.close()


class Seen:
    """What the echo backend received."""

    def __init__(self, resp):
        assert resp.status == 200, resp
        doc = resp.json()
        assert "headers" in doc, resp  # the answer really is the echo backend's
        self.request_line = doc["request_line"]
        self.headers = [(k, v) for k, v in doc["headers"]]

    def all(self, name):
        """Values of every header whose name equals ``name`` case-insensitively."""
        return [v for k, v in self.headers if k.lower() == name.lower()]

    def one(self, name):
        vals = self.all(name)
        assert len(vals) == 1, f"{name}: expected exactly one, backend got {self.headers!r}"
        return vals[0]

    def utf8(self, name):
        return self.one(name).encode("latin-1").decode("utf-8")

    def like(self, name):
        """Headers whose name equals ``name`` ignoring case and '-'/'_'."""
        norm = name.lower().replace("_", "-")
        return [(k, v) for k, v in self.headers if k.lower().replace("_", "-") == norm]

    def __repr__(self):
        return f"<Seen {self.request_line!r} {self.headers!r}>"


# ---------------------------------------------------------------------------
# The CGI that prints its whole environment
# ---------------------------------------------------------------------------



# ---------------------------------------------------------------------------
# The server
# ---------------------------------------------------------------------------

CLAIM_HEADERS = """\
MCPAuthClaimHeader X-User-Sub $.sub
MCPAuthClaimHeader X-User-Email $.email
MCPAuthClaimHeader X-User-Num $.num
MCPAuthClaimHeader X-User-Ratio $.ratio
MCPAuthClaimHeader X-User-Admin $.admin
MCPAuthClaimHeader X-User-Disabled $.disabled
MCPAuthClaimHeader X-User-Groups $.groups
MCPAuthClaimHeader X-User-Org $.org
MCPAuthClaimHeader X-User-Dept $.org.dept.name
MCPAuthClaimHeader X-User-Claims $
MCPAuthClaimHeader X-User-Evil $.evil
MCPAuthClaimHeader X-User-Name $.name
MCPAuthClaimHeader X-User-Missing $.not_in_any_token
MCPAuthClaimEnv user-email $.email
RequestHeader set X-From-Env "%{MCP_AUTH_SUB}e"
RequestHeader set X-From-Expr "expr=%{ENV:MCP_AUTH_SUB}"
RequestHeader set X-From-Claim-Env "%{USER_EMAIL}e"
"""

ENV_CLAIMS = """\
MCPAuthClaimEnv user-email $.email
MCPAuthClaimEnv X-Team-Name $.org.team
MCPAuthClaimEnv Groups $.groups
MCPAuthClaimEnv tier $.tier
MCPAuthClaimEnv verified $.email_verified
MCPAuthClaimEnv everything $
MCPAuthClaimEnv display_name $.name
"""


@pytest.fixture(scope="module")
def echo():
    srv = EchoBackend()
    try:
        yield srv
    finally:
        srv.stop()


@pytest.fixture(scope="module")
def env_cgi(tmp_root):
    return install_cgi(tmp_root / "identity-cgi", ENV_CGI)


@pytest.fixture(scope="module")
def server(httpd_factory, jwks_server, mcp_auth_so, echo, env_cgi):
    jw = jwks_server.jwks_uri
    back = f"http://127.0.0.1:{echo.port}"

    def loc(extra):
        return mcp_location(ISSUER, jw, extra=extra)

    locations = {
        "/px/claims": loc(CLAIM_HEADERS + f'ProxyPass "{back}/px/claims"'),
        "/px/fwd": loc("MCPAuthTokenHeader X-MCP-Token\n"
                       "MCPAuthClaimHeader X-User-Sub $.sub\n"
                       f'ProxyPass "{back}/px/fwd"'),
        "/px/nofwd": loc("MCPAuthTokenHeader X-MCP-Token\nMCPAuthForwardToken Off\n"
                         "MCPAuthClaimHeader X-User-Sub $.sub\n"
                         f'ProxyPass "{back}/px/nofwd"'),
        # control: no token asked here; only the vhost's identity headers are scrubbed
        "/px/plain": f'Require all granted\nProxyPass "{back}/px/plain"',
        "/env/basic": loc(ENV_CLAIMS),
        "/env/pass": loc("MCPAuthPassToken On"),
        "/env/passoff": loc("MCPAuthPassToken Off"),
        "/env/user": loc("MCPAuthRemoteUserClaim email"),
    }
    server_conf = "\n".join([
        f'LoadModule proxy_module "{APACHE_MODULES_DIR / "mod_proxy.so"}"',
        f'LoadModule proxy_http_module "{APACHE_MODULES_DIR / "mod_proxy_http.so"}"',
        # Before the harness's own ScriptAliasMatch lines: /env gets the env CGI.
        f'ScriptAliasMatch "^/env(/.*)?$" "{env_cgi}"',
    ])
    h = httpd_factory.start(locations, server_conf=server_conf, module_so=mcp_auth_so, name="identity")
    try:
        yield h
    finally:
        h.stop()


def compact(obj) -> str:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False)


def assert_compact_json(text: str, expected):
    """``text`` is compact JSON of ``expected`` (member order not imposed)."""
    parsed = json.loads(text)
    assert parsed == expected, text
    # re-dumping in the order found in ``text`` must give ``text`` back
    assert compact(parsed) == text, f"not compact JSON: {text!r}"


# ---------------------------------------------------------------------------
# (a) headers through mod_proxy
# ---------------------------------------------------------------------------

def test_control_location_lets_other_headers_through(server):
    """Sanity check of the rig: every spelling of a header that no
    MCPAuthClaimHeader names reaches the backend through the open location,
    so the scrub tests below are meaningful."""
    variants = [v.replace("User", "Other").replace("USER", "OTHER").replace("user", "other")
                for v in SPOOF_VARIANTS]
    hdrs = [(n, f"spoof-{i}") for i, n in enumerate(variants)]
    seen = Seen(server.request("GET", "/px/plain", hdrs))
    got = seen.like("X-Other-Sub")
    # httpd folds same-name (case-insensitive) copies into one comma list
    values = [part for _, v in got for part in v.split(", ")]
    assert sorted(values) == sorted(v for _, v in hdrs), seen
    assert any("_" in k for k, _ in got), seen


def test_open_location_of_the_vhost_scrubs_identity_headers(server):
    """SPEC 4: the identity headers of the virtual host are removed on every
    request, also where no token is asked for -- an open sibling location in
    front of the same backend must not let a client name the user."""
    hdrs = [(n, f"spoof-{i}") for i, n in enumerate(SPOOF_VARIANTS)]
    hdrs.append(("X-Other-Sub", "kept"))
    seen = Seen(server.request("GET", "/px/plain", hdrs))
    assert seen.like("X-User-Sub") == [], seen
    assert seen.one("X-Other-Sub") == "kept"


def test_claim_headers_values_and_encoding(server, minter):
    org = {"dept": {"name": "research", "floor": 3}, "tags": ["a", "b"]}
    groups = ["admins", "ops", 7, True]
    tok = minter.token(sub="alice", email="alice@example.test", num=42, ratio=1.5, admin=True,
                       disabled=False, groups=groups, org=org)
    seen = Seen(server.get("/px/claims", tok))
    assert seen.one("X-User-Sub") == "alice"
    assert seen.one("X-User-Email") == "alice@example.test"
    assert seen.one("X-User-Num") == "42"
    assert seen.one("X-User-Ratio") == "1.5"
    assert seen.one("X-User-Admin") == "true"
    assert seen.one("X-User-Disabled") == "false"
    assert_compact_json(seen.one("X-User-Groups"), groups)
    assert_compact_json(seen.one("X-User-Org"), org)
    assert seen.one("X-User-Dept") == "research"
    # an absent claim leaves the header absent
    assert seen.like("X-User-Missing") == [], seen
    assert seen.like("X-User-Evil") == [], seen


def test_claim_header_dollar_is_all_claims(server, minter):
    claims = minter.claims(sub="bob", email="bob@example.test", groups=["g1"],
                           org={"dept": {"name": "ops"}}, admin=False, num=-3)
    tok = minter.token(claims=claims)
    seen = Seen(server.get("/px/claims", tok))
    assert_compact_json(seen.one("X-User-Claims"), claims)


def test_nested_claim_of_wrong_shape_is_absent(server, minter):
    # $.org.dept.name where org.dept is a string: nothing to export
    seen = Seen(server.get("/px/claims", minter.token(org={"dept": "flat"})))
    assert seen.like("X-User-Dept") == [], seen
    assert_compact_json(seen.one("X-User-Org"), {"dept": "flat"})


@pytest.mark.parametrize("variant", SPOOF_VARIANTS)
def test_spoofed_header_variant_replaced_by_claim(server, minter, variant):
    tok = minter.token(sub="alice")
    seen = Seen(server.get("/px/claims", tok, headers=[(variant, "mallory")]))
    assert [v for _, v in seen.like("X-User-Sub")] == ["alice"], seen
    assert "mallory" not in json.dumps(seen.headers), seen


def test_all_spoofed_variants_at_once_and_duplicates(server, minter):
    hdrs = [(n, f"mallory-{i}") for i, n in enumerate(SPOOF_VARIANTS)]
    hdrs += [("X-User-Sub", "mallory-dup"), ("X-User-Email", "mallory@evil.test"),
             ("x_user_email", "mallory2@evil.test"), ("X-USER-CLAIMS", '{"sub":"mallory"}'),
             ("x-user_dept", "evil-dept")]
    tok = minter.token(sub="alice", email="alice@example.test", org={"dept": {"name": "research"}})
    seen = Seen(server.get("/px/claims", tok, headers=hdrs))
    assert [v for _, v in seen.like("X-User-Sub")] == ["alice"], seen
    assert [v for _, v in seen.like("X-User-Email")] == ["alice@example.test"], seen
    assert [v for _, v in seen.like("X-User-Dept")] == ["research"], seen
    assert json.loads(seen.one("X-User-Claims"))["sub"] == "alice"
    assert "mallory" not in json.dumps(seen.headers) and "evil" not in json.dumps(seen.headers), seen


@pytest.mark.parametrize("variant", ["X-User-Email", "x-user-email", "X_User_Email", "X-USER_EMAIL",
                                     "X-User-Missing", "x_user_missing", "X-USER-MISSING"])
def test_spoofed_header_removed_when_claim_missing(server, minter, variant):
    tok = minter.token(sub="alice")  # no email claim; X-User-Missing is never in a token
    seen = Seen(server.get("/px/claims", tok, headers=[(variant, "mallory@evil.test")]))
    assert seen.like(variant) == [], seen
    assert "mallory" not in json.dumps(seen.headers), seen
    assert seen.one("X-User-Sub") == "alice"


@pytest.mark.parametrize("evil", ["x\r\nX-Injected: 1", "\r\nX-Injected: 1", "x\nX-Injected: 1",
                                  "x\rX-Injected: 1", "tab\there", "del\x7fhere"])
def test_control_characters_never_reach_a_header(server, minter, evil):
    off = server.log_offset()
    tok = minter.token(sub="alice", evil=evil)
    seen = Seen(server.get("/px/claims", tok, headers=[("X-User-Evil", "mallory")]))
    assert seen.all("X-Injected") == [], seen
    assert seen.like("X-User-Evil") == [], seen
    # the rest of the request is unaffected
    assert seen.one("X-User-Sub") == "alice"
    log = server.wait_for_log("holds control characters", since=off)
    lines = [ln for ln in log.splitlines() if "holds control characters" in ln]
    assert lines, log
    assert any("X-User-Evil" in ln for ln in lines), lines
    # $ (all claims) is compact JSON: the CR/LF are escaped there, never raw
    for _, v in seen.headers:
        assert "\r" not in v and "\n" not in v


def test_control_characters_inside_object_do_not_inject(server, minter):
    org = {"note": "a\r\nX-Injected: 1"}
    seen = Seen(server.get("/px/claims", minter.token(sub="alice", org=org)))
    assert seen.all("X-Injected") == [], seen
    for v in seen.all("X-User-Org"):  # compact JSON escapes them; if set, it is the claim
        assert json.loads(v) == org


def test_utf8_claim_values_in_headers(server, minter):
    tok = minter.token(sub=UTF8_NAME, name=UTF8_NAME, email="zoë@例え.jp")
    seen = Seen(server.get("/px/claims", tok))
    assert seen.utf8("X-User-Name") == UTF8_NAME
    assert seen.utf8("X-User-Sub") == UTF8_NAME
    assert seen.utf8("X-User-Email") == "zoë@例え.jp"
    # mod_headers reads the module's env: raw UTF-8 too
    assert seen.utf8("X-From-Env") == UTF8_NAME
    assert json.loads(seen.utf8("X-User-Claims"))["name"] == UTF8_NAME


def test_mod_headers_reads_module_env(server, minter):
    tok = minter.token(sub="carol", email="carol@example.test")
    seen = Seen(server.get("/px/claims", tok, headers=[("X-From-Env", "mallory")]))
    assert seen.one("X-From-Env") == "carol"
    assert seen.one("X-From-Expr") == "carol"
    assert seen.one("X-From-Claim-Env") == "carol@example.test"


def test_authorization_forwarded_by_default(server, minter):
    tok = minter.token(sub="alice")
    seen = Seen(server.get("/px/fwd", tok))
    assert seen.one("Authorization") == f"Bearer {tok}"
    assert seen.one("X-User-Sub") == "alice"


def test_token_header_forwarded_by_default(server, minter):
    tok = minter.token(sub="alice")
    seen = Seen(server.request("GET", "/px/fwd", [("X-MCP-Token", tok)]))
    assert seen.one("X-MCP-Token") == tok
    assert seen.one("X-User-Sub") == "alice"


def test_forward_token_off_removes_authorization(server, minter):
    tok = minter.token(sub="alice")
    seen = Seen(server.get("/px/nofwd", tok))
    assert seen.all("Authorization") == [], seen
    assert tok not in json.dumps(seen.headers), seen
    assert seen.one("X-User-Sub") == "alice"


def test_forward_token_off_removes_token_header(server, minter):
    tok = minter.token(sub="alice")
    seen = Seen(server.request("GET", "/px/nofwd", [("X-MCP-Token", tok)]))
    assert seen.all("X-MCP-Token") == [] and seen.all("Authorization") == [], seen
    assert tok not in json.dumps(seen.headers), seen
    assert seen.one("X-User-Sub") == "alice"


def test_no_token_never_reaches_backend(server):
    resp = server.get("/px/claims", headers=[("X-User-Sub", "mallory")])
    assert resp.status == 401, resp
    assert b"request_line" not in resp.body


# ---------------------------------------------------------------------------
# (c) OPTIONS preflight
# ---------------------------------------------------------------------------

def test_preflight_never_reaches_the_backend(server):
    # Issue 10 item 5: the preflight used to be proxied (spoofed identity
    # headers scrubbed). Now it never reaches the backend at all: this origin
    # is not allowed here (default: the resource's own), so 403 ...
    hdrs = [("Origin", "https://app.example"), ("Access-Control-Request-Method", "POST"),
            ("Access-Control-Request-Headers", "authorization, content-type")]
    hdrs += [(n, "mallory") for n in SPOOF_VARIANTS]
    hdrs += [("X-User-Email", "mallory@evil.test"), ("x_user_claims", '{"sub":"mallory"}')]
    resp = server.request("OPTIONS", "/px/claims", hdrs)
    assert resp.status == 403, resp
    assert b"request_line" not in resp.body and b"mallory" not in resp.body, resp
    # ... and an OPTIONS without the CORS headers is authenticated (401)
    resp = server.request("OPTIONS", "/px/claims", [(n, "mallory") for n in SPOOF_VARIANTS])
    assert resp.status == 401, resp
    assert b"request_line" not in resp.body, resp


# ---------------------------------------------------------------------------
# (b) environment through CGI
# ---------------------------------------------------------------------------

def test_env_standard_variables(server, minter):
    claims = minter.claims(sub="alice", scope="mcp:tools notes:read", email="alice@example.test")
    tok = minter.token(claims=claims)
    env = cgi_env(server.get("/env/basic", tok))
    assert env["REMOTE_USER"] == "alice"
    assert env["AUTH_TYPE"] == "mcp-jwt"
    assert env["MCP_AUTH_SUB"] == "alice"
    assert env["MCP_AUTH_ISS"] == ISSUER
    assert env["MCP_AUTH_SCOPE"] == "mcp:tools notes:read"
    assert_compact_json(env["MCP_AUTH_CLAIMS"], claims)
    assert "MCP_AUTH_TOKEN" not in env


def test_env_scope_from_scp_array(server, minter):
    env = cgi_env(server.get("/env/basic", minter.token(scp=["mcp:tools", "notes:delete"])))
    assert env["MCP_AUTH_SCOPE"] == "mcp:tools notes:delete"


def test_env_claim_env_names_and_encoding(server, minter):
    claims = minter.claims(sub="alice", email="alice@example.test", org={"team": "platform"},
                           groups=["admins", "ops"], tier=3, email_verified=True)
    env = cgi_env(server.get("/env/basic", minter.token(claims=claims)))
    assert env["USER_EMAIL"] == "alice@example.test"
    assert "user-email" not in env and "user_email" not in env
    assert env["X_TEAM_NAME"] == "platform"
    assert_compact_json(env["GROUPS"], ["admins", "ops"])
    assert env["TIER"] == "3"
    assert env["VERIFIED"] == "true"
    assert_compact_json(env["EVERYTHING"], claims)


def test_env_claim_env_missing_claim_absent(server, minter):
    env = cgi_env(server.get("/env/basic", minter.token(sub="alice")))
    for name in ("USER_EMAIL", "X_TEAM_NAME", "GROUPS", "TIER", "VERIFIED", "DISPLAY_NAME"):
        assert name not in env, (name, env.get(name))
    assert env["MCP_AUTH_SUB"] == "alice"


def test_env_utf8_values(server, minter):
    claims = minter.claims(sub=UTF8_NAME, name=UTF8_NAME, email="zoë@例え.jp")
    env = cgi_env(server.get("/env/basic", minter.token(claims=claims)))
    assert env["MCP_AUTH_SUB"] == UTF8_NAME
    assert env["REMOTE_USER"] == UTF8_NAME
    assert env["DISPLAY_NAME"] == UTF8_NAME
    assert env["USER_EMAIL"] == "zoë@例え.jp"
    assert json.loads(env["MCP_AUTH_CLAIMS"]) == claims
    assert json.loads(env["EVERYTHING"]) == claims


def test_env_remote_user_claim(server, minter):
    env = cgi_env(server.get("/env/user", minter.token(sub="alice", email="alice@example.test")))
    assert env["REMOTE_USER"] == "alice@example.test"
    assert env["MCP_AUTH_SUB"] == "alice"
    assert env["AUTH_TYPE"] == "mcp-jwt"


def test_env_pass_token_on(server, minter):
    tok = minter.token(sub="alice")
    env = cgi_env(server.get("/env/pass", tok))
    assert env["MCP_AUTH_TOKEN"] == tok
    assert env["REMOTE_USER"] == "alice"


@pytest.mark.parametrize("path", ["/env/basic", "/env/passoff"])
def test_env_pass_token_off(server, minter, path):
    tok = minter.token(sub="alice")
    env = cgi_env(server.get(path, tok))
    assert "MCP_AUTH_TOKEN" not in env
    assert env["REMOTE_USER"] == "alice"


def test_env_not_spoofable_by_client_headers(server, minter):
    """A client can't plant MCP_AUTH_* through request headers (they become
    HTTP_*), and the real values win."""
    tok = minter.token(sub="alice")
    env = cgi_env(server.get("/env/basic", tok, headers=[("MCP-AUTH-SUB", "mallory"),
                                                         ("User-Email", "mallory@evil.test")]))
    assert env["MCP_AUTH_SUB"] == "alice"
    assert "USER_EMAIL" not in env
