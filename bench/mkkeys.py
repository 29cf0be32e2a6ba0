#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""Key material and tokens for bench/run.

Writes into OUTDIR:

  rsa.pem, ec.pem, ed.pem  signing keys (RSA 2048, EC P-256, Ed25519), PKCS#8 PEM
  jwks.json            the public keys: kid, use=sig, alg (RS256 / ES256 / EdDSA)
  jwks-noed.json       the same without the Ed25519 key (for a peer that cannot
                       parse an OKP key; bench/run decides which one it serves)
  rs256.jwt            one valid RS256 token (case 1)
  rs256_many.txt       COUNT distinct valid RS256 tokens, one per line (case 2)
  rs256_big.txt        BIG distinct valid RS256 tokens, disjoint from the
                       COUNT ones (case 7; only when BIG > 0)
  es256.jwt            one valid ES256 token (correctness check)
  es256_many.txt       COUNT distinct valid ES256 tokens (case 3)
  eddsa.jwt            one valid EdDSA (Ed25519) token (correctness check)
  eddsa_many.txt       COUNT distinct valid EdDSA tokens (case 6)
  bad_sig.jwt          well-formed RS256 token naming the real RSA kid but
                       signed by another RSA key: a genuine bad signature (case 4)
  unknown_kid.jwt      RS256 token naming a kid the JWKS does not have (case 8)
  expired.jwt          RS256 token signed by the real key, exp an hour ago (case 9)
  ca.crt               a throwaway CA: the trust anchor for the IdP's TLS
  idp.crt, idp.key     the HTTPS "IdP" server certificate (subjectAltName
                       IP:127.0.0.1, EC P-256) issued by that CA

Every valid token: iss=ISSUER, aud=AUDIENCE, sub, iat, exp one day after it
was made, and a jti; the distinct tokens differ in sub and jti.

RSA signing costs about a millisecond per token in Python, so the token pools
are signed by JOBS processes in parallel, and with --cache DIR (a directory
under /tmp) the signing keys and the pools are kept there and reused by the
next run for up to 12 hours (the tokens then still have 12 hours to live): a
pool file is named by the key's fingerprint, the issuer, the audience, the
pool and its size, so a different key, issuer or count never reuses it.

Needs only Debian's python3-jwt and python3-cryptography.
Usage: mkkeys.py OUTDIR ISSUER AUDIENCE [COUNT [BIG]] [--jobs N] [--cache DIR]
"""
import argparse
import base64
import datetime
import hashlib
import ipaddress
import json
import multiprocessing
import os
import shutil
import sys
import time

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from jwt.algorithms import ECAlgorithm, OKPAlgorithm, RSAAlgorithm

RSA_KID = "bench-rs256"
EC_KID = "bench-es256"
ED_KID = "bench-eddsa"
UNKNOWN_KID = "bench-not-in-the-jwks"
CACHE_MAX_AGE = 12 * 3600   # tokens live a day: reuse only while 12 h remain
TOKEN_LIFETIME = 86400


def pem(key):
    return key.private_bytes(serialization.Encoding.PEM,
                             serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def load_pem(path):
    with open(path, "rb") as f:
        return serialization.load_pem_private_key(f.read(), password=None)


def public_jwk(key, alg, kid):
    conv = {"RS": RSAAlgorithm, "ES": ECAlgorithm, "Ed": OKPAlgorithm}[alg[:2]]
    jwk = json.loads(conv.to_jwk(key.public_key()))
    jwk.pop("key_ops", None)          # IdPs publish use=sig rather than key_ops
    jwk.update({"kid": kid, "use": "sig", "alg": alg})
    return jwk


def fingerprint(key):
    der = key.public_key().public_bytes(serialization.Encoding.DER,
                                        serialization.PublicFormat.SubjectPublicKeyInfo)
    return hashlib.sha256(der).hexdigest()[:16]


def b64(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


# ------------------------------------------------ parallel pool signing ---
# A worker signs with the key it loaded once (pyjwt's per-call key handling
# and header encoding are skipped: the header is the same for every token).
_W = {}


def _worker_init(key_pem, alg, kid):
    _W["key"] = serialization.load_pem_private_key(key_pem, password=None)
    _W["alg"] = alg
    _W["head"] = b64(json.dumps({"alg": alg, "kid": kid, "typ": "JWT"}, separators=(",", ":")).encode())


def _sign(signing_input):
    key, alg = _W["key"], _W["alg"]
    data = signing_input.encode()
    if alg == "RS256":
        sig = key.sign(data, padding.PKCS1v15(), hashes.SHA256())
    elif alg == "ES256":
        from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
        r, s = decode_dss_signature(key.sign(data, ec.ECDSA(hashes.SHA256())))
        sig = r.to_bytes(32, "big") + s.to_bytes(32, "big")
    else:
        sig = key.sign(data)
    return signing_input + "." + b64(sig)


def _chunk(args):
    issuer, audience, prefix, now, lo, hi = args
    head = _W["head"]
    out = []
    for n in range(lo, hi):
        claims = {"iss": issuer, "aud": audience, "sub": f"bench-user-{prefix}-{n}",
                  "iat": now, "exp": now + TOKEN_LIFETIME, "jti": f"{prefix}-{n}",
                  "scope": "mcp:tools"}
        out.append(_sign(head + "." + b64(json.dumps(claims, separators=(",", ":")).encode())))
    return out


def sign_pool(key, alg, kid, issuer, audience, prefix, count, jobs):
    now = int(time.time())
    step = max(200, count // (jobs * 8) or 1)
    work = [(issuer, audience, prefix, now, lo, min(lo + step, count)) for lo in range(0, count, step)]
    if jobs <= 1 or count < 2000:
        _worker_init(pem(key), alg, kid)
        return [t for w in work for t in _chunk(w)]
    with multiprocessing.Pool(jobs, _worker_init, (pem(key), alg, kid)) as pool:
        return [t for part in pool.map(_chunk, work) for t in part]


def pool_file(out, cache, name, key, alg, kid, issuer, audience, prefix, count, jobs):
    """Write OUTDIR/name with COUNT tokens, from the cache when it has them."""
    dest = os.path.join(out, name)
    cached = None
    if cache:
        tag = hashlib.sha256(f"{fingerprint(key)}|{alg}|{kid}|{issuer}|{audience}|{prefix}".encode()).hexdigest()[:16]
        cached = os.path.join(cache, f"pool-{prefix}-{count}-{tag}.txt")
        if os.path.exists(cached) and time.time() - os.path.getmtime(cached) < CACHE_MAX_AGE:
            shutil.copyfile(cached, dest)
            print(f"mkkeys: {name}: {count} tokens reused from {cached}", file=sys.stderr)
            return
    t0 = time.time()
    toks = sign_pool(key, alg, kid, issuer, audience, prefix, count, jobs)
    with open(dest, "w") as f:
        f.write("\n".join(toks) + "\n")
    print(f"mkkeys: {name}: {count} {alg} tokens signed in {time.time() - t0:.1f} s ({jobs} processes)",
          file=sys.stderr)
    if cached:
        tmp = cached + f".{os.getpid()}"
        shutil.copyfile(dest, tmp)
        os.replace(tmp, cached)


def signing_keys(cache):
    """(rsa, ec, ed25519) keys: from the cache while younger than CACHE_MAX_AGE, else new."""
    names = ("rsa.pem", "ec.pem", "ed.pem")
    if cache:
        paths = [os.path.join(cache, n) for n in names]
        if all(os.path.exists(p) and time.time() - os.path.getmtime(p) < CACHE_MAX_AGE for p in paths):
            return [load_pem(p) for p in paths]
    keys = [rsa.generate_private_key(public_exponent=65537, key_size=2048),
            ec.generate_private_key(ec.SECP256R1()),
            ed25519.Ed25519PrivateKey.generate()]
    if cache:
        for n, k in zip(names, keys):
            fd = os.open(os.path.join(cache, n + ".tmp"), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "wb") as f:
                f.write(pem(k))
            os.replace(os.path.join(cache, n + ".tmp"), os.path.join(cache, n))
        # new keys: the old pools can never match again
        for old in os.listdir(cache):
            if old.startswith("pool-"):
                os.unlink(os.path.join(cache, old))
    return keys


def tls_cert(out):
    """A throwaway CA (ca.crt) and the IdP's server certificate for 127.0.0.1."""
    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "mcp-bench throwaway CA")])
    ca = (x509.CertificateBuilder()
          .subject_name(ca_name).issuer_name(ca_name)
          .public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number())
          .not_valid_before(now - datetime.timedelta(minutes=5))
          .not_valid_after(now + datetime.timedelta(days=2))
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
          .add_extension(x509.KeyUsage(digital_signature=False, content_commitment=False,
                                       key_encipherment=False, data_encipherment=False,
                                       key_agreement=False, key_cert_sign=True, crl_sign=True,
                                       encipher_only=False, decipher_only=False), critical=True)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    leaf = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
            .issuer_name(ca_name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=2))
            .add_extension(x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .sign(ca_key, hashes.SHA256()))
    with open(os.path.join(out, "ca.crt"), "wb") as f:
        f.write(ca.public_bytes(serialization.Encoding.PEM))
    with open(os.path.join(out, "idp.crt"), "wb") as f:
        f.write(leaf.public_bytes(serialization.Encoding.PEM))
    with open(os.path.join(out, "idp.key"), "wb") as f:
        f.write(pem(key))


def main():
    ap = argparse.ArgumentParser(usage=__doc__)
    ap.add_argument("out")
    ap.add_argument("issuer")
    ap.add_argument("audience")
    ap.add_argument("count", nargs="?", type=int, default=10000)
    ap.add_argument("big", nargs="?", type=int, default=0)
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--cache", default="")
    a = ap.parse_args()
    out, issuer, audience = a.out, a.issuer, a.audience
    os.makedirs(out, exist_ok=True)
    cache = a.cache
    if cache:
        if not os.path.realpath(cache).startswith("/tmp/"):
            sys.exit("mkkeys: --cache must be a directory under /tmp")
        try:
            os.makedirs(cache, mode=0o700, exist_ok=True)
            if not os.access(cache, os.W_OK | os.X_OK):
                raise PermissionError(cache)
        except OSError as e:
            # another user's cache: sign afresh rather than fail the run
            print(f"mkkeys: not using the token cache {cache}: {e}", file=sys.stderr)
            cache = ""

    rsa_key, ec_key, ed_key = signing_keys(cache)
    rogue = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    for name, key in (("rsa.pem", rsa_key), ("ec.pem", ec_key), ("ed.pem", ed_key)):
        with open(os.path.join(out, name), "wb") as f:
            f.write(pem(key))
    keys = [public_jwk(rsa_key, "RS256", RSA_KID), public_jwk(ec_key, "ES256", EC_KID)]
    with open(os.path.join(out, "jwks-noed.json"), "w") as f:
        json.dump({"keys": keys}, f, indent=1)
    with open(os.path.join(out, "jwks.json"), "w") as f:
        json.dump({"keys": keys + [public_jwk(ed_key, "EdDSA", ED_KID)]}, f, indent=1)

    now = int(time.time())

    def token(key, alg, kid, n, exp=None):
        claims = {"iss": issuer, "aud": audience, "sub": f"bench-user-{n}",
                  "iat": now, "exp": exp or now + TOKEN_LIFETIME, "jti": f"{alg.lower()}-{n}",
                  "scope": "mcp:tools"}
        return jwt.encode(claims, key, algorithm=alg, headers={"kid": kid, "typ": "JWT"})

    def write(name, text):
        with open(os.path.join(out, name), "w") as f:
            f.write(text + "\n")

    write("rs256.jwt", token(rsa_key, "RS256", RSA_KID, "single"))
    write("es256.jwt", token(ec_key, "ES256", EC_KID, "single"))
    write("eddsa.jwt", token(ed_key, "EdDSA", ED_KID, "single"))
    write("bad_sig.jwt", token(rogue, "RS256", RSA_KID, "forged"))
    write("unknown_kid.jwt", token(rogue, "RS256", UNKNOWN_KID, "unknown-kid"))
    # iat two hours ago, exp one hour ago: far beyond any clock-skew allowance
    claims = {"iss": issuer, "aud": audience, "sub": "bench-user-expired", "iat": now - 7200,
              "exp": now - 3600, "jti": "expired", "scope": "mcp:tools"}
    write("expired.jwt", jwt.encode(claims, rsa_key, algorithm="RS256", headers={"kid": RSA_KID, "typ": "JWT"}))
    pools = [("rs256_many.txt", rsa_key, "RS256", RSA_KID, "rs", a.count),
             ("es256_many.txt", ec_key, "ES256", EC_KID, "es", a.count),
             ("eddsa_many.txt", ed_key, "EdDSA", ED_KID, "ed", a.count)]
    if a.big > 0:
        pools.append(("rs256_big.txt", rsa_key, "RS256", RSA_KID, "rsbig", a.big))
    for name, key, alg, kid, prefix, count in pools:
        pool_file(out, cache, name, key, alg, kid, issuer, audience, prefix, count, a.jobs)
    tls_cert(out)


if __name__ == "__main__":
    main()
