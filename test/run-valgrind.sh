#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# make valgrind: every unit-test binary, and the CLI on the JOSE test vectors
# and on keygen / sign / verify round trips for every algorithm, under
# valgrind memcheck. Any memory error or definitely lost block fails.
#   sh test/run-valgrind.sh CLI UNIT_BINARY...
cli=$1; shift
repo=$(cd "$(dirname "$0")/.." && pwd)
vectors="$repo/test/unit/vectors"
work=$(mktemp -d /tmp/mcp-valgrind.XXXXXX)
runs=0; failed=0

vg() {
  # vg EXPECTED_EXIT NAME COMMAND...: memcheck exits 9 on any error.
  want=$1; name=$2; shift 2
  runs=$((runs + 1))
  valgrind -q --leak-check=full --errors-for-leak-kinds=definite --show-leak-kinds=definite \
    --error-exitcode=9 --track-origins=yes --num-callers=30 "$@" >"$work/out" 2>"$work/err"
  rc=$?
  if [ "$rc" -ne "$want" ]; then
    failed=$((failed + 1))
    echo "FAILED (exit $rc, want $want): $name"
    tail -n 80 "$work/err"
  else
    echo "ok: $name"
  fi
}

for t in "$@"; do
  vg 0 "$(basename "$t")" "$t"
done

# The RFC 7520 / RFC 8037 vectors (payloads are not claims: --jws-only) and
# the RFC 7797 b64:false one, which must be refused.
for v in "$vectors"/*.json; do
  name=$(basename "$v" .json)
  python3 - "$v" "$work/$name" <<'PY'
import json, sys
v = json.load(open(sys.argv[1]))
json.dump(v["public_jwk"], open(sys.argv[2] + ".jwk", "w"))
open(sys.argv[2] + ".token", "w").write(v["compact"])
PY
  want=0
  case "$name" in *b64false*) want=1 ;; esac
  vg $want "verify vector $name" "$cli" verify --jwk "$work/$name.jwk" --jws-only "$(cat "$work/$name.token")"
done

# keygen -> sign -> verify (and a refused tampered token) per algorithm.
keys="$work/keys"
for alg in RS256 PS384 ES256 ES384 ES512 EdDSA HS256; do
  kid="k-$alg"
  vg 0 "keygen $alg" "$cli" keygen --alg "$alg" --kid "$kid" --out "$keys/"
  key="$keys/$kid.pem"; verify_keys="--jwks $keys/jwks.json"
  case "$alg" in HS*) key="$keys/$kid.key"; verify_keys="--hmac-secret $(cat "$keys/$kid.key")" ;; esac
  vg 0 "sign $alg" "$cli" sign --key "$key" --kid "$kid" --alg "$alg" --claim sub=alice \
    --claim iss=https://idp.example --claim aud=https://mcp.example/mcp --ttl 600
  tok=$(cat "$work/out")
  # shellcheck disable=SC2086
  vg 0 "verify $alg" "$cli" verify $verify_keys --issuer https://idp.example --audience https://mcp.example/mcp "$tok"
  # shellcheck disable=SC2086
  vg 1 "verify $alg (wrong audience)" "$cli" verify $verify_keys --issuer https://idp.example --audience https://other.example "$tok"
  # The signature's first character changed (A <-> B): still canonical base64url.
  bad=$(python3 -c 'import sys; h, s = sys.argv[1].rsplit(".", 1); print(h + "." + ("B" if s[0] == "A" else "A") + s[1:])' "$tok")
  # shellcheck disable=SC2086
  vg 1 "verify $alg (tampered signature)" "$cli" verify $verify_keys --issuer https://idp.example "$bad"
done
vg 1 "verify garbage" "$cli" verify --jwks "$keys/jwks.json" "not.a.token"
vg 1 "verify unusable JWKS" "$cli" verify --jwks "$vectors/README.md" "a.b.c"

rm -rf "$work"
echo "valgrind: $runs runs, $failed failed"
[ "$failed" -eq 0 ]
