# SPDX-License-Identifier: Apache-2.0
"""Differential-test backend: a JSON-RPC server the way a typical Python
MCP server decodes a body (stdlib only): ``json.loads`` on the bytes (which
also takes a BOM, UTF-16/32, NaN, duplicate keys -- the last wins), then
dict lookups. Executes ``delete_notes`` (protected) and ``read_notes``.

    python3 py_backend.py        -> prints {"port": N}
    GET /_executions, POST /_reset as in test/mcp/jsonrpc_backend.mjs
"""
import json
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

LOCK = threading.Lock()
EXECUTIONS = []


def dispatch(msg, diff_id):
    if not isinstance(msg, dict) or msg.get("method") != "tools/call":
        return {"jsonrpc": "2.0", "id": None, "result": {}}
    params = msg.get("params")
    name = params.get("name") if isinstance(params, dict) else None
    if name == "delete_notes":
        with LOCK:
            EXECUTIONS.append(diff_id)
        text = "deleted"
    elif name == "read_notes":
        text = "notes"
    else:
        return {"jsonrpc": "2.0", "id": msg.get("id"), "error": {"code": -32602, "message": "Unknown tool"}}
    return {"jsonrpc": "2.0", "id": msg.get("id"), "result": {"content": [{"type": "text", "text": text}]}}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def _body(self):
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            data = b""
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return data
                data += self.rfile.read(size)
                self.rfile.readline()
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _send(self, status, obj):
        body = json.dumps(obj, default=str).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("X-Backend", "py")  # tells the test the module let it through
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        if self.path.endswith("/_executions"):
            with LOCK:
                return self._send(200, list(EXECUTIONS))
        self._send(404, {})

    def do_POST(self):
        raw = self._body()
        if self.path.endswith("/_reset"):
            with LOCK:
                EXECUTIONS.clear()
            return self._send(200, {})
        try:
            doc = json.loads(raw)
        except (ValueError, RecursionError):
            return self._send(400, {"jsonrpc": "2.0", "id": None, "error": {"code": -32700, "message": "Parse error"}})
        diff_id = self.headers.get("X-Diff-Id", "?")
        try:
            if isinstance(doc, list):
                out = [dispatch(m, diff_id) for m in doc]
            else:
                out = dispatch(doc, diff_id)
        except Exception as e:  # a typical server answers 500 and goes on
            return self._send(500, {"error": repr(e)})
        self._send(200, out)

    def log_message(self, fmt, *args):
        pass


if __name__ == "__main__":
    srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    srv.daemon_threads = True
    print(json.dumps({"port": srv.server_address[1]}), flush=True)
    srv.serve_forever()
