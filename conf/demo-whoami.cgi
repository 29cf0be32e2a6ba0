#!/bin/sh
# Demo backend: reports who httpd says called it.
esc() { printf '%s' "$1" | sed 's/\\/\\\\/g; s/"/\\"/g'; }
printf 'Content-Type: application/json\r\n\r\n'
printf '{"remote_user":"%s","auth_type":"%s","method":"%s"}\n' \
  "$(esc "$REMOTE_USER")" "$(esc "$AUTH_TYPE")" "$(esc "$REQUEST_METHOD")"
