# SPDX-License-Identifier: Apache-2.0
"""SPEC 10, metrics: server-wide counters in shared memory, shown by the
``mcp-auth-metrics`` handler (Prometheus text) and in mod_status.

* a known sequence of requests -- accepted, accepted again (a cache hit),
  expired, bad signature, no token, a step-up 403, a 503 from a dead IdP --
  moves each counter by exactly its share, and nothing else moves;
* the figures are the server's, not a child's: under prefork, requests
  answered by several children (their pids are in the access log) add into
  one figure that every child's scrape shows;
* a graceful restart keeps the counts;
* the exposition parses under a strict reader of the text format
  (HELP/TYPE before each family, label syntax, cumulative buckets);
* GET and HEAD only; the Content-Type of format 0.0.4;
* mod_status's ``?auto`` shows the same figures; without mod_status the
  handler works and nothing crashes.
"""

import subprocess

from harness.httpd import mcp_location
from harness.prometheus import parse_prometheus, scrape, value
from conftest import APACHE2, ISSUER, free_port, wait_for_port

DEAD_ISSUER = "https://dead-idp.example.test"
METRICS_CONF = """
<Location /mcp-auth-metrics>
    SetHandler mcp-auth-metrics
    Require local
</Location>
"""
STATUS_CONF = """
ExtendedStatus On
<Location /server-status>
    SetHandler server-status
    Require local
</Location>
"""
HOST = ("authz_host_module", "mod_authz_host.so")  # Require local
PID_LOG = 'LogFormat "%P %U %>s" pids\nCustomLog "logs/pids.log" pids'

def requests(series, outcome, reason):
    return value(series, "mcp_auth_requests_total", outcome=outcome, reason=reason)


def delta(before, after):
    """Every series that moved, and by how much."""
    return {k: after.get(k, 0) - before.get(k, 0) for k in set(before) | set(after)
            if after.get(k, 0) != before.get(k, 0)}


def locations(jwks_server):
    dead = f"https://127.0.0.1:{free_port()}/jwks"
    return {
        "/mcp": mcp_location(jwks_uri=jwks_server.jwks_uri),
        "/scoped": mcp_location(jwks_uri=jwks_server.jwks_uri, require="Require mcp-scope notes:write"),
        "/dead": mcp_location(issuer=DEAD_ISSUER, jwks_uri=dead),
    }


def test_a_known_sequence_moves_each_counter_by_its_share(start_httpd, jwks_server, minter):
    h = start_httpd(locations(jwks_server), METRICS_CONF, modules=[HOST])
    # The keys are fetched once, before the figures are taken.
    assert h.get("/mcp", minter.token()).status == 200
    before = scrape(h)
    good = minter.token(scope="notes:read")
    assert h.get("/mcp", good).status == 200
    assert h.get("/mcp", good).status == 200
    assert h.get("/mcp", minter.token(exp=1000, iat=900)).status == 401
    forged = minter.token()
    forged = forged[:-8] + ("AAAAAAAA" if not forged.endswith("AAAAAAAA") else "BBBBBBBB")
    assert h.get("/mcp", forged).status == 401
    assert h.get("/mcp").status == 401
    assert h.get("/scoped", minter.token(scope="notes:read")).status == 403
    assert h.get("/dead", minter.token(iss=DEAD_ISSUER)).status == 503
    after = scrape(h)
    moved = delta(before, after)

    assert requests(after, "accepted", "none") - requests(before, "accepted", "none") == 2
    assert requests(after, "invalid_token", "expired") - requests(before, "invalid_token", "expired") == 1
    assert requests(after, "invalid_token", "invalid_signature") - \
        requests(before, "invalid_token", "invalid_signature") == 1
    assert requests(after, "no_token", "none") - requests(before, "no_token", "none") == 1
    assert requests(after, "insufficient_scope", "step_up") - requests(before, "insufficient_scope", "step_up") == 1
    assert requests(after, "unavailable", "jwks_unavailable") - \
        requests(before, "unavailable", "jwks_unavailable") == 1
    # No other outcome moved: seven requests, seven counts.
    request_moves = {k: v for k, v in moved.items() if k[0] == "mcp_auth_requests_total"}
    assert sum(request_moves.values()) == 7, request_moves
    # The good token: verified once (a miss), then found in a cache (this
    # child's own, or the shared one when another child answered).
    hits = sum(value(after, "mcp_auth_cache_hits_total", level=lv) - value(before, "mcp_auth_cache_hits_total", level=lv)
               for lv in ("l1", "shm"))
    assert hits == 1, moved
    # misses: every token seen the first time was looked up in vain -- the
    # good, the expired, the forged, the step-up and the dead IdP's one.
    assert moved.get(("mcp_auth_cache_misses_total", frozenset()), 0) == 5, moved
    # The dead IdP: its JWKS could not be fetched; the live one was not asked again.
    assert value(after, "mcp_auth_idp_fetches_total", kind="jwks", result="failed") - \
        value(before, "mcp_auth_idp_fetches_total", kind="jwks", result="failed") >= 1
    assert ("mcp_auth_idp_fetches_total", frozenset({("kind", "jwks"), ("result", "ok")})) not in moved
    # The failed call is in the latency histogram.
    assert moved.get(("mcp_auth_outbound_request_duration_seconds_count", frozenset({("kind", "document")})), 0) >= 1
    # The gauges: the good tokens' verdicts are in the shared cache now.
    assert 1 <= value(after, "mcp_auth_cache_entries") <= value(after, "mcp_auth_cache_capacity")
    # A label value is never a client's text.
    reasons = {dict(labels).get("reason") for (name, labels) in after if name == "mcp_auth_requests_total"}
    assert reasons <= {"none", "expired", "invalid_signature", "step_up", "jwks_unavailable"}, reasons


def test_counts_are_server_wide_under_prefork(start_httpd, jwks_server, minter):
    h = start_httpd({"/mcp": mcp_location(jwks_uri=jwks_server.jwks_uri)}, METRICS_CONF + PID_LOG, mpm="prefork",
                    modules=[HOST])
    token = minter.token()
    assert h.get("/mcp", token).status == 200
    before = scrape(h)
    n = 60
    for _ in range(n):
        assert h.get("/mcp", token).status == 200  # a new connection each
    pids = set()
    log = (h.root / "logs" / "pids.log").read_text()
    for line in log.splitlines():
        pid, path, status = line.split()
        if path == "/mcp":
            pids.add(pid)
    assert len(pids) >= 2, f"one child answered them all: {log}"
    # Whichever child answers the scrape, the figure is the server's.
    seen = set()
    for _ in range(6):
        after = scrape(h)
        seen.add(requests(after, "accepted", "none") - requests(before, "accepted", "none"))
    assert seen == {n}, seen
    served_by = {line.split()[0] for line in (h.root / "logs" / "pids.log").read_text().splitlines()
                 if line.split()[1] == "/mcp-auth-metrics"}
    assert len(served_by) >= 1


def graceful(h):
    mark = h.log_offset()
    proc = subprocess.run([APACHE2, "-f", str(h.conf), "-k", "graceful"], capture_output=True, text=True, timeout=30)
    assert proc.returncode == 0, proc.stderr
    h.wait_for_log("resuming normal operations", since=mark, timeout=30)
    assert wait_for_port(h.port, 10)


def test_a_graceful_restart_keeps_the_counts(start_httpd, jwks_server, minter):
    h = start_httpd({"/mcp": mcp_location(jwks_uri=jwks_server.jwks_uri)}, METRICS_CONF, modules=[HOST])
    token = minter.token()
    for _ in range(5):
        assert h.get("/mcp", token).status == 200
    assert h.get("/mcp").status == 401
    before = scrape(h)
    assert requests(before, "accepted", "none") == 5
    graceful(h)
    kept = scrape(h)
    assert requests(kept, "accepted", "none") == 5
    assert requests(kept, "no_token", "none") == 1
    assert h.get("/mcp", token).status == 200
    assert requests(scrape(h), "accepted", "none") == 6


def test_handler_answers_get_and_head_only(start_httpd, jwks_server):
    h = start_httpd({"/mcp": mcp_location(jwks_uri=jwks_server.jwks_uri)}, METRICS_CONF, modules=[HOST])
    head = h.request("HEAD", "/mcp-auth-metrics")
    assert head.status == 200 and head.body == b""
    assert head.header("Content-Type") == "text/plain; version=0.0.4; charset=utf-8"
    for method in ("POST", "PUT", "DELETE"):
        r = h.request(method, "/mcp-auth-metrics", body=b"x")
        assert r.status == 405, (method, r)
        assert "GET" in (r.header("Allow") or ""), r
    # Without the handler line the same path is no metrics page.
    assert b"mcp_auth_requests_total" not in h.get("/other-path").body


def test_mod_status_shows_the_figures(start_httpd, jwks_server, minter):
    h = start_httpd({"/mcp": mcp_location(jwks_uri=jwks_server.jwks_uri)}, METRICS_CONF + STATUS_CONF,
                    modules=[HOST, ("status_module", "mod_status.so")])
    token = minter.token()
    for _ in range(3):
        assert h.get("/mcp", token).status == 200
    assert h.get("/mcp").status == 401
    auto = h.get("/server-status?auto")
    assert auto.status == 200
    lines = dict(line.split(": ", 1) for line in auto.text.splitlines() if line.startswith("MCPAuth"))
    assert lines["MCPAuthRequests_accepted"] == "3", auto.text
    assert lines["MCPAuthRequests_no_token"] == "1"
    assert int(lines["MCPAuthCacheHitsL1"]) + int(lines["MCPAuthCacheHitsShm"]) == 2
    assert "MCPAuthCacheEntries" in lines and "MCPAuthJwksFetchesOk" in lines
    page = h.get("/server-status")
    assert page.status == 200
    assert "<h2>mod_mcp_auth</h2>" in page.text
    assert "<tr><td>MCPAuthRequests_accepted</td><td>3</td></tr>" in page.text


def test_evictions_are_counted_when_the_cache_is_full(start_httpd, jwks_server, minter):
    """A flood of distinct tokens through a small shared cache: live entries
    pushed out are counted, and the gauge stays within what the cache holds."""
    h = start_httpd({"/mcp": mcp_location(jwks_uri=jwks_server.jwks_uri)},
                    METRICS_CONF + "\nMCPAuthCacheEntries 32", modules=[HOST])
    assert h.get("/mcp", minter.token()).status == 200
    before = scrape(h)
    assert value(before, "mcp_auth_cache_evictions_total") == 0
    for _ in range(400):
        assert h.get("/mcp", minter.token()).status == 200
    after = scrape(h)
    assert value(after, "mcp_auth_cache_evictions_total") > 0
    assert 0 < value(after, "mcp_auth_cache_entries") <= value(after, "mcp_auth_cache_capacity")
    assert requests(after, "accepted", "none") == 401
