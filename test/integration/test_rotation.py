# SPDX-License-Identifier: Apache-2.0
"""Key rotation under concurrency (SPEC 7, issue 10 item 10).

When the IdP starts signing with a new key, every child of httpd sees the
new kid at about the same time.  One of them refetches the JWKS; the others
must wait for that fetch (woken when it lands) instead of answering
``401 Unknown key id`` with the old keys.  The IdP here answers the JWKS
slowly (1.5 s), so every request of the burst arrives while the fetch is in
flight.  Forged kids sent in the same burst are refused and cost the IdP no
extra fetch inside the cooldown.
"""

import http.client
import re
import secrets
import threading
import time

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from harness.httpd import mcp_location as location
from conftest import HTTPSServer, Minter, SigningKey, es256_key

PID_RE = re.compile(r"\[pid (\d+)")
JWKS_DELAY = 1.5
COOLDOWN = 6
# Long, so that a waiter that is not woken when the fetch lands (and sleeps
# until its bound) shows up as a slow burst even on a loaded machine.
HTTP_TIMEOUT = 15


@pytest.fixture
def slow_idp(tls):
    srv = HTTPSServer(tls)
    srv.delays = {}
    try:
        yield srv
    finally:
        srv.stop()


def burst(port, tokens, timeout=30):
    """Sends every token at once (one thread and one fresh connection each,
    released together by a barrier); returns the statuses in order."""
    status = [None] * len(tokens)
    gate = threading.Barrier(len(tokens))

    def one(i):
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
        try:
            gate.wait()
            conn.request("GET", "/mcp", headers={"Authorization": f"Bearer {tokens[i]}"})
            resp = conn.getresponse()
            resp.read()
            status[i] = resp.status
        except Exception as e:  # noqa: BLE001 - reported by the assertion
            status[i] = repr(e)
        finally:
            conn.close()

    threads = [threading.Thread(target=one, args=(i,), daemon=True) for i in range(len(tokens))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout + 5)
    return status


@pytest.mark.slow
def test_rotation_under_concurrency_refuses_no_valid_token(slow_idp, start_httpd, keys):
    issuer = "https://idp.rotation.example"
    current = es256_key("k0")
    slow_idp.set("/jwks", {"keys": [current.jwk]})
    h = start_httpd({"/mcp": location(issuer, slow_idp.url("/jwks"))},
                    "\n".join(["LogLevel warn core:notice mcp_auth:debug", f"MCPAuthHTTPTimeout {HTTP_TIMEOUT}",
                               f"MCPAuthJWKSRefreshCooldown {COOLDOWN}"]))
    m = Minter(keys, issuer=issuer)
    attacker = ec.generate_private_key(ec.SECP256R1())

    # Warm-up: every child parses k0 (a few requests over fresh connections).
    warm = burst(h.port, [m.token("ES256", key=current) for _ in range(12)])
    assert set(warm) == {200}, f"{warm}\n{h.log_text()[-3000:]}"
    assert slow_idp.count("/jwks") == 1

    slow_idp.delays["/jwks"] = JWKS_DELAY
    pids_seen = set()
    for rnd in range(1, 4):
        time.sleep(COOLDOWN + 0.5)  # the previous round's cooldown is over
        new = es256_key(f"k{rnd}")
        # The IdP rotates: the new key is published and signs from now on.
        slow_idp.set("/jwks", {"keys": [current.jwk, new.jwk]})
        before = slow_idp.count("/jwks")
        valid = [m.token("ES256", key=new, sub=f"r{rnd}-{i}") for i in range(60)]
        forged = [m.token("ES256", key=SigningKey("ES256", f"forged-{secrets.token_hex(6)}", attacker))
                  for _ in range(15)]
        tokens = valid + forged
        mark = h.log_offset()
        t0 = time.monotonic()
        status = burst(h.port, tokens)
        took = time.monotonic() - t0
        log = h.log_since(mark)

        refused = [(i, s) for i, s in enumerate(status[:len(valid)]) if s != 200]
        assert not refused, (f"round {rnd}: valid tokens of the new kid refused during the rotation: "
                             f"{refused[:10]} ({len(refused)} of {len(valid)})\n"
                             + "\n".join(log.splitlines()[-20:]))
        assert all(s == 401 for s in status[len(valid):]), f"round {rnd}: forged kids: {status[len(valid):]}"
        fetches = slow_idp.count("/jwks") - before
        assert fetches == 1, f"round {rnd}: the JWKS was fetched {fetches} times for one rotation"
        # Waiters are woken when the fetch lands: the burst takes about one
        # (slow) fetch plus the CGIs, far less than the wait bound.
        print(f"[rotation] round {rnd}: {took:.2f} s")
        assert took < HTTP_TIMEOUT - 5, f"round {rnd}: the burst took {took:.1f} s"
        pids_seen |= {int(mm.group(1)) for mm in (PID_RE.search(l) for l in log.splitlines()
                                                  if "signature verified" in l) if mm}
        current = new

    # The race is between processes: the bursts must have been served by several children.
    assert len(pids_seen) >= 2, f"all verifications in one child: {pids_seen}"


@pytest.mark.slow
def test_forged_kid_inside_the_cooldown_neither_fetches_nor_waits(slow_idp, start_httpd, keys):
    """The neighbour: with no fetch in flight, a forged kid inside the
    cooldown is refused at once and costs the IdP nothing."""
    issuer = "https://idp.rotation-forged.example"
    key = es256_key("real")
    slow_idp.set("/jwks", {"keys": [key.jwk]})
    h = start_httpd({"/mcp": location(issuer, slow_idp.url("/jwks"))},
                    "\n".join(["MCPAuthHTTPTimeout 4", "MCPAuthJWKSRefreshCooldown 30"]))
    m = Minter(keys, issuer=issuer)
    assert h.get("/mcp", m.token("ES256", key=key)).status == 200
    slow_idp.delays["/jwks"] = 6  # a fetch started now would hold the forged requests this long
    attacker = ec.generate_private_key(ec.SECP256R1())
    forged = [m.token("ES256", key=SigningKey("ES256", f"forged-{secrets.token_hex(6)}", attacker))
              for _ in range(40)]
    t0 = time.monotonic()
    status = burst(h.port, forged)
    took = time.monotonic() - t0
    assert set(status) == {401}, status
    assert slow_idp.count("/jwks") == 1, slow_idp.count("/jwks")
    assert took < 5, f"forged kids waited {took:.1f} s with no fetch in flight"
    # Valid callers are not slowed down by the flood.
    assert h.get("/mcp", m.token("ES256", key=key)).status == 200
