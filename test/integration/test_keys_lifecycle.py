# SPDX-License-Identifier: Apache-2.0
"""What survives a graceful restart and what must not (SPEC 7, issue 10
item 12):

* a jwks_file is re-read at every start and graceful restart: its shared
  copy survives the restart, so without the comparison a replaced file's
  removed key would keep verifying (and the new key be unknown);
* stop removes every persist file of the module, those of earlier
  configurations (another MCPAuthCacheEntries) included.
"""

import json
import os
import secrets
import subprocess

import pytest

from conftest import APACHE2, AUDIENCE, Minter, es256_key, wait_for_port

CACHE_HIT = "verified-token cache hit"


def restart(h, how):
    mark = h.log_offset()
    g = subprocess.run([APACHE2, "-f", str(h.conf), "-k", how], capture_output=True, text=True, timeout=30)
    assert g.returncode == 0, g.stderr
    log = h.wait_for_log("resuming normal operations", since=mark, timeout=15)
    assert "resuming normal operations" in log, log[-2000:]
    assert wait_for_port(h.port, 10)


def write_jwks(path, *keys):
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"keys": [k.jwk for k in keys]}))
    os.chmod(tmp, 0o644)
    os.replace(tmp, path)


@pytest.mark.parametrize("how", ["graceful", "restart"])
@pytest.mark.slow
def test_replaced_jwks_file_takes_effect_at_restart(start_httpd, keys, tmp_root, how):
    old, new = es256_key("old"), es256_key("new")
    path = tmp_root / f"jwks-file-{secrets.token_hex(4)}.json"
    write_jwks(path, old)
    issuer = "https://idp.jwks-file.example"
    loc = "\n".join(["AuthType mcp-jwt", 'AuthName "mcp"', f"MCPAuthIssuer {issuer} jwks_file={path}",
                     f"MCPAuthAudience {AUDIENCE}", "Require valid-user"])
    h = start_httpd({"/mcp": loc}, "LogLevel warn core:notice mcp_auth:trace1\nMCPAuthJWKSCacheTTL 3600")
    m = Minter(keys, issuer=issuer)
    tok_old = m.token("ES256", key=old, sub="olduser")
    for _ in range(3):
        assert h.get("/mcp", tok_old).status == 200
    assert h.get("/mcp", m.token("ES256", key=new)).status == 401  # not published yet

    # The operator replaces the key file (old key withdrawn) and restarts.
    write_jwks(path, new)
    restart(h, how)
    mark = h.log_offset()
    resp = h.get("/mcp", tok_old)
    log = h.wait_for_log("Unknown key id", since=mark)
    assert resp.status == 401, f"a token of the removed key is accepted after {how}: {resp!r}\n{log[-2000:]}"
    assert CACHE_HIT not in log
    resp = h.get("/mcp", m.token("ES256", key=new, sub="newuser"))
    assert resp.status == 200, f"a token of the new key is refused after {how}: {resp!r}\n{h.log_since(mark)[-2000:]}"
    assert resp.cgi_env().get("REMOTE_USER") == "newuser"

    # The neighbour: an unchanged file keeps its shared copy (and verdicts) across a graceful restart.
    tok_new = m.token("ES256", key=new, sub="kept")
    assert h.get("/mcp", tok_new).status == 200
    restart(h, "graceful")
    mark = h.log_offset()
    assert h.get("/mcp", tok_new).status == 200
    assert CACHE_HIT in h.wait_for_log(CACHE_HIT, since=mark), h.log_since(mark)[-2000:]


def mcp_run_files(h):
    return sorted(f for f in os.listdir(h.root / "run") if "mcp_auth" in f)


@pytest.mark.slow
def test_stop_removes_persist_files_of_earlier_configurations(start_httpd, keys, tmp_root):
    key = es256_key("persist")
    path = tmp_root / f"jwks-persist-{secrets.token_hex(4)}.json"
    write_jwks(path, key)
    issuer = "https://idp.persist.example"
    loc = "\n".join(["AuthType mcp-jwt", 'AuthName "mcp"', f"MCPAuthIssuer {issuer} jwks_file={path}",
                     f"MCPAuthAudience {AUDIENCE}", "Require valid-user"])
    h = start_httpd({"/mcp": loc}, "MCPAuthCacheEntries 256")
    m = Minter(keys, issuer=issuer)
    assert h.get("/mcp", m.token("ES256", key=key)).status == 200

    # Another cache size: the next generation's segments have other names.
    h.conf.write_text(h.conf.read_text().replace("MCPAuthCacheEntries 256", "MCPAuthCacheEntries 512"))
    restart(h, "graceful")
    assert h.get("/mcp", m.token("ES256", key=key)).status == 200
    during = mcp_run_files(h)
    # Issue 15: the store stays in memory across restarts; nothing is
    # copied to the runtime directory any more (no stale file to leave).
    assert not during, f"persist files written by a graceful restart: {during}"
    # A persist file an earlier version of the module left (16 MB): stop removes it too.
    legacy = h.root / "run" / "slotmem-shm-mcp_auth_e4096x4096.shm.persist"
    with open(legacy, "wb") as f:
        f.truncate(16 * 1024 * 1024)
    during = mcp_run_files(h)

    h.stop()
    left = mcp_run_files(h)
    assert not left, f"persist files left in the runtime dir after stop (while running: {during}): {left}"

    # The neighbour: the next start works and begins empty.
    h.start()
    assert h.get("/mcp", m.token("ES256", key=key)).status == 200
