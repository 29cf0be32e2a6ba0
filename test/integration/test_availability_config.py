# SPDX-License-Identifier: Apache-2.0
"""Availability, issue 15 items 11, 12 and 14 (part): what a flood of bad
tokens may cost the error log, and configurations that could only ever
answer 500 (or ask for an absurd shared segment) refused at configtest.

* Item 11: refusal log lines are rate-limited per reason and process: the
  first of each reason per MCPAuthRefusalLogInterval (default 1 s) keeps its
  detail, the rest are counted and reported in one "N more ... suppressed"
  line -- 2,000 garbage tokens cost a few KB of log instead of ~360 KB.
* Item 12: `AuthType mcp-jwt` in a section that no MCPAuthIssuer (or
  MCPAuthIntrospection <url>) reaches fails configtest naming the section;
  an issuer inherited from an enclosing section or the server counts.
  .htaccess-only AuthType is answered 500 with a log line that says why.
* Item 14 (part): MCPAuthCacheEntries x MCPAuthCacheEntrySize <= 1 GiB.
"""
import http.client
import re
import threading
import time

import pytest

from harness.httpd import configtest_output as configtest
from conftest import AUDIENCE, ISSUER, MPMS, mcp_location



# ---- item 11: refusal log lines per reason and interval -------------------

def flood(port, path, tokens, connections=4):
    """Sends each token once over a few keep-alive connections; returns the
    statuses seen (a set) and how long it took."""
    statuses, lock = set(), threading.Lock()
    chunks = [tokens[i::connections] for i in range(connections)]

    def run(chunk):
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=20)
        try:
            for tok in chunk:
                conn.request("GET", path, headers={"Authorization": f"Bearer {tok}"})
                resp = conn.getresponse()
                resp.read()
                with lock:
                    statuses.add(resp.status)
                if resp.getheader("Connection", "").lower() == "close":
                    conn.close()
                    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=20)
        finally:
            conn.close()

    start = time.monotonic()
    threads = [threading.Thread(target=run, args=(c,)) for c in chunks]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return statuses, time.monotonic() - start


SUMMARY = re.compile(r'(\d+) more "([^"]+)" refusals suppressed in the last (\d+) s')


@pytest.mark.parametrize("mpm", MPMS)
@pytest.mark.slow
def test_garbage_token_flood_writes_little_log(start_httpd, jwks_server, minter, mpm):
    """2,000 garbage tokens in a few seconds: the error log grows < 20 KB
    (one line per token was ~360 KB), the first refusal's line keeps its
    reason, a summary line counts the rest, a different reason in the same
    interval gets its own first line, and a valid token is still served."""
    h = start_httpd({"/mcp": mcp_location(jwks_uri=jwks_server.jwks_uri)}, name=f"logflood-{mpm}", mpm=mpm)
    assert h.get("/mcp", minter.token()).status == 200
    mark = h.log_offset()
    garbage = [f"garbage-{i:05d}-not-a-token" for i in range(2000)]
    half = len(garbage) // 2

    statuses, took = flood(h.port, "/mcp", garbage[:half])
    # a different reason, in the middle of the flood
    expired = h.get("/mcp", minter.token(exp=int(time.time()) - 3600))
    statuses2, took2 = flood(h.port, "/mcp", garbage[half:])
    assert expired.status == 401
    assert statuses | statuses2 == {401}
    assert h.get("/mcp", minter.token()).status == 200, "the valid neighbour is refused"
    grown = h.log_offset() - mark
    log = h.wait_for_log("Token expired", since=mark)
    assert "Malformed token: not a JWT" in log, log[-2000:]
    assert "Token expired" in log, "a different reason lost its first line"
    print(f"[{mpm}] 2,000 garbage tokens in {took + took2:.1f} s: error log +{grown} bytes")
    assert grown < 20 * 1024, f"{grown} bytes of error log for 2,000 bad tokens in {took + took2:.1f} s"

    # Once the interval is over, the next refusal reports what was held back.
    time.sleep(1.2)
    mark2 = h.log_offset()
    flood(h.port, "/mcp", [f"late-{i}" for i in range(40)], connections=8)
    assert SUMMARY.search(h.wait_for_log("suppressed", since=mark2)), h.log_since(mark)[-3000:]
    # Every child reports the rest at the latest when it exits.
    h.stop()
    log = h.log_since(mark)
    sums = [(int(n), reason) for n, reason, _ in SUMMARY.findall(log)]
    assert sums, f"no summary line:\n{log[-3000:]}"
    first_lines = log.count("Malformed token: not a JWT")
    suppressed = sum(n for n, reason in sums if reason == "Malformed token")
    print(f"[{mpm}] with the summaries, to the children's exit: {len(log.encode())} bytes, "
          f"{first_lines} first lines, {len(sums)} summary lines")
    assert first_lines + suppressed == 2040, (first_lines, suppressed, log[-3000:])
    assert "garbage-" not in log and "late-" not in log, "a token reached the log"


@pytest.mark.slow
def test_interval_zero_logs_every_refusal(start_httpd, jwks_server):
    """MCPAuthRefusalLogInterval 0: the operator asked for every line."""
    h = start_httpd({"/mcp": mcp_location(jwks_uri=jwks_server.jwks_uri)}, "MCPAuthRefusalLogInterval 0",
                    name="logall")
    mark = h.log_offset()
    statuses, _ = flood(h.port, "/mcp", [f"junk{i}" for i in range(60)], connections=2)
    assert statuses == {401}
    h.wait_for_log("x" * 50, since=mark, timeout=0.5)  # let the last lines land
    log = h.log_since(mark)
    assert log.count("Malformed token: not a JWT") == 60, log[-2000:]
    assert "suppressed" not in log


# ---- configtest helper ------------------------------------------------------

ISS = "MCPAuthIssuer https://idp.example"
SECRET = "MCPAuthHMACSecret " + "s" * 64


# ---- item 12: AuthType mcp-jwt without an issuer ----------------------------

NO_ISSUER = {
    "location": ("<Location /mcp>\n AuthType mcp-jwt\n Require valid-user\n</Location>", "<Location /mcp>"),
    "hmac-secret-only": (f"<Location /mcp>\n AuthType mcp-jwt\n {SECRET}\n MCPAuthAlgorithms HS256\n"
                         " Require valid-user\n</Location>", "<Location /mcp>"),
    "introspection-discover-only": ("<Location /mcp>\n AuthType mcp-jwt\n MCPAuthIntrospection discover auth=none\n"
                                    " Require valid-user\n</Location>", "<Location /mcp>"),
    "issuer-only-in-a-sibling": (f"<Location /a>\n AuthType mcp-jwt\n {ISS}\n Require valid-user\n</Location>\n"
                                 "<Location /b>\n AuthType mcp-jwt\n Require valid-user\n</Location>",
                                 "<Location /b>"),
    "issuer-only-deeper": (f"<Location /mcp/deep>\n {ISS}\n</Location>\n"
                           "<Location /mcp>\n AuthType mcp-jwt\n Require valid-user\n</Location>",
                           "<Location /mcp>"),
    "issuer-in-another-vhost": ("<VirtualHost 127.0.0.1:1>\n ServerName a.example\n"
                                f" <Location /mcp>\n  AuthType mcp-jwt\n  {ISS}\n  Require valid-user\n </Location>\n"
                                "</VirtualHost>\n"
                                "<VirtualHost 127.0.0.1:1>\n ServerName b.example\n"
                                " <Location /mcp>\n  AuthType mcp-jwt\n  Require valid-user\n </Location>\n"
                                "</VirtualHost>", "<Location /mcp>"),
    "directory": ("<Directory /srv/mcp>\n AuthType mcp-jwt\n Require valid-user\n</Directory>", "<Directory /srv/mcp>"),
}


@pytest.mark.parametrize("case", sorted(NO_ISSUER))
@pytest.mark.slow
def test_auth_type_without_issuer_fails_configtest(tmp_path, mcp_auth_so, case):
    """Every token would be answered 500: refuse to start, naming the
    section (its header and file:line)."""
    body, section = NO_ISSUER[case]
    rc, out, conf = configtest(tmp_path, mcp_auth_so, body)
    assert rc != 0, f"{case}: configtest passed:\n{out}"
    assert "has no issuer" in out and section in out, out
    m = re.search(re.escape(str(conf)) + r":(\d+)", out)
    assert m, f"no file:line in {out}"
    lines = conf.read_text().splitlines()
    assert "AuthType mcp-jwt" in lines[int(m.group(1)) - 1], (m.group(0), out)


INHERITED = {
    "issuer-in-enclosing-location": f"<Location />\n {ISS}\n</Location>\n"
                                    "<Location /mcp>\n AuthType mcp-jwt\n Require valid-user\n</Location>",
    "issuer-at-server-level": f"{ISS}\n<Location /mcp>\n AuthType mcp-jwt\n Require valid-user\n</Location>",
    "main-server-issuer-in-vhost": f"{ISS}\n<VirtualHost 127.0.0.1:1>\n ServerName b.example\n"
                                   " <Location /mcp>\n  AuthType mcp-jwt\n  Require valid-user\n </Location>\n"
                                   "</VirtualHost>",
    "main-location-issuer-in-vhost-top-level": "<Location /mcp>\n AuthType mcp-jwt\n Require valid-user\n</Location>\n"
                                               "<VirtualHost 127.0.0.1:1>\n ServerName b.example\n"
                                               f" {ISS}\n</VirtualHost>",
    "same-path-two-sections": f"<Location /mcp>\n AuthType mcp-jwt\n Require valid-user\n</Location>\n"
                              f"<Location /mcp>\n {ISS}\n</Location>",
    "introspection-url-only": "<Location /mcp>\n AuthType mcp-jwt\n"
                              " MCPAuthIntrospection https://idp.example/introspect auth=none\n"
                              " Require valid-user\n</Location>",
    "issuer-in-directory-auth-in-location": f"<Directory /srv/mcp>\n {ISS}\n</Directory>\n"
                                            "<Location /mcp>\n AuthType mcp-jwt\n Require valid-user\n</Location>",
    "auth-type-in-if-inside-location": f"<Location /mcp>\n {ISS}\n <If \"%{{REQUEST_METHOD}} == 'POST'\">\n"
                                       "  AuthType mcp-jwt\n  Require valid-user\n </If>\n</Location>",
    "own-issuer": f"<Location /mcp>\n AuthType mcp-jwt\n {ISS}\n Require valid-user\n</Location>",
    "other-auth-type": "<Location /basic>\n AuthType Basic\n AuthName x\n Require valid-user\n</Location>",
}


@pytest.mark.parametrize("case", sorted(INHERITED))
@pytest.mark.slow
def test_section_with_a_reachable_issuer_passes_configtest(tmp_path, mcp_auth_so, case):
    rc, out, _ = configtest(tmp_path, mcp_auth_so, INHERITED[case])
    assert rc == 0, f"{case}:\n{out}"


@pytest.mark.slow
def test_auth_type_with_inherited_issuer_starts_and_serves(start_httpd, jwks_server, minter):
    """The neighbour: AuthType in /mcp, the issuer in the enclosing <Location />."""
    parent = (f"<Location />\n  MCPAuthIssuer {ISSUER} jwks_uri={jwks_server.jwks_uri}\n"
              f"  MCPAuthAudience {AUDIENCE}\n</Location>")
    h = start_httpd({"/mcp": "AuthType mcp-jwt\nRequire valid-user"}, parent, name="inherited-issuer")
    assert h.get("/mcp", minter.token()).status == 200
    assert h.get("/mcp", minter.token(exp=int(time.time()) - 3600)).status == 401


@pytest.mark.slow
def test_htaccess_only_auth_type_answers_500_with_a_clear_line(httpd_factory, mcp_auth_so, tmp_root, minter):
    """.htaccess is read per request: configtest cannot see its AuthType.
    The refusal stays 500, and the log line says what to fix."""
    docs = tmp_root / "ht-no-issuer"
    (docs / "d").mkdir(parents=True, exist_ok=True)
    (docs / "d" / "index.txt").write_text("secret\n")
    (docs / "d" / ".htaccess").write_text("AuthType mcp-jwt\nRequire valid-user\n")
    conf = (f'Alias /ht "{docs}"\n<Directory "{docs}">\n  AllowOverride AuthConfig\n  Require all granted\n'
            "</Directory>")
    h = httpd_factory.start([], server_conf=conf, module_so=mcp_auth_so, name="ht-no-issuer")
    try:
        mark = h.log_offset()
        r = h.get("/ht/d/index.txt", minter.token())
        assert r.status == 500, r
        log = h.wait_for_log("No issuer configured", since=mark)
        assert "No issuer configured: AuthType mcp-jwt applies here but no MCPAuthIssuer does" in log, log
    finally:
        h.stop()


# ---- item 14 (part): the shared cache's total size ----------------------------

def loc():
    return f"<Location /mcp>\n AuthType mcp-jwt\n {ISS}\n Require valid-user\n</Location>"


@pytest.mark.parametrize("entries,size", [(1048576, 2048), (4194304, 1048576), (2048, 1048576)])
def test_cache_product_over_1_gib_fails_configtest(tmp_path, mcp_auth_so, entries, size):
    """Each value is in its own range; their product is not a sane segment."""
    rc, out, _ = configtest(tmp_path, mcp_auth_so,
                            f"MCPAuthCacheEntries {entries}\nMCPAuthCacheEntrySize {size}\n{loc()}")
    assert rc != 0, out
    assert "MCPAuthCacheEntries" in out and "MCPAuthCacheEntrySize" in out and "1 GiB" in out, out


@pytest.mark.parametrize("entries,size", [(262144, 4096), (1024, 1048576), (2097152, 512), (4096, 4096)])
def test_cache_product_up_to_1_gib_passes_configtest(tmp_path, mcp_auth_so, entries, size):
    """Exactly 1 GiB (and the default 16 MiB) is accepted."""
    rc, out, _ = configtest(tmp_path, mcp_auth_so,
                            f"MCPAuthCacheEntries {entries}\nMCPAuthCacheEntrySize {size}\n{loc()}")
    assert rc == 0, out
