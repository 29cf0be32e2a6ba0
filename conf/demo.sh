#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# Starts or stops the demo httpd (make -f apxs.mk demo / demo-stop).
set -e
cd "$(dirname "$0")/.."
CLI=$(pwd)/build/mcp-auth-token
HTTPD=$(command -v apache2 || echo /usr/sbin/apache2)
MODULES=$(apxs -q LIBEXECDIR 2>/dev/null || echo /usr/lib/apache2/modules)
ISS=https://idp.demo.local
RESOURCE=http://127.0.0.1:8080/mcp
# The demo's key, tokens and httpd state live in a private directory made
# by mktemp -d (never a fixed /tmp path another local user could prepare);
# build/demo-dir names it so that demo-stop finds it.
PTR=$(pwd)/build/demo-dir

# A directory of ours: a real directory (no symlink) owned by this user.
ours() { [ -n "$1" ] && [ -d "$1" ] && [ ! -L "$1" ] && [ -O "$1" ]; }

# The demo directory of the last start: MCP_DEMO_DIR, or the pointer file
# when it is a regular file of ours naming a directory of ours.
previous() {
  if [ -n "$MCP_DEMO_DIR" ]; then echo "$MCP_DEMO_DIR"; return; fi
  if [ -f "$PTR" ] && [ ! -L "$PTR" ] && [ -O "$PTR" ]; then
    p=$(cat "$PTR")
    if ours "$p"; then echo "$p"; fi
  fi
}

stop() {
  D=$(previous)
  [ -n "$D" ] || return 0
  if [ -f "$D/httpd.pid" ] && kill -0 "$(cat "$D/httpd.pid")" 2>/dev/null; then
    "$HTTPD" -f "$D/httpd.conf" -k stop 2>/dev/null || kill "$(cat "$D/httpd.pid")"
    i=0; while [ -f "$D/httpd.pid" ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i+1)); done
    echo "demo stopped"
  fi
}

case "${1:-start}" in
stop) stop; exit 0 ;;
start) ;;
*) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac

stop
if [ -n "$MCP_DEMO_DIR" ]; then
  D=$MCP_DEMO_DIR
  mkdir -p "$D"
  ours "$D" || { echo "MCP_DEMO_DIR $D is not a directory of yours" >&2; exit 1; }
else
  D=$(mktemp -d "${TMPDIR:-/tmp}/mcp-auth-demo.XXXXXXXX")
  mkdir -p build
  rm -f "$PTR.tmp"
  (umask 077; printf '%s\n' "$D" > "$PTR.tmp")
  mv -f "$PTR.tmp" "$PTR"
fi
mkdir -p "$D/keys"
# httpd's user reads the configuration, the public keys and the CGI; the
# private key (0600) and the tokens (umask 077) stay ours.
chmod 755 "$D" "$D/keys"
[ -f "$D/keys/demo-key.pem" ] || "$CLI" keygen --alg ES256 --kid demo-key --out "$D/keys" >/dev/null
chmod 644 "$D/keys/jwks.json"
cp build/mcp-demo-server "$D/mcp-server.cgi" && chmod 755 "$D/mcp-server.cgi"
USER_LINES=""
[ "$(id -u)" = 0 ] && USER_LINES="User $(id -nu 33 2>/dev/null || echo nobody)
Group $(id -ng 33 2>/dev/null || echo nogroup)"
awk -v d="$D" -v m="$(pwd)/build/mod_mcp_auth.so" -v mods="$MODULES" -v u="$USER_LINES" '
  { gsub("@DEMO_DIR@", d); gsub("@MODULE@", m); gsub("@MODULES@", mods); gsub("@USER_LINES@", u); print }
' conf/demo.conf > "$D/httpd.conf"
"$HTTPD" -f "$D/httpd.conf" -k start
i=0; until curl -s -o /dev/null http://127.0.0.1:8080/ || [ $i -ge 50 ]; do sleep 0.1; i=$((i+1)); done

TOKEN=$("$CLI" sign --key "$D/keys/demo-key.pem" --kid demo-key --alg ES256 --ttl 3600 \
  --claim iss=$ISS --claim sub=demo-user --claim aud=$RESOURCE --claim "scope=mcp:tools")
ADMIN=$("$CLI" sign --key "$D/keys/demo-key.pem" --kid demo-key --alg ES256 --ttl 3600 \
  --claim iss=$ISS --claim sub=demo-admin --claim aud=$RESOURCE --claim "scope=mcp:tools notes:delete")
(umask 077; echo "$TOKEN" > "$D/token"; echo "$ADMIN" > "$D/admin-token")
J='-H Content-Type:application/json -H Accept:application/json,text/event-stream'
WHOAMI='{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"whoami"}}'
DELETE='{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"delete_notes"}}'
cat <<MSG

mod_mcp_auth demo: an MCP endpoint at http://127.0.0.1:8080/mcp (logs: $D/error.log)
Tokens (valid one hour): $D/token (scope mcp:tools), $D/admin-token (mcp:tools notes:delete)

1. No token -- 401 and the challenge that points MCP clients to the metadata:
  curl -i http://127.0.0.1:8080/mcp

2. The metadata document (RFC 9728), no token needed:
  curl -s http://127.0.0.1:8080/.well-known/oauth-protected-resource/mcp

3. With a token -- 200, and the MCP server's whoami tool reports who you are:
  curl -i $J -H "Authorization: Bearer \$(cat $D/token)" -d '$WHOAMI' http://127.0.0.1:8080/mcp

4. A tool that needs a scope the token lacks -- 403 insufficient_scope (step-up):
  curl -i $J -H "Authorization: Bearer \$(cat $D/token)" -d '$DELETE' http://127.0.0.1:8080/mcp

5. The same call with the wider token -- 200:
  curl -i $J -H "Authorization: Bearer \$(cat $D/admin-token)" -d '$DELETE' http://127.0.0.1:8080/mcp

Inspect a token the way the module does:
  build/mcp-auth-token verify --jwks $D/keys/jwks.json --issuer $ISS --audience $RESOURCE \$(cat $D/token)

Stop it with:  make -f apxs.mk demo-stop
MSG
