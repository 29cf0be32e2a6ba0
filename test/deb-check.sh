#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# The Debian package, as an administrator meets it (make -f apxs.mk deb-check,
# after make deb): lintian without errors, apt-get install of the .deb,
# a2enmod mcp_auth (slotmem_shm enabled with it), then an httpd started from
# a copy of /etc/apache2 -- the Debian config tree with its mods-enabled,
# envvars pointing at a temporary directory, its own port -- never the
# system service. A protected location answers 401 with a Bearer challenge
# without a token or with a forged one, 200 with a token signed by a key the
# installed mcp-auth-token made. At the end, also on failure: the instance
# stops, the package is purged and the module state of /etc/apache2 and
# /var/lib/apache2 is what it was before. Exit 0 only when every check passed.
#
#   bash test/deb-check.sh build/deb
set -euo pipefail

DEB_DIR=${1:?usage: deb-check.sh DIR (where make deb left the .deb)}
PKG=libapache2-mod-mcp-auth
DEB=$(ls "$DEB_DIR"/${PKG}_*_"$(dpkg --print-architecture)".deb)
CHANGES=$(ls "$DEB_DIR"/${PKG}_*.changes)
T0=$SECONDS
FAILED=0
WORK=""
INSTALLED=0
# The package's maintainer scripts reload apache2 after a2enmod: not the
# system service of the machine running this check.
export APACHE2_MAINTSCRIPT_DEFER=1 DEBIAN_FRONTEND=noninteractive
APT="apt-get -y -qq -o DPkg::Lock::Timeout=300"

say() { echo "deb-check: $*"; }
check() { # check NAME COMMAND...: one verdict line per check
  if "${@:2}"; then say "ok   $1"; else say "FAIL $1"; FAILED=1; fi
}

# apache2 -k start|stop as apache2ctl runs it: a clean environment with the
# copied tree's envvars (pid file, run, lock and log folders in $WORK).
instance() {
  # shellcheck disable=SC2016 # expanded by the inner shell, after envvars
  (cd "$WORK" && env -i PATH="$PATH" APACHE_CONFDIR="$WORK/apache2" \
    sh -c '. "$APACHE_CONFDIR/envvars" && /usr/sbin/apache2 -d "$APACHE_CONFDIR" -k "$1"' instance "$1")
}
enabled_modules() { find /etc/apache2/mods-enabled -name '*.load' -printf '%f\n' | sed 's/\.load$//' | sort; }

# What "as it found it" means: the enabled modules and a2enmod's own records.
module_state() {
  { ls -1 /etc/apache2/mods-enabled; find /var/lib/apache2 -path '*/module/*' -o -path '*/conf/*' | sort; } 2>/dev/null
}

cleanup() {
  local rc=$?
  set +e
  if [ -n "$WORK" ] && [ -f "$WORK/run/apache2.pid" ]; then
    instance stop >/dev/null 2>&1
    for _ in $(seq 50); do [ -f "$WORK/run/apache2.pid" ] || break; sleep 0.1; done
  fi
  if [ "$INSTALLED" = 1 ]; then
    $APT purge "$PKG" >/dev/null 2>&1 || say "FAIL apt-get purge $PKG"
    # Modules a2enmod enabled as dependencies (slotmem_shm) outlive the
    # package: disable and forget those that were not enabled before.
    for m in $(comm -13 <(echo "$BEFORE_ENABLED") <(enabled_modules)); do
      a2dismod -q -f -m -p "$m" >/dev/null 2>&1
    done
    # ... and a2dismod's record folders (disabled_by_*) that were not there.
    for d in $(comm -13 <(echo "$BEFORE_STATE" | sort) <(module_state | sort) | sort -r); do
      [ -d "$d" ] && rmdir "$d" 2>/dev/null
    done
    if [ "$(module_state)" != "$BEFORE_STATE" ]; then
      say "FAIL the module state differs from before:"
      diff <(echo "$BEFORE_STATE") <(module_state) | sed 's/^/deb-check:   /'
      rc=1
    else
      say "ok   $PKG purged, /etc/apache2 and /var/lib/apache2 module state as before"
    fi
  fi
  [ -n "$WORK" ] && rm -rf "$WORK"
  [ "$FAILED" = 1 ] && rc=1
  say "$([ "$rc" = 0 ] && echo passed || echo FAILED) in $((SECONDS - T0)) s"
  exit "$rc"
}
trap cleanup EXIT

if [ "$(id -u)" != 0 ]; then
  say "needs root (apt-get install, a2enmod, /etc/apache2); run it as root on a machine you may change"
  exit 1
fi
if dpkg-query -W -f='${Status}' "$PKG" 2>/dev/null | grep -q "install ok installed"; then
  say "$PKG is installed on this machine already; not touching it (purge it to run this check)"
  exit 1
fi
BEFORE_STATE=$(module_state)
BEFORE_ENABLED=$(enabled_modules)

# ---- lintian: errors fail, the rest is shown ------------------------------
say "lintian $(basename "$CHANGES")"
lintian --fail-on error "$CHANGES" > "$DEB_DIR/lintian.txt" 2>&1 && lrc=0 || lrc=$?
grep -v '^running with root privileges' "$DEB_DIR/lintian.txt" | sed 's/^/deb-check:   /' || true
check "lintian reports no errors" test "$lrc" = 0

# ---- install and enable ---------------------------------------------------
INSTALLED=1
$APT install "$(realpath "$DEB")" >/dev/null
check "the module is in httpd's module directory" test -f /usr/lib/apache2/modules/mod_mcp_auth.so
check "mcp_auth.load declares slotmem_shm" grep -q '^# Depends: slotmem_shm$' /etc/apache2/mods-available/mcp_auth.load
check "mcp-auth-token is in /usr/bin" test -x /usr/bin/mcp-auth-token
check "mcp-auth-token has a manual page" test -f /usr/share/man/man1/mcp-auth-token.1.gz
# The package enables the module at install, as Debian's module packages
# do (dh_apache2). Disable it -- and slotmem_shm, unless the machine had it
# before -- so that a2enmod itself must enable both.
check "the package enabled mcp_auth at install" test -L /etc/apache2/mods-enabled/mcp_auth.load
a2dismod -q mcp_auth >/dev/null
if ! echo "$BEFORE_ENABLED" | grep -qx slotmem_shm; then a2dismod -q -f slotmem_shm >/dev/null; fi
check "a2dismod disabled it" test ! -e /etc/apache2/mods-enabled/mcp_auth.load
a2enmod -q mcp_auth
check "a2enmod enabled mcp_auth" test -L /etc/apache2/mods-enabled/mcp_auth.load
check "a2enmod enabled slotmem_shm with it" test -L /etc/apache2/mods-enabled/slotmem_shm.load

# ---- an instance with the Debian config tree ------------------------------
WORK=$(mktemp -d /tmp/deb-check.XXXXXX)
chmod 755 "$WORK"
mkdir -p "$WORK/run" "$WORK/lock" "$WORK/log" "$WORK/www"
cp -a /etc/apache2 "$WORK/apache2"
C=$WORK/apache2
PORT=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
sed -i -e "s|^export APACHE_PID_FILE=.*|export APACHE_PID_FILE=$WORK/run/apache2.pid|" \
       -e "s|^export APACHE_RUN_DIR=.*|export APACHE_RUN_DIR=$WORK/run|" \
       -e "s|^export APACHE_LOCK_DIR=.*|export APACHE_LOCK_DIR=$WORK/lock|" \
       -e "s|^export APACHE_LOG_DIR=.*|export APACHE_LOG_DIR=$WORK/log|" "$C/envvars"
echo "Listen 127.0.0.1:$PORT" > "$C/ports.conf"
rm -f "$C"/sites-enabled/*

# Keys and a token from the installed CLI.
mcp-auth-token keygen --alg ES256 --kid deb-check --out "$WORK/keys" >/dev/null
chmod 755 "$WORK/keys" && chmod 644 "$WORK/keys/jwks.json"
ISS=https://idp.deb-check.test
RES=http://127.0.0.1:$PORT/mcp
TOKEN=$(mcp-auth-token sign --key "$WORK/keys/deb-check.pem" --kid deb-check --alg ES256 --ttl 300 \
  --claim iss=$ISS --claim aud="$RES" --claim sub=deb-check-user)
# The same claims under another key: the forged neighbour of the good token.
mcp-auth-token keygen --alg ES256 --kid deb-check --out "$WORK/other" >/dev/null
FORGED=$(mcp-auth-token sign --key "$WORK/other/deb-check.pem" --kid deb-check --alg ES256 --ttl 300 \
  --claim iss=$ISS --claim aud="$RES" --claim sub=deb-check-user)
echo "hello from behind mod_mcp_auth" > "$WORK/www/mcp.txt"

cat > "$C/sites-available/deb-check.conf" <<EOF
<VirtualHost 127.0.0.1:$PORT>
    ServerName 127.0.0.1:$PORT
    DocumentRoot $WORK/www
    <Directory $WORK/www>
        Require all granted
    </Directory>
    Alias /mcp $WORK/www/mcp.txt
    <Location /mcp>
        AuthType mcp-jwt
        AuthName "deb-check"
        MCPAuthIssuer $ISS jwks_file=$WORK/keys/jwks.json
        MCPAuthResource $RES
        Require valid-user
    </Location>
</VirtualHost>
EOF
ln -s ../sites-available/deb-check.conf "$C/sites-enabled/deb-check.conf"

check "the instance starts from the Debian tree" instance start
for _ in $(seq 50); do curl -s -o /dev/null "http://127.0.0.1:$PORT/" && break; sleep 0.1; done
check "mod_mcp_auth is loaded (startup line)" grep -q "mod_mcp_auth/" "$WORK/log/error.log"

URL=http://127.0.0.1:$PORT/mcp
status() { curl -s -o /dev/null -w '%{http_code}' "$@" "$URL"; }
headers() { curl -s -o /dev/null -D - "$@" "$URL"; }
bearer_challenge() { headers "$@" | grep -qi '^WWW-Authenticate: Bearer realm='; }
says_invalid_token() { headers "$@" | grep -i '^WWW-Authenticate: Bearer ' | grep -q 'error="invalid_token"'; }
body_is_the_content() { curl -s "$@" "$URL" | grep -q 'hello from behind'; }
no_token_in_logs() { ! grep -rqF -e "$TOKEN" -e "$FORGED" "$WORK/log"; }

check "no token: 401" test "$(status)" = 401
check "no token: WWW-Authenticate Bearer challenge" bearer_challenge
check "forged token: 401" test "$(status -H "Authorization: Bearer $FORGED")" = 401
check "forged token: Bearer challenge with invalid_token" says_invalid_token -H "Authorization: Bearer $FORGED"
check "valid token: 200" test "$(status -H "Authorization: Bearer $TOKEN")" = 200
check "valid token: the protected content" body_is_the_content -H "Authorization: Bearer $TOKEN"
check "no token in the logs" no_token_in_logs
