#!/usr/bin/python3
"""Key material and tokens for bench/run.

Writes into OUTDIR:

  rsa.pem, ec.pem      signing keys (RSA 2048, EC P-256), PKCS#8 PEM
  jwks.json            the public keys: kid, use=sig, alg (RS256 / ES256)
  rs256.jwt            one valid RS256 token (case 1)
  rs256_many.txt       COUNT distinct valid RS256 tokens, one per line (case 2)
  es256.jwt            one valid ES256 token (correctness check)
  es256_many.txt       COUNT distinct valid ES256 tokens, one per line (case 3)
  bad_sig.jwt          well-formed RS256 token naming the real RSA kid but
                       signed by another RSA key: a genuine bad signature (case 4)
  ca.crt               a throwaway CA: the trust anchor for the IdP's TLS
  idp.crt, idp.key     the HTTPS "IdP" server certificate (subjectAltName
                       IP:127.0.0.1, EC P-256) issued by that CA

Every token: iss=ISSUER, aud=AUDIENCE, sub, iat=now, exp=now+1 day, and a
jti; the distinct tokens differ in sub and jti.

Needs only Debian's python3-jwt and python3-cryptography.
Usage: mkkeys.py OUTDIR ISSUER AUDIENCE [COUNT]   (COUNT default 10000)
"""
import datetime
import ipaddress
import json
import os
import sys
import time

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

RSA_KID = "bench-rs256"
EC_KID = "bench-es256"


def pem(key):
    return key.private_bytes(serialization.Encoding.PEM,
                             serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def public_jwk(key, alg, kid):
    conv = RSAAlgorithm if alg.startswith("RS") else ECAlgorithm
    jwk = json.loads(conv.to_jwk(key.public_key()))
    jwk.pop("key_ops", None)          # IdPs publish use=sig rather than key_ops
    jwk.update({"kid": kid, "use": "sig", "alg": alg})
    return jwk


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
    if len(sys.argv) not in (4, 5):
        sys.exit(__doc__)
    out, issuer, audience = sys.argv[1:4]
    count = int(sys.argv[4]) if len(sys.argv) == 5 else 10000
    os.makedirs(out, exist_ok=True)

    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ec_key = ec.generate_private_key(ec.SECP256R1())
    rogue = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    for name, key in (("rsa.pem", rsa_key), ("ec.pem", ec_key)):
        with open(os.path.join(out, name), "wb") as f:
            f.write(pem(key))
    with open(os.path.join(out, "jwks.json"), "w") as f:
        json.dump({"keys": [public_jwk(rsa_key, "RS256", RSA_KID),
                            public_jwk(ec_key, "ES256", EC_KID)]}, f, indent=1)

    now = int(time.time())

    def token(key, alg, kid, n):
        claims = {"iss": issuer, "aud": audience, "sub": f"bench-user-{n}",
                  "iat": now, "exp": now + 86400, "jti": f"{alg.lower()}-{n}",
                  "scope": "mcp:tools"}
        return jwt.encode(claims, key, algorithm=alg, headers={"kid": kid, "typ": "JWT"})

    def write(name, text):
        with open(os.path.join(out, name), "w") as f:
            f.write(text + "\n")

    write("rs256.jwt", token(rsa_key, "RS256", RSA_KID, "single"))
    write("es256.jwt", token(ec_key, "ES256", EC_KID, "single"))
    write("bad_sig.jwt", token(rogue, "RS256", RSA_KID, "forged"))
    write("rs256_many.txt", "\n".join(token(rsa_key, "RS256", RSA_KID, i) for i in range(count)))
    write("es256_many.txt", "\n".join(token(ec_key, "ES256", EC_KID, i) for i in range(count)))
    tls_cert(out)


if __name__ == "__main__":
    main()
