# SPDX-License-Identifier: Apache-2.0
"""Attack battery against mod_mcp_auth in a real httpd.

Every hostile token must end in 401 invalid_token (or httpd's / the module's
400 for a malformed request) -- never 5xx, never a crash, never accepted.
Tokens whose only oddity is the attack are signed with the IdP's real key,
so a refusal can only come from the attack itself, not from a bad signature.

Where a standard says a token is valid (RFC 7519 NumericDate may be a
non-integer or far in the future) the test asserts the documented behaviour
and says so.  The last test checks that no token sent by this module ever
reached the error log and that nothing crashed.
"""

import json
import re
import secrets
import socket
import time

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from harness.asserts import assert_invalid_token, assert_ok, challenge_params
from harness.checks import crash_lines
from harness.tokens import ISSUED
from conftest import (
    AUDIENCE,
    HTTPSServer,
    ISSUER,
    Minter,
    SigningKey,
    b64url,
    b64url_decode,
    json_bytes,
    make_jws,
    mcp_location,
    public_jwk,
    sign_raw,
)

MANY_ISSUER = "https://many-keys.attack.example/realm"
MIXED_ISSUER = "https://mixed-kid.attack.example/realm"
MIXED_KID = "mixed-kid-1"
OCT_SECRET = b"oct-key-in-the-jwks-0123456789abcdefghijklmnopqrstuvwxyzABCDEFGH"  # 64 bytes
LOCATION_SECRET = "location-hmac-secret-0123456789abcdefghijklmnopqrstuvwxyzABCDEFG"
assert len(OCT_SECRET) >= 64 and len(LOCATION_SECRET) >= 64

TIMINGS = {}


# ---------------------------------------------------------------------------
# setup
# ---------------------------------------------------------------------------

def fake_rsa_jwk(kid, rnd_bits=2048):
    """An RSA public JWK with a random odd modulus: OpenSSL builds it without
    factoring anything, and nobody can sign for it."""
    n = secrets.randbits(rnd_bits) | (1 << (rnd_bits - 1)) | 1
    return {"kty": "RSA", "kid": kid, "use": "sig", "alg": "RS256",
            "n": b64url(n.to_bytes(rnd_bits // 8, "big")), "e": "AQAB"}


def thousand_key_jwks(real_jwk):
    keys = []
    for i in range(999):
        if i % 3 == 0:
            keys.append(fake_rsa_jwk(f"many-{i}"))
        else:
            keys.append(public_jwk(ec.generate_private_key(ec.SECP256R1()).public_key(), kid=f"many-{i}",
                                   alg="ES256"))
    keys.insert(500, real_jwk)
    assert len(keys) == 1000
    return {"keys": keys}


class Rig:
    pass


@pytest.fixture(scope="module")
def rig(httpd_factory, jwks_server, keys, tls, mcp_auth_so):
    idp = HTTPSServer(tls)
    r = Rig()
    r.keys = keys
    r.minter = Minter(keys)
    r.many_minter = Minter(keys, issuer=MANY_ISSUER)
    r.mixed_minter = Minter(keys, issuer=MIXED_ISSUER)
    r.mixed_rsa = SigningKey("RS256", MIXED_KID, rsa.generate_private_key(public_exponent=65537, key_size=2048))
    r.many_doc = thousand_key_jwks(keys["RS256"].jwk)
    idp.set("/many.json", r.many_doc)
    idp.set("/mixed.json", {"keys": [
        {"kty": "oct", "kid": MIXED_KID, "alg": "HS256", "use": "sig", "k": b64url(OCT_SECRET)},
        r.mixed_rsa.jwk,
    ]})
    r.idp = idp
    jwks = jwks_server.jwks_uri
    locations = {
        "/a": mcp_location(jwks_uri=jwks),
        "/big": mcp_location(jwks_uri=jwks, extra="MCPAuthMaxTokenSize 1048576"),
        "/typ": mcp_location(jwks_uri=jwks, extra="MCPAuthTokenType at+jwt"),
        "/many": mcp_location(MANY_ISSUER, idp.url("/many.json")),
        "/mixed": mcp_location(MIXED_ISSUER, idp.url("/mixed.json")),
        "/mixed-hs": mcp_location(MIXED_ISSUER, idp.url("/mixed.json"), extra=(
            f"MCPAuthAlgorithms RS256 HS256\nMCPAuthHMACSecret {LOCATION_SECRET}")),
    }
    conf = "\n".join([
        "MCPAuthHTTPTimeout 3",
        "MCPAuthJWKSMaxSize 1048576",          # the 1000-key JWKS is ~270 KB
        "LimitRequestFieldSize 262144",        # room for the 10,000-claim token
        "MCPAuthRefusalLogInterval 0",         # each test reads its own refusal's log line
    ])
    h = httpd_factory.start(locations, server_conf=conf, module_so=mcp_auth_so, name="attacks")
    r.h = h
    try:
        yield r
    finally:
        h.stop()
        idp.stop()


# ---------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------

def send(h, path, token, *, value=None, timeout=30):
    ISSUED.add(token)
    if value is None:
        value = f"Bearer {token}"
    return h.request("GET", path, [("Authorization", value)], timeout=timeout)


def timed(h, path, token, **kw):
    t0 = time.monotonic()
    resp = send(h, path, token, **kw)
    return resp, time.monotonic() - t0


def assert_invalid_request(resp, what=""):
    assert resp.status < 500, f"{what}: server error {resp!r}"
    assert resp.status == 400, f"{what}: expected 400, got {resp!r}"


def refused(rig, path, token, phrases=None, what=""):
    mark = rig.h.log_offset()
    resp = send(rig.h, path, token)
    assert_invalid_token(resp, what)
    if phrases:
        if isinstance(phrases, str):
            phrases = [phrases]
        log = rig.h.wait_for_log(phrases, since=mark)
        assert any(p in log for p in phrases), f"{what}: the log does not say {phrases!r}:\n{log[-1500:]}"
    return resp


def header_dict(rig, **extra):
    h = {"alg": "RS256", "typ": "JWT", "kid": rig.keys["RS256"].kid}
    h.update(extra)
    return h


def claims(rig, **over):
    return rig.minter.claims(**over)


def signed(rig, header, payload, key=None, alg="RS256"):
    """header/payload: dict, raw bytes (base64url-encoded here) or str (verbatim)."""
    return make_jws(header, payload, key or rig.keys["RS256"], alg=alg)


def raw_claims(rig, exp_text=None, extra=b"", sub=b'"alice"'):
    now = int(time.time())
    exp = exp_text if exp_text is not None else str(now + 600).encode()
    return (b'{"iss":' + json.dumps(ISSUER).encode() + b',"aud":' + json.dumps(AUDIENCE).encode() +
            b',"sub":' + sub + b',"iat":' + str(now).encode() + b',"exp":' + exp +
            b',"jti":"' + secrets.token_hex(8).encode() + b'"' + extra + b"}")


def raw_header(rig, extra=b"", kid=None, alg=b'"RS256"', typ=b'"JWT"'):
    kid = kid if kid is not None else json.dumps(rig.keys["RS256"].kid).encode()
    return b'{"alg":' + alg + b',"typ":' + typ + b',"kid":' + kid + extra + b"}"


def raw_http(port, data: bytes, timeout=20):
    """Sends raw bytes; returns (status or None, raw response bytes)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    out = b""
    try:
        try:
            s.sendall(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server may answer (and close) before all of it is sent
        try:
            s.shutdown(socket.SHUT_WR)
        except OSError:
            pass
        while True:
            try:
                chunk = s.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            out += chunk
    finally:
        s.close()
    m = re.match(rb"HTTP/1\.[01] (\d{3})", out)
    return (int(m.group(1)) if m else None), out


def raw_get(rig, path, auth_lines, extra=b""):
    """A GET whose header block is given as raw lines (bytes, without CRLF)."""
    req = (b"GET " + path.encode() + b" HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n" +
           b"".join(l + b"\r\n" for l in auth_lines) + extra + b"\r\n")
    return raw_http(rig.h.port, req)


# ---------------------------------------------------------------------------
# kid attacks and big key sets
# ---------------------------------------------------------------------------

@pytest.mark.slow
def test_huge_kid_10kb(rig):
    for kid in ("k" * 10240, secrets.token_urlsafe(7680)[:10240]):
        tok = signed(rig, header_dict(rig, kid=kid), claims(rig))
        assert len(tok) < 16384
        refused(rig, "/a", tok, "Unknown key id", what=f"kid of {len(kid)} bytes")


@pytest.mark.slow
def test_kid_with_control_characters_does_not_inject_log_lines(rig):
    kid = 'x"\r\nInjected-Line: evil\x1b[31m'
    tok = signed(rig, header_dict(rig, kid=kid), claims(rig))
    mark = rig.h.log_offset()
    refused(rig, "/a", tok, "Unknown key id")
    new = rig.h.log_since(mark)
    assert not any(l.startswith("Injected-Line") for l in new.splitlines()), new
    assert "\x1b" not in new, "an escape character from the token reached the error log"


@pytest.mark.slow
def test_1000_key_jwks_valid_token_verifies_and_unknown_kid_is_quick(rig):
    h = rig.h
    t0 = time.monotonic()
    resp = send(h, "/many", rig.many_minter.token("RS256"))
    first = time.monotonic() - t0
    assert_ok(resp, what="valid token against a 1000-key JWKS")
    fetches = rig.idp.count("/many.json")
    assert fetches == 1, fetches

    # Every child parses the set once; then tokens are verified quickly.
    lat_valid = []
    for _ in range(8):
        resp, dt = timed(h, "/many", rig.many_minter.token("RS256"))
        assert_ok(resp)
        lat_valid.append(dt)

    # A kid not in the set: one refetch (cooldown 30 s), 401 quickly.
    lat_unknown = []
    for i in range(20):
        tok = rig.many_minter.token("RS256", header={"alg": "RS256", "typ": "JWT", "kid": f"not-there-{i}"})
        mark = h.log_offset()
        resp, dt = timed(h, "/many", tok)
        assert_invalid_token(resp, "unknown kid against the 1000-key JWKS")
        lat_unknown.append(dt)
        if i == 0:
            assert "Unknown key id" in h.wait_for_log("Unknown key id", since=mark)
    refetches = rig.idp.count("/many.json") - fetches

    # No kid at all: every RSA key is tried (334 of them); still bounded.
    forged = make_jws({"alg": "RS256", "typ": "JWT"}, rig.many_minter.claims(), rig.keys.attacker)
    resp, lat_nokid_forged = timed(h, "/many", forged)
    assert_invalid_token(resp, "forged token without kid")
    good_nokid = make_jws({"alg": "RS256", "typ": "JWT"}, rig.many_minter.claims(), rig.keys["RS256"])
    resp, lat_nokid_good = timed(h, "/many", good_nokid)
    assert_ok(resp, what="valid token without kid (every fitting key is tried)")

    TIMINGS["1000-key JWKS"] = (f"first request (fetch + parse) {first * 1000:.0f} ms, valid max "
                                f"{max(lat_valid) * 1000:.0f} ms, unknown kid max {max(lat_unknown) * 1000:.0f} ms "
                                f"(refetches {refetches}), forged no-kid {lat_nokid_forged * 1000:.0f} ms, "
                                f"valid no-kid {lat_nokid_good * 1000:.0f} ms")
    print(f"\n[attacks] {TIMINGS['1000-key JWKS']}")
    assert refetches <= 1, f"{refetches} refetches of the JWKS for 20 unknown kids (cooldown 30 s)"
    assert max(lat_unknown) < 1.5, f"unknown kid took {max(lat_unknown):.2f} s"
    assert lat_nokid_forged < 3, f"a forged token without kid took {lat_nokid_forged:.2f} s"


# ---------------------------------------------------------------------------
# hostile JSON
# ---------------------------------------------------------------------------

def deep_arrays(depth):
    return b"[" * depth + b"]" * depth


def deep_objects(depth):
    return b'{"a":' * depth + b"1" + b"}" * depth


@pytest.mark.parametrize("where,shape", [("header", "arrays"), ("header", "objects"),
                                         ("payload", "arrays"), ("payload", "objects")])
def test_deeply_nested_json_depth_10000(rig, where, shape):
    nest = deep_arrays(10000) if shape == "arrays" else deep_objects(10000)
    if where == "header":
        tok = signed(rig, raw_header(rig, extra=b',"x":' + nest), claims(rig))
    else:
        tok = signed(rig, header_dict(rig), raw_claims(rig, extra=b',"x":' + nest))
    t0 = time.monotonic()
    refused(rig, "/big", tok, "Malformed token", what=f"{where} nested {shape} (parsed)")
    dt = time.monotonic() - t0
    refused(rig, "/a", tok, "Token too large", what=f"{where} nested {shape} at the default size limit")
    TIMINGS[f"depth 10000 {where} {shape}"] = f"{len(tok)} bytes, refused in {dt * 1000:.0f} ms"


def ten_thousand_claims(rig):
    c = claims(rig)
    for i in range(10000):
        c[f"c{i}"] = i % 10
    return c


def test_ten_thousand_claims(rig):
    c = ten_thousand_claims(rig)
    forged = make_jws(header_dict(rig), c, rig.keys.rs256_impostor)
    t0 = time.monotonic()
    refused(rig, "/big", forged, "Invalid signature", what="10,000 claims, forged signature")
    dt_forged = time.monotonic() - t0
    genuine = signed(rig, header_dict(rig), c)
    refused(rig, "/a", genuine, "Token too large", what="10,000 claims at the default MCPAuthMaxTokenSize")
    # Signed by the IdP and within this location's size limit: a legitimate
    # (if odd) token.  It must not break the accept path (claims export,
    # verified-token cache with entries smaller than the claims).
    t0 = time.monotonic()
    resp = send(rig.h, "/big", genuine)
    dt_genuine = time.monotonic() - t0
    assert resp.status < 500, resp
    assert_ok(resp, what="10,000 claims signed by the IdP under MCPAuthMaxTokenSize 1048576")
    resp = send(rig.h, "/big", genuine)
    assert_ok(resp, what="the same again")
    TIMINGS["10,000 claims"] = (f"{len(genuine)} bytes; forged refused in {dt_forged * 1000:.0f} ms, "
                                f"genuine accepted in {dt_genuine * 1000:.0f} ms")


NUL_HEADERS = {
    "raw NUL inside kid": lambda rig: raw_header(rig, kid=json.dumps(rig.keys["RS256"].kid).encode()[:-1] + b'\x00evil"'),
    "\\u0000 inside kid": lambda rig: raw_header(rig, kid=json.dumps(rig.keys["RS256"].kid).encode()[:-1] + b'\\u0000evil"'),
    "raw NUL inside alg": lambda rig: raw_header(rig, alg=b'"RS256\x00"'),
    "\\u0000 inside alg": lambda rig: raw_header(rig, alg=b'"RS256\\u0000"'),
    "raw NUL after the object": lambda rig: raw_header(rig) + b"\x00",
    "raw NUL before the object": lambda rig: b"\x00" + raw_header(rig),
}

NUL_PAYLOADS = {
    "\\u0000 inside sub": lambda rig: raw_claims(rig, sub=b'"alice\\u0000admin"'),
    "raw NUL inside sub": lambda rig: raw_claims(rig, sub=b'"alice\x00admin"'),
    "\\u0000 inside iss": lambda rig: raw_claims(rig).replace(json.dumps(ISSUER).encode(),
                                                              json.dumps(ISSUER).encode()[:-1] + b'\\u0000.evil"'),
    "\\u0000 inside aud": lambda rig: raw_claims(rig).replace(json.dumps(AUDIENCE).encode(),
                                                              json.dumps(AUDIENCE).encode()[:-1] + b'\\u0000x"'),
    "raw NUL after the object": lambda rig: raw_claims(rig) + b"\x00",
    "\\u0000 as a member name": lambda rig: raw_claims(rig, extra=b',"\\u0000":"x"'),
}


@pytest.mark.parametrize("name", list(NUL_HEADERS))
def test_nul_bytes_in_header(rig, name):
    tok = signed(rig, NUL_HEADERS[name](rig), claims(rig))
    refused(rig, "/a", tok, what=f"header: {name}")


@pytest.mark.parametrize("name", list(NUL_PAYLOADS))
def test_nul_bytes_in_payload(rig, name):
    tok = signed(rig, header_dict(rig), NUL_PAYLOADS[name](rig))
    refused(rig, "/a", tok, what=f"payload: {name}")


NON_UTF8 = [b"\xff\xfe", b"\xc3\x28", b"\xc0\xaf", b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"abc\x80"]


@pytest.mark.parametrize("bad", NON_UTF8, ids=lambda b: b.hex())
def test_non_utf8_strings(rig, bad):
    kid = json.dumps(rig.keys["RS256"].kid).encode()
    variants = {
        "header kid": signed(rig, raw_header(rig, kid=kid[:-1] + bad + b'"'), claims(rig)),
        "header typ": signed(rig, raw_header(rig, typ=b'"JW' + bad + b'"'), claims(rig)),
        "header member name": signed(rig, raw_header(rig, extra=b',"' + bad + b'":1'), claims(rig)),
        "payload sub": signed(rig, header_dict(rig), raw_claims(rig, sub=b'"ali' + bad + b'ce"')),
        "payload extra claim": signed(rig, header_dict(rig), raw_claims(rig, extra=b',"name":"' + bad + b'"')),
    }
    for what, tok in variants.items():
        refused(rig, "/a", tok, what=f"non-UTF-8 {bad!r} in {what}")


def _exp_cases():
    now = int(time.time())
    return [
        ("string", b'"%d"' % (now + 600), 401),
        ("float in the future", b"%d.5" % (now + 600), 200),     # RFC 7519: NumericDate may be non-integer
        ("float in the past", b"%d.5" % (now - 3600), 401),
        ("1e308", b"1e308", 200),                                # a NumericDate; signed by the IdP
        ("-1", b"-1", 401),
        ("-1e308", b"-1e308", 401),
        ("int64 max", b"9223372036854775807", 200),             # the largest integer jansson reads
        ("int64 max + 1", b"9223372036854775808", 401),         # beyond int64: not a number jansson keeps
        ("huge integer", b"9" * 40, 401),
        ("1e400", b"1e400", 401),
        ("true", b"true", 401),
        ("null", b"null", 401),
        ("array", b"[%d]" % (now + 600), 401),
        ("object", b"{}", 401),
        ("NaN", b"NaN", 401),
        ("Infinity", b"Infinity", 401),
    ]


@pytest.mark.parametrize("case", range(len(_exp_cases())), ids=[c[0] for c in _exp_cases()])
def test_exp_variants(rig, case):
    name, text, want = _exp_cases()[case]
    tok = signed(rig, header_dict(rig), raw_claims(rig, exp_text=text))
    if want == 200:
        resp = send(rig.h, "/a", tok)
        assert_ok(resp, what=f"exp {name}")
        # The verified-token cache must cope with the value too (bounded by exp).
        assert_ok(send(rig.h, "/a", tok), what=f"exp {name}, second time (cache)")
    else:
        refused(rig, "/a", tok, what=f"exp {name}")


DUPLICATES = {
    "header alg twice (RS256, none)": ("header", b'{"alg":"RS256","typ":"JWT","kid":%s,"alg":"none"}'),
    "header alg twice (none, RS256)": ("header", b'{"alg":"none","typ":"JWT","kid":%s,"alg":"RS256"}'),
    "header kid twice": ("header", b'{"alg":"RS256","typ":"JWT","kid":%s,"kid":"other"}'),
    "payload sub twice": ("payload", b',"sub":"admin"'),
    "payload exp twice": ("payload", b',"exp":1'),
    "payload iss twice": ("payload", b',"iss":"https://evil.example"'),
    "payload aud twice": ("payload", b',"aud":"https://evil.example"'),
}


@pytest.mark.parametrize("name", list(DUPLICATES))
def test_duplicate_json_members(rig, name):
    where, frag = DUPLICATES[name]
    if where == "header":
        hdr = frag % json.dumps(rig.keys["RS256"].kid).encode()
        tok = signed(rig, hdr, claims(rig))
    else:
        tok = signed(rig, header_dict(rig), raw_claims(rig, extra=frag))
    refused(rig, "/a", tok, "Malformed token", what=name)


ALG_VARIANTS = ["rs256", "RS256 ", " RS256", "RS256\u0000", "Rs256", "RS256\t", "RS-256", "", "RS2560", "RS25"]


@pytest.mark.parametrize("alg", ALG_VARIANTS, ids=[repr(a) for a in ALG_VARIANTS])
def test_alg_variants(rig, alg):
    tok = make_jws(header_dict(rig, alg=alg), claims(rig), rig.keys["RS256"], alg="RS256")
    refused(rig, "/a", tok, ["Algorithm not allowed", "Malformed token"], what=f"alg {alg!r}")


TYP_CASES = [("AT+JWT", 200), ("application/at+jwt", 200), ("Application/AT+JWT", 200), ("at+jwt", 200),
             ("at+jwt ", 401), (" at+jwt", 401), ("jwt", 401), ("JWT", 401), ("application/jwt", 401),
             ("at+jwt\u0000", 401), ("at+jwt; charset=utf-8", 401), ("application/", 401), (None, 401)]


@pytest.mark.parametrize("typ,want", TYP_CASES, ids=[repr(t) for t, _ in TYP_CASES])
def test_typ_variants_with_token_type_at_jwt(rig, typ, want):
    hdr = header_dict(rig, typ=typ) if typ is not None else {k: v for k, v in header_dict(rig).items() if k != "typ"}
    tok = make_jws(hdr, claims(rig), rig.keys["RS256"], alg="RS256")
    if want == 200:
        assert_ok(send(rig.h, "/typ", tok), what=f"typ {typ!r}")
    else:
        refused(rig, "/typ", tok, ["Invalid token type", "Malformed token"], what=f"typ {typ!r}")


# ---------------------------------------------------------------------------
# an oct key and an RSA key under one kid
# ---------------------------------------------------------------------------

def test_jwks_mixing_oct_and_rsa_under_one_kid(rig):
    h = rig.h
    m = rig.mixed_minter
    hs_hdr = {"alg": "HS256", "typ": "JWT", "kid": MIXED_KID}
    hs_with_oct = make_jws(hs_hdr, m.claims(), OCT_SECRET, alg="HS256")
    # HS256 is not allowed on /mixed; on /mixed-hs only the location's own
    # secret counts -- an oct key published in a JWKS is never an HMAC key.
    refused(rig, "/mixed", hs_with_oct, "Algorithm not allowed", what="HS256 signed with the JWKS oct key")
    refused(rig, "/mixed-hs", hs_with_oct, "Invalid signature",
            what="HS256 signed with the JWKS oct key where HS256 is allowed")
    # The classic confusion: HS256 keyed with the RSA public key's bytes.
    pem = rig.mixed_rsa.public_pem()
    der = rig.mixed_rsa.public.public_bytes(serialization.Encoding.DER,
                                            serialization.PublicFormat.SubjectPublicKeyInfo)
    for name, secret in (("PEM", pem), ("DER", der), ("n", b64url_decode(rig.mixed_rsa.jwk["n"]))):
        tok = make_jws(hs_hdr, m.claims(), secret, alg="HS256")
        refused(rig, "/mixed-hs", tok, what=f"HS256 keyed with the RSA public key ({name})")
    # RS256 under the shared kid, signed by anything but the RSA key: refused.
    rs_hdr = {"alg": "RS256", "typ": "JWT", "kid": MIXED_KID}
    refused(rig, "/mixed", make_jws(rs_hdr, m.claims(), rig.keys.attacker), what="RS256, attacker key, shared kid")
    h_part, p_part = b64url(json_bytes(rs_hdr)), b64url(json_bytes(m.claims()))
    tok = f"{h_part}.{p_part}.{b64url(sign_raw('HS256', OCT_SECRET, f'{h_part}.{p_part}'.encode()))}"
    refused(rig, "/mixed", tok, what="alg RS256 with an HMAC (oct key) signature")
    refused(rig, "/mixed-hs", tok, what="alg RS256 with an HMAC (oct key) signature, HS256 allowed")
    # RS256 signed by the RSA key: the module skips oct keys when it reads a
    # JWKS (jwk.c: "oct keys are never taken from a JWKS"), so the kid names
    # exactly one usable key.  Accepting is fine *because* the RSA key signed
    # it; refusing as ambiguous would be fine too.  Never anything else.
    mark = h.log_offset()
    genuine = make_jws(rs_hdr, m.claims(), rig.mixed_rsa)
    resp = send(h, "/mixed", genuine)
    assert resp.status in (200, 401), resp
    if resp.status == 200:
        assert_ok(resp, what="RS256 signed by the RSA key under the shared kid")
    else:
        assert_invalid_token(resp)
        assert "Ambiguous key id" in h.wait_for_log("Ambiguous key id", since=mark)
    TIMINGS["oct+RSA under one kid, RS256 by the RSA key"] = f"HTTP {resp.status}"
    print(f"\n[attacks] RS256 token signed by the RSA key under a kid shared with an oct key: {resp.status}")


# ---------------------------------------------------------------------------
# shape and size
# ---------------------------------------------------------------------------

def test_wrong_number_of_parts_and_empty_parts(rig):
    good = rig.minter.token("RS256")
    h_, p_, s_ = good.split(".")
    cases = {
        "4 parts": good + ".AAAA",
        "4 parts, empty last": good + ".",
        "6 parts": good + ".AAAA.BBBB.CCCC",
        "6 parts, empty": ".....",
        "5 parts (JWE shape), empty": "....",
        "3 empty parts": "..",
        "empty header": f".{p_}.{s_}",
        "empty payload": f"{h_}..{s_}",
        "empty signature": f"{h_}.{p_}.",
        "empty header and payload": f"..{s_}",
        "only dots and a signature": f"...{s_}",
        "2 parts": f"{h_}.{p_}",
        "1 part": h_,
    }
    for what, tok in cases.items():
        refused(rig, "/a", tok, what=what)


def token_of_length(rig, total, key_alg="RS256"):
    """A correctly signed RS256 token of exactly ``total`` characters."""
    sig_len = 342  # 2048-bit RSA signature, base64url
    for hpad in range(0, 6):
        hdr = header_dict(rig)
        if hpad:
            hdr["x"] = "y" * hpad
        hlen = len(b64url(json_bytes(hdr)))
        c = claims(rig, pad="")
        base = len(json_bytes(c))
        want_p = total - hlen - 2 - sig_len
        for extra in range(max(0, (want_p * 3) // 4 - base - 4), (want_p * 3) // 4 - base + 4):
            c["pad"] = "p" * extra
            if len(b64url(json_bytes(c))) == want_p:
                tok = make_jws(hdr, c, rig.keys["RS256"])
                assert len(tok) == total
                return tok
    raise AssertionError(f"could not build a token of {total} characters")


def test_max_token_size_boundary(rig):
    at_limit = token_of_length(rig, 16384)
    assert_ok(send(rig.h, "/a", at_limit), what="a valid token of exactly 16384 bytes")
    over = token_of_length(rig, 16385)
    refused(rig, "/a", over, "Token too large", what="a valid token of 16385 bytes")


def test_one_megabyte_authorization_header(rig):
    big = "A" * (1024 * 1024)
    ISSUED.add(big)
    status, raw = raw_get(rig, "/a", [b"Authorization: Bearer " + big.encode()])
    assert status is not None, f"no HTTP answer to a 1 MB Authorization header: {raw[:200]!r}"
    assert status == 400, f"httpd's own limit should answer 400: {raw[:400]!r}"
    # Below httpd's limit (LimitRequestFieldSize 262144), above the module's:
    jwt_shaped = "A" * 100_000 + "." + "B" * 100_000 + "." + "C" * 342
    refused(rig, "/a", jwt_shaped, "Token too large", what="200 KB JWT-shaped token")
    refused(rig, "/big", jwt_shaped, "Malformed token", what="200 KB JWT-shaped token under a 1 MB limit")
    # Not JWT-shaped (one part) and no introspection: refused by its shape
    # before any size check ("Malformed token: not a JWT ...") -- also
    # without parsing.
    one_part = "A" * 200_000
    refused(rig, "/a", one_part, ["Token too large", "Malformed token"], what="200 KB one-part token")


# ---------------------------------------------------------------------------
# the Authorization header itself
# ---------------------------------------------------------------------------

def test_whitespace_and_crlf_inside_the_header_value(rig):
    tok = rig.minter.token("RS256")
    ISSUED.add(tok)
    a, b = tok[:60].encode(), tok[60:].encode()
    cases = {
        "space inside": b"Authorization: Bearer " + a + b" " + b,
        "tab inside": b"Authorization: Bearer " + a + b"\t" + b,
        "obs-fold (CRLF + SP) inside": b"Authorization: Bearer " + a + b"\r\n " + b,
        "obs-fold (CRLF + HTAB) inside": b"Authorization: Bearer " + a + b"\r\n\t" + b,
        "bare CR inside": b"Authorization: Bearer " + a + b"\r" + b,
        "bare LF inside": b"Authorization: Bearer " + a + b"\n" + b,
        "NUL inside": b"Authorization: Bearer " + a + b"\x00" + b,
        "vertical tab inside": b"Authorization: Bearer " + a + b"\x0b" + b,
    }
    observed = {}
    for what, line in cases.items():
        status, raw = raw_get(rig, "/a", [line])
        by_module = b'error="invalid_request"' in raw.split(b"\r\n\r\n", 1)[0]
        observed[what] = f"{status} ({'mod_mcp_auth' if by_module else 'httpd'})"
        assert status is not None, f"{what}: no HTTP answer: {raw[:200]!r}"
        assert status == 400, f"{what}: expected 400, got {raw[:600]!r}"
    print(f"\n[attacks] whitespace/CRLF inside the header value: {observed}")
    # Several spaces between scheme and token are allowed (RFC 7235: 1*SP).
    assert_ok(send(rig.h, "/a", tok, value=f"Bearer    {tok}"), what="several spaces after Bearer")


def test_bearer_with_tab_separator(rig):
    tok = rig.minter.token("RS256")
    resp = send(rig.h, "/a", tok, value=f"Bearer\t{tok}")
    print(f"\n[attacks] 'Bearer<TAB>token': HTTP {resp.status}")
    TIMINGS["Bearer<TAB>token"] = f"HTTP {resp.status}"
    assert resp.status in (200, 400), resp
    if resp.status == 200:
        assert_ok(resp)
    else:
        assert challenge_params(resp).get("error") == "invalid_request", resp


@pytest.mark.parametrize("scheme", ["bearer", "BEARER", "BeArEr"])
def test_scheme_is_case_insensitive(rig, scheme):
    tok = rig.minter.token("RS256")
    assert_ok(send(rig.h, "/a", tok, value=f"{scheme} {tok}"), what=f"scheme {scheme}")


def test_two_authorization_headers(rig):
    t1, t2 = rig.minter.token("RS256"), rig.minter.token("ES256")
    ISSUED.add(t1)
    ISSUED.add(t2)
    for what, lines in {
        "two valid bearer tokens": [b"Authorization: Bearer " + t1.encode(), b"Authorization: Bearer " + t2.encode()],
        "the same token twice": [b"Authorization: Bearer " + t1.encode(), b"Authorization: Bearer " + t1.encode()],
        "bearer + basic": [b"Authorization: Bearer " + t1.encode(), b"Authorization: Basic YWxpY2U6c2VjcmV0"],
        "basic + bearer": [b"Authorization: Basic YWxpY2U6c2VjcmV0", b"Authorization: Bearer " + t1.encode()],
        "different case": [b"Authorization: Bearer " + t1.encode(), b"authorization: Bearer " + t2.encode()],
    }.items():
        status, raw = raw_get(rig, "/a", lines)
        assert status == 400, f"{what}: expected 400, got {raw[:600]!r}"
        assert b'error="invalid_request"' in raw.split(b"\r\n\r\n", 1)[0], f"{what}: {raw[:600]!r}"


def test_token_in_query_string_is_ignored_and_not_logged(rig):
    tok = rig.minter.token("RS256")
    ISSUED.add(tok)
    mark = rig.h.log_offset()
    resp = rig.h.request("GET", f"/a?access_token={tok}", [])
    assert resp.status == 401, resp
    params = challenge_params(resp)
    assert "error" not in params, f"a request without a header token is not an invalid token: {params}"
    resp = rig.h.request("GET", f"/a?foo=1&access_token={tok}&bar=2", [])
    assert resp.status == 401 and "error" not in challenge_params(resp), resp
    time.sleep(0.1)
    new = rig.h.log_since(mark)
    assert tok not in new and tok.rsplit(".", 1)[-1] not in new, "the query-string token reached the error log"


# ---------------------------------------------------------------------------
# after everything
# ---------------------------------------------------------------------------

def test_zz_no_5xx_and_no_critical_line(rig):
    """After everything: no request got a 5xx, the module never logged at crit.
    (Crash lines and tokens in the error log are checked after every test by
    the harness, conftest.check_error_logs.)"""
    time.sleep(0.2)
    log = rig.h.log_text()
    crashes = crash_lines(log)
    assert not crashes, crashes[:5]
    access = rig.h.access_log.read_text(errors="replace").splitlines()
    five = [l for l in access if re.search(r'" 5\d\d ', l)]
    assert not five, f"5xx in the access log: {five[:5]}"
    assert "[mcp_auth:crit]" not in log
    print(f"\n[attacks] {ISSUED.count} tokens issued in the session so far, none in an error log; "
          f"{len(access)} requests, no 5xx")
    for k, v in TIMINGS.items():
        print(f"[attacks] {k}: {v}")
