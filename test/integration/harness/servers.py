# SPDX-License-Identifier: Apache-2.0
"""Servers the tests run beside httpd: one threaded server base (plain or
TLS, quiet, a thread of its own) and on it the HTTPS IdP serving JWKS
documents and counting requests per path."""

import http.server
import json
import socket
import ssl
import threading
import time
import urllib.parse
from dataclasses import dataclass, field

from .tls import TLSFiles
from .tokens import KeySet


class QuietHandler(http.server.BaseHTTPRequestHandler):
    """HTTP/1.1 (keep-alive) request handler that logs nothing; on a TLS
    server it does the handshake here, in the connection's own thread."""
    protocol_version = "HTTP/1.1"
    timeout = 15

    def setup(self):
        if isinstance(self.request, ssl.SSLSocket):
            self.request.settimeout(self.timeout)
            self.request.do_handshake()
        super().setup()

    def log_message(self, fmt, *args):  # keep pytest output clean
        pass


class ThreadedServer(http.server.ThreadingHTTPServer):
    """A server on 127.0.0.1 (``port`` 0: any free one), a thread per
    connection, serving from a thread of its own from the start.

    ``owner`` is the test's object the handlers call (``self.server.owner``).
    With ``ssl_context`` the accepted sockets are wrapped without the
    handshake, which the handler does (QuietHandler.setup), so one silent
    client cannot block the accept loop.  ``on_accept`` / ``on_close`` are
    called for every connection (servers that count connections).  Errors
    of clients going away are not printed."""
    daemon_threads = True
    allow_reuse_address = True
    block_on_close = False
    request_queue_size = 128

    def __init__(self, owner, handler, *, port=0, ssl_context=None, name="test-server", poll_interval=0.1,
                 on_accept=None, on_close=None):
        super().__init__(("127.0.0.1", port), handler)
        self.owner = owner
        self.ssl_context = ssl_context
        self.on_accept = on_accept
        self.on_close = on_close
        self.port = self.server_address[1]
        self._thread = threading.Thread(target=self.serve_forever, kwargs={"poll_interval": poll_interval},
                                        name=name, daemon=True)
        self._thread.start()

    def context_for_next(self):
        """The TLS context for the connection being accepted (None: plain)."""
        return self.ssl_context

    def get_request(self):
        sock, addr = self.socket.accept()
        if self.on_accept is not None:
            self.on_accept()
        ctx = self.context_for_next()
        if ctx is not None:
            sock = ctx.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
        return sock, addr

    def close_request(self, request):
        super().close_request(request)
        if self.on_close is not None:
            self.on_close()

    def handle_error(self, request, client_address):
        pass  # the client went away, a handshake failed, the module timed out

    def stop(self):
        self.shutdown()
        self.server_close()
        self._thread.join(timeout=5)


def server_context(cert_pem, key_pem) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(str(cert_pem), str(key_pem))
    return ctx


class _IdPHandler(QuietHandler):
    """Answers a route of the owner (HTTPSServer); POST too when the owner
    says so (introspection endpoints), after the owner's delay for the path."""
    timeout = 10

    def do_GET(self):
        srv = self.server.owner
        path = self.path.split("?", 1)[0]
        srv._count(path)
        delay = srv.delays.get(path, 0)
        if delay:
            time.sleep(delay)
        route = srv.routes.get(path)
        if route is None:
            status, ctype, body = 404, "application/json", b'{"error":"not found"}'
        else:
            status, ctype, body = route
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self):
        if not self.server.owner.answer_post:
            self.send_error(501)
            return
        n = int(self.headers.get("Content-Length") or 0)
        if n:
            self.rfile.read(n)
        self.do_GET()


class HTTPSServer:
    """Threaded HTTPS server on 127.0.0.1:<port> (default: random).

    routes: path -> (status, content_type, body); counts: path -> #requests;
    delays: path -> seconds to wait before answering; answer_post: POST
    answers the path's route as GET does (introspection)."""

    def __init__(self, tls_files: TLSFiles, port: int = 0, answer_post: bool = False, name="https-idp"):
        self.tls = tls_files
        self.routes = {}
        self.counts = {}
        self.delays = {}
        self.answer_post = answer_post
        self._lock = threading.Lock()
        self._httpd = ThreadedServer(self, _IdPHandler, port=port, name=name,
                                     ssl_context=server_context(tls_files.cert_pem, tls_files.key_pem))
        self.port = self._httpd.port

    @property
    def base_url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    def url(self, path: str) -> str:
        return self.base_url + path

    def set(self, path: str, body, content_type="application/json", status=200):
        if isinstance(body, (dict, list)):
            body = json.dumps(body).encode()
        elif isinstance(body, str):
            body = body.encode()
        self.routes[path] = (status, content_type, body)

    def _count(self, path):
        with self._lock:
            self.counts[path] = self.counts.get(path, 0) + 1

    def count(self, path: str) -> int:
        with self._lock:
            return self.counts.get(path, 0)

    def reset_counts(self):
        with self._lock:
            self.counts.clear()

    def stop(self):
        self._httpd.stop()


@dataclass
class IdP:
    server: HTTPSServer
    keys: KeySet
    jwks_path: str = "/jwks.json"
    weak_jwks_path: str = "/jwks-weak.json"
    attacker_jwks_path: str = "/attacker/jwks.json"
    attacker_cert_path: str = "/attacker/cert.pem"
    attacker_cert_pem: bytes = b""

    @property
    def jwks_uri(self) -> str:
        return self.server.url(self.jwks_path)

    @property
    def weak_jwks_uri(self) -> str:
        return self.server.url(self.weak_jwks_path)

    def url(self, path) -> str:
        return self.server.url(path)

    def count(self, path) -> int:
        return self.server.count(path)


class RawBackend:
    """A backend on a bare socket (127.0.0.1:<random>), for tests that must
    see the request bytes exactly as httpd sent them: an accept loop in a
    thread of its own, a thread per connection calling ``self._handle(conn)``
    (subclasses write it; they close ``conn``), ``on_accept()`` per
    connection, ``stop()``."""

    def __init__(self, name="raw-backend"):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, name=name, daemon=True)
        self._thread.start()

    def on_accept(self):
        pass

    def _serve(self):
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            self.on_accept()
            threading.Thread(target=self._handle, args=(conn,), daemon=True).start()

    def _handle(self, conn):
        raise NotImplementedError

    def stop(self):
        self._stop.set()
        self._thread.join(timeout=5)
        self.sock.close()


# ---------------------------------------------------------------------------
# The counting introspection endpoint (RFC 7662)
# ---------------------------------------------------------------------------

@dataclass
class Call:
    method: str
    path: str
    query: dict
    headers: dict  # lower-case name -> value
    body: bytes
    form: dict
    token: str
    at: float


@dataclass
class Answer:
    body: object = field(default_factory=lambda: {"active": False})  # dict/list -> JSON; str/bytes raw
    status: int = 200
    ctype: str = "application/json"
    delay: float = 0.0


class _IntrospectionHandler(QuietHandler):
    def do_GET(self):
        self.server.owner._handle(self, "GET")

    def do_POST(self):
        self.server.owner._handle(self, "POST")


class Introspector:
    """Plain-HTTP introspection IdP on 127.0.0.1 recording every call.
    answers: token -> Answer (or a callable Call -> Answer); docs: path ->
    Answer for fixed documents (discovery); anything else: ``default``."""

    def __init__(self, port=0):
        self._lock = threading.Lock()
        self.calls = []
        self.answers = {}
        self.docs = {}
        self.default = Answer({"active": False})
        self._srv = ThreadedServer(self, _IntrospectionHandler, port=port, poll_interval=0.05, name="introspector")
        self.port = self._srv.port

    @property
    def base_url(self):
        return f"http://127.0.0.1:{self.port}"

    def url(self, path):
        return self.base_url + path

    def answer(self, token, body=None, **kw):
        with self._lock:
            self.answers[token] = Answer({"active": False} if body is None else body, **kw)

    def _handle(self, h, method):
        split = urllib.parse.urlsplit(h.path)
        query = urllib.parse.parse_qs(split.query, keep_blank_values=True)
        n = int(h.headers.get("Content-Length") or 0)
        body = h.rfile.read(n) if n else b""
        form = urllib.parse.parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True) if body else {}
        token = (form.get("token") or query.get("access_token") or query.get("token") or [None])[0]
        call = Call(method, split.path, query, {k.lower(): v for k, v in h.headers.items()}, body, form, token,
                    time.monotonic())
        with self._lock:
            self.calls.append(call)
            ans = self.docs.get(split.path) or self.answers.get(token, self.default)
        if callable(ans):
            ans = ans(call)
        if ans.delay:
            time.sleep(ans.delay)
        out = ans.body
        if isinstance(out, (dict, list)):
            out = json.dumps(out).encode()
        elif isinstance(out, str):
            out = out.encode()
        try:
            h.send_response(ans.status)
            h.send_header("Content-Type", ans.ctype)
            h.send_header("Content-Length", str(len(out)))
            h.send_header("Cache-Control", "no-store")
            h.end_headers()
            h.wfile.write(out)
        except OSError:
            pass

    def calls_for(self, token):
        with self._lock:
            return [c for c in self.calls if c.token == token]

    def count(self, token):
        return len(self.calls_for(token))

    def path_count(self, path):
        with self._lock:
            return sum(1 for c in self.calls if c.path == path)

    def stop(self):
        self._srv.stop()
