# SPDX-License-Identifier: Apache-2.0
"""Server-wide directives live in httpd's server configuration, and all of
them are process-wide (one shared-memory store, keyrings shared by every
virtual host, one log limiter per process): written inside <VirtualHost>
they fail configtest with httpd's own message, and a virtual host -- also
one with directives of ours, which gets a server configuration of its own
from httpd -- works with the main server's values."""
import socket
import time

import pytest

from harness.env import APACHE_MODULES_DIR
from test_config import command_table, configtest, location

VALID = {
    "MCPAuthCacheEntries": "64",
    "MCPAuthCacheEntrySize": "4096",
    "MCPAuthTokenCacheTTL": "300",
    "MCPAuthJWKSMaxSize": "65536",
    "MCPAuthJWKSCacheTTL": "86400",
    "MCPAuthJWKSRefreshCooldown": "30",
    "MCPAuthJWKSMaxStale": "604800",
    "MCPAuthHTTPTimeout": "5",
    "MCPAuthSSLVerify": "On",
    "MCPAuthCAFile": "/etc/hostname",
    "MCPAuthRefusalLogInterval": "1",
    "MCPAuthSharedCache": "redis:127.0.0.1:6379",
}

# What a directive needs loaded before it (the socache provider's module).
PRELUDE = {
    "MCPAuthSharedCache": f'LoadModule socache_redis_module "{APACHE_MODULES_DIR / "mod_socache_redis.so"}"\n',
}


def test_every_server_wide_directive_is_listed_here():
    src = (__import__("test_config").REPO_ROOT / "mod_mcp_auth.c").read_text()
    server_wide = {n for n in command_table() if f'SRV_NUM("{n}"' in src or f'SRV_CMD(AP_INIT_TAKE1, "{n}"' in src
                   or f'SRV_CMD(AP_INIT_FLAG, "{n}"' in src}
    assert server_wide == set(VALID), server_wide ^ set(VALID)


@pytest.mark.parametrize("directive", sorted(VALID))
def test_server_wide_directive_in_a_virtual_host_fails_configtest(tmp_path, mcp_auth_so, directive):
    line = PRELUDE.get(directive, "") + f"{directive} {VALID[directive]}"
    ok = configtest(tmp_path, mcp_auth_so, line + "\n" + location("MCPAuthIssuer https://idp.example"))
    assert ok.returncode == 0, ok.stdout + ok.stderr
    r = configtest(tmp_path, mcp_auth_so, PRELUDE.get(directive, "") +
                   f"<VirtualHost *:1>\n    {directive} {VALID[directive]}\n</VirtualHost>\n")
    out = r.stdout + r.stderr
    assert r.returncode != 0, out
    assert directive in out and "VirtualHost" in out, out


@pytest.fixture
def silent_endpoint():
    """A TCP port that accepts connections (the kernel's backlog) and never
    answers: a call to it lasts exactly its timeout."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(16)
    try:
        yield s.getsockname()[1]
    finally:
        s.close()


def test_virtual_host_with_its_own_directives_uses_the_main_servers_timeout(start_httpd, silent_endpoint):
    """MCPAuthHTTPTimeout 1 in the main server; an introspection call from a
    location of a virtual host gives up after 1 s, not the default 5."""
    vhost = f"""
MCPAuthHTTPTimeout 1
<VirtualHost *>
    <Location /vh>
        AuthType mcp-jwt
        AuthName "mcp"
        MCPAuthIntrospection https://127.0.0.1:{silent_endpoint}/introspect auth=none
        Require valid-user
    </Location>
</VirtualHost>
"""
    h = start_httpd({}, conf=vhost, name="vhost-timeout")
    started = time.monotonic()
    r = h.get("/vh", token="an-opaque-token")
    took = time.monotonic() - started
    assert r.status == 503, r
    assert 0.8 < took < 3.5, f"the introspection call took {took:.1f} s; MCPAuthHTTPTimeout 1 applies everywhere"
