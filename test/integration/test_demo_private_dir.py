# SPDX-License-Identifier: Apache-2.0
"""Files a local user can plant (issue 10 item 12).

* ``mcp-auth-token keygen`` creates its files with O_CREAT|O_EXCL|O_NOFOLLOW
  (0600 for private keys): it never writes through a planted symlink and
  never overwrites a file; it adds to a jwks.json only when that is a
  regular file of ours nobody else can write.
* ``make -f apxs.mk demo`` works in a private ``mktemp -d`` directory: a
  directory planted at the old fixed path /tmp/mcp-auth-demo (with the
  attacker's key in its jwks.json) is not used.
"""

import json
import os
import shutil
import signal
import stat
import subprocess
import time
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from conftest import REPO_ROOT, SigningKey, make_jws, pid_alive

OLD_FIXED = Path("/tmp/mcp-auth-demo")


def run(cli, *args):
    return subprocess.run([str(cli), *map(str, args)], capture_output=True, text=True, timeout=60)


def test_keygen_never_writes_through_a_planted_symlink(mcp_auth_cli, tmp_path):
    out = tmp_path / "keys"
    out.mkdir()
    victim = tmp_path / "victim.txt"
    victim.write_text("precious\n")
    (out / "k1.pem").symlink_to(victim)
    p = run(mcp_auth_cli, "keygen", "--alg", "ES256", "--kid", "k1", "--out", out)
    assert p.returncode == 1, p
    assert "refusing to overwrite" in p.stderr, p.stderr
    assert victim.read_text() == "precious\n"

    # Same for a secret (HMAC) and for an existing regular file.
    (out / "h1.key").write_text("old\n")
    p = run(mcp_auth_cli, "keygen", "--alg", "HS256", "--kid", "h1", "--out", out)
    assert p.returncode == 1 and "refusing to overwrite" in p.stderr, p
    assert (out / "h1.key").read_text() == "old\n"


def test_keygen_refuses_a_planted_jwks(mcp_auth_cli, tmp_path):
    attacker = SigningKey("ES256", "demo-key", ec.generate_private_key(ec.SECP256R1()))
    # A symlink named jwks.json.
    out = tmp_path / "a"
    out.mkdir()
    victim = tmp_path / "victim.json"
    victim.write_text('{"keys":[]}')
    (out / "jwks.json").symlink_to(victim)
    p = run(mcp_auth_cli, "keygen", "--alg", "ES256", "--kid", "k", "--out", out)
    assert p.returncode == 1 and "symbolic link" in p.stderr, p
    assert victim.read_text() == '{"keys":[]}'
    # A jwks.json anyone may write, holding the attacker's key.
    out = tmp_path / "b"
    out.mkdir()
    (out / "jwks.json").write_text(json.dumps({"keys": [attacker.jwk]}))
    os.chmod(out / "jwks.json", 0o666)
    p = run(mcp_auth_cli, "keygen", "--alg", "ES256", "--kid", "k", "--out", out)
    assert p.returncode == 1 and "writable by someone else" in p.stderr, p
    assert sorted(os.listdir(out)) == ["jwks.json"], os.listdir(out)  # no key left behind


@pytest.mark.slow
def test_keygen_fresh_and_adding_to_own_jwks(mcp_auth_cli, tmp_path):
    """The neighbours: a fresh directory, then a second key added to our own jwks.json."""
    out = tmp_path / "keys"
    p = run(mcp_auth_cli, "keygen", "--alg", "ES256", "--kid", "one", "--out", out)
    assert p.returncode == 0, p
    assert stat.S_IMODE(os.stat(out / "one.pem").st_mode) == 0o600
    assert stat.S_IMODE(os.stat(out / "jwks.json").st_mode) == 0o644
    p = run(mcp_auth_cli, "keygen", "--alg", "RS256", "--kid", "two", "--out", out)
    assert p.returncode == 0, p
    kids = sorted(k["kid"] for k in json.loads((out / "jwks.json").read_text())["keys"])
    assert kids == ["one", "two"]
    assert not [f for f in os.listdir(out) if ".json." in f], os.listdir(out)  # no temp file left


def _httpd_pids_with(marker: str):
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                cmd = Path(f"/proc/{entry}/cmdline").read_bytes()
            except OSError:
                continue
            if marker.encode() in cmd:
                pids.append(int(entry))
    return pids


@pytest.mark.slow
def test_demo_ignores_a_planted_fixed_directory(mcp_auth_cli):
    import http.client
    import socket

    with socket.socket() as s:
        if s.connect_ex(("127.0.0.1", 8080)) == 0:
            pytest.fail("port 127.0.0.1:8080 is busy: the demo needs it", pytrace=False)
    attacker = SigningKey("ES256", "demo-key", ec.generate_private_key(ec.SECP256R1()))
    planted = not OLD_FIXED.exists() and not OLD_FIXED.is_symlink()
    if planted:
        (OLD_FIXED / "keys").mkdir(parents=True)
        (OLD_FIXED / "keys" / "jwks.json").write_text(json.dumps({"keys": [attacker.jwk]}))
        (OLD_FIXED / "keys" / "demo-key.pem").write_bytes(attacker.private_pem())
    before = {p: p.read_bytes() for p in OLD_FIXED.rglob("*") if p.is_file()} if planted else {}
    ptr = REPO_ROOT / "build" / "demo-dir"
    saved_ptr = ptr.read_text() if ptr.is_file() else None
    env = {k: v for k, v in os.environ.items() if k != "MCP_DEMO_DIR"}
    demo_dir = None
    leftover = []
    try:
        started = subprocess.run(["make", "-f", "apxs.mk", "demo"], cwd=REPO_ROOT, env=env,
                                 capture_output=True, text=True, timeout=600)
        assert started.returncode == 0, started.stdout + started.stderr
        demo_dir = Path(ptr.read_text().strip())
        assert demo_dir.is_dir() and demo_dir.resolve() != OLD_FIXED.resolve(), demo_dir
        assert str(demo_dir) in started.stdout
        assert f"{OLD_FIXED}/" not in started.stdout, started.stdout
        assert stat.S_IMODE(os.stat(demo_dir / "keys" / "demo-key.pem").st_mode) == 0o600
        assert stat.S_IMODE(os.stat(demo_dir / "token").st_mode) == 0o600

        def get(token):
            c = http.client.HTTPConnection("127.0.0.1", 8080, timeout=10)
            try:
                c.request("POST", "/mcp", body=b'{"jsonrpc":"2.0","id":1,"method":"tools/call",'
                                              b'"params":{"name":"whoami"}}',
                          headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json",
                                   "Accept": "application/json, text/event-stream"})
                r = c.getresponse()
                return r.status, r.read()
            finally:
                c.close()

        now = int(time.time())
        forged = make_jws({"alg": "ES256", "typ": "JWT", "kid": "demo-key"},
                          {"iss": "https://idp.demo.local", "sub": "mallory", "aud": "http://127.0.0.1:8080/mcp",
                           "scope": "mcp:tools notes:delete", "iat": now, "exp": now + 600},
                          attacker, alg="ES256")
        status, body = get(forged)
        assert status == 401, (status, body)
        status, body = get((demo_dir / "token").read_text().strip())
        assert status == 200 and b"demo-user" in body, (status, body)
    finally:
        subprocess.run(["make", "-f", "apxs.mk", "demo-stop"], cwd=REPO_ROOT, env=env,
                       capture_output=True, text=True, timeout=60)
        if demo_dir is not None:
            # demo-stop found the private directory through build/demo-dir.
            deadline = time.monotonic() + 10
            while _httpd_pids_with(str(demo_dir / "httpd.conf")) and time.monotonic() < deadline:
                time.sleep(0.1)
            leftover = _httpd_pids_with(str(demo_dir / "httpd.conf"))
            for pid in leftover:
                if pid_alive(pid):
                    os.kill(pid, signal.SIGKILL)
            shutil.rmtree(demo_dir, ignore_errors=True)
        if saved_ptr is None:
            ptr.unlink(missing_ok=True)
        else:
            ptr.write_text(saved_ptr)
        if planted:
            after = {p: p.read_bytes() for p in OLD_FIXED.rglob("*") if p.is_file()}
            shutil.rmtree(OLD_FIXED, ignore_errors=True)
            assert after == before, "the demo wrote into the planted directory"
    assert not leftover, f"make demo-stop left the demo running: {leftover}"
