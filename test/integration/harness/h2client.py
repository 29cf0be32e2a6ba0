# SPDX-License-Identifier: Apache-2.0
"""One HTTP/2 request with python3-h2 (h2c with prior knowledge, or h2 over
TLS with ALPN), frame by frame, for what curl 7.88 cannot show: a response
that ends before the request body was sent.

A server may answer before it has read the request body and then reset the
stream with NO_ERROR (RFC 9113 section 8.1: "clients MUST NOT discard
responses as a result of receiving such a RST_STREAM"); mod_http2 does so
for every refusal that reads no body.  curl 7.88 often discards the
response then ("Stream error in the HTTP/2 framing layer", exit 92), with
or without this module.  This client stops sending once the response has
ended and records the reset."""

import socket
import ssl
import time
from dataclasses import dataclass, field

import h2.config
import h2.connection
import h2.events
import h2.exceptions


@dataclass
class H2Answer:
    status: int
    headers: list  # [(name, value)] as str, without pseudo-headers
    body: bytes
    ended: bool = False  # the response's END_STREAM arrived
    reset: int = None  # RST_STREAM error code, if the server reset the stream
    sent: int = 0  # request body bytes sent
    goaway: int = None  # last_stream_id of a GOAWAY (a child leaving), if one came: python3-h2 reads no frame after it
    frames: list = field(default_factory=list)  # event class names, in order

    def header(self, name):
        n = name.lower()
        for k, v in self.headers:
            if k == n:
                return v
        return None

    def json(self):
        import json
        return json.loads(self.body)


def h2_request(port, method, path, headers=(), body=None, *, ca=None, content_length=True, hold_body=False,
               linger=0.3, timeout=20) -> H2Answer:
    """``ca``: h2 over TLS (ALPN h2, verified against ca), else h2c.
    ``hold_body``: send the HEADERS (with content-length) but no DATA until
    the response has ended.  ``linger``: how long to keep reading after the
    response ended (for a RST_STREAM that follows it)."""
    raw = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    if ca is not None:
        ctx = ssl.create_default_context(cafile=str(ca))
        ctx.set_alpn_protocols(["h2"])
        sock = ctx.wrap_socket(raw, server_hostname="127.0.0.1")
        assert sock.selected_alpn_protocol() == "h2", sock.selected_alpn_protocol()
    else:
        sock = raw
    conn = h2.connection.H2Connection(config=h2.config.H2Configuration(client_side=True, header_encoding="utf-8"))
    ans = H2Answer(0, [], b"")
    body = body or b""
    try:
        conn.initiate_connection()
        sock.sendall(conn.data_to_send())
        sid = conn.get_next_available_stream_id()
        hdrs = [(":method", method), (":scheme", "https" if ca is not None else "http"),
                (":authority", f"127.0.0.1:{port}"), (":path", path)] + [(k.lower(), v) for k, v in headers]
        if body and content_length:
            hdrs.append(("content-length", str(len(body))))
        conn.send_headers(sid, hdrs, end_stream=not body)
        sock.sendall(conn.data_to_send())
        deadline = time.monotonic() + timeout
        ended_at = None
        while time.monotonic() < deadline:
            if ended_at is not None and (time.monotonic() - ended_at > linger or ans.reset is not None):
                break
            # Send what the windows allow, unless the response has ended.
            while (not hold_body and ans.sent < len(body) and not ans.ended and ans.reset is None):
                room = min(conn.local_flow_control_window(sid), conn.max_outbound_frame_size, len(body) - ans.sent)
                if room <= 0:
                    break
                last = ans.sent + room == len(body)
                conn.send_data(sid, body[ans.sent:ans.sent + room], end_stream=last)
                ans.sent += room
            sock.sendall(conn.data_to_send())
            sock.settimeout(0.05 if ended_at is not None else max(0.05, deadline - time.monotonic()))
            try:
                data = sock.recv(65536)
            except (socket.timeout, ssl.SSLWantReadError):
                continue
            if not data:
                break
            try:
                events = conn.receive_data(data)
            except h2.exceptions.ProtocolError:
                break  # frames after the GOAWAY (the connection is closed for h2): what came is the answer
            for ev in events:
                ans.frames.append(type(ev).__name__)
                if isinstance(ev, h2.events.ResponseReceived) and ev.stream_id == sid:
                    for k, v in ev.headers:
                        if k == ":status":
                            ans.status = int(v)
                        elif not k.startswith(":"):
                            ans.headers.append((k, v))
                elif isinstance(ev, h2.events.DataReceived) and ev.stream_id == sid:
                    ans.body += ev.data
                    conn.acknowledge_received_data(ev.flow_controlled_length, sid)
                elif isinstance(ev, h2.events.StreamEnded) and ev.stream_id == sid:
                    ans.ended = True
                    ended_at = time.monotonic()
                elif isinstance(ev, h2.events.StreamReset) and ev.stream_id == sid:
                    ans.reset = ev.error_code
                    ended_at = ended_at or time.monotonic()
                elif isinstance(ev, h2.events.ConnectionTerminated):
                    ans.goaway = ev.last_stream_id
                    ended_at = ended_at or time.monotonic()
            try:
                sock.sendall(conn.data_to_send())
            except OSError:
                break
        return ans
    finally:
        try:
            conn.close_connection()
            sock.sendall(conn.data_to_send())
        except (OSError, h2.exceptions.ProtocolError):
            pass
        sock.close()
