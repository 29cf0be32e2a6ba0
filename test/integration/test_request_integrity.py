# SPDX-License-Identifier: Apache-2.0
"""Request integrity (issue 10, items 5, 7, 9 and two of 12) against a real
httpd: what the backend gets is what the module decided on.

Two backends that report what they received:

* ``echo.cgi``: a CGI printing its method, HTTP_* variables, REMOTE_USER and
  the exact body bytes (as JSON);
* ``Backend``: a threaded HTTP/1.1 server behind mod_proxy answering with the
  method, the header lines and the body it got, and counting requests, so a
  test can also show that nothing reached it.

Each behaviour is tested as the attack that used to get through beside the
legitimate neighbour that must keep working:

* CORS preflights (SPEC section 3 step 2) are answered by the module, 204
  with the CORS headers, never forwarded, and only after host-based access
  control (``Require ip``, ``Require all denied``); every other OPTIONS is
  authenticated. ``MCPAuthAllowedOrigins``: a present, unlisted Origin is 403
  before anything else.
* ``MergeTrailers On``: trailers read while the module inspects the body can
  add no identity header and no second Authorization.
* ``ErrorDocument 401`` does not turn the 403 insufficient_scope step-up back
  into a 401; ``Require not mcp-scope X`` never names X as a needed scope.
* the kept body survives internal redirects (per-directory RewriteRule,
  FallbackResource) byte for byte and is checked again with its real bytes;
  a redirect within one configuration keeps the identity; a FallbackResource
  from an open front into a protected location gets that location's checks;
* ``MCPAuthForwardToken Off`` also holds for subrequests (an SSI include of
  a proxied location).
"""

import http.client
import json
import os
import socket
import threading

import pytest

from harness.servers import RawBackend
from harness.asserts import bearer, only_challenge as challenge
from harness.httpd import mcp_location
from conftest import APACHE_MODULES_DIR

ALLOWED = "https://app.example"
EVIL = "https://evil.example"

ECHO_CGI = r"""#!/usr/bin/python3
import json, os, sys
body = sys.stdin.buffer.read()
out = {
    "method": os.environ.get("REQUEST_METHOD"),
    "remote_user": os.environ.get("REMOTE_USER"),
    "who": os.environ.get("WHO"),
    "content_length": os.environ.get("CONTENT_LENGTH"),
    "headers": {k: v for k, v in os.environ.items() if k.startswith("HTTP_")},
    "body": body.decode("latin-1"),
    "script": "echo.cgi",
}
data = json.dumps(out).encode()
sys.stdout.buffer.write(b"Content-Type: application/json\r\n\r\n" + data)
sys.stdout.buffer.flush()
"""


# ---------------------------------------------------------------------------
# The proxied backend
# ---------------------------------------------------------------------------

class Backend(RawBackend):
    """Answers every request 200 with {"method", "path", "headers": [[k, v]],
    "body"} (latin-1), reading Content-Length and chunked bodies; counts
    requests."""

    def __init__(self):
        self.requests = []
        self._lock = threading.Lock()
        super().__init__("integrity-backend")

    @staticmethod
    def _read_until(conn, buf, marker):
        while marker not in buf:
            chunk = conn.recv(65536)
            if not chunk:
                raise OSError("closed")
            buf += chunk
        return buf

    def _handle(self, conn):
        try:
            conn.settimeout(10)
            data = self._read_until(conn, b"", b"\r\n\r\n")
            head, rest = data.split(b"\r\n\r\n", 1)
            lines = head.split(b"\r\n")
            method, path, _ = lines[0].decode("latin-1").split(" ", 2)
            headers = []
            for line in lines[1:]:
                name, _, value = line.partition(b":")
                headers.append([name.decode("latin-1"), value.strip(b" \t").decode("latin-1")])
            low = {k.lower(): v for k, v in headers}
            body = b""
            if "chunked" in low.get("transfer-encoding", "").lower():
                while True:
                    rest = self._read_until(conn, rest, b"\r\n")
                    size_line, rest = rest.split(b"\r\n", 1)
                    size = int(size_line.split(b";")[0], 16)
                    if size == 0:
                        rest = self._read_until(conn, rest, b"\r\n")
                        while not rest.startswith(b"\r\n"):  # trailer lines
                            rest = self._read_until(conn, rest, b"\r\n")
                            rest = rest.split(b"\r\n", 1)[1]
                            rest = self._read_until(conn, rest, b"\r\n")
                        break
                    while len(rest) < size + 2:
                        rest += conn.recv(65536)
                    body += rest[:size]
                    rest = rest[size + 2:]
            else:
                length = int(low.get("content-length", "0"))
                while len(rest) < length:
                    chunk = conn.recv(65536)
                    if not chunk:
                        break
                    rest += chunk
                body = rest[:length]
            with self._lock:
                self.requests.append((method, path))
            out = json.dumps({"method": method, "path": path, "headers": headers,
                              "body": body.decode("latin-1")}).encode()
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                         b"Content-Length: " + str(len(out)).encode() + b"\r\nConnection: close\r\n\r\n" + out)
        except (OSError, ValueError):
            pass
        finally:
            conn.close()

    def count(self, prefix):
        with self._lock:
            return sum(1 for _, p in self.requests if p.startswith(prefix))


def got_headers(doc, name):
    """Values of the header ``name`` as the proxied backend got it."""
    return [v for k, v in doc["headers"] if k.lower() == name.lower()]


# ---------------------------------------------------------------------------
# The server
# ---------------------------------------------------------------------------

def loc(jwks, *lines, require="Require valid-user"):
    """A protected section; require=None for ours that are <RequireAll> trees,
    which a top-level `Require valid-user` would turn into an implicit RequireAny."""
    return mcp_location(jwks_uri=jwks, lines=lines, require=require)


@pytest.fixture(scope="module")
def backend():
    b = Backend()
    try:
        yield b
    finally:
        b.stop()


@pytest.fixture(scope="module")
def files(tmp_root):
    """CGI, error documents, an SSI page and a directory for per-directory
    rewrites, outside the harness's per-instance root."""
    base = tmp_root / "integrity"
    cgi = base / "cgi"
    errors = base / "errors"
    ssi = base / "ssi"
    rw = base / "rw"
    rw2 = base / "rw2"
    rw3 = base / "rw3"
    for d in (base, cgi, errors, ssi, rw, rw2, rw3):
        d.mkdir(parents=True, exist_ok=True)
        os.chmod(d, 0o755)
    for d in (cgi, rw3):
        (d / "echo.cgi").write_text(ECHO_CGI)
        os.chmod(d / "echo.cgi", 0o755)
    (errors / "401.txt").write_text("ADMIN PAGE 401\n")
    (errors / "403.txt").write_text("ADMIN PAGE 403\n")
    (ssi / "page.shtml").write_text('<!--#include virtual="/sub/nofwd/x" -->\n=====\n'
                                    '<!--#include virtual="/sub/fwd/x" -->\n')
    (ssi / "one.shtml").write_text('<!--#include virtual="/sub/nofwd/x" -->\n')
    for d in (base, cgi, errors, ssi, rw, rw2, rw3):
        for p in d.iterdir():
            os.chmod(p, os.stat(p).st_mode | 0o444)
    return {"base": base, "cgi": cgi, "errors": errors, "ssi": ssi, "rw": rw, "rw2": rw2, "rw3": rw3}


TOOLS = "MCPAuthToolScope delete_notes notes:delete"
IDENTITY = "MCPAuthClaimHeader X-MCP-User $.sub"


@pytest.fixture(scope="module")
def server(httpd_factory, jwks_server, mcp_auth_so, backend, files):
    jw = jwks_server.jwks_uri
    back = f"http://127.0.0.1:{backend.port}"
    m = APACHE_MODULES_DIR
    locations = {
        # -- item 5: preflights and origins --
        "/pre": loc(jw, f"MCPAuthAllowedOrigins {ALLOWED} https://other.example:8443",
                    f'ProxyPass "{back}/pre"'),
        "/pre-denied": loc(jw, f"MCPAuthAllowedOrigins {ALLOWED}", f'ProxyPass "{back}/pre-denied"',
                           require="Require all denied"),
        "/pre-ip": loc(jw, f"MCPAuthAllowedOrigins {ALLOWED}", f'ProxyPass "{back}/pre-ip"',
                       require="<RequireAll>\nRequire ip 192.0.2.1\nRequire valid-user\n</RequireAll>"),
        "/pre-ip-ok": loc(jw, f"MCPAuthAllowedOrigins {ALLOWED}", f'ProxyPass "{back}/pre-ip-ok"',
                          require="<RequireAll>\nRequire ip 127.0.0.1\nRequire valid-user\n</RequireAll>"),
        "/pre-open": loc(jw, f"MCPAuthAllowedOrigins {ALLOWED}", f'ProxyPass "{back}/pre-open"',
                         require="Require all granted"),
        "/pre-own": loc(jw, "MCPAuthResource https://mcp.example.test/pre-own", f'ProxyPass "{back}/pre-own"'),
        "/pre-star": loc(jw, "MCPAuthAllowedOrigins *", "MCPAuthTokenHeader X-MCP-Token",
                         f'ProxyPass "{back}/pre-star"'),
        # -- item 7: trailers (the body is read for the tool scopes) --
        "/trl-px": loc(jw, TOOLS, IDENTITY, f'ProxyPass "{back}/trl-px"'),
        "/trl-cgi": loc(jw, TOOLS, IDENTITY),
        # -- item 9: step-up under ErrorDocument, negated rules --
        "/step": loc(jw, "ErrorDocument 401 /errors/401.txt", "ErrorDocument 403 /errors/403.txt",
                     require="Require mcp-scope mcp:tools"),
        "/step-forbid": loc(jw, "ErrorDocument 401 /errors/401.txt", "ErrorDocument 403 /errors/403.txt",
                            "AuthzSendForbiddenOnFailure On", require="Require mcp-scope mcp:tools"),
        "/step-denied": loc(jw, "ErrorDocument 403 /errors/403.txt", require="Require all denied"),
        # negated rules first: <RequireAll> stops at the first refusal, and
        # the negated rule must have been evaluated for the test to mean anything
        "/neg": loc(jw, require="<RequireAll>\nRequire not mcp-scope b\nRequire mcp-scope a\n"
                                "Require mcp-claim $.tier gold\n</RequireAll>"),
        "/neg-none": loc(jw, require="<RequireAll>\n<RequireNone>\n"
                                     "Require mcp-scope b\nRequire mcp-claim $.tier banned\n"
                                     "</RequireNone>\nRequire mcp-scope a\n</RequireAll>"),
        "/neg-forbid": loc(jw, "AuthzSendForbiddenOnFailure On",
                           require="<RequireAll>\nRequire not mcp-scope b\nRequire mcp-scope a\n</RequireAll>"),
        # -- item 12: subrequests --
        "/sub/nofwd": loc(jw, "MCPAuthForwardToken Off", "MCPAuthTokenHeader X-MCP-Token",
                          f'ProxyPass "{back}/sub/nofwd"'),
        "/sub/fwd": loc(jw, f'ProxyPass "{back}/sub/fwd"'),
        # the redirect target of /rw2, protected with a tool rule of its own
        "/cgi-prot": loc(jw, "MCPAuthToolScope target_only target:run", IDENTITY),
    }
    cgi = files["cgi"]
    server_conf = "\n".join([
        f'LoadModule proxy_module "{m / "mod_proxy.so"}"',
        f'LoadModule proxy_http_module "{m / "mod_proxy_http.so"}"',
        f'LoadModule authz_host_module "{m / "mod_authz_host.so"}"',
        f'LoadModule rewrite_module "{m / "mod_rewrite.so"}"',
        f'LoadModule dir_module "{m / "mod_dir.so"}"',
        f'LoadModule include_module "{m / "mod_include.so"}"',
        "MergeTrailers On",
        # before the harness's ScriptAliasMatch lines
        f'ScriptAliasMatch "^/trl-cgi(/.*)?$" "{cgi}/echo.cgi"',
        f'ScriptAliasMatch "^/cgi-prot(/.*)?$" "{cgi}/echo.cgi"',
        f'ScriptAlias /cgi-echo/ "{cgi}/"',
        f'<Directory "{cgi}">\n  Options +ExecCGI\n  Require all granted\n</Directory>',
        f'Alias /errors "{files["errors"]}"',
        f'<Directory "{files["errors"]}">\n  Require all granted\n</Directory>',
        f'Alias /ssi "{files["ssi"]}"',
        f'<Directory "{files["ssi"]}">\n  Options +Includes\n  AddOutputFilter INCLUDES .shtml\n'
        f'  Require all granted\n</Directory>',
        # per-directory rewrites: an internal redirect after the body was read
        f'Alias /rw "{files["rw"]}"',
        f'<Directory "{files["rw"]}">\n{loc(jw, TOOLS)}\n  RewriteEngine On\n'
        f'  RewriteRule ^ /cgi-echo/echo.cgi [L]\n</Directory>',
        # a redirect inside one directory: the same configuration, so httpd
        # skips authentication for the redirected request
        f'Alias /rw3 "{files["rw3"]}"',
        f'<Directory "{files["rw3"]}">\n{loc(jw, TOOLS, IDENTITY, "MCPAuthClaimEnv who $.sub")}\n'
        f'  Options +ExecCGI\n  AddHandler cgi-script .cgi\n  RewriteEngine On\n  RewriteBase /rw3/\n'
        f'  RewriteRule ^mcp$ echo.cgi [L]\n</Directory>',
        # not in the harness's list: it would ScriptAlias /fb to its own CGI
        f'<Location "/fb">\n{loc(jw, TOOLS, "FallbackResource /cgi-echo/echo.cgi")}\n</Location>',
        # an open front whose fallback is the protected /cgi-prot
        '<Location "/fbopen">\n  Require all granted\n  FallbackResource /cgi-prot/x\n</Location>',
        f'Alias /rw2 "{files["rw2"]}"',
        f'<Directory "{files["rw2"]}">\n{loc(jw, TOOLS)}\n  RewriteEngine On\n'
        f'  RewriteRule ^ /cgi-prot/x [L]\n</Directory>',
    ])
    h = httpd_factory.start(locations, server_conf=server_conf, module_so=mcp_auth_so, name="integrity")
    try:
        yield h
    finally:
        h.stop()


def preflight(origin=ALLOWED, method="POST"):
    return [("Origin", origin), ("Access-Control-Request-Method", method),
            ("Access-Control-Request-Headers", "authorization, content-type, mcp-session-id")]


def tool_call(name, rid=1):
    return json.dumps({"jsonrpc": "2.0", "id": rid, "method": "tools/call",
                       "params": {"name": name, "arguments": {}}}).encode()


def raw_request(port, head: bytes, body_parts=(), timeout=20):
    """Sends head + body parts on one socket, returns (status, headers dict, body)."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    try:
        sock.sendall(head)
        for part in body_parts:
            sock.sendall(part)
        resp = http.client.HTTPResponse(sock)
        resp.begin()
        data = resp.read()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, data
    finally:
        sock.close()


def chunked_post(server, path, token, body: bytes, trailers, extra_headers=()):
    head = (f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\n"
            f"Authorization: Bearer {token}\r\nContent-Type: application/json\r\n"
            "Transfer-Encoding: chunked\r\nConnection: close\r\n").encode()
    for k, v in extra_headers:
        head += f"{k}: {v}\r\n".encode()
    head += b"\r\n"
    half = len(body) // 2
    chunks = [body[:half], body[half:]]
    wire = b"".join(f"{len(c):x}\r\n".encode() + c + b"\r\n" for c in chunks if c)
    wire += b"0\r\n" + b"".join(f"{k}: {v}\r\n".encode() for k, v in trailers) + b"\r\n"
    return raw_request(server.port, head, [wire])


def assert_cors_preflight(resp, origin):
    assert resp.status == 204, resp
    assert resp.header("Access-Control-Allow-Origin") == origin, resp
    assert resp.header("Access-Control-Allow-Methods") == "GET, POST, DELETE", resp
    allow = [h.strip() for h in resp.header("Access-Control-Allow-Headers").split(",")]
    for h in ("Authorization", "Content-Type", "Mcp-Session-Id", "Mcp-Protocol-Version", "Mcp-Method",
              "Mcp-Name", "Last-Event-ID"):
        assert h in allow, resp
    assert resp.header("Access-Control-Expose-Headers") == "WWW-Authenticate, Mcp-Session-Id", resp
    assert int(resp.header("Access-Control-Max-Age")) > 0, resp
    assert "Origin" in [v.strip() for v in (resp.header("Vary") or "").split(",")], resp
    assert resp.header_all("WWW-Authenticate") == [], resp
    assert resp.body == b"", resp


# ---------------------------------------------------------------------------
# item 5: preflights are answered here, every other OPTIONS is authenticated
# ---------------------------------------------------------------------------

def test_preflight_is_answered_by_the_module_never_forwarded(server, backend):
    before = backend.count("/pre")
    resp = server.request("OPTIONS", "/pre", preflight(), b'{"jsonrpc":"2.0","id":1,"method":"tools/list"}')
    assert_cors_preflight(resp, ALLOWED)
    # a second listed origin, with its non-default port, is echoed as sent
    resp = server.request("OPTIONS", "/pre", preflight("https://other.example:8443", "DELETE"))
    assert_cors_preflight(resp, "https://other.example:8443")
    assert backend.count("/pre") == before, "a preflight reached the backend"


def test_options_without_cors_headers_is_authenticated(server, backend):
    """The old hole: any token-less OPTIONS went to the backend, body and all."""
    before = backend.count("/pre")
    for hdrs in ([], [("Origin", ALLOWED)], [("Access-Control-Request-Method", "POST")]):
        resp = server.request("OPTIONS", "/pre", hdrs, b'{"jsonrpc":"2.0","id":1,"method":"tools/list"}')
        assert resp.status == 401, (hdrs, resp)
        assert resp.header("WWW-Authenticate").startswith("Bearer "), resp
        # not answered as a preflight; the challenge itself is readable by
        # an allowed origin (issue 11: CORS on challenges), by no other
        assert resp.header("Access-Control-Allow-Methods") is None, resp
        assert resp.header("Access-Control-Allow-Origin") == (ALLOWED if ("Origin", ALLOWED) in hdrs else None), resp
    assert backend.count("/pre") == before


def test_options_with_a_token_is_a_request_like_any(server, backend, minter):
    resp = server.request("OPTIONS", "/pre", bearer(minter.token()))
    assert resp.status == 200, resp
    assert resp.json()["method"] == "OPTIONS"
    # a "preflight" carrying credentials is no preflight: authenticated, and refused when bad
    resp = server.request("OPTIONS", "/pre", preflight() + bearer(minter.token(exp=1)))
    assert resp.status == 401, resp
    assert 'error="invalid_token"' in resp.header("WWW-Authenticate"), resp
    # the same through the location's token header
    resp = server.request("OPTIONS", "/pre-star", preflight() + [("X-MCP-Token", minter.token(exp=1))])
    assert resp.status == 401, resp


def test_preflight_to_require_all_denied_stays_closed(server, backend):
    resp = server.request("OPTIONS", "/pre-denied", preflight())
    assert resp.status == 403, resp
    assert resp.header("Access-Control-Allow-Origin") is None, resp
    assert backend.count("/pre-denied") == 0


def test_preflight_from_a_refused_address_stays_closed(server, backend, minter):
    resp = server.request("OPTIONS", "/pre-ip", preflight())
    assert resp.status == 403, resp
    assert resp.header("Access-Control-Allow-Origin") is None, resp
    # not even a valid token gets in from here
    assert server.request("GET", "/pre-ip", bearer(minter.token())).status == 403
    assert backend.count("/pre-ip") == 0
    # neighbour: the address is allowed, the preflight is answered
    assert_cors_preflight(server.request("OPTIONS", "/pre-ip-ok", preflight()), ALLOWED)
    assert backend.count("/pre-ip-ok") == 0
    assert server.request("GET", "/pre-ip-ok", bearer(minter.token())).status == 200


def test_preflight_to_an_open_location_is_answered_too(server, backend):
    """Require all granted: mod_authz_core lets everything through without a
    user, yet the preflight is still the module's to answer."""
    assert_cors_preflight(server.request("OPTIONS", "/pre-open", preflight()), ALLOWED)
    assert backend.count("/pre-open") == 0
    assert server.request("GET", "/pre-open").status == 200
    assert backend.count("/pre-open") == 1


def test_unlisted_origin_is_refused_before_anything_else(server, backend, minter):
    before = backend.count("/pre")
    token = minter.token()
    for origin in (EVIL, "null", "https://app.example.evil.example", "http://app.example", f"{ALLOWED}/path",
                   f"{ALLOWED}, {EVIL}"):
        resp = server.request("POST", "/pre", [("Origin", origin), ("Content-Type", "application/json")]
                              + bearer(token), b"{}")
        assert resp.status == 403, (origin, resp)
        assert resp.header_all("WWW-Authenticate") == [], resp
        assert resp.header("Access-Control-Allow-Origin") is None, resp
        assert resp.json()["error_description"] == "Origin not allowed", resp
        # preflights too, and no token needed to be refused
        resp = server.request("OPTIONS", "/pre", preflight(origin))
        assert resp.status == 403, (origin, resp)
        assert resp.header("Access-Control-Allow-Origin") is None, resp
    # two Origin headers: the second one is not taken on trust
    resp = server.request("GET", "/pre", [("Origin", ALLOWED), ("Origin", EVIL)] + bearer(token))
    assert resp.status == 403, resp
    assert backend.count("/pre") == before
    # neighbours: a listed origin (any case, default port spelled out) and no Origin at all
    for hdrs in ([("Origin", ALLOWED)], [("Origin", "HTTPS://App.Example:443")], []):
        resp = server.request("GET", "/pre", hdrs + bearer(token))
        assert resp.status == 200, (hdrs, resp)
    # an unlisted origin without a token is 403, not 401: the origin check comes first
    resp = server.request("GET", "/pre", [("Origin", EVIL)])
    assert resp.status == 403 and not resp.header_all("WWW-Authenticate"), resp


def test_default_allowed_origin_is_the_resource_own(server, backend, minter):
    own = "https://mcp.example.test"
    assert_cors_preflight(server.request("OPTIONS", "/pre-own", preflight(own)), own)
    assert server.request("GET", "/pre-own", [("Origin", own)] + bearer(minter.token())).status == 200
    for origin in (ALLOWED, "http://mcp.example.test", "https://mcp.example.test:8443",
                   f"http://127.0.0.1:{server.port}"):
        assert server.request("OPTIONS", "/pre-own", preflight(origin)).status == 403, origin
        assert server.request("GET", "/pre-own", [("Origin", origin)] + bearer(minter.token())).status == 403
    assert backend.count("/pre-own") == 1


def test_allowed_origins_star(server, minter):
    resp = server.request("OPTIONS", "/pre-star", preflight(EVIL))
    assert_cors_preflight(resp, EVIL)
    # the location's own token header is one a browser may send
    assert "X-MCP-Token" in resp.header("Access-Control-Allow-Headers")
    assert server.request("GET", "/pre-star", [("Origin", EVIL)] + bearer(minter.token())).status == 200


# ---------------------------------------------------------------------------
# item 7: chunked trailers under MergeTrailers On
# ---------------------------------------------------------------------------

def test_trailer_cannot_set_identity_header_behind_proxy(server, minter):
    token = minter.token(sub="alice", scope="mcp:tools")
    body = tool_call("list_notes")
    status, _, data = chunked_post(server, "/trl-px", token, body,
                                   [("X-MCP-User", "admin"), ("x_mcp_user", "admin"),
                                    ("Authorization", "Bearer forged")])
    assert status == 200, data
    doc = json.loads(data)
    assert doc["body"].encode("latin-1") == body
    assert got_headers(doc, "X-MCP-User") == ["alice"], doc["headers"]
    assert [k for k, _ in doc["headers"] if k.lower().replace("_", "-") == "x-mcp-user"] == ["X-MCP-User"]
    # the token the module verified is the only one the backend sees
    assert got_headers(doc, "Authorization") == [f"Bearer {token}"], doc["headers"]


def test_trailer_cannot_set_identity_header_for_cgi(server, minter):
    token = minter.token(sub="alice", scope="mcp:tools")
    body = tool_call("list_notes")
    status, _, data = chunked_post(server, "/trl-cgi", token, body,
                                   [("X-MCP-User", "admin"), ("X-MCP-USER", "root")])
    assert status == 200, data
    doc = json.loads(data)
    assert doc["headers"].get("HTTP_X_MCP_USER") == "alice", doc
    assert doc["body"].encode("latin-1") == body
    assert doc["remote_user"] == "alice"


def test_trailers_do_not_get_around_tool_scopes_and_harmless_ones_pass(server, minter):
    token = minter.token(sub="alice", scope="mcp:tools")
    # the tool check still sees the body of a chunked request with trailers
    status, _, data = chunked_post(server, "/trl-px", token, tool_call("delete_notes"), [("X-Note", "1")])
    assert status == 403, data
    # neighbour: an ordinary trailer, the body reaches the backend unchanged
    body = tool_call("list_notes") + b" " * 3000
    status, _, data = chunked_post(server, "/trl-px", token, body, [("X-Checksum", "abc")])
    assert status == 200, data
    doc = json.loads(data)
    assert doc["body"].encode("latin-1") == body
    assert got_headers(doc, "X-MCP-User") == ["alice"]


# ---------------------------------------------------------------------------
# item 9: step-up under ErrorDocument 401, negated rules
# ---------------------------------------------------------------------------

def assert_step_up(resp, scope):
    assert resp.status == 403, resp
    c = challenge(resp)
    assert 'error="insufficient_scope"' in c, c
    assert f'scope="{scope}"' in c, c
    assert resp.header("Content-Type").startswith("application/json"), resp
    assert resp.json()["error"] == "insufficient_scope", resp
    assert b"ADMIN PAGE" not in resp.body, resp


def test_error_document_401_keeps_the_403_step_up(server, minter):
    resp = server.get("/step", minter.token(scope="notes:read"))
    assert_step_up(resp, "notes:read mcp:tools")
    # AuthzSendForbiddenOnFailure On: the same answer, not the admin's 403 page
    resp = server.get("/step-forbid", minter.token(scope="notes:read"))
    assert_step_up(resp, "notes:read mcp:tools")


def test_error_documents_still_serve_what_is_not_a_token_decision(server, minter):
    # no token: the module's 401 challenge and JSON, as everywhere
    resp = server.get("/step")
    assert resp.status == 401, resp
    assert 'error=' not in challenge(resp) and resp.header("Content-Type").startswith("application/json")
    # a valid token with the scope: through
    assert server.get("/step", minter.token(scope="mcp:tools")).status == 200
    # httpd's own 403 (Require all denied) keeps the administrator's page
    resp = server.get("/step-denied", minter.token(scope="mcp:tools"))
    assert resp.status == 403, resp
    assert b"ADMIN PAGE 403" in resp.body, resp
    assert resp.header_all("WWW-Authenticate") == [], resp


def test_require_not_scope_is_never_asked_for(server, minter):
    # lacks a (and b): only a is asked for
    assert_step_up(server.get("/neg", minter.token(scope="c", tier="gold")), "c a")
    assert_step_up(server.get("/neg", minter.token(scope="", tier="gold")), "a")
    # has a, claim fails: nothing to ask for beyond what it has
    assert_step_up(server.get("/neg", minter.token(scope="a", tier="silver")), "a")
    # has the forbidden b: refused, and b is not "needed" either
    resp = server.get("/neg", minter.token(scope="a b", tier="gold"))
    assert resp.status == 403, resp
    assert 'scope="a b"' in challenge(resp), resp
    # neighbour: a, no b, gold
    assert server.get("/neg", minter.token(scope="a", tier="gold")).status == 200


def test_require_none_scope_is_never_asked_for(server, minter):
    assert_step_up(server.get("/neg-none", minter.token(scope="c")), "c a")
    resp = server.get("/neg-none", minter.token(scope="a b"))
    assert resp.status == 403 and 'scope="a b"' in challenge(resp), resp
    resp = server.get("/neg-none", minter.token(scope="a", tier="banned"))
    assert resp.status == 403, resp
    assert server.get("/neg-none", minter.token(scope="a")).status == 200


def test_require_not_under_forbidden_on_failure(server, minter):
    assert_step_up(server.get("/neg-forbid", minter.token(scope="c")), "c a")
    # refused by the negated rule: still the module's 403 with a challenge
    resp = server.get("/neg-forbid", minter.token(scope="a b"))
    assert resp.status == 403 and 'error="insufficient_scope"' in challenge(resp), resp
    assert server.get("/neg-forbid", minter.token(scope="a")).status == 200


# ---------------------------------------------------------------------------
# item 12: the kept body across internal redirects; subrequests
# ---------------------------------------------------------------------------

def post(server, path, token, body, headers=()):
    return server.request("POST", path, [("Content-Type", "application/json")] + bearer(token) + list(headers),
                          body)


@pytest.mark.slow
def test_rewrite_in_directory_gets_the_exact_body(server, minter):
    token = minter.token(scope="mcp:tools")
    body = tool_call("list_notes") + b"  \n"
    resp = post(server, "/rw/mcp", token, body)
    assert resp.status == 200, resp
    doc = resp.json()
    assert doc["script"] == "echo.cgi" and doc["method"] == "POST", doc
    assert doc["body"].encode("latin-1") == body, doc
    # chunked, bigger than one read
    big = json.dumps({"jsonrpc": "2.0", "id": 7, "method": "tools/call",
                      "params": {"name": "list_notes", "arguments": {"pad": "x" * 20000}}}).encode()
    status, _, data = chunked_post(server, "/rw/mcp", token, big, [])
    assert status == 200, data
    assert json.loads(data)["body"].encode("latin-1") == big
    # the check at the first request still holds
    assert post(server, "/rw/mcp", token, tool_call("delete_notes")).status == 403


def test_redirect_target_checks_the_real_body(server, minter):
    """/rw2 redirects to /cgi-prot, whose own tool rule must see the body the
    first request read -- not an empty second read of the connection."""
    body = tool_call("target_only")
    resp = post(server, "/rw2/mcp", minter.token(scope="mcp:tools"), body)
    assert resp.status == 403, resp
    assert 'scope="mcp:tools target:run"' in challenge(resp), resp
    resp = post(server, "/rw2/mcp", minter.token(scope="mcp:tools target:run"), body)
    assert resp.status == 200, resp
    assert resp.json()["body"].encode("latin-1") == body


def test_redirect_within_one_configuration_keeps_body_and_identity(server, minter):
    token = minter.token(sub="alice", scope="mcp:tools")
    body = tool_call("list_notes")
    resp = post(server, "/rw3/mcp", token, body, headers=[("X-MCP-User", "admin")])
    assert resp.status == 200, resp
    doc = resp.json()
    assert doc["script"] == "echo.cgi" and doc["body"].encode("latin-1") == body, doc
    assert doc["remote_user"] == "alice", doc
    assert doc["headers"].get("HTTP_X_MCP_USER") == "alice", doc
    assert doc["who"] == "alice", doc
    assert post(server, "/rw3/mcp", token, tool_call("delete_notes")).status == 403


def test_fallback_resource_gets_the_exact_body(server, minter):
    token = minter.token(scope="mcp:tools")
    body = tool_call("list_notes")
    resp = post(server, "/fb/anything", token, body)
    assert resp.status == 200, resp
    doc = resp.json()
    assert doc["script"] == "echo.cgi" and doc["body"].encode("latin-1") == body, doc
    assert post(server, "/fb/anything", token, tool_call("delete_notes")).status == 403


def ssi_parts(resp):
    assert resp.status == 200, resp
    nofwd, fwd = resp.text.split("=====")
    return json.loads(nofwd), json.loads(fwd)


def test_forward_token_off_holds_for_subrequests(server, backend, minter):
    token = minter.token()
    resp = server.request("GET", "/ssi/page.shtml", bearer(token))
    nofwd, fwd = ssi_parts(resp)
    assert nofwd["path"].startswith("/sub/nofwd"), nofwd
    assert got_headers(nofwd, "Authorization") == [], nofwd["headers"]
    # the location's own token header too
    resp = server.request("GET", "/ssi/one.shtml", [("X-MCP-Token", token)])
    assert resp.status == 200, resp
    doc = json.loads(resp.text)
    assert doc["path"].startswith("/sub/nofwd") and got_headers(doc, "X-MCP-Token") == [], doc
    # neighbour: MCPAuthForwardToken On (default) passes it through
    assert got_headers(fwd, "Authorization") == [f"Bearer {token}"], fwd["headers"]
    # and the main request path is unchanged
    resp = server.get("/sub/nofwd/y", token)
    assert resp.status == 200 and got_headers(resp.json(), "Authorization") == [], resp


def test_fallback_into_a_protected_location_is_checked_there(server, minter):
    """mod_dir merges the protected target into the open front request after
    our fixups ran for it (ap_internal_fast_redirect): the target's rules
    must still apply to that request -- tool scope, identity, the body."""
    body = tool_call("target_only")
    resp = post(server, "/fbopen/x", minter.token(scope="mcp:tools"), body)
    assert resp.status == 403, resp
    resp = post(server, "/fbopen/x", minter.token(scope="mcp:tools target:run"), body,
                headers=[("X-MCP-User", "admin")])
    assert resp.status == 200, resp
    doc = resp.json()
    assert doc["body"].encode("latin-1") == body and doc["remote_user"] == "alice", doc
    assert doc["headers"].get("HTTP_X_MCP_USER") == "alice", doc
    assert server.request("POST", "/fbopen/x", [], body).status == 401


# ---------------------------------------------------------------------------
# MCPAuthAllowedOrigins at configtest
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("value", ["app.example", "https://app.example/", "https://app.example/mcp",
                                   "https://user@app.example", "https://app.example?x=1", "* https://app.example",
                                   "https://app.example *"])
@pytest.mark.slow
def test_allowed_origins_refuses_what_is_not_an_origin(tmp_path, mcp_auth_so, value):
    from test_config import configtest, location
    r = configtest(tmp_path, mcp_auth_so, location("MCPAuthIssuer https://idp.example",
                                                   f"MCPAuthAllowedOrigins {value}"))
    assert r.returncode != 0, r
    assert "MCPAuthAllowedOrigins" in r.stderr, r.stderr


def test_allowed_origins_accepts_origins(tmp_path, mcp_auth_so):
    from test_config import configtest, location
    r = configtest(tmp_path, mcp_auth_so, location("MCPAuthIssuer https://idp.example",
                                                   "MCPAuthAllowedOrigins https://a.example http://b.example:8080",
                                                   "MCPAuthAllowedOrigins https://[::1]:8443"))
    assert r.returncode == 0, r.stderr
