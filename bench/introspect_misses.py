#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""Introspection misses per second, and the connections they cost.

    bench/introspect_misses.py                     # build/mod_mcp_auth.so, 10 s per run
    MCP_SO="build/mod_mcp_auth.so /tmp/old/mod_mcp_auth.so" DUR=5 bench/introspect_misses.py

Every request carries a token never seen before (TOKEN-<thread>-<n>), so
every request is a cache miss and costs one RFC 7662 call to
bench/introspect_server.py (HTTPS, client_secret_basic, answers active).
For each module (MCP_SO, space-separated) and each IdP mode (MODES):

  keepalive  the IdP keeps connections open: misses reuse them
  close      the IdP answers "Connection: close": every call needs a new
             TCP connection and TLS handshake (the no-reuse baseline)

it starts a fresh httpd (event MPM, StartServers 2, ThreadsPerChild 25,
one <Location /mcp-opaque> like bench/run's case 5), warms up for 1 s, then
runs wrk for DUR and prints misses/s (wrk's req/s), p99, non-2xx answers,
the IdP's calls during the run (its /count) and the TCP connections it
accepted during the run (/count?connections).

Settings (environment): MCP_SO, MODES ("keepalive close"), DUR (10s),
THREADS (2), CONN (16), KEEP=1 keeps the work directory. Needs wrk,
/usr/sbin/apache2 and Debian's python3-jwt / python3-cryptography (for
bench/mkkeys.py). Everything listens on 127.0.0.1; the script stops what
it started and removes its directory, also on Ctrl-C. A measurement, not a
test: it never fails because of a figure (only when a run is not 2xx).
"""
import os
import re
import secrets
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.request

BENCH = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(BENCH)
APACHE2 = os.environ.get("APACHE2", "/usr/sbin/apache2")
MODDIR = os.environ.get("APACHE_MODULES_DIR", "/usr/lib/apache2/modules")
PY = "/usr/bin/python3"
MCP_SO = os.environ.get("MCP_SO", os.path.join(REPO, "build", "mod_mcp_auth.so")).split()
MODES = os.environ.get("MODES", "keepalive close").split()
DUR = os.environ.get("DUR", "10s")
THREADS = os.environ.get("THREADS", "2")
CONN = os.environ.get("CONN", "16")
ISSUER = "https://127.0.0.1/bench-issuer"

LUA = """-- a new token for every request: TOK-<thread>-<n>
local tok = os.getenv("MISS_TOKEN")
local threads = 0
function setup(thread)
  threads = threads + 1
  thread:set("id", threads)
end
local n = 0
function request()
  n = n + 1
  return wrk.format(nil, nil, {["Authorization"] = "Bearer " .. tok .. "-" .. id .. "-" .. n})
end
"""

CONF = """ServerRoot "{w}"
DefaultRuntimeDir "{w}/run"
PidFile "{w}/run/httpd.pid"
ServerName 127.0.0.1:{port}
Listen 127.0.0.1:{port}
LoadModule mpm_event_module {m}/mod_mpm_event.so
LoadModule authn_core_module {m}/mod_authn_core.so
LoadModule authz_core_module {m}/mod_authz_core.so
LoadModule authz_user_module {m}/mod_authz_user.so
LoadModule alias_module {m}/mod_alias.so
LoadModule slotmem_shm_module {m}/mod_slotmem_shm.so
LoadModule mcp_auth_module "{so}"
{user}
StartServers 2
ServerLimit 4
ThreadsPerChild 25
MinSpareThreads 10
MaxSpareThreads 100
MaxRequestWorkers 100
KeepAlive On
MaxKeepAliveRequests 0
ErrorLog "{w}/logs/error.log"
LogLevel warn
MCPAuthCAFile "{w}/keys/ca.crt"
MCPAuthRefusalLogInterval 60
DocumentRoot "{w}/www"
<Directory />
  Require all denied
</Directory>
<Directory "{w}/www">
  Require all granted
</Directory>
Alias /mcp-opaque "{w}/www/ok.txt"
<Location /mcp-opaque>
  AuthType mcp-jwt
  AuthName "mcp"
  MCPAuthIssuer {iss} jwks_file={w}/keys/jwks.json
  MCPAuthIntrospection {intro} client_id=bench client_secret=bench-secret cache=300
  Require valid-user
</Location>
"""


def log(msg):
    print(f"[introspect_misses] {msg}", file=sys.stderr, flush=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, secs=15):
    end = time.monotonic() + secs
    while time.monotonic() < end:
        try:
            with socket.create_connection(("127.0.0.1", port), 0.5):
                return True
        except OSError:
            time.sleep(0.05)
    return False


class Run:
    def __init__(self, w, so, mode, token):
        self.w, self.so, self.mode, self.token = w, so, mode, token
        self.idp = self.httpd_conf = None
        self.idp_port, self.port = free_port(), free_port()
        self.ctx = ssl.create_default_context(cafile=f"{w}/keys/ca.crt")

    def idp_get(self, query=""):
        url = f"https://127.0.0.1:{self.idp_port}/count{query}"
        with urllib.request.urlopen(url, timeout=5, context=self.ctx) as r:
            return int(r.read().decode().strip())

    def start(self):
        env = dict(os.environ, INTROSPECT_CLOSE="1" if self.mode == "close" else "0")
        self.idp = subprocess.Popen([PY, f"{BENCH}/introspect_server.py", str(self.idp_port), self.token,
                                     f"{self.w}/keys/idp.crt", f"{self.w}/keys/idp.key"], env=env,
                                    stdout=subprocess.DEVNULL, stderr=open(f"{self.w}/logs/idp.log", "ab"))
        if not wait_port(self.idp_port):
            raise SystemExit("introspect_server.py does not listen")
        for d in ("run",):
            shutil.rmtree(f"{self.w}/{d}", ignore_errors=True)
            os.makedirs(f"{self.w}/{d}")
        self.httpd_conf = f"{self.w}/httpd.conf"
        user = "User nobody\nGroup nogroup" if os.geteuid() == 0 else ""
        with open(self.httpd_conf, "w") as f:
            f.write(CONF.format(w=self.w, port=self.port, m=MODDIR, so=self.so, user=user, iss=ISSUER,
                                intro=f"https://127.0.0.1:{self.idp_port}/introspect"))
        subprocess.run(["chmod", "-R", "a+rX", self.w], check=True)
        r = subprocess.run([APACHE2, "-f", self.httpd_conf, "-k", "start"], capture_output=True, text=True)
        if r.returncode != 0 or not wait_port(self.port):
            raise SystemExit(f"httpd did not start: {r.stderr}")

    def stop(self):
        if self.httpd_conf:
            subprocess.run([APACHE2, "-f", self.httpd_conf, "-k", "stop"], capture_output=True)
            pidfile = f"{self.w}/run/httpd.pid"
            end = time.monotonic() + 15
            while os.path.exists(pidfile) and time.monotonic() < end:
                time.sleep(0.05)
            self.httpd_conf = None
        if self.idp:
            self.idp.terminate()
            self.idp.wait(10)
            self.idp = None

    def wrk(self, dur, tag):
        env = dict(os.environ, MISS_TOKEN=f"{self.token}-{tag}")
        out = subprocess.run(["timeout", "120", "wrk", "--latency", "-t", THREADS, "-c", CONN, "-d", dur,
                              "-s", f"{self.w}/miss.lua", f"http://127.0.0.1:{self.port}/mcp-opaque"],
                             capture_output=True, text=True, env=env).stdout
        rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
        p99 = re.search(r"^\s+99%\s+(\S+)", out, re.M)
        reqs = re.search(r"(\d+) requests in", out)
        non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
        errors = re.search(r"Socket errors: (.*)", out)
        return {"rps": float(rps.group(1)) if rps else 0.0, "p99": p99.group(1) if p99 else "?",
                "requests": int(reqs.group(1)) if reqs else 0, "non2xx": int(non2xx.group(1)) if non2xx else 0,
                "errors": errors.group(1) if errors else "", "raw": out}

    def measure(self):
        self.wrk("1s", "warm")
        calls0, conns0 = self.idp_get(), self.idp_get("?connections")
        res = self.wrk(DUR, "run")
        res["calls"] = self.idp_get() - calls0
        # minus our own two /count requests after the run (one connection each)
        res["connections"] = self.idp_get("?connections") - conns0 - 2
        return res


def main():
    if not shutil.which("wrk"):
        raise SystemExit("wrk is missing (apt-get install wrk)")
    for so in MCP_SO:
        if not os.path.isfile(so):
            raise SystemExit(f"no module at {so} (make -f apxs.mk, or set MCP_SO)")
    w = tempfile.mkdtemp(prefix="mcp-misses.")
    run = None

    def on_signal(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_signal)
    rows = []
    try:
        for d in ("logs", "www", "keys", "run"):
            os.makedirs(f"{w}/{d}")
        with open(f"{w}/www/ok.txt", "w") as f:
            f.write("ok\n")
        with open(f"{w}/miss.lua", "w") as f:
            f.write(LUA)
        subprocess.run([PY, f"{BENCH}/mkkeys.py", f"{w}/keys", ISSUER, "mcp", "1"], check=True,
                       stdout=subprocess.DEVNULL)
        token = f"opaque-miss-{secrets.token_urlsafe(12)}"
        for so in MCP_SO:
            for mode in MODES:
                run = Run(w, os.path.abspath(so), mode, token)
                log(f"{so}, IdP {mode}: {DUR}, {THREADS} threads, {CONN} connections")
                run.start()
                try:
                    res = run.measure()
                finally:
                    run.stop()
                    run = None
                if res["non2xx"] or not res["requests"]:
                    log(f"not all answers were 2xx:\n{res['raw']}")
                rows.append((so, mode, res))
    finally:
        if run:
            run.stop()
        if os.environ.get("KEEP") == "1":
            log(f"kept {w}")
        else:
            shutil.rmtree(w, ignore_errors=True)
    print(f"\nIntrospection misses (every request a new opaque token), wrk -t{THREADS} -c{CONN} -d{DUR}, "
          f"IdP: bench/introspect_server.py over HTTPS\n")
    print("| module | IdP | misses/s | p99 | non-2xx | IdP calls | new connections | calls per connection |")
    print("|---|---|---|---|---|---|---|---|")
    for so, mode, r in rows:
        per = f"{r['calls'] / r['connections']:.1f}" if r["connections"] > 0 else "all on kept connections"
        print(f"| {so} | {mode} | {r['rps']:.0f} | {r['p99']} | {r['non2xx']} | {r['calls']} | "
              f"{r['connections']} | {per} |")
    load = os.getloadavg()
    print(f"\nload average after the runs: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} ({os.cpu_count()} CPUs)")
    return 1 if any(r["non2xx"] or not r["requests"] for _, _, r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
