# SPDX-License-Identifier: Apache-2.0
"""Where things are: the repository, httpd, the build outputs; small process and port helpers."""

import os
import socket
import time
from pathlib import Path


REPO_ROOT = Path(__file__).resolve().parents[3]
APACHE2 = os.environ.get("APACHE2", "/usr/sbin/apache2")
APACHE_MODULES_DIR = Path(os.environ.get("APACHE_MODULES_DIR", "/usr/lib/apache2/modules"))


def module_path() -> Path:
    return Path(os.environ.get("MCP_AUTH_SO") or REPO_ROOT / "build" / "mod_mcp_auth.so").resolve()


def cli_path() -> Path:
    return Path(os.environ.get("MCP_AUTH_CLI") or REPO_ROOT / "build" / "mcp-auth-token").resolve()


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port: int, timeout: float = 15.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.05)
    return False


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie is as good as gone.
    try:
        with open(f"/proc/{pid}/stat") as f:
            if f.read().split(")")[-1].split()[0] == "Z":
                return False
    except OSError:
        return False
    return True


def make_world_readable(path: Path) -> None:
    """httpd children (and the cgid daemon) run as nobody when we are root."""
    for dirpath, dirnames, filenames in os.walk(path):
        os.chmod(dirpath, 0o755)
        for fn in filenames:
            fp = os.path.join(dirpath, fn)
            mode = os.stat(fp).st_mode
            os.chmod(fp, (mode | 0o444) & ~0o022)

