#!/bin/sh
# Starts or stops the demo httpd (make -f apxs.mk demo / demo-stop).
set -e
cd "$(dirname "$0")/.."
D=${MCP_DEMO_DIR:-/tmp/mcp-auth-demo}
CLI=$(pwd)/build/mcp-auth-token
HTTPD=$(command -v apache2 || echo /usr/sbin/apache2)
MODULES=$(apxs -q LIBEXECDIR 2>/dev/null || echo /usr/lib/apache2/modules)
ISS=https://idp.demo.local
RESOURCE=http://127.0.0.1:8080/mcp

stop() {
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
mkdir -p "$D/keys"
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
echo "$TOKEN" > "$D/token"
echo "$ADMIN" > "$D/admin-token"
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
