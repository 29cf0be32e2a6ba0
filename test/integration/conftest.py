"""Integration test harness for mod_mcp_auth.

Everything runs on 127.0.0.1 with dynamically chosen ports and stops by
itself:

* ``keys``          one signing key per JWS algorithm (RS*, PS*, ES*, EdDSA),
                    each with a distinct ``kid``, plus a few special keys
                    (weak RSA-1024, attacker key, P-384 key without ``alg``).
* ``tls``           a throw-away CA and a server certificate for IP:127.0.0.1.
* ``jwks_server``   a threaded HTTPS server ("the IdP") serving the JWKS
                    documents and counting requests per path.
* ``httpd_factory`` writes a complete httpd configuration (event MPM, mod_cgid,
                    a CGI that prints REMOTE_USER / AUTH_TYPE), starts
                    ``apache2 -k start`` and stops it at teardown.
* token helpers     JWS compact serialisation built by hand (own base64url,
                    own JSON, signing with python3-cryptography) so a test can
                    forge anything: arbitrary headers, ``alg: none``, broken
                    base64url, raw non-JSON bytes, DER ECDSA signatures, ...

Build outputs (override with environment variables):
    MCP_AUTH_SO   default <repo>/build/mod_mcp_auth.so
    MCP_AUTH_CLI  default <repo>/build/mcp-auth-token
If they are missing the tests FAIL (never skip) with a message saying so.

Set MCP_AUTH_KEEP_TMP=1 to keep the temporary directory (configs, logs).
"""

import base64
import datetime
import hashlib
import hmac
import http.client
import http.server
import ipaddress
import json
import os
import secrets
import shutil
import signal
import socket
import ssl
import stat
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

REPO_ROOT = Path(__file__).resolve().parents[2]
APACHE2 = os.environ.get("APACHE2", "/usr/sbin/apache2")
APACHE_MODULES_DIR = Path(os.environ.get("APACHE_MODULES_DIR", "/usr/lib/apache2/modules"))

# Issuer / audience used by most tests.  The issuer is only an identifier: the
# module gets the JWKS location explicitly (jwks_uri=), so no DNS is needed.
ISSUER = "https://idp.mcp-test.example/realms/mcp"
AUDIENCE = "https://mcp.mcp-test.example/api"
# 64 bytes: long enough for HS256, HS384 and HS512.
HMAC_SECRET = "hs-secret-0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQR"
assert len(HMAC_SECRET) == 64


# ---------------------------------------------------------------------------
# Build outputs
# ---------------------------------------------------------------------------

def module_path() -> Path:
    return Path(os.environ.get("MCP_AUTH_SO") or REPO_ROOT / "build" / "mod_mcp_auth.so").resolve()


def cli_path() -> Path:
    return Path(os.environ.get("MCP_AUTH_CLI") or REPO_ROOT / "build" / "mcp-auth-token").resolve()


def pytest_report_header(config):
    so, cli = module_path(), cli_path()
    return [f"mod_mcp_auth: {so} ({'present' if so.is_file() else 'MISSING'})",
            f"mcp-auth-token: {cli} ({'present' if cli.is_file() else 'MISSING'})",
            f"httpd: {APACHE2}"]


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


# ---------------------------------------------------------------------------
# Small utilities
# ---------------------------------------------------------------------------

def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port: int, timeout: float = 15.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.05)
    return False


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie is as good as gone.
    try:
        with open(f"/proc/{pid}/stat") as f:
            if f.read().split(")")[-1].split()[0] == "Z":
                return False
    except OSError:
        return False
    return True


def _make_world_readable(path: Path) -> None:
    """httpd children (and the cgid daemon) run as nobody when we are root."""
    for dirpath, dirnames, filenames in os.walk(path):
        os.chmod(dirpath, 0o755)
        for fn in filenames:
            fp = os.path.join(dirpath, fn)
            mode = os.stat(fp).st_mode
            os.chmod(fp, (mode | 0o444) & ~0o022)


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
# JOSE helpers: base64url, JSON, signatures, JWKs -- all by hand
# ---------------------------------------------------------------------------

def b64url(data) -> str:
    if isinstance(data, str):
        data = data.encode()
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(s: str) -> bytes:
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def json_bytes(obj) -> bytes:
    """Compact JSON, key order as given (lets tests control member order)."""
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def _int_bytes(n: int, length: int = None) -> bytes:
    if length is None:
        length = max(1, (n.bit_length() + 7) // 8)
    return n.to_bytes(length, "big")


_HASHES = {"256": hashes.SHA256, "384": hashes.SHA384, "512": hashes.SHA512}
_HMAC_HASHES = {"HS256": hashlib.sha256, "HS384": hashlib.sha384, "HS512": hashlib.sha512}


def sign_raw(alg: str, key, data: bytes, *, ecdsa_der: bool = False) -> bytes:
    """Sign ``data`` as JWS algorithm ``alg`` with ``key``.

    ``alg`` only picks the primitive and the hash; the key is used as given, so
    a test can e.g. sign "ES256" (SHA-256) with a P-384 key.  ``key`` is a
    cryptography private key, a SigningKey, or bytes/str for HMAC.
    """
    if isinstance(key, SigningKey):
        key = key.private
    if alg in _HMAC_HASHES:
        if isinstance(key, str):
            key = key.encode()
        return hmac.new(key, data, _HMAC_HASHES[alg]).digest()
    if alg == "EdDSA":
        return key.sign(data)
    h = _HASHES[alg[2:]]()
    if alg.startswith("RS"):
        return key.sign(data, padding.PKCS1v15(), h)
    if alg.startswith("PS"):
        return key.sign(data, padding.PSS(mgf=padding.MGF1(h), salt_length=h.digest_size), h)
    if alg.startswith("ES"):
        der = key.sign(data, ec.ECDSA(h))
        if ecdsa_der:
            return der
        r, s = decode_dss_signature(der)
        width = (key.curve.key_size + 7) // 8
        return _int_bytes(r, width) + _int_bytes(s, width)
    raise ValueError(f"unknown alg {alg}")


def encode_part(part) -> str:
    """dict/list -> b64url(JSON); bytes -> b64url(bytes); str -> used verbatim."""
    if isinstance(part, (dict, list)):
        return b64url(json_bytes(part))
    if isinstance(part, (bytes, bytearray)):
        return b64url(bytes(part))
    if isinstance(part, str):
        return part
    raise TypeError(type(part))


def make_jws(header, payload, key=None, *, alg=None, signature=None, ecdsa_der=False) -> str:
    """Compact JWS.  header/payload: dict (JSON-encoded), bytes (raw) or str
    (an already encoded part, used verbatim -- e.g. with padding or bad chars).
    The signature is computed over exactly the text that is sent.
    signature: bytes (base64url-encoded here) or str (verbatim) to override."""
    h = encode_part(header)
    p = encode_part(payload)
    if signature is None:
        if alg is None:
            alg = header["alg"]
        sig = b64url(sign_raw(alg, key, f"{h}.{p}".encode("ascii"), ecdsa_der=ecdsa_der))
    elif isinstance(signature, (bytes, bytearray)):
        sig = b64url(bytes(signature))
    else:
        sig = signature
    return f"{h}.{p}.{sig}"


def public_jwk(pub, kid=None, alg=None, use="sig") -> dict:
    """Public JWK (RFC 7517/7518/8037) for a cryptography public key."""
    if isinstance(pub, rsa.RSAPublicKey):
        nums = pub.public_numbers()
        jwk = {"kty": "RSA", "n": b64url(_int_bytes(nums.n)), "e": b64url(_int_bytes(nums.e))}
    elif isinstance(pub, ec.EllipticCurvePublicKey):
        crv = {"secp256r1": "P-256", "secp384r1": "P-384", "secp521r1": "P-521"}[pub.curve.name]
        width = (pub.curve.key_size + 7) // 8
        nums = pub.public_numbers()
        jwk = {"kty": "EC", "crv": crv, "x": b64url(_int_bytes(nums.x, width)),
               "y": b64url(_int_bytes(nums.y, width))}
    elif isinstance(pub, ed25519.Ed25519PublicKey):
        raw = pub.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        jwk = {"kty": "OKP", "crv": "Ed25519", "x": b64url(raw)}
    else:
        raise TypeError(type(pub))
    if kid is not None:
        jwk["kid"] = kid
    if use is not None:
        jwk["use"] = use
    if alg is not None:
        jwk["alg"] = alg
    return jwk


def private_jwk(priv, kid=None, alg=None) -> dict:
    """Full private JWK (public members + private ones)."""
    jwk = public_jwk(priv.public_key(), kid=kid, alg=alg)
    if isinstance(priv, rsa.RSAPrivateKey):
        n = priv.private_numbers()
        jwk.update(d=b64url(_int_bytes(n.d)), p=b64url(_int_bytes(n.p)), q=b64url(_int_bytes(n.q)),
                   dp=b64url(_int_bytes(n.dmp1)), dq=b64url(_int_bytes(n.dmq1)),
                   qi=b64url(_int_bytes(n.iqmp)))
    elif isinstance(priv, ec.EllipticCurvePrivateKey):
        width = (priv.curve.key_size + 7) // 8
        jwk["d"] = b64url(_int_bytes(priv.private_numbers().private_value, width))
    elif isinstance(priv, ed25519.Ed25519PrivateKey):
        jwk["d"] = b64url(priv.private_bytes(serialization.Encoding.Raw,
                                             serialization.PrivateFormat.Raw,
                                             serialization.NoEncryption()))
    return jwk


@dataclass
class SigningKey:
    alg: str
    kid: str
    private: object
    jwk_alg: bool = True  # publish "alg" in the JWK

    @property
    def public(self):
        return self.private.public_key()

    @property
    def jwk(self) -> dict:
        return public_jwk(self.public, kid=self.kid, alg=self.alg if self.jwk_alg else None)

    def public_pem(self) -> bytes:
        return self.public.public_bytes(serialization.Encoding.PEM,
                                        serialization.PublicFormat.SubjectPublicKeyInfo)

    def private_pem(self) -> bytes:
        return self.private.private_bytes(serialization.Encoding.PEM,
                                          serialization.PrivateFormat.PKCS8,
                                          serialization.NoEncryption())


ASYM_ALGS = ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512",
             "ES256", "ES384", "ES512", "EdDSA"]
HMAC_ALGS = ["HS256", "HS384", "HS512"]

_RSA_BITS = {"RS256": 2048, "RS384": 2048, "RS512": 2048,
             "PS256": 2048, "PS384": 3072, "PS512": 3072}
_EC_CURVES = {"ES256": ec.SECP256R1, "ES384": ec.SECP384R1, "ES512": ec.SECP521R1}


def generate_private_key(alg: str, rsa_bits: int = None):
    if alg[:2] in ("RS", "PS"):
        return rsa.generate_private_key(public_exponent=65537, key_size=rsa_bits or _RSA_BITS.get(alg, 2048))
    if alg in _EC_CURVES:
        return ec.generate_private_key(_EC_CURVES[alg]())
    if alg == "EdDSA":
        return ed25519.Ed25519PrivateKey.generate()
    raise ValueError(alg)


class KeySet:
    """The IdP's keys.  ``by_alg[alg]`` are published in the main JWKS."""

    def __init__(self):
        self.by_alg = {}
        for alg in ASYM_ALGS:
            self.by_alg[alg] = SigningKey(alg, f"kid-{alg.lower()}-{secrets.token_hex(4)}",
                                          generate_private_key(alg))
        # A P-384 key published WITHOUT "alg": only the crv tells it apart.
        self.p384_noalg = SigningKey("ES384", f"kid-p384-noalg-{secrets.token_hex(4)}",
                                     ec.generate_private_key(ec.SECP384R1()), jwk_alg=False)
        # Published in the separate "weak" JWKS together with a good key.
        self.rsa1024 = SigningKey("RS256", f"kid-rsa1024-{secrets.token_hex(4)}",
                                  rsa.generate_private_key(public_exponent=65537, key_size=1024))
        # Never published by the IdP: served only on the attacker's paths.
        self.attacker = SigningKey("RS256", f"kid-attacker-{secrets.token_hex(4)}",
                                   rsa.generate_private_key(public_exponent=65537, key_size=2048))
        # Same kid as the real RS256 key, different key material, never published.
        self.rs256_impostor = SigningKey("RS256", self.by_alg["RS256"].kid,
                                         rsa.generate_private_key(public_exponent=65537, key_size=2048))

    def __getitem__(self, alg) -> SigningKey:
        return self.by_alg[alg]

    def jwks(self) -> dict:
        return {"keys": [k.jwk for k in self.by_alg.values()] + [self.p384_noalg.jwk]}

    def weak_jwks(self) -> dict:
        return {"keys": [self.rsa1024.jwk, self.by_alg["RS256"].jwk]}

    def attacker_jwks(self) -> dict:
        return {"keys": [self.attacker.jwk]}


@pytest.fixture(scope="session")
def keys() -> KeySet:
    return KeySet()


class Minter:
    """Builds tokens with sensible defaults; every token is unique (jti)."""

    def __init__(self, keyset: KeySet, issuer: str = ISSUER, audience=AUDIENCE):
        self.keys = keyset
        self.issuer = issuer
        self.audience = audience

    def claims(self, **overrides) -> dict:
        """Default claims; an override of None removes the claim."""
        now = int(time.time())
        c = {"iss": self.issuer, "aud": self.audience, "sub": "alice",
             "iat": now, "exp": now + 600, "jti": secrets.token_hex(8)}
        for k, v in overrides.items():
            if v is None:
                c.pop(k, None)
            else:
                c[k] = v
        return c

    def header(self, alg="RS256", key: SigningKey = None, **extra) -> dict:
        """Default header {alg, typ: JWT, kid}; an override of None removes a member."""
        h = {"alg": alg, "typ": "JWT"}
        if key is not None:
            h["kid"] = key.kid
        elif alg in self.keys.by_alg:
            h["kid"] = self.keys[alg].kid
        for k, v in extra.items():
            if v is None:
                h.pop(k, None)
            else:
                h[k] = v
        return h

    def token(self, alg="RS256", *, key=None, header=None, claims=None, **claim_overrides) -> str:
        """A correctly signed token.  key defaults to the published key for alg
        (HMAC_SECRET for HS*)."""
        if key is None:
            key = HMAC_SECRET if alg in HMAC_ALGS else self.keys[alg]
        if header is None:
            header = self.header(alg, key if isinstance(key, SigningKey) else None)
            if alg in HMAC_ALGS:
                header.pop("kid", None)
        if claims is None:
            claims = self.claims(**claim_overrides)
        return make_jws(header, claims, key, alg=alg)


@pytest.fixture(scope="session")
def minter(keys) -> Minter:
    return Minter(keys)


# ---------------------------------------------------------------------------
# TLS material for the HTTPS "IdP"
# ---------------------------------------------------------------------------

@dataclass
class TLSFiles:
    ca_pem: Path
    cert_pem: Path
    key_pem: Path


def _make_tls(directory: Path) -> TLSFiles:
    directory.mkdir(parents=True, exist_ok=True)
    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "mod_mcp_auth test CA")])
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name).issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                     content_commitment=False, key_encipherment=False,
                                     data_encipherment=False, key_agreement=False,
                                     encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(x509.SubjectAlternativeName([
            x509.IPAddress(ipaddress.IPv4Address("127.0.0.1")), x509.DNSName("localhost")]),
            critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
                       critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    files = TLSFiles(directory / "ca.pem", directory / "server.pem", directory / "server.key")
    files.ca_pem.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    files.cert_pem.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    files.key_pem.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                                serialization.PrivateFormat.PKCS8,
                                                serialization.NoEncryption()))
    os.chmod(files.key_pem, 0o600)
    os.chmod(files.ca_pem, 0o644)
    os.chmod(files.cert_pem, 0o644)
    return files


@pytest.fixture(scope="session")
def tls(tmp_root) -> TLSFiles:
    return _make_tls(tmp_root / "tls")


# ---------------------------------------------------------------------------
# HTTPS "IdP": serves JWKS documents, counts requests per path
# ---------------------------------------------------------------------------

class _IdPHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = 10

    def setup(self):
        self.request.settimeout(self.timeout)
        self.request.do_handshake()
        super().setup()

    def do_GET(self):
        srv = self.server.owner
        path = self.path.split("?", 1)[0]
        srv._count(path)
        route = srv.routes.get(path)
        if route is None:
            status, ctype, body = 404, "application/json", b'{"error":"not found"}'
        else:
            status, ctype, body = route
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, fmt, *args):  # keep pytest output clean
        pass


class _TLSThreadingServer(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def get_request(self):
        sock, addr = self.socket.accept()
        # Handshake lazily in the handler thread so one silent client can't
        # block the accept loop.
        return self.ssl_context.wrap_socket(sock, server_side=True,
                                            do_handshake_on_connect=False), addr

    def handle_error(self, request, client_address):
        pass  # client went away, handshake failures, ...


class HTTPSServer:
    """Threaded HTTPS server on 127.0.0.1:<random>.

    routes: path -> (status, content_type, body); counts: path -> #requests.
    """

    def __init__(self, tls_files: TLSFiles):
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(str(tls_files.cert_pem), str(tls_files.key_pem))
        self.tls = tls_files
        self.routes = {}
        self.counts = {}
        self._lock = threading.Lock()
        self._httpd = _TLSThreadingServer(("127.0.0.1", 0), _IdPHandler)
        self._httpd.ssl_context = ctx
        self._httpd.owner = self
        self.port = self._httpd.server_address[1]
        self._thread = threading.Thread(target=self._httpd.serve_forever,
                                        kwargs={"poll_interval": 0.1},
                                        name="https-idp", daemon=True)
        self._thread.start()

    @property
    def base_url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    def url(self, path: str) -> str:
        return self.base_url + path

    def set(self, path: str, body, content_type="application/json", status=200):
        if isinstance(body, (dict, list)):
            body = json.dumps(body).encode()
        elif isinstance(body, str):
            body = body.encode()
        self.routes[path] = (status, content_type, body)

    def _count(self, path):
        with self._lock:
            self.counts[path] = self.counts.get(path, 0) + 1

    def count(self, path: str) -> int:
        with self._lock:
            return self.counts.get(path, 0)

    def reset_counts(self):
        with self._lock:
            self.counts.clear()

    def stop(self):
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)


def _self_signed_cert_pem(key: SigningKey) -> bytes:
    now = datetime.datetime.now(datetime.timezone.utc)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "attacker")])
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=30))
            .sign(key.private, hashes.SHA256()))
    return cert.public_bytes(serialization.Encoding.PEM)


@dataclass
class IdP:
    server: HTTPSServer
    keys: KeySet
    jwks_path: str = "/jwks.json"
    weak_jwks_path: str = "/jwks-weak.json"
    attacker_jwks_path: str = "/attacker/jwks.json"
    attacker_cert_path: str = "/attacker/cert.pem"
    attacker_cert_pem: bytes = b""

    @property
    def jwks_uri(self) -> str:
        return self.server.url(self.jwks_path)

    @property
    def weak_jwks_uri(self) -> str:
        return self.server.url(self.weak_jwks_path)

    def url(self, path) -> str:
        return self.server.url(path)

    def count(self, path) -> int:
        return self.server.count(path)


@pytest.fixture(scope="session")
def jwks_server(tls, keys):
    """The HTTPS IdP.  Paths: /jwks.json (all good keys), /jwks-weak.json
    (RSA-1024 + the RS256 key), /attacker/jwks.json, /attacker/cert.pem."""
    srv = HTTPSServer(tls)
    idp = IdP(srv, keys)
    srv.set(idp.jwks_path, keys.jwks())
    srv.set(idp.weak_jwks_path, keys.weak_jwks())
    srv.set(idp.attacker_jwks_path, keys.attacker_jwks())
    idp.attacker_cert_pem = _self_signed_cert_pem(keys.attacker)
    srv.set(idp.attacker_cert_path, idp.attacker_cert_pem, content_type="application/pem-certificate-chain")
    try:
        yield idp
    finally:
        srv.stop()


# ---------------------------------------------------------------------------
# httpd
# ---------------------------------------------------------------------------

CGI_SCRIPT = """#!/bin/sh
printf 'Content-Type: text/plain\\r\\n\\r\\n'
printf 'REMOTE_USER=%s\\n' "$REMOTE_USER"
printf 'AUTH_TYPE=%s\\n' "$AUTH_TYPE"
printf 'REQUEST_METHOD=%s\\n' "$REQUEST_METHOD"
printf 'SCRIPT_OK=1\\n'
"""


@dataclass
class Response:
    status: int
    reason: str
    headers: list  # [(name, value)] in wire order, duplicates kept
    body: bytes

    def header_all(self, name: str) -> list:
        n = name.lower()
        return [v for k, v in self.headers if k.lower() == n]

    def header(self, name: str):
        vals = self.header_all(name)
        return vals[0] if vals else None

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")

    def json(self):
        return json.loads(self.body)

    def cgi_env(self) -> dict:
        env = {}
        for line in self.text.splitlines():
            if "=" in line:
                k, v = line.split("=", 1)
                env[k] = v
        return env

    def __repr__(self):
        return (f"<Response {self.status} {self.reason} headers={self.headers!r} "
                f"body={self.body[:300]!r}>")


class Httpd:
    def __init__(self, root: Path, port: int, conf: Path):
        self.root = root
        self.port = port
        self.conf = conf
        self.error_log = root / "logs" / "error.log"
        self.access_log = root / "logs" / "access.log"
        self.pid_file = root / "run" / "httpd.pid"
        self.pid = None

    # -- lifecycle --------------------------------------------------------
    def start(self):
        proc = subprocess.run([APACHE2, "-f", str(self.conf), "-k", "start"],
                              capture_output=True, text=True, timeout=60)
        if proc.returncode != 0:
            raise HttpdStartError(
                f"apache2 -k start failed (rc={proc.returncode})\n"
                f"stdout: {proc.stdout}\nstderr: {proc.stderr}\n"
                f"error log:\n{self.log_text()[-4000:]}", proc.stderr + self.log_text())
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and not self.pid_file.exists():
            time.sleep(0.05)
        if self.pid_file.exists():
            try:
                self.pid = int(self.pid_file.read_text().strip())
            except ValueError:
                time.sleep(0.2)
                self.pid = int(self.pid_file.read_text().strip())
        if not wait_for_port(self.port, 15) or self.pid is None or not pid_alive(self.pid):
            text = self.log_text()
            self.stop()
            raise HttpdStartError(f"httpd did not come up on port {self.port}\n"
                                  f"stderr: {proc.stderr}\nerror log:\n{text[-4000:]}", text)

    def stop(self):
        if self.pid is None and self.pid_file.exists():
            try:
                self.pid = int(self.pid_file.read_text().strip())
            except (ValueError, OSError):
                pass
        try:
            subprocess.run([APACHE2, "-f", str(self.conf), "-k", "stop"],
                           capture_output=True, text=True, timeout=30)
        except subprocess.TimeoutExpired:
            pass
        if self.pid is None:
            return
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and pid_alive(self.pid):
            time.sleep(0.05)
        if pid_alive(self.pid):
            try:
                os.kill(self.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.pid = None

    # -- requests ---------------------------------------------------------
    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def url(self, path: str) -> str:
        return self.base_url + path

    def request(self, method: str, path: str, headers=(), body: bytes = None,
                timeout: float = 20) -> Response:
        """Raw HTTP/1.1 request; headers is a list of (name, value) and may
        repeat a name (requests can't do that)."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            conn.putrequest(method, path, skip_accept_encoding=True)
            for name, value in headers:
                conn.putheader(name, value)
            if body is not None:
                conn.putheader("Content-Length", str(len(body)))
            conn.endheaders(body)
            resp = conn.getresponse()
            data = resp.read()
            return Response(resp.status, resp.reason, list(resp.getheaders()), data)
        finally:
            conn.close()

    def get(self, path: str, token: str = None, headers=()) -> Response:
        hdrs = list(headers)
        if token is not None:
            hdrs.append(("Authorization", f"Bearer {token}"))
        return self.request("GET", path, hdrs)

    # -- error log --------------------------------------------------------
    def log_text(self) -> str:
        try:
            return self.error_log.read_bytes().decode("utf-8", "replace")
        except FileNotFoundError:
            return ""

    def log_offset(self) -> int:
        try:
            return self.error_log.stat().st_size
        except FileNotFoundError:
            return 0

    def log_since(self, offset: int) -> str:
        try:
            with open(self.error_log, "rb") as f:
                f.seek(offset)
                return f.read().decode("utf-8", "replace")
        except FileNotFoundError:
            return ""

    def wait_for_log(self, phrases, since: int = 0, timeout: float = 3.0) -> str:
        """Poll the error log (from ``since``) until one of ``phrases`` shows up.
        Returns the new log text either way; the caller asserts."""
        if isinstance(phrases, str):
            phrases = [phrases]
        deadline = time.monotonic() + timeout
        while True:
            text = self.log_since(since)
            if any(p in text for p in phrases) or time.monotonic() > deadline:
                return text
            time.sleep(0.05)


class HttpdStartError(Exception):
    def __init__(self, message, log_text=""):
        super().__init__(message)
        self.log_text = log_text


_BASE_MODULES = [
    ("authn_core_module", "mod_authn_core.so"),
    ("authz_core_module", "mod_authz_core.so"),
    ("authz_user_module", "mod_authz_user.so"),
    ("mime_module", "mod_mime.so"),
    ("cgid_module", "mod_cgid.so"),
    ("alias_module", "mod_alias.so"),
    ("env_module", "mod_env.so"),
    ("headers_module", "mod_headers.so"),
    # The module keeps its shared caches in slotmem (SPEC section 1).
    ("slotmem_shm_module", "mod_slotmem_shm.so"),
]


# The process model: event is the default; availability tests run their core
# cases under worker and prefork too (a prefork child serves one request).
MPMS = ("event", "worker", "prefork")


def _mpm_lines(mpm: str):
    if mpm not in MPMS:
        raise ValueError(f"unknown MPM {mpm!r}")
    lines = [f'LoadModule mpm_{mpm}_module "{APACHE_MODULES_DIR / f"mod_mpm_{mpm}.so"}"']
    if mpm == "prefork":
        return lines + ["StartServers 3", "MinSpareServers 3", "MaxSpareServers 8",
                        "ServerLimit 16", "MaxRequestWorkers 16"]
    return lines + ["StartServers 3", "ServerLimit 4", "ThreadsPerChild 8", "MinSpareThreads 8",
                    "MaxSpareThreads 32", "MaxRequestWorkers 32"]


def render_config(*, root: Path, port: int, locations, cgi: Path, module_so: Path = None,
                  server_conf: str = "", ca_file: Path = None, mpm: str = "event",
                  modules=()) -> str:
    lines = [
        f'ServerRoot "{root}"',
        f'DefaultRuntimeDir "{root}/run"',
        f'PidFile "{root}/run/httpd.pid"',
        # The default resource URI comes from ServerName, never from Host.
        f"ServerName 127.0.0.1:{port}",
        f"Listen 127.0.0.1:{port}",
    ]
    lines += _mpm_lines(mpm)
    for name, so in list(_BASE_MODULES) + list(modules):
        lines.append(f'LoadModule {name} "{APACHE_MODULES_DIR / so}"')
    lines += [
        "<IfModule !log_config_module>",
        f'  LoadModule log_config_module "{APACHE_MODULES_DIR / "mod_log_config.so"}"',
        "</IfModule>",
    ]
    if module_so is not None:
        lines.append(f'LoadModule mcp_auth_module "{module_so}"')
    if os.geteuid() == 0:
        lines += ["User nobody", "Group nogroup"]
    lines += [
        "Timeout 20",
        "KeepAlive On",
        # Room for the oversized-token tests: the module, not httpd's header
        # limit, must be what rejects them.
        "LimitRequestFieldSize 65536",
        f'ErrorLog "{root}/logs/error.log"',
        # core:notice shows "child pid N exit signal ..." (crash detection)
        "LogLevel warn core:notice mcp_auth:info" if module_so is not None
        else "LogLevel warn core:notice",
        'LogFormat "%h %l %u %t \\"%r\\" %>s %b" common',
        f'CustomLog "{root}/logs/access.log" common',
        f'TypesConfig "{root}/conf/mime.types"',
        f'ScriptSock "{root}/run/cgid.sock"',
        f'DocumentRoot "{root}/htdocs"',
        "<Directory />",
        "  AllowOverride None",
        "  Require all denied",
        "</Directory>",
        f'<Directory "{root}/htdocs">',
        "  Require all granted",
        "</Directory>",
        f'<Directory "{cgi.parent}">',
        "  Options +ExecCGI",
        "  Require all granted",
        "</Directory>",
    ]
    if ca_file is not None and module_so is not None:
        lines.append(f'MCPAuthCAFile "{ca_file}"')
    if server_conf:
        lines.append(server_conf)
    for path, _ in locations:
        lines.append(f'ScriptAliasMatch "^{path}(/.*)?$" "{cgi}"')
    for path, snippet in locations:
        lines.append(f'<Location "{path}">')
        lines.append(snippet.strip("\n"))
        lines.append("</Location>")
    return "\n".join(lines) + "\n"


class HttpdFactory:
    def __init__(self, tmp_root: Path, tls_files: TLSFiles):
        self.tmp_root = tmp_root
        self.tls = tls_files
        self.instances = []
        self._n = 0

    def start(self, locations, *, server_conf: str = "", module_so: Path = None,
              with_module: bool = True, name: str = "httpd", mpm: str = "event",
              modules=()) -> Httpd:
        """Start an httpd with one <Location> per entry.

        locations: dict or list of (path, snippet).  Every location is served
        by the CGI (it prints REMOTE_USER, AUTH_TYPE, REQUEST_METHOD).
        server_conf is appended to the main server config."""
        if isinstance(locations, dict):
            locations = list(locations.items())
        if with_module and module_so is None:
            module_so = module_path()
            if not module_so.is_file():
                pytest.fail(f"mod_mcp_auth is not built: {module_so} does not exist.", pytrace=False)
        if not with_module:
            module_so = None
        last_error = None
        for _attempt in range(3):
            self._n += 1
            root = self.tmp_root / f"{name}-{self._n}"
            for sub in ("conf", "logs", "run", "htdocs", "cgi-bin"):
                (root / sub).mkdir(parents=True, exist_ok=True)
            (root / "conf" / "mime.types").write_text("text/plain txt\n")
            (root / "htdocs" / "index.txt").write_text("ok\n")
            cgi = root / "cgi-bin" / "whoami.cgi"
            cgi.write_text(CGI_SCRIPT)
            os.chmod(cgi, 0o755)
            port = free_port()
            conf = root / "conf" / "httpd.conf"
            conf.write_text(render_config(root=root, port=port, locations=locations, cgi=cgi,
                                          module_so=module_so, server_conf=server_conf,
                                          ca_file=self.tls.ca_pem, mpm=mpm, modules=modules))
            _make_world_readable(root)
            os.chmod(root / "logs", 0o755)
            h = Httpd(root, port, conf)
            try:
                h.start()
            except HttpdStartError as e:
                last_error = str(e)
                retry = "Address already in use" in e.log_text or "could not bind" in e.log_text
                h.stop()
                if retry:
                    continue
                break
            self.instances.append(h)
            return h
        pytest.fail(last_error, pytrace=False)

    def stop_all(self):
        while self.instances:
            self.instances.pop().stop()


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


def es256_key(label: str = "k") -> SigningKey:
    """A fresh P-256 signing key with a unique kid starting with label."""
    return SigningKey("ES256", f"{label}-{secrets.token_hex(6)}", ec.generate_private_key(ec.SECP256R1()))


def mcp_location(issuer: str = ISSUER, jwks_uri: str = None, *, audience: str = AUDIENCE,
                 extra: str = "", jwks_file: str = None) -> str:
    """A standard protected-location snippet."""
    src = f"jwks_file={jwks_file}" if jwks_file else f"jwks_uri={jwks_uri}"
    parts = [
        "AuthType mcp-jwt",
        'AuthName "mcp"',
        f"MCPAuthIssuer {issuer} {src}",
        f"MCPAuthAudience {audience}",
    ]
    if extra:
        parts.append(extra.strip("\n"))
    parts.append("Require valid-user")
    return "\n".join(parts)
