# SPDX-License-Identifier: Apache-2.0
"""mcp-auth-token: keygen / sign / verify, cross-checked against PyJWT and
against tokens minted by the test suite's own JWS code."""

import json
import subprocess
import time

import jwt as pyjwt
import pytest

from conftest import (
    ASYM_ALGS,
    AUDIENCE,
    HMAC_ALGS,
    HMAC_SECRET,
    ISSUER,
    b64url,
    b64url_decode,
    make_jws,
    private_jwk,
)

PRIVATE_MEMBERS = {"d", "p", "q", "dp", "dq", "qi", "oth", "k"}
MIN_SECRET = {"HS256": 32, "HS384": 48, "HS512": 64}
EXPECTED_KTY = {"RS": ("RSA", None), "PS": ("RSA", None), "ES256": ("EC", "P-256"),
                "ES384": ("EC", "P-384"), "ES512": ("EC", "P-521"), "EdDSA": ("OKP", "Ed25519")}


def run(cli, *args, input=None, timeout=60):
    return subprocess.run([str(cli), *map(str, args)], capture_output=True, text=True,
                          input=input, timeout=timeout)


def ok(proc):
    assert proc.returncode == 0, (f"exit {proc.returncode}\nargs: {proc.args}\n"
                                  f"stdout: {proc.stdout}\nstderr: {proc.stderr}")
    return proc


def rejected(proc, reason=None):
    assert proc.returncode == 1, (f"expected exit 1, got {proc.returncode}\nargs: {proc.args}\n"
                                  f"stdout: {proc.stdout}\nstderr: {proc.stderr}")
    assert proc.stderr.strip(), "no reason on stderr"
    if reason:
        assert reason in proc.stderr, f"stderr does not say {reason!r}: {proc.stderr!r}"
    return proc


def decode_part(part):
    return json.loads(b64url_decode(part))


def verified(proc):
    out = json.loads(ok(proc).stdout)
    assert isinstance(out.get("header"), dict) and isinstance(out.get("claims"), dict), out
    return out


def kty_for(alg):
    return EXPECTED_KTY.get(alg) or EXPECTED_KTY[alg[:2]]


@pytest.fixture
def keygen(mcp_auth_cli, tmp_path):
    """keygen(alg) -> (kid, key file, jwks.json path, secret or None)"""
    def _keygen(alg, kid=None):
        kid = kid or f"cli-{alg.lower()}"
        out = tmp_path / f"keys-{alg.lower()}"
        ok(run(mcp_auth_cli, "keygen", "--alg", alg, "--kid", kid, "--out", out))
        jwks_path = out / "jwks.json"
        if alg in HMAC_ALGS:
            keyfile = out / f"{kid}.key"
            assert keyfile.is_file(), f"keygen did not write {keyfile}"
            secret = keyfile.read_text().rstrip("\r\n")
            assert len(secret.encode()) >= MIN_SECRET[alg], f"{alg} secret too short: {len(secret)}"
            return kid, keyfile, jwks_path, secret
        keyfile = out / f"{kid}.pem"
        assert keyfile.is_file(), f"keygen did not write {keyfile}"
        assert "PRIVATE KEY" in keyfile.read_text()
        assert jwks_path.is_file(), f"keygen did not write {jwks_path}"
        return kid, keyfile, jwks_path, None
    return _keygen


def sign(cli, keyfile, kid, alg, *claims, ttl=None):
    args = ["sign", "--key", keyfile, "--kid", kid, "--alg", alg]
    for c in claims:
        args += ["--claim", c]
    if ttl is not None:
        args += ["--ttl", ttl]
    token = ok(run(cli, *args)).stdout.strip()
    assert token.count(".") == 2 and "\n" not in token, token
    return token


# ---------------------------------------------------------------------------
# keygen / sign / verify round trip, CLI only
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("alg", ASYM_ALGS + HMAC_ALGS)
@pytest.mark.slow
def test_roundtrip(mcp_auth_cli, keygen, alg):
    kid, keyfile, jwks_path, secret = keygen(alg)
    if secret is None:
        jwks = json.loads(jwks_path.read_text())
        mine = [k for k in jwks["keys"] if k.get("kid") == kid]
        assert len(mine) == 1, jwks
        jwk = mine[0]
        assert not PRIVATE_MEMBERS & set(jwk), f"jwks.json leaks private members: {sorted(jwk)}"
        kty, crv = kty_for(alg)
        assert jwk["kty"] == kty and jwk.get("crv") == crv, jwk

    token = sign(mcp_auth_cli, keyfile, kid, alg, f"iss={ISSUER}", f"aud={AUDIENCE}", "sub=alice")
    header = decode_part(token.split(".")[0])
    assert header.get("alg") == alg and header.get("kid") == kid, header

    args = ["verify", "--issuer", ISSUER, "--audience", AUDIENCE]
    if secret is not None:
        args += ["--hmac-secret", secret, "--alg", alg]
    else:
        args += ["--jwks", jwks_path]  # default algorithm list
    out = verified(run(mcp_auth_cli, *args, token))
    assert out["header"].get("alg") == alg and out["header"].get("kid") == kid, out
    c = out["claims"]
    assert c.get("sub") == "alice" and c.get("iss") == ISSUER and c.get("aud") == AUDIENCE, c
    assert isinstance(c.get("iat"), int) and c.get("exp") == c["iat"] + 3600, c
    assert abs(c["iat"] - time.time()) < 120, c

    # independent check: PyJWT accepts what the CLI signed
    if secret is not None:
        key = secret.encode()
    else:
        key = pyjwt.PyJWK(jwk).key
    claims = pyjwt.decode(token, key, algorithms=[alg], audience=AUDIENCE, issuer=ISSUER)
    assert claims["sub"] == "alice"


@pytest.mark.parametrize("alg", ["RS256", "PS384", "ES256", "ES512", "EdDSA", "HS256"])
@pytest.mark.slow
def test_verify_rejects_tampered_token(mcp_auth_cli, keygen, alg):
    kid, keyfile, jwks_path, secret = keygen(alg)
    token = sign(mcp_auth_cli, keyfile, kid, alg, f"iss={ISSUER}", f"aud={AUDIENCE}", "sub=alice")
    h, p, s = token.split(".")
    keyargs = ["--hmac-secret", secret, "--alg", alg] if secret else ["--jwks", jwks_path]

    raw = bytearray(b64url_decode(s))
    raw[len(raw) // 2] ^= 0x01
    bad_sig = f"{h}.{p}.{b64url(bytes(raw))}"
    proc = rejected(run(mcp_auth_cli, "verify", *keyargs, bad_sig), "Invalid signature")
    assert not proc.stdout.strip(), proc.stdout

    claims = decode_part(p)
    claims["sub"] = "admin"
    bad_payload = f"{h}.{b64url(json.dumps(claims).encode())}.{s}"
    rejected(run(mcp_auth_cli, "verify", *keyargs, bad_payload), "Invalid signature")


@pytest.mark.slow
def test_verify_checks_issuer_audience_and_alg(mcp_auth_cli, keygen):
    kid, keyfile, jwks_path, _ = keygen("RS256")
    token = sign(mcp_auth_cli, keyfile, kid, "RS256", f"iss={ISSUER}", f"aud={AUDIENCE}", "sub=alice")
    base = ["verify", "--jwks", jwks_path]
    verified(run(mcp_auth_cli, *base, "--issuer", ISSUER, "--audience", AUDIENCE, "--alg", "RS256", token))
    rejected(run(mcp_auth_cli, *base, "--issuer", ISSUER + "/", token), "Invalid issuer")
    rejected(run(mcp_auth_cli, *base, "--audience", "https://other.example", token), "Invalid audience")
    rejected(run(mcp_auth_cli, *base, "--alg", "ES256", token), "Algorithm not allowed")


@pytest.mark.slow
def test_sign_claim_types_and_ttl(mcp_auth_cli, keygen):
    kid, keyfile, jwks_path, _ = keygen("ES256")
    token = sign(mcp_auth_cli, keyfile, kid, "ES256", "sub=bob", "n=42", "f=true", "no=false",
                 'arr=["a","b"]', 'obj={"k":1}', "s=hello world", "hex=0x10", ttl=120)
    c = decode_part(token.split(".")[1])
    assert c["sub"] == "bob" and c["n"] == 42 and c["f"] is True and c["no"] is False, c
    assert c["arr"] == ["a", "b"] and c["obj"] == {"k": 1}, c
    assert c["s"] == "hello world" and c["hex"] == "0x10", c
    assert c["exp"] - c["iat"] == 120, c
    out = verified(run(mcp_auth_cli, "verify", "--jwks", jwks_path, token))
    assert out["claims"]["n"] == 42 and out["claims"]["arr"] == ["a", "b"], out


def test_verify_token_from_stdin(mcp_auth_cli, keygen):
    kid, keyfile, jwks_path, _ = keygen("EdDSA")
    token = sign(mcp_auth_cli, keyfile, kid, "EdDSA", "sub=carol")
    out = verified(run(mcp_auth_cli, "verify", "--jwks", jwks_path, "-", input=token + "\n"))
    assert out["claims"]["sub"] == "carol", out


# ---------------------------------------------------------------------------
# the CLI against the suite's own hand-made tokens
# ---------------------------------------------------------------------------

@pytest.fixture
def suite_jwks(keys, tmp_path):
    p = tmp_path / "suite-jwks.json"
    p.write_text(json.dumps(keys.jwks()))
    return p


@pytest.mark.parametrize("alg", ASYM_ALGS + HMAC_ALGS)
@pytest.mark.slow
def test_verify_suite_minted_tokens(mcp_auth_cli, minter, suite_jwks, alg):
    token = minter.token(alg, sub=f"m-{alg}")
    keyargs = ["--hmac-secret", HMAC_SECRET, "--alg", alg] if alg in HMAC_ALGS else ["--jwks", suite_jwks]
    out = verified(run(mcp_auth_cli, "verify", *keyargs, "--issuer", ISSUER, "--audience", AUDIENCE, token))
    assert out["claims"]["sub"] == f"m-{alg}", out


def test_verify_expired_suite_token(mcp_auth_cli, minter, suite_jwks):
    now = int(time.time())
    token = minter.token("RS256", iat=now - 7200, exp=now - 3600)
    rejected(run(mcp_auth_cli, "verify", "--jwks", suite_jwks, token), "Token expired")


def test_verify_rejects_alg_none(mcp_auth_cli, minter, keys, suite_jwks):
    token = make_jws({"alg": "none", "kid": keys["RS256"].kid}, minter.claims(), signature="")
    rejected(run(mcp_auth_cli, "verify", "--jwks", suite_jwks, token), "Algorithm not allowed")


# ---------------------------------------------------------------------------
# --jws-only: signature and JOSE header only, payload need not be JSON
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("alg", ["ES256", "PS256", "EdDSA"])
@pytest.mark.slow
def test_jws_only_with_non_json_payload(mcp_auth_cli, keys, tmp_path, alg):
    k = keys[alg]
    payload = b"\x00this is not JSON\xff, just bytes"
    token = make_jws({"alg": alg, "kid": k.kid}, payload, k)
    pub = tmp_path / "pub.jwk"
    pub.write_text(json.dumps(k.jwk))

    # No "claims" to show here (the payload is not JSON); only the header is required.
    out = json.loads(ok(run(mcp_auth_cli, "verify", "--jwk", pub, "--jws-only", token)).stdout)
    assert isinstance(out.get("header"), dict), out
    assert out["header"].get("alg") == alg and out["header"].get("kid") == k.kid, out

    # without --jws-only the payload must be JSON claims
    rejected(run(mcp_auth_cli, "verify", "--jwk", pub, token), "Malformed token")

    # a JWK carrying private members works too (only its public part is used)
    priv = tmp_path / "priv.jwk"
    priv.write_text(json.dumps(private_jwk(k.private, kid=k.kid, alg=alg)))
    ok(run(mcp_auth_cli, "verify", "--jwk", priv, "--jws-only", token))

    # and the signature is still checked
    h, p, s = token.split(".")
    raw = bytearray(b64url_decode(s))
    raw[0] ^= 0x80
    rejected(run(mcp_auth_cli, "verify", "--jwk", pub, "--jws-only", f"{h}.{p}.{b64url(bytes(raw))}"),
             "Invalid signature")
