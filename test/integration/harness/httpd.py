# SPDX-License-Identifier: Apache-2.0
"""httpd: the configuration (event MPM, mod_cgid, a CGI that prints
REMOTE_USER / AUTH_TYPE), ``apache2 -k start``/``stop``, raw requests, the error log."""

import http.client
import json
import os
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from .env import APACHE2, APACHE_MODULES_DIR, free_port, make_world_readable, module_path, pid_alive, wait_for_port
from .tls import TLSFiles
from .tokens import AUDIENCE, ISSUED, ISSUER

# Every Httpd that was started, in order: the after-test check reads their error logs.
STARTED = []

CGI_SCRIPT = """#!/bin/sh
printf 'Content-Type: text/plain\\r\\n\\r\\n'
printf 'REMOTE_USER=%s\\n' "$REMOTE_USER"
printf 'AUTH_TYPE=%s\\n' "$AUTH_TYPE"
printf 'REQUEST_METHOD=%s\\n' "$REQUEST_METHOD"
printf 'SCRIPT_OK=1\\n'
"""


# The identity CGI of suites that check what the module exported: the body
# (if any) read, then the variables the module sets, as KEY=VALUE lines.
ENV_CGI = """#!/bin/sh
cat >/dev/null
printf 'Content-Type: text/plain\\r\\n\\r\\n'
printf 'REMOTE_USER=%s\\n' "$REMOTE_USER"
printf 'AUTH_TYPE=%s\\n' "$AUTH_TYPE"
printf 'MCP_AUTH_SCOPE=%s\\n' "$MCP_AUTH_SCOPE"
printf 'MCP_AUTH_ISS=%s\\n' "$MCP_AUTH_ISS"
printf 'MCP_AUTH_SUB=%s\\n' "$MCP_AUTH_SUB"
printf 'SCRIPT_OK=1\\n'
"""

# The whole CGI environment as JSON, bytes as the CGI saw them (latin-1
# round trip): for the identity suites, which look at every variable.
JSON_ENV_CGI = r"""#!/usr/bin/python3
import json, os, sys


env = {k.decode("latin-1"): v.decode("latin-1") for k, v in os.environb.items()}
body = json.dumps(env).encode()
sys.stdout.buffer.write(b"Content-Type: application/json\r\n\r\n" + body)
sys.stdout.buffer.flush()
"""


def json_cgi_env(resp) -> dict:
    """The environment JSON_ENV_CGI printed, values read as UTF-8."""
    assert resp.status == 200, resp
    raw = resp.json()
    assert "GATEWAY_INTERFACE" in raw, resp  # really the env CGI
    return {k: v.encode("latin-1").decode("utf-8", "surrogateescape") for k, v in raw.items()}


def install_cgi(directory: Path, text: str, name: str = "env.cgi") -> Path:
    """Writes an executable CGI script into ``directory`` (created, 0755:
    httpd's children run as nobody when the tests run as root)."""
    directory.mkdir(parents=True, exist_ok=True)
    os.chmod(directory, 0o755)
    p = directory / name
    p.write_text(text)
    os.chmod(p, 0o755)
    return p


@dataclass
class Response:
    status: int
    reason: str
    headers: list  # [(name, value)] in wire order, duplicates kept
    body: bytes

    def header_all(self, name: str) -> list:
        n = name.lower()
        return [v for k, v in self.headers if k.lower() == n]

    def header(self, name: str):
        vals = self.header_all(name)
        return vals[0] if vals else None

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")

    def json(self):
        return json.loads(self.body)

    def cgi_env(self) -> dict:
        env = {}
        for line in self.text.splitlines():
            if "=" in line:
                k, v = line.split("=", 1)
                env[k] = v
        return env

    def __repr__(self):
        return (f"<Response {self.status} {self.reason} headers={self.headers!r} "
                f"body={self.body[:300]!r}>")


class Httpd:
    def __init__(self, root: Path, port: int, conf: Path):
        self.root = root
        self.port = port
        self.conf = conf
        self.error_log = root / "logs" / "error.log"
        self.access_log = root / "logs" / "access.log"
        self.pid_file = root / "run" / "httpd.pid"
        self.pid = None
        self.checked_offset = 0  # error log read up to here by harness.checks

    # -- lifecycle --------------------------------------------------------
    def start(self):
        proc = subprocess.run([APACHE2, "-f", str(self.conf), "-k", "start"],
                              capture_output=True, text=True, timeout=60)
        if proc.returncode != 0:
            raise HttpdStartError(
                f"apache2 -k start failed (rc={proc.returncode})\n"
                f"stdout: {proc.stdout}\nstderr: {proc.stderr}\n"
                f"error log:\n{self.log_text()[-4000:]}", proc.stderr + self.log_text())
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and not self.pid_file.exists():
            time.sleep(0.05)
        if self.pid_file.exists():
            try:
                self.pid = int(self.pid_file.read_text().strip())
            except ValueError:
                time.sleep(0.2)
                self.pid = int(self.pid_file.read_text().strip())
        if self not in STARTED:
            STARTED.append(self)
        if not wait_for_port(self.port, 15) or self.pid is None or not pid_alive(self.pid):
            text = self.log_text()
            self.stop()
            raise HttpdStartError(f"httpd did not come up on port {self.port}\n"
                                  f"stderr: {proc.stderr}\nerror log:\n{text[-4000:]}", text)

    def stop(self):
        if self.pid is None and self.pid_file.exists():
            try:
                self.pid = int(self.pid_file.read_text().strip())
            except (ValueError, OSError):
                pass
        try:
            subprocess.run([APACHE2, "-f", str(self.conf), "-k", "stop"],
                           capture_output=True, text=True, timeout=30)
        except subprocess.TimeoutExpired:
            pass
        if self.pid is None:
            return
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and pid_alive(self.pid):
            time.sleep(0.05)
        if pid_alive(self.pid):
            try:
                os.kill(self.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.pid = None

    # -- requests ---------------------------------------------------------
    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def url(self, path: str) -> str:
        return self.base_url + path

    def request(self, method: str, path: str, headers=(), body: bytes = None,
                timeout: float = 20) -> Response:
        """Raw HTTP/1.1 request; headers is a list of (name, value) and may
        repeat a name (requests can't do that)."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            conn.putrequest(method, path, skip_accept_encoding=True)
            for name, value in headers:
                if str(name).lower() == "authorization":
                    ISSUED.add(str(value).split(" ", 1)[-1])
                conn.putheader(name, value)
            if body is not None:
                conn.putheader("Content-Length", str(len(body)))
            conn.endheaders(body)
            resp = conn.getresponse()
            data = resp.read()
            return Response(resp.status, resp.reason, list(resp.getheaders()), data)
        finally:
            conn.close()

    def get(self, path: str, token: str = None, headers=()) -> Response:
        hdrs = list(headers)
        if token is not None:
            hdrs.append(("Authorization", f"Bearer {token}"))
        return self.request("GET", path, hdrs)

    # -- error log --------------------------------------------------------
    def log_text(self) -> str:
        try:
            return self.error_log.read_bytes().decode("utf-8", "replace")
        except FileNotFoundError:
            return ""

    def log_offset(self) -> int:
        try:
            return self.error_log.stat().st_size
        except FileNotFoundError:
            return 0

    def log_since(self, offset: int) -> str:
        try:
            with open(self.error_log, "rb") as f:
                f.seek(offset)
                return f.read().decode("utf-8", "replace")
        except FileNotFoundError:
            return ""

    def wait_for_log(self, phrases, since: int = 0, timeout: float = 3.0) -> str:
        """Poll the error log (from ``since``) until one of ``phrases`` shows up.
        Returns the new log text either way; the caller asserts."""
        if isinstance(phrases, str):
            phrases = [phrases]
        deadline = time.monotonic() + timeout
        while True:
            text = self.log_since(since)
            if any(p in text for p in phrases) or time.monotonic() > deadline:
                return text
            time.sleep(0.05)


class HttpdStartError(Exception):
    def __init__(self, message, log_text=""):
        super().__init__(message)
        self.log_text = log_text


_BASE_MODULES = [
    ("authn_core_module", "mod_authn_core.so"),
    ("authz_core_module", "mod_authz_core.so"),
    ("authz_user_module", "mod_authz_user.so"),
    ("mime_module", "mod_mime.so"),
    ("cgid_module", "mod_cgid.so"),
    ("alias_module", "mod_alias.so"),
    ("env_module", "mod_env.so"),
    ("headers_module", "mod_headers.so"),
    # The module keeps its shared caches in slotmem (SPEC section 1).
    ("slotmem_shm_module", "mod_slotmem_shm.so"),
]


# The process model: event is the default; availability tests run their core
# cases under worker and prefork too (a prefork child serves one request).
MPMS = ("event", "worker", "prefork")


def _mpm_lines(mpm: str):
    if mpm not in MPMS:
        raise ValueError(f"unknown MPM {mpm!r}")
    lines = [f'LoadModule mpm_{mpm}_module "{APACHE_MODULES_DIR / f"mod_mpm_{mpm}.so"}"']
    if mpm == "prefork":
        return lines + ["StartServers 3", "MinSpareServers 3", "MaxSpareServers 8",
                        "ServerLimit 16", "MaxRequestWorkers 16"]
    return lines + ["StartServers 3", "ServerLimit 4", "ThreadsPerChild 8", "MinSpareThreads 8",
                    "MaxSpareThreads 32", "MaxRequestWorkers 32"]


def render_config(*, root: Path, port: int, locations, cgi: Path, module_so: Path = None,
                  server_conf: str = "", ca_file: Path = None, mpm: str = "event",
                  modules=()) -> str:
    lines = [
        f'ServerRoot "{root}"',
        f'DefaultRuntimeDir "{root}/run"',
        f'PidFile "{root}/run/httpd.pid"',
        # The default resource URI comes from ServerName, never from Host.
        f"ServerName 127.0.0.1:{port}",
        f"Listen 127.0.0.1:{port}",
    ]
    lines += _mpm_lines(mpm)
    for name, so in list(_BASE_MODULES) + list(modules):
        lines.append(f'LoadModule {name} "{APACHE_MODULES_DIR / so}"')
    lines += [
        "<IfModule !log_config_module>",
        f'  LoadModule log_config_module "{APACHE_MODULES_DIR / "mod_log_config.so"}"',
        "</IfModule>",
    ]
    if module_so is not None:
        lines.append(f'LoadModule mcp_auth_module "{module_so}"')
    if os.geteuid() == 0:
        lines += ["User nobody", "Group nogroup"]
    lines += [
        "Timeout 20",
        "KeepAlive On",
        # Room for the oversized-token tests: the module, not httpd's header
        # limit, must be what rejects them.
        "LimitRequestFieldSize 65536",
        f'ErrorLog "{root}/logs/error.log"',
        # core:notice shows "child pid N exit signal ..." (crash detection)
        "LogLevel warn core:notice mcp_auth:info" if module_so is not None
        else "LogLevel warn core:notice",
        'LogFormat "%h %l %u %t \\"%r\\" %>s %b" common',
        f'CustomLog "{root}/logs/access.log" common',
        f'TypesConfig "{root}/conf/mime.types"',
        f'ScriptSock "{root}/run/cgid.sock"',
        f'DocumentRoot "{root}/htdocs"',
        "<Directory />",
        "  AllowOverride None",
        "  Require all denied",
        "</Directory>",
        f'<Directory "{root}/htdocs">',
        "  Require all granted",
        "</Directory>",
        f'<Directory "{cgi.parent}">',
        "  Options +ExecCGI",
        "  Require all granted",
        "</Directory>",
    ]
    if ca_file is not None and module_so is not None:
        lines.append(f'MCPAuthCAFile "{ca_file}"')
    if server_conf:
        lines.append(server_conf)
    for path, _ in locations:
        lines.append(f'ScriptAliasMatch "^{path}(/.*)?$" "{cgi}"')
    for path, snippet in locations:
        lines.append(f'<Location "{path}">')
        lines.append(snippet.strip("\n"))
        lines.append("</Location>")
    return "\n".join(lines) + "\n"


class HttpdFactory:
    def __init__(self, tmp_root: Path, tls_files: TLSFiles):
        self.tmp_root = tmp_root
        self.tls = tls_files
        self.instances = []
        self._n = 0

    def start(self, locations, *, server_conf: str = "", module_so: Path = None,
              with_module: bool = True, name: str = "httpd", mpm: str = "event",
              modules=()) -> Httpd:
        """Start an httpd with one <Location> per entry.

        locations: dict or list of (path, snippet).  Every location is served
        by the CGI (it prints REMOTE_USER, AUTH_TYPE, REQUEST_METHOD).
        server_conf is appended to the main server config."""
        if isinstance(locations, dict):
            locations = list(locations.items())
        if with_module and module_so is None:
            module_so = module_path()
            if not module_so.is_file():
                pytest.fail(f"mod_mcp_auth is not built: {module_so} does not exist.", pytrace=False)
        if not with_module:
            module_so = None
        last_error = None
        for _attempt in range(3):
            self._n += 1
            root = self.tmp_root / f"{name}-{self._n}"
            for sub in ("conf", "logs", "run", "htdocs", "cgi-bin"):
                (root / sub).mkdir(parents=True, exist_ok=True)
            (root / "conf" / "mime.types").write_text("text/plain txt\n")
            (root / "htdocs" / "index.txt").write_text("ok\n")
            cgi = root / "cgi-bin" / "whoami.cgi"
            cgi.write_text(CGI_SCRIPT)
            os.chmod(cgi, 0o755)
            port = free_port()
            conf = root / "conf" / "httpd.conf"
            conf.write_text(render_config(root=root, port=port, locations=locations, cgi=cgi,
                                          module_so=module_so, server_conf=server_conf,
                                          ca_file=self.tls.ca_pem, mpm=mpm, modules=modules))
            make_world_readable(root)
            os.chmod(root / "logs", 0o755)
            h = Httpd(root, port, conf)
            try:
                h.start()
            except HttpdStartError as e:
                last_error = str(e)
                retry = "Address already in use" in e.log_text or "could not bind" in e.log_text
                h.stop()
                if retry:
                    continue
                break
            self.instances.append(h)
            return h
        pytest.fail(last_error, pytrace=False)

    def stop_all(self):
        while self.instances:
            self.instances.pop().stop()


def mcp_location(issuer: str = ISSUER, jwks_uri: str = None, *, audience: str = AUDIENCE,
                 extra: str = "", jwks_file: str = None, lines=(), issuer_opts: str = "",
                 require: str = "Require valid-user") -> str:
    """A protected-location snippet: AuthType, AuthName, the issuer (with its
    jwks_file= or jwks_uri= if given, then ``issuer_opts``), the audience
    (None: none), ``extra`` and ``lines``, then ``require`` (None: none, for
    sections whose own Require lines or <RequireAll> trees decide)."""
    src = f" jwks_file={jwks_file}" if jwks_file else (f" jwks_uri={jwks_uri}" if jwks_uri else "")
    parts = ["AuthType mcp-jwt", 'AuthName "mcp"', f"MCPAuthIssuer {issuer}{src}{issuer_opts}"]
    if audience:
        parts.append(f"MCPAuthAudience {audience}")
    if extra:
        parts.append(extra.strip("\n"))
    parts += list(lines)
    if require:
        parts.append(require)
    return "\n".join(parts)


# ---------------------------------------------------------------------------
# apache2 -t: configurations that are only parsed, never started
# ---------------------------------------------------------------------------

def configtest(tmp_path: Path, so: Path, body: str, server_name: str = "ServerName 127.0.0.1"):
    """``apache2 -t`` of a minimal server with the module and ``body``; the
    CompletedProcess (text).  The configuration is tmp_path/httpd.conf."""
    conf = tmp_path / "httpd.conf"
    conf.write_text(f"""
ServerRoot "{tmp_path}"
{server_name}
Listen 127.0.0.1:1
PidFile "{tmp_path}/httpd.pid"
ErrorLog "{tmp_path}/error.log"
LoadModule mpm_event_module {APACHE_MODULES_DIR}/mod_mpm_event.so
LoadModule authn_core_module {APACHE_MODULES_DIR}/mod_authn_core.so
LoadModule authz_core_module {APACHE_MODULES_DIR}/mod_authz_core.so
LoadModule authz_user_module {APACHE_MODULES_DIR}/mod_authz_user.so
LoadModule mcp_auth_module {so}
{body}
""")
    return subprocess.run([APACHE2, "-t", "-f", str(conf)], capture_output=True, text=True, timeout=30)


def configtest_output(tmp_path: Path, so: Path, body: str):
    """configtest as (exit status, stdout + stderr, the configuration's path)."""
    r = configtest(tmp_path, so, body)
    return r.returncode, r.stdout + r.stderr, tmp_path / "httpd.conf"


def config_location(*lines, path="/mcp") -> str:
    """<Location path> with AuthType mcp-jwt, ``lines`` and Require valid-user (for configtest)."""
    inner = "\n".join("    " + line for line in lines)
    return f"<Location {path}>\n    AuthType mcp-jwt\n{inner}\n    Require valid-user\n</Location>\n"
