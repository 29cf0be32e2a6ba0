"""Servers the tests run beside httpd: the threaded HTTPS IdP serving JWKS
documents and counting requests per path."""

import http.server
import json
import ssl
import threading
from dataclasses import dataclass

from .tls import TLSFiles
from .tokens import KeySet

class _IdPHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = 10

    def setup(self):
        self.request.settimeout(self.timeout)
        self.request.do_handshake()
        super().setup()

    def do_GET(self):
        srv = self.server.owner
        path = self.path.split("?", 1)[0]
        srv._count(path)
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

    def log_message(self, fmt, *args):  # keep pytest output clean
        pass


class _TLSThreadingServer(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def get_request(self):
        sock, addr = self.socket.accept()
        # Handshake lazily in the handler thread so one silent client can't
        # block the accept loop.
        return self.ssl_context.wrap_socket(sock, server_side=True,
                                            do_handshake_on_connect=False), addr

    def handle_error(self, request, client_address):
        pass  # client went away, handshake failures, ...


class HTTPSServer:
    """Threaded HTTPS server on 127.0.0.1:<random>.

    routes: path -> (status, content_type, body); counts: path -> #requests.
    """

    def __init__(self, tls_files: TLSFiles):
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(str(tls_files.cert_pem), str(tls_files.key_pem))
        self.tls = tls_files
        self.routes = {}
        self.counts = {}
        self._lock = threading.Lock()
        self._httpd = _TLSThreadingServer(("127.0.0.1", 0), _IdPHandler)
        self._httpd.ssl_context = ctx
        self._httpd.owner = self
        self.port = self._httpd.server_address[1]
        self._thread = threading.Thread(target=self._httpd.serve_forever,
                                        kwargs={"poll_interval": 0.1},
                                        name="https-idp", daemon=True)
        self._thread.start()

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
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)



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

