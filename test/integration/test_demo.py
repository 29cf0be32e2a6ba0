# SPDX-License-Identifier: Apache-2.0
"""The demo (SPEC section 9): ``make -f apxs.mk demo`` from the repository root.

The demo always listens on 127.0.0.1:8080; it runs in a private
``MCP_DEMO_DIR`` and is stopped in every case (``demo-stop``, then by pid if
anything of it is left).  The curl commands the demo prints (steps 1-5) are
run exactly as printed, through ``bash -c``.
"""

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from conftest import REPO_ROOT, pid_alive

DEMO_PORT = 8080
ORIGIN = f"http://127.0.0.1:{DEMO_PORT}"
RESOURCE = f"{ORIGIN}/mcp"
METADATA_URL = f"{ORIGIN}/.well-known/oauth-protected-resource/mcp"
ISSUER = "https://idp.demo.local"


def port_in_use(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(0.5)
        try:
            s.connect(("127.0.0.1", port))
            return True
        except OSError:
            return False


def port_bindable(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


def demo_pids(demo_dir: Path) -> list:
    """Every live process whose command line names this demo's httpd.conf."""
    marker = str(demo_dir / "httpd.conf").encode()
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                cmd = f.read()
        except OSError:
            continue
        if marker in cmd and pid_alive(int(entry)):
            pids.append(int(entry))
    return pids


def make(target: str, demo_dir: Path, timeout: float) -> subprocess.CompletedProcess:
    env = dict(os.environ, MCP_DEMO_DIR=str(demo_dir))
    return subprocess.run(["make", "-f", "apxs.mk", target], cwd=REPO_ROOT, env=env,
                          capture_output=True, text=True, timeout=timeout)


def wait_until(pred, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(0.1)
    return pred()


@pytest.fixture(scope="module")
def demo():
    """Starts the demo; yields (demo_dir, stdout of make demo); always stops it."""
    if port_in_use(DEMO_PORT) or not port_bindable(DEMO_PORT):
        pytest.fail(f"port 127.0.0.1:{DEMO_PORT} is busy: the demo needs it. Stop whatever listens "
                    f"there (e.g. a running demo: make -f apxs.mk demo-stop) and run again.",
                    pytrace=False)
    demo_dir = Path(tempfile.mkdtemp(prefix="mcp-auth-demo-it."))
    started = None
    try:
        try:
            started = make("demo", demo_dir, timeout=600)
        except subprocess.TimeoutExpired as e:
            pytest.fail(f"make -f apxs.mk demo did not finish in 600 s: {e}", pytrace=False)
        assert started.returncode == 0, (
            f"make -f apxs.mk demo failed (rc={started.returncode})\nstdout:\n{started.stdout}\n"
            f"stderr:\n{started.stderr}\nerror.log:\n{read(demo_dir / 'error.log')}")
        yield demo_dir, started.stdout
    finally:
        try:
            make("demo-stop", demo_dir, timeout=60)
        except subprocess.TimeoutExpired:
            pass
        # Whatever is left of this demo's httpd (ours: its conf is in our dir).
        wait_until(lambda: not demo_pids(demo_dir), 10)
        for pid in demo_pids(demo_dir):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        shutil.rmtree(demo_dir, ignore_errors=True)


def read(p: Path) -> str:
    try:
        return p.read_text(errors="replace")
    except OSError:
        return ""


def printed_commands(stdout: str) -> dict:
    """{step number: the curl command printed under "N. ..."} for steps 1-5."""
    lines = stdout.splitlines()
    steps = {}
    for i, line in enumerate(lines):
        m = re.match(r"^(\d)\.\s", line)
        if not m:
            continue
        for nxt in lines[i + 1:]:
            if nxt.strip():
                if nxt.strip().startswith("curl "):
                    steps[int(m.group(1))] = nxt.strip()
                break
    return steps


def run_printed(cmd: str) -> str:
    proc = subprocess.run(["bash", "-c", cmd], capture_output=True, timeout=30)
    assert proc.returncode == 0, f"{cmd!r} -> rc {proc.returncode}: {proc.stderr!r}"
    return proc.stdout.decode("utf-8", "replace")


def parse_curl_i(out: str):
    """``curl -i`` output -> (status, [(name, value)], body) of the final response."""
    rest = out
    while True:
        head, _, body = rest.partition("\r\n\r\n")
        status_line, *header_lines = head.split("\r\n")
        status = int(status_line.split()[1])
        if 100 <= status < 200 and body.startswith("HTTP/"):
            rest = body
            continue
        headers = [tuple(x.strip() for x in ln.split(":", 1)) for ln in header_lines if ":" in ln]
        return status, headers, body


def header_all(headers, name):
    return [v for k, v in headers if k.lower() == name.lower()]


def tool_text(body: str) -> dict:
    msg = json.loads(body)
    assert "error" not in msg, msg
    content = msg["result"]["content"]
    assert content and content[0]["type"] == "text", msg
    return json.loads(content[0]["text"])


@pytest.mark.slow
def test_demo_walkthrough(demo):
    demo_dir, stdout = demo
    steps = printed_commands(stdout)
    assert sorted(steps) == [1, 2, 3, 4, 5], f"expected curl commands for steps 1-5 in:\n{stdout}"
    for n, cmd in steps.items():
        assert "127.0.0.1:8080" in cmd, (n, cmd)

    # 1. no token: 401 and exactly one Bearer challenge pointing at the metadata
    status, headers, body = parse_curl_i(run_printed(steps[1]))
    assert status == 401, (status, headers, body)
    chall = header_all(headers, "WWW-Authenticate")
    assert len(chall) == 1 and chall[0].startswith("Bearer "), headers
    assert 'realm="mcp-demo"' in chall[0], chall
    assert f'resource_metadata="{METADATA_URL}"' in chall[0], chall
    assert "error=" not in chall[0], chall

    # 2. the RFC 9728 document
    meta = json.loads(run_printed(steps[2]))
    assert meta["resource"] == RESOURCE, meta
    assert meta["authorization_servers"] == [ISSUER], meta
    assert {"mcp:tools", "notes:delete"} <= set(meta["scopes_supported"]), meta
    assert meta["bearer_methods_supported"] == ["header"], meta

    # 3. whoami with the mcp:tools token
    status, headers, body = parse_curl_i(run_printed(steps[3]))
    assert status == 200, (status, headers, body)
    assert "demo-user" in body, body
    who = tool_text(body)
    assert who["remote_user"] == "demo-user", who
    assert who["subject"] == "demo-user", who
    assert who["issuer"] == ISSUER, who
    assert who["scope"] == "mcp:tools", who
    assert who["claims"]["sub"] == "demo-user" and who["claims"]["aud"] == RESOURCE, who

    # 4. delete_notes needs notes:delete: 403 insufficient_scope (step-up)
    status, headers, body = parse_curl_i(run_printed(steps[4]))
    assert status == 403, (status, headers, body)
    chall = header_all(headers, "WWW-Authenticate")
    assert len(chall) == 1 and chall[0].startswith("Bearer "), headers
    assert 'error="insufficient_scope"' in chall[0], chall
    m = re.search(r'scope="([^"]*)"', chall[0])
    assert m and "notes:delete" in m.group(1).split(), chall
    assert json.loads(body)["error"] == "insufficient_scope", body
    assert "deleted" not in body

    # 5. the admin token may
    status, headers, body = parse_curl_i(run_printed(steps[5]))
    assert status == 200, (status, headers, body)
    assert tool_text(body) == {"deleted": "all notes"}, body

    # stop it: the port is free again and nothing of the demo's httpd is left
    stopped = make("demo-stop", demo_dir, timeout=60)
    assert stopped.returncode == 0, (stopped.stdout, stopped.stderr)
    assert wait_until(lambda: not port_in_use(DEMO_PORT), 10), \
        f"127.0.0.1:{DEMO_PORT} still answers after demo-stop"
    assert wait_until(lambda: not demo_pids(demo_dir), 10), \
        f"demo httpd processes left after demo-stop: {demo_pids(demo_dir)}"
    assert not (demo_dir / "httpd.pid").exists()
