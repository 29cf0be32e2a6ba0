# SPDX-License-Identifier: Apache-2.0
"""mod_mcp_auth JWT validation against a real httpd and an HTTPS JWKS endpoint.

One httpd (event MPM, 3 children, CGI backend) with several <Location>s is
started for the whole module; see the ``server`` fixture for the map.
Tokens are minted by hand (conftest.make_jws) so every attack can be forged.
"""

import base64
import email.utils
import json
import secrets
import time

import pytest

from harness.asserts import CHALLENGE_RE, assert_ok, challenge_params
from harness.checks import crash_lines
from conftest import (
    ASYM_ALGS,
    AUDIENCE,
    HMAC_ALGS,
    HMAC_SECRET,
    ISSUER,
    b64url,
    b64url_decode,
    free_port,
    make_jws,
    mcp_location,
    public_jwk,
    sign_raw,
)

WEAK_ISSUER = "https://weak.mcp-test.example"
UNREACHABLE_ISSUER = "https://down.mcp-test.example"

# Every token this module sends to httpd; the last test checks none of them
# (nor their signatures) ever reached the error log.
SENT_TOKENS = []



@pytest.fixture(scope="module")
def server(httpd_factory, jwks_server, mcp_auth_so):
    closed_port = free_port()  # nothing listens there
    unreachable_jwks = f"https://127.0.0.1:{closed_port}/jwks.json"
    jwks = jwks_server.jwks_uri
    locations = {
        # default algorithms (RS*, PS*, ES*, EdDSA), default skew 30
        "/rs": mcp_location(jwks_uri=jwks),
        "/rsonly": mcp_location(jwks_uri=jwks, extra="MCPAuthAlgorithms RS256"),
        # the classic confusion setup: RS256 and HS* both allowed
        "/hs": mcp_location(jwks_uri=jwks, extra=(
            "MCPAuthAlgorithms RS256 HS256 HS384 HS512\n"
            f"MCPAuthHMACSecret {HMAC_SECRET}")),
        "/typ": mcp_location(jwks_uri=jwks, extra="MCPAuthTokenType at+jwt"),
        "/hdr": mcp_location(jwks_uri=jwks, extra="MCPAuthTokenHeader X-MCP-Token"),
        "/small": mcp_location(jwks_uri=jwks, extra="MCPAuthMaxTokenSize 2048"),
        "/skew": mcp_location(jwks_uri=jwks, extra="MCPAuthClockSkew 120"),
        "/noskew": mcp_location(jwks_uri=jwks, extra="MCPAuthClockSkew 0"),
        "/claims": mcp_location(jwks_uri=jwks, extra="MCPAuthRequiredClaims sub email"),
        "/ruser": mcp_location(jwks_uri=jwks, extra="MCPAuthRemoteUserClaim email"),
        "/weak": mcp_location(WEAK_ISSUER, jwks_server.weak_jwks_uri),
        "/down": mcp_location(UNREACHABLE_ISSUER, unreachable_jwks),
    }
    # Each test reads its own refusal's log line, many of one reason in a
    # row: every refusal is logged (the rate limit: test_availability_config).
    h = httpd_factory.start(locations, server_conf="MCPAuthHTTPTimeout 3\nMCPAuthRefusalLogInterval 0",
                            module_so=mcp_auth_so, name="jwt")
    h.unreachable_jwks = unreachable_jwks
    try:
        yield h
    finally:
        h.stop()


# ---------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------

def send(server, path, token, *, header="Authorization", scheme="Bearer", method="GET"):
    SENT_TOKENS.append(token)
    value = f"{scheme} {token}" if scheme else token
    return server.request(method, path, [(header, value)])


def sig_part(token):
    return token.rsplit(".", 1)[-1] if token.count(".") >= 2 else ""


def assert_token_not_logged(server, token):
    log = server.log_text()
    assert token not in log, "the error log contains the token"
    sig = sig_part(token)
    if len(sig) >= 16:
        assert sig not in log, "the error log contains the token's signature"


def single_challenge(resp):
    vals = resp.header_all("WWW-Authenticate")
    assert len(vals) == 1, f"expected exactly one WWW-Authenticate header: {resp!r}"
    v = vals[0]
    assert v.startswith("Bearer "), v
    assert CHALLENGE_RE.match(v), f"malformed challenge (unquoted param, quote or backslash inside?): {v!r}"
    assert v.count("Bearer") == 1, f"more than one Bearer challenge: {v!r}"
    return v


def assert_no_token_challenge(server, resp, location):
    assert resp.status == 401, resp
    v = single_challenge(resp)
    params = challenge_params(v)
    assert params.get("realm") == "mcp", v
    assert params.get("resource_metadata") == (
        f"http://127.0.0.1:{server.port}/.well-known/oauth-protected-resource{location}"), v
    assert "error=" not in v, v
    assert "error" not in params, v


def assert_invalid_token(server, resp, token, mark, phrases=None):
    """401 invalid_token, JSON body, and (if given) one of ``phrases`` in the
    error log since ``mark``; the token never in the log."""
    assert resp.status == 401, resp
    v = single_challenge(resp)
    params = challenge_params(v)
    assert params.get("error") == "invalid_token", v
    assert "error_description" in params and params["error_description"], v
    ctype = resp.header("Content-Type") or ""
    assert ctype.split(";")[0].strip().lower() == "application/json", resp
    body = resp.json()
    assert body.get("error") == "invalid_token", body
    assert isinstance(body.get("error_description"), str) and body["error_description"], body
    if isinstance(phrases, str):
        phrases = [phrases]
    if phrases:
        log = server.wait_for_log(phrases, since=mark)
        assert any(p in log for p in phrases), (
            f"error log does not name the reason (one of {phrases!r}); new log lines:\n{log}")
    else:
        log = server.wait_for_log("[mcp_auth:", since=mark)
        assert "[mcp_auth:" in log, f"the rejection was not logged by mcp_auth; new log lines:\n{log}"
    assert_token_not_logged(server, token)


def rejected(server, path, token, phrases=None, **kw):
    mark = server.log_offset()
    resp = send(server, path, token, **kw)
    assert_invalid_token(server, resp, token, mark, phrases)
    return resp


def accepted(server, path, token, user="alice", **kw):
    resp = send(server, path, token, **kw)
    assert_ok(resp, user)
    assert_token_not_logged(server, token)
    return resp


def assert_invalid_request(resp):
    assert resp.status == 400, resp
    v = single_challenge(resp)
    assert challenge_params(v).get("error") == "invalid_request", v


def early_in_second() -> int:
    """Wait (at most ~0.5 s) so the next few hundred ms stay within one
    wall-clock second; returns that second.  Keeps +-1 s boundary tests exact."""
    frac = time.time() % 1
    if frac > 0.5:
        time.sleep(1.02 - frac)
    return int(time.time())


# ---------------------------------------------------------------------------
# requests without a usable token
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("location", ["/rs", "/hdr", "/hs"])
def test_no_token_gets_bare_challenge(server, location):
    resp = server.request("GET", location, [])
    assert_no_token_challenge(server, resp, location)


def test_basic_scheme_is_treated_as_no_token(server):
    resp = server.request("GET", "/rs", [("Authorization", "Basic dXNlcjpwYXNzd29yZA==")])
    assert_no_token_challenge(server, resp, "/rs")


def test_custom_token_header_is_ignored_where_not_configured(server, minter):
    token = minter.token("RS256")
    resp = send(server, "/rs", token, header="X-MCP-Token", scheme=None)
    assert_no_token_challenge(server, resp, "/rs")


def test_options_without_token_never_reaches_handler(server):
    # SPEC section 3 step 2 (issue 10 item 5): a token-less OPTIONS used to
    # pass to the handler. A preflight from an origin that is not allowed
    # (default: only the resource's own) is refused ...
    resp = server.request("OPTIONS", "/rs", [("Origin", "https://client.example"),
                                              ("Access-Control-Request-Method", "POST")])
    assert resp.status == 403, resp
    assert not resp.header_all("WWW-Authenticate"), resp
    assert "REQUEST_METHOD" not in resp.text, resp
    # ... and an OPTIONS that is no preflight is authenticated like any method
    resp = server.request("OPTIONS", "/rs")
    assert_no_token_challenge(server, resp, "/rs")
    assert "REQUEST_METHOD" not in resp.text, resp


# ---------------------------------------------------------------------------
# malformed requests -> 400 invalid_request
# ---------------------------------------------------------------------------

def test_two_authorization_headers(server, minter):
    t1, t2 = minter.token("RS256"), minter.token("ES256")
    SENT_TOKENS.extend([t1, t2])
    resp = server.request("GET", "/rs", [("Authorization", f"Bearer {t1}"),
                                         ("Authorization", f"Bearer {t2}")])
    assert_invalid_request(resp)
    assert_token_not_logged(server, t1)
    assert_token_not_logged(server, t2)


@pytest.mark.parametrize("value", ["Bearer", "Bearer ", "bearer"], ids=["bare", "trailing-space", "lowercase"])
def test_empty_bearer(server, value):
    resp = server.request("GET", "/rs", [("Authorization", value)])
    assert_invalid_request(resp)


@pytest.mark.parametrize("sep", [" ", ","], ids=["space", "comma"])
def test_token_with_characters_outside_b64token(server, minter, sep):
    good = minter.token("RS256")
    h, p, s = good.split(".")
    token = f"{h}.{p}{sep}{p}.{s}"
    SENT_TOKENS.append(token)
    resp = server.request("GET", "/rs", [("Authorization", f"Bearer {token}")])
    assert_invalid_request(resp)
    assert_token_not_logged(server, token)


# ---------------------------------------------------------------------------
# good tokens
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("alg", ASYM_ALGS)
def test_good_token_every_algorithm(server, minter, alg):
    user = f"user-{alg.lower()}"
    accepted(server, "/rs", minter.token(alg, sub=user), user=user)


def test_good_token_p384_key_without_alg_in_jwk(server, minter, keys):
    k = keys.p384_noalg
    accepted(server, "/rs", minter.token("ES384", key=k, header=minter.header("ES384", k)))


@pytest.mark.parametrize("alg", HMAC_ALGS)
def test_good_hmac_token(server, minter, alg):
    user = f"hmac-{alg.lower()}"
    accepted(server, "/hs", minter.token(alg, sub=user), user=user)


def test_bearer_scheme_is_case_insensitive(server, minter):
    accepted(server, "/rs", minter.token("RS256"), scheme="bearer")


def test_rs256_still_accepted_on_hmac_location(server, minter):
    accepted(server, "/hs", minter.token("RS256"))


def test_aud_array_containing_the_audience(server, minter):
    accepted(server, "/rs", minter.token("ES256", aud=["https://other.example", AUDIENCE]))


def test_remote_user_claim(server, minter):
    accepted(server, "/ruser", minter.token("RS256", email="alice@example.com"),
             user="alice@example.com")


def test_custom_token_header(server, minter):
    accepted(server, "/hdr", minter.token("RS256"), header="X-MCP-Token", scheme=None)
    # Authorization: Bearer keeps working there
    accepted(server, "/hdr", minter.token("ES256"))


def test_custom_token_header_bad_token(server, minter):
    good = minter.token("RS256")
    h, p, s = good.split(".")
    token = f"{h}.{p}.{s[:-8]}AAAAAAAA"
    mark = server.log_offset()
    resp = send(server, "/hdr", token, header="X-MCP-Token", scheme=None)
    assert_invalid_token(server, resp, token, mark, "Invalid signature")


# ---------------------------------------------------------------------------
# RFC 8725 attack classes
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("none", ["none", "None", "NONE"])
def test_alg_none(server, minter, keys, none):
    header = {"alg": none, "typ": "JWT", "kid": keys["RS256"].kid}
    token = make_jws(header, minter.claims(), signature="")
    rejected(server, "/rs", token, "Algorithm not allowed")


def test_alg_none_with_signature_bytes(server, minter, keys):
    header = {"alg": "none", "typ": "JWT", "kid": keys["RS256"].kid}
    token = make_jws(header, minter.claims(), signature=secrets.token_bytes(256))
    rejected(server, "/rs", token, "Algorithm not allowed")


def test_rs_hs_confusion_on_rs256_only_location(server, minter, keys):
    rsa = keys["RS256"]
    header = {"alg": "HS256", "typ": "JWT", "kid": rsa.kid}
    token = make_jws(header, minter.claims(), rsa.public_pem(), alg="HS256")
    rejected(server, "/rsonly", token, "Algorithm not allowed")


@pytest.mark.parametrize("with_kid", [False, True], ids=["no-kid", "rsa-kid"])
def test_rs_hs_confusion_on_hmac_location(server, minter, keys, with_kid):
    rsa = keys["RS256"]
    header = {"alg": "HS256", "typ": "JWT"}
    if with_kid:
        header["kid"] = rsa.kid
    token = make_jws(header, minter.claims(), rsa.public_pem(), alg="HS256")
    if with_kid:
        # The RSA key must never become an HMAC key; the reason may be phrased
        # as a bad signature or as a key that does not fit the algorithm.
        rejected(server, "/hs", token, ["Invalid signature", "Unknown key id", "Algorithm not allowed"])
    else:
        rejected(server, "/hs", token, "Invalid signature")


def test_hmac_token_on_location_without_hmac(server, minter):
    rejected(server, "/rs", minter.token("HS256"), "Algorithm not allowed")


@pytest.mark.parametrize("alg", ["RS256", "ES256", "EdDSA"])
def test_stripped_signature(server, minter, alg):
    good = minter.token(alg)
    token = good.rsplit(".", 1)[0] + "."
    rejected(server, "/rs", token, ["Invalid signature", "Malformed token"])


def test_tampered_payload(server, minter):
    good = minter.token("RS256")
    h, _p, s = good.split(".")
    evil = b64url(json.dumps(minter.claims(sub="admin"), separators=(",", ":")).encode())
    token = f"{h}.{evil}.{s}"
    rejected(server, "/rs", token, "Invalid signature")


@pytest.mark.parametrize("alg", ["RS256", "PS256", "ES256", "ES512", "EdDSA"])
def test_tampered_signature(server, minter, alg):
    good = minter.token(alg)
    h, p, s = good.split(".")
    raw = bytearray(b64url_decode(s))
    raw[len(raw) // 2] ^= 0x01
    token = f"{h}.{p}.{b64url(bytes(raw))}"
    rejected(server, "/rs", token, "Invalid signature")


def test_signature_from_other_key_with_same_kid(server, minter, keys):
    impostor = keys.rs256_impostor
    assert impostor.kid == keys["RS256"].kid
    token = minter.token("RS256", key=impostor, header=minter.header("RS256", impostor))
    rejected(server, "/rs", token, "Invalid signature")


def test_unknown_kid(server, minter, keys):
    header = minter.header("RS256", kid=f"no-such-kid-{secrets.token_hex(4)}")
    token = make_jws(header, minter.claims(), keys["RS256"], alg="RS256")
    rejected(server, "/rs", token, "Unknown key id")


def _attacker_cert_b64der(jwks_server):
    pem = jwks_server.attacker_cert_pem.decode()
    body = "".join(l for l in pem.splitlines() if "-----" not in l)
    return base64.b64encode(base64.b64decode(body)).decode()


@pytest.mark.parametrize("variant", ["jku", "x5u", "jwk", "x5c", "jwk-no-kid", "jwk-real-kid"])
def test_key_material_from_token_header_is_never_used(server, minter, keys, jwks_server, variant):
    att = keys.attacker
    header = {"alg": "RS256", "typ": "JWT", "kid": att.kid}
    phrases = "Unknown key id"
    if variant == "jku":
        header["jku"] = jwks_server.url(jwks_server.attacker_jwks_path)
    elif variant == "x5u":
        header["x5u"] = jwks_server.url(jwks_server.attacker_cert_path)
    elif variant == "jwk":
        header["jwk"] = att.jwk
    elif variant == "x5c":
        header["x5c"] = [_attacker_cert_b64der(jwks_server)]
    elif variant == "jwk-no-kid":
        del header["kid"]
        header["jwk"] = att.jwk
        # every RSA key of the issuer is tried, none verifies
        phrases = ["Invalid signature", "Unknown key id"]
    elif variant == "jwk-real-kid":
        header["kid"] = keys["RS256"].kid
        header["jwk"] = public_jwk(att.public, kid=keys["RS256"].kid, alg="RS256")
        phrases = "Invalid signature"
    before = {p: jwks_server.count(p) for p in (jwks_server.attacker_jwks_path,
                                                jwks_server.attacker_cert_path)}
    token = make_jws(header, minter.claims(), att, alg="RS256")
    rejected(server, "/rs", token, phrases)
    for p, n in before.items():
        assert jwks_server.count(p) == n, f"the module fetched {p} named in the token header"


@pytest.mark.parametrize("variant", ["exp", "b64", "unknown-ext"])
def test_crit_header(server, minter, keys, variant):
    k = keys["RS256"]
    header = minter.header("RS256", k)
    if variant == "exp":
        header.update(crit=["exp"], exp=int(time.time()) + 600)
    elif variant == "b64":
        header.update(crit=["b64"], b64=True)
    else:
        header.update(crit=["urn:example:policy"], **{"urn:example:policy": "x"})
    token = make_jws(header, minter.claims(), k)
    rejected(server, "/rs", token, "Unsupported crit header")


# ---------------------------------------------------------------------------
# time claims (default skew 30 s)
# ---------------------------------------------------------------------------

def test_expired_beyond_skew(server, minter):
    now = early_in_second()
    rejected(server, "/rs", minter.token("RS256", iat=now - 600, exp=now - 31), "Token expired")


def test_expired_within_skew(server, minter):
    now = early_in_second()
    accepted(server, "/rs", minter.token("RS256", iat=now - 600, exp=now - 29))


def test_expired_within_configured_skew(server, minter):
    now = early_in_second()
    accepted(server, "/skew", minter.token("ES256", iat=now - 600, exp=now - 60))
    rejected(server, "/rs", minter.token("ES256", iat=now - 600, exp=now - 60), "Token expired")


def test_nbf_in_future_beyond_skew(server, minter):
    now = early_in_second()
    rejected(server, "/rs", minter.token("RS256", nbf=now + 60), "Token not yet valid")


def test_nbf_in_future_within_skew(server, minter):
    now = early_in_second()
    accepted(server, "/rs", minter.token("RS256", nbf=now + 20))


def test_iat_in_future_beyond_skew(server, minter):
    now = early_in_second()
    rejected(server, "/rs", minter.token("RS256", iat=now + 60, exp=now + 900), "Token issued in the future")


def test_iat_in_future_within_skew(server, minter):
    now = early_in_second()
    accepted(server, "/rs", minter.token("RS256", iat=now + 20))


# ---------------------------------------------------------------------------
# issuer / audience / required claims
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("iss", [
    "https://evil.mcp-test.example/realms/mcp",
    ISSUER + "/",
    ISSUER.replace("https://idp.", "https://IDP."),
    ISSUER.replace("https://", "http://"),
], ids=["other", "trailing-slash", "case", "http"])
def test_wrong_issuer(server, minter, iss):
    rejected(server, "/rs", minter.token("RS256", iss=iss), "Invalid issuer")


def test_issuer_of_another_location(server, minter):
    # /weak trusts WEAK_ISSUER only; a token of the main issuer must not pass there
    rejected(server, "/weak", minter.token("RS256"), "Invalid issuer")


@pytest.mark.parametrize("aud", ["https://other.mcp-test.example/api",
                                 ["https://a.example", "https://b.example"],
                                 []], ids=["string", "array", "empty-array"])
def test_wrong_audience(server, minter, aud):
    rejected(server, "/rs", minter.token("RS256", aud=aud), "Invalid audience")


def test_missing_audience(server, minter):
    rejected(server, "/rs", minter.token("RS256", aud=None), ["Invalid audience", "Missing required claims"])


def test_missing_sub(server, minter):
    rejected(server, "/rs", minter.token("RS256", sub=None), "Missing required claims")


def test_missing_exp(server, minter):
    rejected(server, "/rs", minter.token("RS256", exp=None), "Missing required claims")


def test_configured_required_claims(server, minter):
    rejected(server, "/claims", minter.token("RS256"), "Missing required claims")
    accepted(server, "/claims", minter.token("RS256", email="alice@example.com"))


# ---------------------------------------------------------------------------
# size limits
# ---------------------------------------------------------------------------

def test_token_over_configured_max_size(server, minter):
    token = minter.token("RS256", pad="x" * 2500)
    assert len(token) > 2048
    rejected(server, "/small", token, "Token too large")


def test_token_under_configured_max_size(server, minter):
    token = minter.token("ES256", pad="x" * 1000)
    assert len(token) < 2048
    accepted(server, "/small", token)


def test_token_over_default_max_size(server, minter):
    token = minter.token("ES256", pad="x" * 17000)
    assert len(token) > 16384
    rejected(server, "/rs", token, "Token too large")


# ---------------------------------------------------------------------------
# malformed tokens
# ---------------------------------------------------------------------------

def _signed_raw(minter, keys, header_part, payload_part, alg="RS256"):
    """Sign exactly header_part.payload_part (already encoded strings)."""
    sig = sign_raw(alg, keys[alg], f"{header_part}.{payload_part}".encode())
    return f"{header_part}.{payload_part}.{b64url(sig)}"


@pytest.mark.parametrize("variant", ["plus-slash", "tilde", "bad-length"])
def test_bad_base64url_in_header(server, minter, keys, variant):
    h = b64url(json.dumps(minter.header("RS256")).encode())
    p = b64url(json.dumps(minter.claims()).encode())
    if variant == "plus-slash":
        h = h[:4] + "+/" + h[6:]
    elif variant == "tilde":
        h = h[:6] + "~" + h[7:]
    else:
        while len(h) % 4 != 1:  # length = 1 (mod 4) is never valid base64
            h += "A"
    token = _signed_raw(minter, keys, h, p)
    rejected(server, "/rs", token, "Malformed token")


def test_padding_in_signature_part(server, minter):
    good = minter.token("RS256")
    h, p, s = good.split(".")
    pad = "=" * (-len(s) % 4)
    assert pad, "RS256-2048 signatures need padding"
    rejected(server, "/rs", f"{h}.{p}.{s}{pad}", "Malformed token")


def test_padding_in_header_part(server, minter, keys):
    header = minter.header("RS256")
    h = b64url(json.dumps(header, separators=(",", ":")).encode())
    while len(h) % 4 == 0:  # make sure padding is needed
        header["x"] = header.get("x", "") + "a"
        h = b64url(json.dumps(header, separators=(",", ":")).encode())
    h += "=" * (-len(h) % 4)
    p = b64url(json.dumps(minter.claims()).encode())
    token = _signed_raw(minter, keys, h, p)  # valid signature over the padded text
    SENT_TOKENS.append(token)
    mark = server.log_offset()
    resp = server.request("GET", "/rs", [("Authorization", f"Bearer {token}")])
    # '=' inside the token is outside RFC 6750's b64token grammar, so a 400
    # invalid_request is as right as a 401 "Malformed token"; never a 200.
    if resp.status == 400:
        assert_invalid_request(resp)
        assert_token_not_logged(server, token)
    else:
        assert_invalid_token(server, resp, token, mark, "Malformed token")


@pytest.mark.parametrize("header", [
    b"not json",
    b'{"alg":"RS256"',
    b'["RS256"]',
    b'"RS256"',
    b"",
    b'{"alg":"RS256","typ":"JWT"}garbage',
], ids=["text", "truncated", "array", "string", "empty", "trailing-garbage"])
def test_non_json_header(server, minter, keys, header):
    if header == b'["RS256"]':
        header = json.dumps([minter.header("RS256")]).encode()
    h = b64url(header)
    p = b64url(json.dumps(minter.claims()).encode())
    rejected(server, "/rs", _signed_raw(minter, keys, h, p), "Malformed token")


@pytest.mark.parametrize("payload", [b"hello world", b'{"sub":"alice"', b"[1,2,3]", b"\xff\xfe\x00"],
                         ids=["text", "truncated", "array", "binary"])
def test_non_json_payload(server, minter, keys, payload):
    h = b64url(json.dumps(minter.header("RS256")).encode())
    rejected(server, "/rs", _signed_raw(minter, keys, h, b64url(payload)), "Malformed token")


def test_duplicate_member_in_header(server, minter, keys):
    kid = keys["RS256"].kid
    raw = f'{{"alg":"RS256","kid":"{kid}","typ":"JWT","alg":"none"}}'.encode()
    p = b64url(json.dumps(minter.claims()).encode())
    token = _signed_raw(minter, keys, b64url(raw), p)  # a valid RS256 signature
    rejected(server, "/rs", token, ["Malformed token", "Algorithm not allowed"])


@pytest.mark.parametrize("nparts", [1, 2, 4])
def test_wrong_number_of_parts(server, minter, nparts):
    h, p, s = minter.token("RS256").split(".")
    token = {1: h + p + s, 2: f"{h}.{p}", 4: f"{h}.{p}.{s}.{s}"}[nparts]
    rejected(server, "/rs", token, "Malformed token")


def test_jwe_is_rejected(server, keys):
    header = {"alg": "RSA-OAEP-256", "enc": "A256GCM", "kid": keys["RS256"].kid, "typ": "JWT"}
    token = ".".join([b64url(json.dumps(header).encode()), b64url(secrets.token_bytes(256)),
                      b64url(secrets.token_bytes(12)), b64url(secrets.token_bytes(200)),
                      b64url(secrets.token_bytes(16))])
    rejected(server, "/rs", token, "Encrypted tokens (JWE) are not accepted")


# ---------------------------------------------------------------------------
# token type (RFC 9068)
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("typ", ["at+jwt", "application/at+jwt"])
def test_typ_accepted(server, minter, typ):
    accepted(server, "/typ", minter.token("RS256", header=minter.header("RS256", typ=typ)))


@pytest.mark.parametrize("typ", ["JWT", None, "jwt", "at+jwt2"], ids=["JWT", "missing", "jwt", "at+jwt2"])
def test_typ_rejected(server, minter, typ):
    header = minter.header("RS256", typ=typ)
    if typ is None:
        header.pop("typ", None)
    rejected(server, "/typ", minter.token("RS256", header=header), "Invalid token type")


# ---------------------------------------------------------------------------
# key / signature format mismatches
# ---------------------------------------------------------------------------

def test_es256_der_signature(server, minter, keys):
    k = keys["ES256"]
    token = make_jws(minter.header("ES256", k), minter.claims(), k, ecdsa_der=True)
    rejected(server, "/rs", token, ["Invalid signature", "Malformed token"])


@pytest.mark.parametrize("which", ["es384-key", "p384-noalg-key"])
def test_es256_against_p384_key(server, minter, keys, which):
    # "ES256" (SHA-256) signed with a P-384 key, 48-byte R||S halves: a
    # verifier that ignores crv would accept this.
    k = keys["ES384"] if which == "es384-key" else keys.p384_noalg
    token = make_jws(minter.header("ES256", k), minter.claims(), k, alg="ES256")
    rejected(server, "/rs", token)


def test_rsa_1024_key_is_rejected(server, minter, keys):
    # the same JWKS carries a good RS256 key: the location itself works
    accepted(server, "/weak", minter.token("RS256", iss=WEAK_ISSUER))
    k = keys.rsa1024
    token = make_jws(minter.header("RS256", k), minter.claims(iss=WEAK_ISSUER), k)
    rejected(server, "/weak", token)


# ---------------------------------------------------------------------------
# the verified-token cache must not change any verdict
# ---------------------------------------------------------------------------

def test_cached_verdict_is_not_shared_across_locations(server, minter):
    token = minter.token("RS256")
    accepted(server, "/rs", token)
    accepted(server, "/rs", token)
    rejected(server, "/typ", token, "Invalid token type")
    rejected(server, "/weak", token, "Invalid issuer")
    rejected(server, "/claims", token, "Missing required claims")
    hs = minter.token("HS256")
    accepted(server, "/hs", hs)
    rejected(server, "/rs", hs, "Algorithm not allowed")


@pytest.mark.slow
def test_cached_token_still_expires(server, minter):
    now = early_in_second()
    token = minter.token("ES256", iat=now, exp=now + 2)
    for _ in range(4):  # lands in several children; later ones may hit the cache
        accepted(server, "/noskew", token)
    time.sleep(max(0.0, now + 3.2 - time.time()))
    rejected(server, "/noskew", token, "Token expired")


# ---------------------------------------------------------------------------
# IdP unreachable
# ---------------------------------------------------------------------------

def test_jwks_unreachable_gives_503(server, minter):
    token = minter.token("RS256", iss=UNREACHABLE_ISSUER)
    resp = send(server, "/down", token)
    assert resp.status == 503, resp
    ra = resp.header("Retry-After")
    assert ra and (ra.strip().isdigit() or email.utils.parsedate(ra)), resp
    assert not resp.header_all("WWW-Authenticate"), resp
    # asking again (inside the refresh cooldown) is still a clean 503
    again = send(server, "/down", minter.token("ES256", iss=UNREACHABLE_ISSUER))
    assert again.status == 503 and again.header("Retry-After"), again
    url = server.unreachable_jwks
    server.wait_for_log("JWKS fetch failed")
    lines = [l for l in server.log_text().splitlines() if "JWKS fetch failed" in l]
    assert lines, f"no 'JWKS fetch failed' in the error log:\n{server.log_text()[-3000:]}"
    assert any(url in l for l in lines), f"'JWKS fetch failed' lines do not name {url}:\n" + "\n".join(lines)
    assert_token_not_logged(server, token)


# ---------------------------------------------------------------------------
# the log, globally
# ---------------------------------------------------------------------------

def test_error_log_never_contains_tokens_or_secrets(server):
    """Runs last in this file: nothing this module sent may be in the log."""
    assert SENT_TOKENS, "no tokens were sent?"
    log = server.log_text()
    leaked = [t[:40] + "..." for t in SENT_TOKENS if t and t in log]
    assert not leaked, f"tokens in the error log: {leaked}"
    leaked = [sig_part(t)[:20] for t in SENT_TOKENS if len(sig_part(t)) >= 16 and sig_part(t) in log]
    assert not leaked, f"token signatures in the error log: {leaked}"
    assert HMAC_SECRET not in log, "the HMAC secret is in the error log"
    crashes = crash_lines(log)
    assert not crashes, "httpd children crashed:\n" + "\n".join(crashes)
