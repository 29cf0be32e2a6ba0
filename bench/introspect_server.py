#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""Tiny RFC 7662 introspection endpoint for bench/run case 5 (stdlib only).

    introspect_server.py PORT TOKEN [CERT KEY]
    INTROSPECT_CLOSE=1 introspect_server.py ...   (answer "Connection: close")

Listens on 127.0.0.1:PORT (threaded, HTTP/1.1 keep-alive), over TLS when a
certificate and key are given (mod_auth_openidc accepts only an https
introspection endpoint).
  POST /introspect   form body token=...; requires client_secret_basic for
                     client bench / bench-secret (else 401). Answers
                     {"active":true,"sub":"alice","client_id":"bench",
                     "scope":"mcp:read","exp":now+86400} for TOKEN, else
                     {"active":false}. Every POST to /introspect is counted.
                     TOKEN-<anything> is active too (distinct tokens for
                     bench/introspect_misses.py, each one a cache miss).
  GET /count         the number of POSTs to /introspect so far (text).
  GET /count?connections
                     the number of TCP connections accepted so far (text).
With INTROSPECT_CLOSE=1 every answer says "Connection: close" and the
connection is closed: each call needs a connection (and TLS handshake) of
its own -- the "no reuse" baseline of bench/introspect_misses.py.
"""
import base64
import http.server
import json
import os
import socket
import ssl
import sys
import threading
import time
import urllib.parse

PORT, TOKEN = int(sys.argv[1]), sys.argv[2]
CLIENT = ("bench", "bench-secret")
LOCK = threading.Lock()
COUNT = 0
CONNECTIONS = 0
CLOSE = os.environ.get("INTROSPECT_CLOSE") == "1"


def client_ok(header):
    if not header or not header.startswith("Basic "):
        return False
    try:
        user, _, pw = base64.b64decode(header[6:]).decode().partition(":")
    except (ValueError, UnicodeDecodeError):
        return False
    # client_secret_basic: both parts are form-urlencoded (RFC 6749 2.3.1)
    return (urllib.parse.unquote_plus(user), urllib.parse.unquote_plus(pw)) == CLIENT


class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def send(self, code, body, ctype="application/json"):
        data = body.encode()
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        if code == 401:
            self.send_header("WWW-Authenticate", 'Basic realm="introspect"')
        if CLOSE:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        if self.path == "/count":
            with LOCK:
                n = COUNT
            self.send(200, f"{n}\n", "text/plain")
        elif self.path == "/count?connections":
            with LOCK:
                n = CONNECTIONS
            self.send(200, f"{n}\n", "text/plain")
        else:
            self.send(404, '{"error":"not_found"}')

    def do_POST(self):
        global COUNT
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode("utf-8", "replace")
        if self.path.split("?")[0] != "/introspect":
            self.send(404, '{"error":"not_found"}')
            return
        with LOCK:
            COUNT += 1
        if not client_ok(self.headers.get("Authorization")):
            self.send(401, '{"error":"invalid_client"}')
            return
        token = urllib.parse.parse_qs(body).get("token", [""])[0]
        if token == TOKEN or token.startswith(TOKEN + "-"):
            ans = {"active": True, "sub": "alice", "client_id": "bench", "scope": "mcp:read",
                   "exp": int(time.time()) + 86400}
        else:
            ans = {"active": False}
        self.send(200, json.dumps(ans))

    def log_message(self, *a):
        pass


class S(http.server.ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128

    def get_request(self):
        global CONNECTIONS
        conn = super().get_request()
        # The headers and the body go out in two writes: without NODELAY
        # the body waits for the client's delayed ACK (~40 ms a call on a
        # kept-alive connection), which would measure this script, not the
        # module. IdPs (nginx, Keycloak) set it too.
        conn[0].setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with LOCK:
            CONNECTIONS += 1
        return conn


srv = S(("127.0.0.1", PORT), H)
if len(sys.argv) > 4:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(sys.argv[3], sys.argv[4])
    srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
srv.serve_forever()
