# SPDX-License-Identifier: Apache-2.0
"""A minimal h2c (prior knowledge) client: several POST streams on ONE
connection.

python3 has no HTTP/2 client and curl 7.88 fails pending multiplexed
transfers on an h2c prior-knowledge connection ("Error in the HTTP2
framing layer"), so: preface, literal HPACK headers, DATA within the
peer's flow-control windows, and END_STREAM / RST_STREAM per stream.
"""

import socket
import struct
import time

STATIC_STATUS = {8: 200, 9: 204, 10: 206, 11: 304, 12: 400, 13: 404, 14: 500}


def _hint(n, prefix_bits=7):
    limit = (1 << prefix_bits) - 1
    if n < limit:
        return bytes([n])
    out, n = [limit], n - limit
    while n >= 128:
        out.append(n % 128 + 128)
        n //= 128
    return bytes(out + [n])


def _hfield(name, value):
    return b"\x00" + _hint(len(name)) + name + _hint(len(value)) + value  # literal, not indexed, no Huffman


def _frame(ftype, flags, sid, payload=b""):
    return struct.pack(">I", len(payload))[1:] + bytes([ftype, flags]) + struct.pack(">I", sid) + payload


def h2c_posts(h, path, token, body, n, timeout=60, content_length=True):
    """n POSTs of body as concurrent streams of ONE h2c connection; returns
    {stream id: status (None when not a static-table code) or 'reset'}.
    content_length=False: the HEADERS carry none (the body's end is the
    END_STREAM flag of its last DATA frame)."""
    sock = socket.create_connection(("127.0.0.1", h.port), timeout=timeout)
    buf = bytearray()

    def read_frame():
        while len(buf) < 9 or len(buf) < 9 + int.from_bytes(buf[:3], "big"):
            chunk = sock.recv(65536)
            if not chunk:
                raise ConnectionError("h2c connection closed")
            buf.extend(chunk)
        ln = int.from_bytes(buf[:3], "big")
        ftype, flags, sid = buf[3], buf[4], int.from_bytes(buf[5:9], "big") & 0x7FFFFFFF
        payload = bytes(buf[9:9 + ln])
        del buf[:9 + ln]
        return ftype, flags, sid, payload

    try:
        sock.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + _frame(4, 0, 0))
        conn_window, initial, max_frame = 65535, 65535, 16384
        sids = [1 + 2 * i for i in range(n)]
        window = {sid: initial for sid in sids}
        sent = {sid: 0 for sid in sids}
        done, statuses = set(), {}
        for sid in sids:
            fields = [(b":method", b"POST"), (b":scheme", b"http"), (b":path", path.encode()),
                      (b":authority", f"127.0.0.1:{h.port}".encode()),
                      (b"authorization", f"Bearer {token}".encode()), (b"content-type", b"application/json")]
            if content_length:
                fields.append((b"content-length", str(len(body)).encode()))
            block = b"".join(_hfield(k, v) for k, v in fields)
            sock.sendall(_frame(1, 4, sid, block))  # END_HEADERS
        deadline = time.monotonic() + timeout
        while len(done) < n:
            assert time.monotonic() < deadline, ("h2c streams did not finish", statuses)
            progressed = False
            for sid in sids:
                left = len(body) - sent[sid]
                if sid in done or left <= 0:
                    continue
                k = min(left, max_frame, conn_window, window[sid])
                if k <= 0:
                    continue
                chunk = body[sent[sid]:sent[sid] + k]
                sent[sid] += k
                conn_window -= k
                window[sid] -= k
                sock.sendall(_frame(0, 1 if sent[sid] == len(body) else 0, sid, chunk))
                progressed = True
            if progressed:
                sock.setblocking(False)
                try:
                    chunk = sock.recv(65536)
                    if chunk:
                        buf.extend(chunk)
                except BlockingIOError:
                    pass
                finally:
                    sock.settimeout(timeout)
                if len(buf) < 9 or len(buf) < 9 + int.from_bytes(buf[:3], "big"):
                    continue
            ftype, flags, sid, payload = read_frame()
            if ftype == 4 and not flags & 1:  # SETTINGS
                for i in range(0, len(payload), 6):
                    key, val = struct.unpack(">HI", payload[i:i + 6])
                    if key == 4:
                        for s in window:
                            window[s] += val - initial
                        initial = val
                    elif key == 5:
                        max_frame = val
                sock.sendall(_frame(4, 1, 0))
            elif ftype == 8:  # WINDOW_UPDATE
                inc = int.from_bytes(payload[:4], "big") & 0x7FFFFFFF
                if sid == 0:
                    conn_window += inc
                elif sid in window:
                    window[sid] += inc
            elif ftype == 6 and not flags & 1:  # PING
                sock.sendall(_frame(6, 1, 0, payload))
            elif ftype == 1:  # HEADERS: the status when it is a static-table index
                statuses.setdefault(sid, STATIC_STATUS.get(payload[0] & 0x7F) if payload[0] & 0x80 else None)
                if flags & 1:
                    done.add(sid)
            elif ftype == 0:
                if payload:
                    sock.sendall(_frame(8, 0, 0, struct.pack(">I", len(payload))))
                if flags & 1:
                    done.add(sid)
            elif ftype == 3:  # RST_STREAM
                statuses[sid] = "reset"
                done.add(sid)
            elif ftype == 7:  # GOAWAY
                # NO_ERROR: the child is leaving (a graceful restart, its
                # MaxConnectionsPerChild); streams up to last_sid are still
                # answered, the others were never processed ('goaway').
                last_sid = int.from_bytes(payload[:4], "big") & 0x7FFFFFFF
                if int.from_bytes(payload[4:8], "big") != 0:
                    raise ConnectionError(f"GOAWAY {payload[4:8].hex()} after {len(done)} streams: {statuses}")
                for s in sids:
                    if s > last_sid and s not in done:
                        statuses[s] = "goaway"
                        done.add(s)
        return statuses
    finally:
        sock.close()
