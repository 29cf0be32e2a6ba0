# SPDX-License-Identifier: Apache-2.0
"""Origin validation, CORS on the module's own answers, and the RFC 9728
document built from configuration only (issue 11 items 4 and 5, the
offline_access part of item 2), against a real httpd with mod_proxy in front
of a backend that counts every connection and keeps every byte it got.

Each behaviour is the attack beside the legitimate neighbour:

* a present ``Origin`` that ``MCPAuthAllowedOrigins`` does not allow is 403
  before authentication, with no challenge, and nothing reaches the backend
  (not a connection, not a byte of the body); an allowed one, spelled in any
  case or with the default port, passes; no ``Origin`` is unaffected;
* the default is the resource's own origin, built from ``ServerName``: a
  request whose ``Host`` names the attacker's origin (DNS rebinding) is still
  refused;
* refusals (401, 403 insufficient_scope) to an allowed origin carry
  ``Access-Control-Allow-Origin`` with that origin, ``Vary: Origin`` and the
  exposed ``WWW-Authenticate``, so a browser client can read the challenge;
  the operator's own ``Header always set`` wins, never two values;
* the metadata document echoes an allowed origin instead of ``*`` (``*`` only
  under ``MCPAuthAllowedOrigins *``); another origin still gets the public
  document but no CORS grant;
* the document and its ``resource`` ignore ``Host`` and ``X-Forwarded-*``;
* ``MCPAuthScopesSupported offline_access`` is dropped with a startup warning
  naming the directive and file:line: never in ``scopes_supported`` or a 401.

The root form of the document with one protected location, and its 404 with
two, are in test_mcp_authz.py (test_metadata_root_form_*); not repeated here.
"""

import http.client
import json
import socket
import threading
import time

import pytest

from harness.servers import RawBackend
from harness.asserts import bearer
from harness.httpd import mcp_location
from conftest import APACHE_MODULES_DIR, ISSUER, Response

WK = "/.well-known/oauth-protected-resource"
ALLOWED = "https://app.example"
OTHER = "https://other.example:8443"
EVIL = "https://evil.example"
MARKER = b"BODY-MARKER-7f3a"


class CountingBackend(RawBackend):
    """Accepts connections, counts them, keeps every byte received, answers
    200 with what it read (Connection: close, so mod_proxy opens a new
    connection per request and the count is exact)."""

    def __init__(self):
        self.connections = 0
        self.received = []
        self._lock = threading.Lock()
        super().__init__("origin-backend")

    def on_accept(self):
        with self._lock:
            self.connections += 1

    def _handle(self, conn):
        data = b""
        try:
            conn.settimeout(10)
            while b"\r\n\r\n" not in data:
                chunk = conn.recv(65536)
                if not chunk:
                    break
                data += chunk
            head, _, rest = data.partition(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value.strip())
            while len(rest) < length:
                chunk = conn.recv(65536)
                if not chunk:
                    break
                rest += chunk
            data = head + b"\r\n\r\n" + rest
            lines = head.decode("latin-1").split("\r\n")
            out = json.dumps({"request": lines[0], "headers": lines[1:],
                              "body": rest.decode("latin-1")}).encode()
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: "
                         + str(len(out)).encode() + b"\r\nConnection: close\r\n\r\n" + out)
        except (OSError, ValueError):
            pass
        finally:
            with self._lock:
                self.received.append(data)
            conn.close()

    def snapshot(self):
        with self._lock:
            return self.connections, b"".join(self.received)


def loc(jwks, *lines, require="Require valid-user"):
    return mcp_location(jwks_uri=jwks, lines=lines, require=require)


@pytest.fixture(scope="module")
def backend():
    b = CountingBackend()
    try:
        yield b
    finally:
        b.stop()


RECIPE = ('Header setifempty Access-Control-Allow-Origin "expr=%{req:Origin}" "expr=-n %{req:Origin}"\n'
          'Header setifempty Access-Control-Expose-Headers "Mcp-Session-Id" "expr=-n %{req:Origin}"\n'
          'Header merge Vary Origin')
OFFLINE_LINE = "MCPAuthScopesSupported mcp:tools offline_access notes:read"
OFFLINE_ONLY_LINE = "MCPAuthScopesSupported offline_access"


@pytest.fixture(scope="module")
def server(httpd_factory, jwks_server, mcp_auth_so, backend):
    jw = jwks_server.jwks_uri
    back = f"http://127.0.0.1:{backend.port}"
    m = APACHE_MODULES_DIR
    locations = {
        "/list": loc(jw, f"MCPAuthAllowedOrigins {ALLOWED} {OTHER}", "MCPAuthScopesSupported mcp:tools",
                     "MCPAuthToolScope delete_notes notes:delete", f'ProxyPass "{back}/list"'),
        "/own": loc(jw, f'ProxyPass "{back}/own"'),
        "/star": loc(jw, "MCPAuthAllowedOrigins *", f'ProxyPass "{back}/star"'),
        "/scoped": loc(jw, f"MCPAuthAllowedOrigins {ALLOWED}", f'ProxyPass "{back}/scoped"',
                       require="Require mcp-scope mcp:tools"),
        # the operator's own CORS header for refusals
        "/hdr": loc(jw, f"MCPAuthAllowedOrigins {ALLOWED}", f'ProxyPass "{back}/hdr"',
                    f'Header always set Access-Control-Allow-Origin "{ALLOWED}"'),
        # the README's recipe for CORS on the backend's own answers
        "/recipe": loc(jw, f"MCPAuthAllowedOrigins {ALLOWED}", f'ProxyPass "{back}/recipe"', RECIPE),
        "/off": loc(jw, OFFLINE_LINE, f'ProxyPass "{back}/off"'),
        "/offonly": loc(jw, OFFLINE_ONLY_LINE, f'ProxyPass "{back}/offonly"'),
    }
    server_conf = "\n".join([
        f'LoadModule proxy_module "{m / "mod_proxy.so"}"',
        f'LoadModule proxy_http_module "{m / "mod_proxy_http.so"}"',
    ])
    h = httpd_factory.start(locations, server_conf=server_conf, module_so=mcp_auth_so, name="origin-meta")
    try:
        yield h
    finally:
        h.stop()


def preflight(origin, method="POST"):
    return [("Origin", origin), ("Access-Control-Request-Method", method),
            ("Access-Control-Request-Headers", "authorization, content-type, mcp-protocol-version")]


def vary(resp):
    return [v.strip().lower() for h in resp.header_all("Vary") for v in h.split(",")]


def own_origin(server):
    return f"http://127.0.0.1:{server.port}"


def tools_call(name="list_notes"):
    return json.dumps({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
                       "params": {"name": name, "arguments": {"note": MARKER.decode()}}}).encode()


def assert_origin_refused(resp):
    assert resp.status == 403, resp
    assert resp.header_all("WWW-Authenticate") == [], resp
    assert resp.header_all("Access-Control-Allow-Origin") == [], resp
    assert resp.json()["error_description"] == "Origin not allowed", resp


def request(server, method, path, headers=(), body=None):
    """Like server.request, but a Host header in headers replaces the
    default one (the harness's client always sends its own)."""
    headers = list(headers)
    if not any(k.lower() == "host" for k, _ in headers):
        return server.request(method, path, headers, body)
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=20)
    try:
        conn.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
        for name, value in headers:
            conn.putheader(name, value)
        if body is not None:
            conn.putheader("Content-Length", str(len(body)))
        conn.endheaders(body)
        resp = conn.getresponse()
        return Response(resp.status, resp.reason, list(resp.getheaders()), resp.read())
    finally:
        conn.close()


def post(server, path, headers, token=None, body=None):
    hdrs = list(headers) + [("Content-Type", "application/json")]
    if token:
        hdrs += bearer(token)
    return request(server, "POST", path, hdrs, tools_call() if body is None else body)


# ---------------------------------------------------------------------------
# Origin validation on the MCP endpoint
# ---------------------------------------------------------------------------

def test_allowed_origin_reaches_the_backend_with_its_body(server, backend, minter):
    token = minter.token(scope="mcp:tools")
    for origin in (ALLOWED, OTHER):
        conns, _ = backend.snapshot()
        resp = post(server, "/list", [("Origin", origin)], token)
        assert resp.status == 200, (origin, resp)
        got = resp.json()
        assert f"Origin: {origin}" in got["headers"], got
        assert MARKER.decode() in got["body"], got
        assert backend.snapshot()[0] == conns + 1


def test_disallowed_origin_post_never_reaches_the_backend(server, backend, minter):
    """A page on another origin POSTs a tool call with a valid token (DNS
    rebinding, or a browser that holds one): 403 before authentication, no
    challenge, and the backend sees no connection and no byte of the body."""
    token = minter.token(scope="mcp:tools notes:delete")
    conns, seen = backend.snapshot()
    for path in ("/list", "/own", "/scoped"):
        for origin in (EVIL, "http://app.example", "https://app.example:8443", "https://other.example",
                       "https://app.example.evil.example", "https://app.example.", "null"):
            assert_origin_refused(post(server, path, [("Origin", origin)], token))
            # without a token too: the Origin check comes before the 401
            assert_origin_refused(post(server, path, [("Origin", origin)]))
    time.sleep(0.3)
    conns2, seen2 = backend.snapshot()
    assert conns2 == conns, "a refused request reached the backend"
    assert MARKER not in seen2[len(seen):], "the body of a refused request reached the backend"
    # neighbour: the same request without Origin (a CLI, an agent) passes
    resp = post(server, "/list", [], token)
    assert resp.status == 200 and MARKER.decode() in resp.json()["body"], resp


def test_disallowed_origin_is_answered_without_reading_the_body(server, backend, minter):
    """Expect: 100-continue with a 10 MB body announced and never sent: the
    refusal comes at once (no 100 Continue, no wait for the body), bounded
    far below the 20 s the server would wait for a body it had asked for."""
    conns, _ = backend.snapshot()
    head = (f"POST /list HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\nOrigin: {EVIL}\r\n"
            f"Authorization: Bearer {minter.token(scope='mcp:tools')}\r\n"
            "Content-Type: application/json\r\nContent-Length: 10000000\r\nExpect: 100-continue\r\n\r\n")
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=20)
    try:
        t0 = time.monotonic()
        sock.sendall(head.encode())
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
        elapsed = time.monotonic() - t0
    finally:
        sock.close()
    assert data.startswith(b"HTTP/1.1 403"), data[:200]
    assert elapsed < 3, elapsed
    assert backend.snapshot()[0] == conns


def test_absent_origin_is_unaffected(server, minter):
    token = minter.token(scope="mcp:tools")
    for path in ("/list", "/own", "/star", "/scoped"):
        assert server.request("GET", path, bearer(token)).status == 200, path
        resp = server.request("GET", path)
        assert resp.status == 401, resp
        # no Origin, no CORS: nothing for a browser to read
        assert resp.header_all("Access-Control-Allow-Origin") == [], resp


def test_canonical_forms_of_an_allowed_origin(server, minter):
    token = minter.token(scope="mcp:tools")
    for origin in ("HTTPS://APP.EXAMPLE", "https://App.Example:443", "https://OTHER.example:8443"):
        assert server.request("GET", "/list", [("Origin", origin)] + bearer(token)).status == 200, origin
    own = own_origin(server)
    for origin in (own, own.upper()):
        assert server.request("GET", "/own", [("Origin", origin)] + bearer(token)).status == 200, origin


def test_two_origin_headers_are_refused(server, backend, minter):
    token = minter.token(scope="mcp:tools")
    conns, _ = backend.snapshot()
    for pair in ((ALLOWED, EVIL), (EVIL, ALLOWED), (ALLOWED, ALLOWED)):
        for path in ("/list", "/star"):
            resp = server.request("GET", path, [("Origin", pair[0]), ("Origin", pair[1])] + bearer(token))
            assert_origin_refused(resp)
    assert backend.snapshot()[0] == conns


def test_null_origin_only_under_star(server, minter):
    """`Origin: null` (sandboxed frames, file: pages) cannot be listed; only
    `MCPAuthAllowedOrigins *` lets it in, like any other page."""
    token = minter.token(scope="mcp:tools")
    for path in ("/list", "/own"):
        assert_origin_refused(server.request("GET", path, [("Origin", "null")] + bearer(token)))
    assert server.request("GET", "/star", [("Origin", "null")] + bearer(token)).status == 200
    assert server.request("GET", "/star", [("Origin", EVIL)] + bearer(token)).status == 200
    resp = server.request("OPTIONS", "/star", preflight("null"))
    assert resp.status == 204 and resp.header("Access-Control-Allow-Origin") == "null", resp
    # still not a free-for-all: what is not an origin at all stays out
    for junk in ("evil.example", "https://evil.example/path", "https://u:p@evil.example"):
        assert_origin_refused(server.request("GET", "/star", [("Origin", junk)] + bearer(token)))


def test_default_origin_comes_from_servername_never_from_host(server, backend, minter):
    """DNS rebinding: evil.example resolves to this server, so the browser's
    request carries Host: evil.example and Origin: http://evil.example. The
    resource's own origin is built from ServerName, so it is refused."""
    token = minter.token(scope="mcp:tools")
    conns, _ = backend.snapshot()
    for host in ("evil.example", f"evil.example:{server.port}", f"localhost:{server.port}"):
        origin = f"http://{host}"
        for extra in ([], [("X-Forwarded-Host", host), ("X-Forwarded-Proto", "http"),
                           ("Forwarded", f"host={host};proto=http")]):
            resp = post(server, "/own", [("Host", host), ("Origin", origin)] + extra, token)
            assert_origin_refused(resp)
            assert_origin_refused(request(server, "OPTIONS", "/own", [("Host", host)] + preflight(origin)))
    assert backend.snapshot()[0] == conns
    # neighbour: the configured origin, whatever the Host header says
    own = own_origin(server)
    resp = post(server, "/own", [("Host", "evil.example"), ("Origin", own)], token)
    assert resp.status == 200, resp


# ---------------------------------------------------------------------------
# Preflights
# ---------------------------------------------------------------------------

def test_preflight_from_an_allowed_origin_is_answered_never_forwarded(server, backend):
    conns, _ = backend.snapshot()
    for path, origin in (("/list", ALLOWED), ("/list", OTHER), ("/own", own_origin(server)),
                         ("/star", EVIL)):
        resp = server.request("OPTIONS", path, preflight(origin), tools_call())
        assert resp.status == 204, (path, resp)
        assert resp.header_all("Access-Control-Allow-Origin") == [origin], resp
        assert "origin" in vary(resp), resp
        assert "POST" in resp.header("Access-Control-Allow-Methods"), resp
        assert resp.header_all("WWW-Authenticate") == [] and resp.body == b"", resp
    time.sleep(0.3)
    conns2, seen = backend.snapshot()
    assert conns2 == conns, "a preflight reached the backend"


def test_preflight_from_a_disallowed_origin_is_refused(server, backend):
    conns, _ = backend.snapshot()
    for path, origin in (("/list", EVIL), ("/own", ALLOWED), ("/scoped", OTHER)):
        resp = server.request("OPTIONS", path, preflight(origin))
        assert_origin_refused(resp)
        assert resp.header("Access-Control-Allow-Methods") is None, resp
    assert backend.snapshot()[0] == conns


def test_preflight_allows_the_mcp_param_headers_asked_for(server, backend):
    """MCP 2026-07-28: a browser client mirrors x-mcp-header arguments into
    Mcp-Param-{Name} headers; the preflight must allow the names it asks
    for (only the backend knows the tools' schemas), and nothing else."""
    conns, _ = backend.snapshot()
    asked = ("authorization, content-type, mcp-protocol-version, mcp-method, mcp-name, "
             "mcp-param-region, Mcp-Param-Tenant_ID, x-evil, mcp-param-, mcp-param-a b, mcp-param-ok")
    resp = server.request("OPTIONS", "/list", [("Origin", ALLOWED), ("Access-Control-Request-Method", "POST"),
                                               ("Access-Control-Request-Headers", asked)])
    assert resp.status == 204, resp
    allow = [h.strip().lower() for h in resp.header("Access-Control-Allow-Headers").split(",")]
    for h in ("authorization", "content-type", "mcp-protocol-version", "mcp-method", "mcp-name",
              "mcp-param-region", "mcp-param-tenant_id", "mcp-param-ok"):
        assert h in allow, (h, allow)
    for h in ("x-evil", "mcp-param-", "mcp-param-a b", "mcp-param-a"):
        assert h not in allow, (h, allow)
    assert "access-control-request-headers" in vary(resp), resp
    # neighbour: a preflight asking for none keeps the fixed list
    resp = server.request("OPTIONS", "/list", preflight(ALLOWED))
    assert not [h for h in resp.header("Access-Control-Allow-Headers").lower().split(",")
                if "mcp-param-" in h], resp
    assert backend.snapshot()[0] == conns


def test_protocol_version_and_param_headers_are_forwarded_unchanged(server, minter):
    """MCP-Protocol-Version and Mcp-Param-* are the backend's to check (it
    knows the versions it speaks and the tools' schemas): they arrive exactly
    as sent, even an Mcp-Param value that disagrees with the body."""
    sent = [("MCP-Protocol-Version", "2026-07-28"), ("Mcp-Param-Region", "us-west1"),
            ("Mcp-Param-Greeting", "=?base64?SGVsbG8sIOS4lueVjA==?=")]
    body = json.dumps({"jsonrpc": "2.0", "id": 7, "method": "tools/call",
                       "params": {"name": "list_notes", "arguments": {"region": "eu-north1"}}}).encode()
    resp = post(server, "/list", sent, minter.token(scope="mcp:tools"), body)
    assert resp.status == 200, resp
    got = resp.json()
    for k, v in sent:
        assert f"{k}: {v}" in got["headers"], (k, got["headers"])
    assert got["body"].encode() == body


# ---------------------------------------------------------------------------
# CORS on the module's refusals: a browser client must read the challenge
# ---------------------------------------------------------------------------

def assert_cors_for(resp, origin):
    assert resp.header_all("Access-Control-Allow-Origin") == [origin], resp
    exposed = [v.strip().lower() for v in (resp.header("Access-Control-Expose-Headers") or "").split(",")]
    assert "www-authenticate" in exposed, resp
    assert "origin" in vary(resp), resp


def test_401_challenge_to_an_allowed_origin_is_readable(server, minter):
    resp = server.request("POST", "/list", [("Origin", ALLOWED), ("Content-Type", "application/json")],
                          tools_call())
    assert resp.status == 401 and "resource_metadata=" in resp.header("WWW-Authenticate"), resp
    assert_cors_for(resp, ALLOWED)
    # echoed as the browser sent it
    resp = server.request("GET", "/list", [("Origin", "https://App.Example:443")])
    assert resp.status == 401, resp
    assert_cors_for(resp, "https://App.Example:443")
    # an invalid token: the error is readable too
    resp = server.request("GET", "/list", [("Origin", ALLOWED)] + bearer(minter.token(exp=1)))
    assert resp.status == 401 and 'error="invalid_token"' in resp.header("WWW-Authenticate"), resp
    assert_cors_for(resp, ALLOWED)
    # the default list: the resource's own origin
    own = own_origin(server)
    resp = server.request("GET", "/own", [("Origin", own)])
    assert resp.status == 401, resp
    assert_cors_for(resp, own)
    # MCPAuthAllowedOrigins *: the origin is echoed like the preflight's
    resp = server.request("GET", "/star", [("Origin", EVIL)])
    assert resp.status == 401, resp
    assert_cors_for(resp, EVIL)


def test_403_step_up_to_an_allowed_origin_is_readable(server, minter):
    resp = server.request("GET", "/scoped", [("Origin", ALLOWED)] + bearer(minter.token(scope="notes:read")))
    assert resp.status == 403, resp
    assert 'error="insufficient_scope"' in resp.header("WWW-Authenticate"), resp
    assert_cors_for(resp, ALLOWED)
    # tool scope step-up after the body was read
    resp = post(server, "/list", [("Origin", ALLOWED)], minter.token(scope="mcp:tools"),
                tools_call("delete_notes"))
    assert resp.status == 403 and "notes:delete" in resp.header("WWW-Authenticate"), resp
    assert_cors_for(resp, ALLOWED)
    # neighbour: a granted request is the backend's answer, the module adds nothing
    resp = server.request("GET", "/scoped", [("Origin", ALLOWED)] + bearer(minter.token(scope="mcp:tools")))
    assert resp.status == 200, resp
    assert resp.header_all("Access-Control-Allow-Origin") == [], resp


def test_operator_header_always_wins_never_two_values(server, minter):
    resp = server.request("GET", "/hdr", [("Origin", ALLOWED)])
    assert resp.status == 401, resp
    assert resp.header_all("Access-Control-Allow-Origin") == [ALLOWED], resp
    resp = server.request("GET", "/hdr", [("Origin", ALLOWED)] + bearer(minter.token(exp=1)))
    assert resp.header_all("Access-Control-Allow-Origin") == [ALLOWED], resp


def test_readme_recipe_for_cors_on_the_backends_answers(server, minter):
    """The module leaves the backend's 200s alone; the README's mod_headers
    lines echo the Origin there -- safe, since only an allowed Origin gets
    that far -- and leave a refusal with the module's one value."""
    token = minter.token(scope="mcp:tools")
    resp = server.request("GET", "/recipe", [("Origin", ALLOWED)] + bearer(token))
    assert resp.status == 200, resp
    assert resp.header_all("Access-Control-Allow-Origin") == [ALLOWED], resp
    assert resp.header("Access-Control-Expose-Headers") == "Mcp-Session-Id", resp
    assert "origin" in vary(resp), resp
    resp = server.request("GET", "/recipe", bearer(token))
    assert resp.status == 200 and resp.header_all("Access-Control-Allow-Origin") == [], resp
    resp = server.request("GET", "/recipe", [("Origin", ALLOWED)])
    assert resp.status == 401, resp
    assert_cors_for(resp, ALLOWED)
    assert_origin_refused(server.request("GET", "/recipe", [("Origin", EVIL)] + bearer(token)))


# ---------------------------------------------------------------------------
# The metadata document's CORS
# ---------------------------------------------------------------------------

def test_metadata_echoes_an_allowed_origin_instead_of_star(server):
    for path, origin in ((f"{WK}/list", ALLOWED), (f"{WK}/list", OTHER), (f"{WK}/own", own_origin(server))):
        resp = server.get(path, headers=[("Origin", origin)])
        assert resp.status == 200 and resp.json()["resource"].endswith(path[len(WK):]), resp
        assert resp.header_all("Access-Control-Allow-Origin") == [origin], resp
        assert "origin" in vary(resp), resp
        resp = server.request("OPTIONS", path, [("Origin", origin), ("Access-Control-Request-Method", "GET")])
        assert resp.status == 204 and resp.body == b"", resp
        assert resp.header_all("Access-Control-Allow-Origin") == [origin], resp
        assert "GET" in resp.header("Access-Control-Allow-Methods"), resp
        assert "origin" in vary(resp), resp


def test_metadata_from_a_disallowed_origin_grants_no_cors(server):
    """The document is public (a CLI sending an Origin still gets it), but a
    page from an origin the location does not allow is not told it may read
    it: 200 without Access-Control-Allow-Origin, which the browser turns into
    a CORS error naming the missing header -- the same answer the MCP
    endpoint's 403 gives that page."""
    for path, origin in ((f"{WK}/list", EVIL), (f"{WK}/own", ALLOWED), (f"{WK}/list", "null")):
        resp = server.get(path, headers=[("Origin", origin)])
        assert resp.status == 200 and "authorization_servers" in resp.json(), resp
        assert resp.header_all("Access-Control-Allow-Origin") == [], resp
        assert "origin" in vary(resp), resp
        resp = server.request("OPTIONS", path, [("Origin", origin), ("Access-Control-Request-Method", "GET")])
        assert resp.status == 204, resp
        assert resp.header_all("Access-Control-Allow-Origin") == [], resp
    # no Origin at all: no grant either, and the cache key says why
    resp = server.get(f"{WK}/list")
    assert resp.status == 200 and resp.header_all("Access-Control-Allow-Origin") == [], resp
    assert "origin" in vary(resp), resp


def test_metadata_under_star_may_say_star(server):
    for hdrs in ([], [("Origin", EVIL)], [("Origin", "null")]):
        resp = server.get(f"{WK}/star", headers=hdrs)
        assert resp.status == 200, resp
        assert resp.header_all("Access-Control-Allow-Origin") == ["*"], resp


# ---------------------------------------------------------------------------
# The document comes from configuration only
# ---------------------------------------------------------------------------

def test_metadata_and_challenge_ignore_host_and_forwarded_headers(server):
    """A client (or a misconfigured proxy) choosing Host / X-Forwarded-* must
    not change the resource the document names, nor the challenge's URL:
    that string is the audience tokens are checked against."""
    want = server.get(f"{WK}/list")
    assert want.status == 200
    doc = want.json()
    assert doc["resource"] == f"{server.base_url}/list"
    challenge = server.get("/list").header("WWW-Authenticate")
    assert f'resource_metadata="{server.base_url}{WK}/list"' in challenge
    for hdrs in ([("Host", "evil.example")],
                 [("Host", "evil.example:8443"), ("X-Forwarded-Host", "evil.example"),
                  ("X-Forwarded-Proto", "https"), ("X-Forwarded-Port", "443")],
                 [("Forwarded", "for=1.2.3.4;host=evil.example;proto=https")],
                 [("X-Forwarded-Host", "evil.example"), ("X-Forwarded-Prefix", "/evil")]):
        resp = request(server, "GET", f"{WK}/list", hdrs)
        assert resp.status == 200, (hdrs, resp)
        assert resp.body == want.body, (hdrs, resp.body)
        assert request(server, "GET", "/list", hdrs).header("WWW-Authenticate") == challenge, hdrs


def test_scopes_supported_is_the_configured_basic_set(server):
    """Tool scopes are asked for by step-up, never advertised up front."""
    doc = server.get(f"{WK}/list").json()
    assert doc["scopes_supported"] == ["mcp:tools"], doc
    assert doc["authorization_servers"] == [ISSUER] and doc["bearer_methods_supported"] == ["header"], doc


# ---------------------------------------------------------------------------
# offline_access
# ---------------------------------------------------------------------------

def conf_line(server, text):
    lines = server.conf.read_text().splitlines()
    return [i + 1 for i, line in enumerate(lines) if line.strip() == text][0]


def test_offline_access_is_dropped_with_a_startup_warning(server):
    # the other scopes kept, in order; offline_access nowhere
    doc = server.get(f"{WK}/off").json()
    assert doc["scopes_supported"] == ["mcp:tools", "notes:read"], doc
    resp = server.get("/off")
    assert resp.status == 401, resp
    challenge = resp.header("WWW-Authenticate")
    assert 'scope="mcp:tools notes:read"' in challenge, challenge
    assert "offline_access" not in challenge
    # only offline_access configured: no scope at all, rather than a wrong one
    doc = server.get(f"{WK}/offonly").json()
    assert "scopes_supported" not in doc and "offline_access" not in json.dumps(doc), doc
    challenge = server.get("/offonly").header("WWW-Authenticate")
    assert "scope=" not in challenge and "offline_access" not in challenge, challenge
    # the operator learns why, in the error log, at the line to fix
    log = server.log_text()
    for text in (OFFLINE_LINE, OFFLINE_ONLY_LINE):
        where = f"{server.conf}:{conf_line(server, text)}"
        warning = [line for line in log.splitlines() if where in line]
        assert len(warning) == 1, (where, log[-3000:])
        assert "MCPAuthScopesSupported" in warning[0] and "offline_access" in warning[0], warning
        assert ":warn]" in warning[0], warning
