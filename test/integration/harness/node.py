# SPDX-License-Identifier: Apache-2.0
"""Node.js peers in test/mcp (the oidc-provider IdP, the MCP SDK clients and
servers): the tool chain, ``npm ci`` when the dependencies are missing, and
one way to start a script and wait for its JSON ready line."""

import json
import os
import select
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

from .env import REPO_ROOT


TEST_DIR = REPO_ROOT / "test"
MCP_DIR = TEST_DIR / "mcp"
NODE_PACKAGES = ("@modelcontextprotocol/sdk", "oidc-provider", "zod")


def _node_deps_present() -> bool:
    return all((TEST_DIR / "node_modules" / p / "package.json").is_file() for p in NODE_PACKAGES)


def find_node() -> str:
    """The node executable, after ``npm ci`` in test/ if the packages are missing.
    Fails (never skips) when Node.js or npm is not there."""
    exe = shutil.which("node")
    if not exe:
        pytest.fail("node (Node.js >= 20.19) is not installed; the MCP peers in test/mcp need it",
                    pytrace=False)
    if not _node_deps_present():
        npm = shutil.which("npm")
        if not npm:
            pytest.fail("test/node_modules is missing and npm is not installed", pytrace=False)
        try:
            proc = subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=TEST_DIR,
                                  capture_output=True, text=True, timeout=600)
        except subprocess.TimeoutExpired as e:
            pytest.fail(f"npm ci in {TEST_DIR} timed out: {e}", pytrace=False)
        if proc.returncode != 0 or not _node_deps_present():
            pytest.fail(f"npm ci --no-audit --no-fund in {TEST_DIR} failed (rc={proc.returncode})\n"
                        f"stdout:\n{proc.stdout[-3000:]}\nstderr:\n{proc.stderr[-3000:]}", pytrace=False)
    return exe


class ReadyProc:
    """A child process that prints one JSON line (its "ready" line, e.g.
    {"port": N}) on stdout once it listens; stderr goes to ``log``."""

    def __init__(self, argv, log: Path, cwd=None, timeout=30):
        self.log = log
        self._logf = open(log, "wb")
        self.proc = subprocess.Popen(argv, cwd=cwd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=self._logf)
        self.ready = None
        deadline = time.monotonic() + timeout
        line = b""
        while time.monotonic() < deadline and not line.endswith(b"\n"):
            r, _, _ = select.select([self.proc.stdout], [], [], max(0.0, deadline - time.monotonic()))
            if not r:
                break
            b = os.read(self.proc.stdout.fileno(), 1)
            if not b:
                break
            line += b
        try:
            self.ready = json.loads(line)
        except ValueError:
            self.stop()
            raise RuntimeError(f"{argv} did not become ready (got {line!r}); log:\n{self.log_text()[-3000:]}")

    @property
    def port(self):
        return self.ready["port"]

    def log_text(self) -> str:
        try:
            return self.log.read_bytes().decode("utf-8", "replace")
        except OSError:
            return ""

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        if self.proc.stdout:
            self.proc.stdout.close()
        self._logf.close()


class NodeProc(ReadyProc):
    """A test/mcp script (idp.mjs, server.mjs, jsonrpc_backend.mjs, ...) run by ``node``."""

    def __init__(self, node, script, args, log: Path, timeout=30):
        super().__init__([node, str(MCP_DIR / script), *args], log, cwd=TEST_DIR, timeout=timeout)
