# SPDX-License-Identifier: Apache-2.0
"""Discovery downgrade (SPEC 7, issue 10 item 8).

An https issuer's discovery document that names an ``http://`` jwks_uri or
introspection_endpoint is refused: ``Discovery failed: insecure <field>`` in
the log, nothing is fetched in clear text (a counting plain-HTTP server sees
no request, so neither keys nor the client secret travel in clear), and the
request gets 503.  The neighbours with https URLs in the same kind of
document still work.
"""

import json
import secrets
import threading

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from harness.servers import QuietHandler, ThreadedServer
from conftest import AUDIENCE, HTTPSServer, Minter, SigningKey


class CountingHTTP:
    """Plain-HTTP server that counts every request and answers like an IdP would."""

    def __init__(self, jwks):
        owner = self
        self.count = 0
        self.lock = threading.Lock()

        class H(QuietHandler):
            protocol_version = "HTTP/1.0"  # a connection per request
            timeout = None

            def _any(self):
                with owner.lock:
                    owner.count += 1
                n = int(self.headers.get("Content-Length") or 0)
                if n:
                    self.rfile.read(n)
                body = json.dumps(jwks if self.path.startswith("/jwks")
                                  else {"active": True, "sub": "cleartext"}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = _any

        self.httpd = ThreadedServer(self, H, poll_interval=0.5, name="counting-http")
        self.port = self.httpd.port

    def url(self, path):
        return f"http://127.0.0.1:{self.port}{path}"

    def stop(self):
        self.httpd.stop()


@pytest.fixture(scope="module")
def rig(tls, httpd_factory, mcp_auth_so):
    key = SigningKey("ES256", f"dg-{secrets.token_hex(4)}", ec.generate_private_key(ec.SECP256R1()))
    jwks = {"keys": [key.jwk]}
    idp = HTTPSServer(tls, answer_post=True)
    clear = CountingHTTP(jwks)
    iss = {name: idp.url(f"/{name}") for name in ("jwks-http", "jwks-https", "intro-http", "intro-https")}
    docs = {
        "jwks-http": {"jwks_uri": clear.url("/jwks")},
        "jwks-https": {"jwks_uri": idp.url("/jwks")},
        "intro-http": {"jwks_uri": idp.url("/jwks"), "introspection_endpoint": clear.url("/introspect")},
        "intro-https": {"jwks_uri": idp.url("/jwks"), "introspection_endpoint": idp.url("/introspect")},
    }
    for name, doc in docs.items():
        idp.set(f"/{name}/.well-known/openid-configuration", {"issuer": iss[name], **doc})
    idp.set("/jwks", jwks)
    idp.set("/introspect", {"active": True, "sub": "intro-user"})

    def loc(name, extra=""):
        lines = ["AuthType mcp-jwt", 'AuthName "mcp"', f"MCPAuthIssuer {iss[name]}", f"MCPAuthAudience {AUDIENCE}"]
        if extra:
            lines.append(extra)
        return "\n".join(lines + ["Require valid-user"])

    intro = "MCPAuthIntrospection discover client_id=rs client_secret=dg-secret-never-in-clear"
    h = httpd_factory.start({
        "/jwks-http": loc("jwks-http"),
        "/jwks-https": loc("jwks-https"),
        "/intro-http": loc("intro-http", intro),
        "/intro-https": loc("intro-https", intro),
    }, server_conf="MCPAuthHTTPTimeout 3\nMCPAuthJWKSRefreshCooldown 1", module_so=mcp_auth_so, name="downgrade")

    class Rig:
        pass

    r = Rig()
    r.h, r.idp, r.clear, r.key, r.iss = h, idp, clear, key, iss
    try:
        yield r
    finally:
        h.stop()
        clear.stop()
        idp.stop()


def test_http_jwks_uri_in_https_discovery_is_refused(rig):
    m = Minter(None, issuer=rig.iss["jwks-http"])
    mark = rig.h.log_offset()
    for _ in range(3):
        resp = rig.h.get("/jwks-http", m.token("ES256", key=rig.key))
        assert resp.status == 503, resp
    log = rig.h.wait_for_log("Discovery failed: insecure jwks_uri", since=mark)
    assert "Discovery failed: insecure jwks_uri" in log, log[-2000:]
    assert rig.iss["jwks-http"] in log, log[-2000:]
    assert rig.clear.count == 0, "keys were fetched in clear text"


def test_https_jwks_uri_in_https_discovery_is_followed(rig):
    m = Minter(None, issuer=rig.iss["jwks-https"])
    resp = rig.h.get("/jwks-https", m.token("ES256", key=rig.key))
    assert resp.status == 200, resp
    assert resp.cgi_env().get("REMOTE_USER") == "alice", resp


def test_http_introspection_endpoint_in_https_discovery_is_refused(rig):
    mark = rig.h.log_offset()
    before = rig.clear.count
    resp = rig.h.get("/intro-http", f"opq{secrets.token_urlsafe(24)}")
    assert resp.status == 503, resp
    log = rig.h.wait_for_log("Discovery failed: insecure introspection_endpoint", since=mark)
    assert "Discovery failed: insecure introspection_endpoint" in log, log[-2000:]
    assert rig.iss["intro-http"] in log, log[-2000:]
    assert "dg-secret-never-in-clear" not in log
    assert rig.clear.count == before == 0, "the client secret went out in clear text"
    # JWTs of the same issuer are unaffected (their jwks_uri is https).
    m = Minter(None, issuer=rig.iss["intro-http"])
    assert rig.h.get("/intro-http", m.token("ES256", key=rig.key)).status == 200


def test_https_introspection_endpoint_in_https_discovery_is_used(rig):
    before = rig.idp.count("/introspect")
    resp = rig.h.get("/intro-https", f"opq{secrets.token_urlsafe(24)}")
    assert resp.status == 200, resp
    assert resp.cgi_env().get("REMOTE_USER") == "intro-user", resp
    assert rig.idp.count("/introspect") == before + 1
