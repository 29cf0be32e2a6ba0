# SPDX-License-Identifier: Apache-2.0
"""Fixtures wiring the integration harness (test/integration/harness/) into pytest.

Build outputs (override with environment variables):
    MCP_AUTH_SO   default <repo>/build/mod_mcp_auth.so
    MCP_AUTH_CLI  default <repo>/build/mcp-auth-token
If they are missing the tests FAIL (never skip) with a message saying so.

Set MCP_AUTH_KEEP_TMP=1 to keep the temporary directory (configs, logs).

After every test, every httpd the harness started has its error log checked
for child crashes and for tokens the harness issued (harness/checks.py).

The names below the fixtures are re-exported for files that still say
``from conftest import ...``; new code imports from ``harness.*``.
"""

import os
import shutil
import tempfile
from pathlib import Path

import pytest

from harness import checks
from harness.env import (APACHE2, APACHE_MODULES_DIR, REPO_ROOT, cli_path, free_port,  # noqa: F401
                         make_world_readable, module_path, pid_alive, wait_for_port)
from harness.httpd import (CGI_SCRIPT, MPMS, Httpd, HttpdFactory, HttpdStartError, Response,  # noqa: F401
                           mcp_location, render_config)
from harness.node import find_node
from harness.servers import IdP, HTTPSServer, QuietHandler, ThreadedServer, _IdPHandler  # noqa: F401
from harness.tls import TLSFiles, make_tls, self_signed_cert_pem  # noqa: F401
from harness.tokens import (ASYM_ALGS, AUDIENCE, HMAC_ALGS, HMAC_SECRET, ISSUED, ISSUER, KeySet,  # noqa: F401
                            Minter, SigningKey, b64url, b64url_decode, encode_part, es256_key,
                            generate_private_key, json_bytes, make_jws, private_jwk, public_jwk, sign_raw)

# Old private spellings, still imported by some test files.
_make_world_readable = make_world_readable
_make_tls = make_tls


def pytest_configure(config):
    for name, doc in checks.MARKERS.items():
        config.addinivalue_line("markers", doc)


def pytest_collection_modifyitems(config, items):
    """A test that starts Node.js peers (it uses the ``node`` fixture) is
    marked ``node`` whether or not its file says so, so -m "not node" (make
    check-fast) never starts Node.js."""
    for item in items:
        if "node" in getattr(item, "fixturenames", ()) and item.get_closest_marker("node") is None:
            item.add_marker(pytest.mark.node)


def pytest_report_header(config):
    so, cli = module_path(), cli_path()
    return [f"mod_mcp_auth: {so} ({'present' if so.is_file() else 'MISSING'})",
            f"mcp-auth-token: {cli} ({'present' if cli.is_file() else 'MISSING'})",
            f"httpd: {APACHE2}"]


# ---------------------------------------------------------------------------
# After every test: no crash, no token in any error log
# ---------------------------------------------------------------------------

@pytest.fixture(autouse=True)
def check_error_logs(request):
    yield
    found = checks.problems(request.node)
    assert not found, "after the test: " + "\n".join(found)


@pytest.fixture(scope="session", autouse=True)
def check_error_logs_at_end():
    """What module fixtures' servers logged while stopping after the last test."""
    yield
    found = checks.problems()
    assert not found, "at the end of the session: " + "\n".join(found)


# ---------------------------------------------------------------------------
# Build outputs, the temporary directory
# ---------------------------------------------------------------------------

@pytest.fixture(scope="session")
def mcp_auth_so() -> Path:
    p = module_path()
    if not p.is_file():
        pytest.fail(
            f"mod_mcp_auth is not built: {p} does not exist. "
            "Build it first (make -f apxs.mk) or point MCP_AUTH_SO at it.",
            pytrace=False,
        )
    return p


@pytest.fixture(scope="session")
def mcp_auth_cli() -> Path:
    p = cli_path()
    if not p.is_file() or not os.access(p, os.X_OK):
        pytest.fail(
            f"mcp-auth-token CLI is not built: {p} does not exist or is not executable. "
            "Build it first (make -f apxs.mk) or point MCP_AUTH_CLI at it.",
            pytrace=False,
        )
    return p


@pytest.fixture(scope="session")
def tmp_root():
    """A private temp dir outside pytest's 0700 basetemp (children run as nobody)."""
    d = Path(tempfile.mkdtemp(prefix="mcp-auth-it."))
    os.chmod(d, 0o755)
    yield d
    if os.environ.get("MCP_AUTH_KEEP_TMP"):
        print(f"\n[mcp-auth-it] keeping {d}")
    else:
        shutil.rmtree(d, ignore_errors=True)


# ---------------------------------------------------------------------------
# Keys, tokens, TLS, the HTTPS IdP
# ---------------------------------------------------------------------------

@pytest.fixture(scope="session")
def keys() -> KeySet:
    return KeySet()


@pytest.fixture(scope="session")
def minter(keys) -> Minter:
    return Minter(keys)


@pytest.fixture(scope="session")
def tls(tmp_root) -> TLSFiles:
    return make_tls(tmp_root / "tls")


@pytest.fixture(scope="session")
def jwks_server(tls, keys):
    """The HTTPS IdP.  Paths: /jwks.json (all good keys), /jwks-weak.json
    (RSA-1024 + the RS256 key), /attacker/jwks.json, /attacker/cert.pem."""
    srv = HTTPSServer(tls)
    idp = IdP(srv, keys)
    srv.set(idp.jwks_path, keys.jwks())
    srv.set(idp.weak_jwks_path, keys.weak_jwks())
    srv.set(idp.attacker_jwks_path, keys.attacker_jwks())
    idp.attacker_cert_pem = self_signed_cert_pem(keys.attacker)
    srv.set(idp.attacker_cert_path, idp.attacker_cert_pem, content_type="application/pem-certificate-chain")
    try:
        yield idp
    finally:
        srv.stop()


# ---------------------------------------------------------------------------
# httpd
# ---------------------------------------------------------------------------

@pytest.fixture(scope="session")
def httpd_factory(tmp_root, tls):
    factory = HttpdFactory(tmp_root, tls)
    try:
        yield factory
    finally:
        factory.stop_all()


@pytest.fixture
def start_httpd(httpd_factory, mcp_auth_so):
    """start(locations, conf="", name="httpd", mpm="event", modules=()): an
    httpd with the built module, stopped when the test ends. modules: extra
    (name, file) pairs to load, e.g. ("http2_module", "mod_http2.so")."""
    started = []

    def start(locations, conf="", name="httpd", mpm="event", modules=()):
        h = httpd_factory.start(locations, server_conf=conf, module_so=mcp_auth_so, name=name,
                                mpm=mpm, modules=modules)
        started.append(h)
        return h

    try:
        yield start
    finally:
        for h in started:
            h.stop()


# ---------------------------------------------------------------------------
# Node.js peers
# ---------------------------------------------------------------------------

@pytest.fixture(scope="session")
def node() -> str:
    """The node executable, test/node_modules installed (npm ci) if missing."""
    return find_node()
