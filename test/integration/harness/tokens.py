# SPDX-License-Identifier: Apache-2.0
"""Keys and tokens: JWS compact serialisation built by hand (own base64url, own
JSON, signing with python3-cryptography) so a test can forge anything:
arbitrary headers, ``alg: none``, broken base64url, raw non-JSON bytes, DER
ECDSA signatures, ...  Every token made here is recorded (``ISSUED``) so the
after-test check can tell that none of them reached an error log."""

import base64
import hashlib
import hmac
import json
import re
import secrets
import time
from dataclasses import dataclass

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature


# Issuer / audience used by most tests.  The issuer is only an identifier: the
# module gets the JWKS location explicitly (jwks_uri=), so no DNS is needed.
ISSUER = "https://idp.mcp-test.example/realms/mcp"
AUDIENCE = "https://mcp.mcp-test.example/api"
# 64 bytes: long enough for HS256, HS384 and HS512.
HMAC_SECRET = "hs-secret-0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQR"
assert len(HMAC_SECRET) == 64


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
    token = f"{h}.{p}.{sig}"
    ISSUED.add(token)
    return token


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


def es256_key(label: str = "k") -> SigningKey:
    """A fresh P-256 signing key with a unique kid starting with label."""
    return SigningKey("ES256", f"{label}-{secrets.token_hex(6)}", ec.generate_private_key(ec.SECP256R1()))


# ---------------------------------------------------------------------------
# What the harness issued: the after-test check looks for these in error logs
# ---------------------------------------------------------------------------

_B64URL_RUN = re.compile(r"[A-Za-z0-9_-]{16,}")
_WINDOW = 16


class TokenRecord:
    """Every token the harness made (make_jws) or sent (Httpd.request).

    A token leaks when its last dot-separated part (a JWS signature, or the
    whole of an opaque token) shows up in a log: a log line that quotes a
    header or a claim is fine, one that carries the part nobody else could
    have produced is not.  A token whose last part is shorter than 16
    characters (``alg: none``, a truncated token) leaks when the whole token
    (if 20 characters or more) shows up.  Lookups go through the parts' first
    16 characters, so checking a log costs one pass over it however many
    tokens were issued."""

    def __init__(self):
        self._by_prefix = {}   # first 16 characters of a secret part -> set of parts
        self._odd = set()      # searched as plain substrings (few: odd characters, short parts)
        self.count = 0

    def add(self, token):
        if isinstance(token, (bytes, bytearray)):
            token = bytes(token).decode("latin-1")
        if not isinstance(token, str):
            return
        token = token.strip()
        part = token.rsplit(".", 1)[-1]
        if len(part) >= _WINDOW and _B64URL_RUN.fullmatch(part):
            self._by_prefix.setdefault(part[:_WINDOW], set()).add(part)
        elif len(part) >= _WINDOW:
            self._odd.add(part)
        elif len(token) >= 20:
            self._odd.add(token)
        else:
            return
        self.count += 1

    def leaked(self, text: str) -> list:
        """The recorded secret parts that occur in ``text``."""
        found = set()
        if self._by_prefix:
            for m in _B64URL_RUN.finditer(text):
                run = m.group(0)
                for i in range(len(run) - _WINDOW + 1):
                    parts = self._by_prefix.get(run[i:i + _WINDOW])
                    if parts:
                        found.update(p for p in parts if p in run)
        found.update(p for p in self._odd if p in text)
        return sorted(found)


ISSUED = TokenRecord()
