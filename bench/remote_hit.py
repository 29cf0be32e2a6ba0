#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""The cost of MCPAuthSharedCache's remote-hit path (stdlib only).

    bench/remote_hit.py [N]        (N requests per case, default 300)

Starts on 127.0.0.1: bench/introspect_server.py (plain http), a
redis-server of its own (no persistence), and three httpd (event MPM) that
protect a static file with MCPAuthIntrospection: A and B share the redis
cache, C has none. Then, one request at a time over a keep-alive
connection, the latency of:

  local hit       B, a token B has answered before (its shared memory)
  remote hit      B, a token only A has answered (in redis, not in B's memory)
  IdP, no shared  C, a token never seen (shm miss -> IdP call)
  IdP, shared     B, a token never seen (shm miss, redis miss, mark written and
                  read back, IdP call, answer written)

Prints median, p90 and mean per case in milliseconds, and the IdP call
counts. Needs apache2, redis-server and the built module (build/mod_mcp_auth.so).
"""
import http.client
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

BENCH = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(BENCH)
MODDIR = "/usr/lib/apache2/modules"
SO = os.environ.get("MCP_SO", os.path.join(REPO, "build", "mod_mcp_auth.so"))
N = int(sys.argv[1]) if len(sys.argv) > 1 else 300
TOKEN = "benchopaque" + os.urandom(6).hex()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, secs=15):
    end = time.time() + secs
    while time.time() < end:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return True
        except OSError:
            time.sleep(0.05)
    return False


def httpd_conf(root, port, intro_port, shared):
    mods = ["mpm_event", "authn_core", "authz_core", "authz_user", "slotmem_shm", "socache_redis"]
    lines = [f'ServerRoot "{root}"', f'DefaultRuntimeDir "{root}"', f'PidFile "{root}/httpd.pid"', f"Listen 127.0.0.1:{port}",
             "ServerName mcp.bench.test", f'ErrorLog "{root}/error.log"', "LogLevel warn",
             f'DocumentRoot "{root}/htdocs"', "StartServers 2", "ThreadsPerChild 16", "MaxRequestWorkers 32",
             "ServerLimit 2", "KeepAlive On", "MaxKeepAliveRequests 0"]
    lines += [f'LoadModule {m}_module "{MODDIR}/mod_{m}.so"' for m in mods]
    lines += [f'LoadModule mcp_auth_module "{SO}"']
    if os.geteuid() == 0:
        lines += ["User nobody", "Group nogroup"]
    if shared:
        lines.append(f"MCPAuthSharedCache {shared}")
    lines += [f'<Directory "{root}/htdocs">', "Require all granted", "</Directory>",
              "<Location /mcp>", "AuthType mcp-jwt", 'AuthName "mcp"',
              f"MCPAuthIntrospection http://127.0.0.1:{intro_port}/introspect client_id=bench "
              "client_secret=bench-secret cache=300",
              "Require valid-user", "</Location>"]
    return "\n".join(lines) + "\n"


def start_httpd(work, name, intro_port, shared):
    root = os.path.join(work, name)
    os.makedirs(os.path.join(root, "htdocs"))
    with open(os.path.join(root, "htdocs", "mcp"), "w") as f:
        f.write("ok\n")
    os.chmod(work, 0o755)
    for d, _, files in os.walk(root):
        os.chmod(d, 0o755)
        for x in files:
            os.chmod(os.path.join(d, x), 0o644)
    port = free_port()
    conf = os.path.join(root, "httpd.conf")
    with open(conf, "w") as f:
        f.write(httpd_conf(root, port, intro_port, shared))
    r = subprocess.run(["/usr/sbin/apache2", "-f", conf, "-k", "start"], capture_output=True, text=True)
    if r.returncode != 0:
        raise SystemExit(f"httpd {name} did not start: {r.stderr}")
    if not wait_port(port):
        raise SystemExit(f"httpd {name} did not start: see {root}/error.log")
    return port, conf


def timed(port, tokens):
    """Latency in ms of one GET per token, in order, over one connection."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    out = []
    for t in tokens:
        t0 = time.perf_counter()
        conn.request("GET", "/mcp", headers={"Authorization": f"Bearer {t}"})
        r = conn.getresponse()
        r.read()
        out.append((time.perf_counter() - t0) * 1000)
        if r.status != 200:
            raise SystemExit(f"status {r.status} for a bench token on port {port}")
    conn.close()
    return out


def idp_count(port):
    return int(urllib.request.urlopen(f"http://127.0.0.1:{port}/count").read())


def row(name, ms):
    ms = sorted(ms)
    return (f"| {name} | {statistics.median(ms):.3f} | {ms[int(len(ms) * 0.9) - 1]:.3f} | "
            f"{statistics.mean(ms):.3f} |")


def main():
    work = tempfile.mkdtemp(prefix="mcp-remote-bench.")
    procs, confs = [], []
    try:
        intro_port, redis_port = free_port(), free_port()
        procs.append(subprocess.Popen([sys.executable, os.path.join(BENCH, "introspect_server.py"), str(intro_port),
                                       TOKEN], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        procs.append(subprocess.Popen([shutil.which("redis-server"), "--port", str(redis_port), "--bind", "127.0.0.1",
                                       "--save", "", "--appendonly", "no", "--dir", work],
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        if not (wait_port(intro_port) and wait_port(redis_port)):
            raise SystemExit("introspect_server.py or redis-server did not start")
        shared = f"redis:127.0.0.1:{redis_port}"
        a, conf_a = start_httpd(work, "a", intro_port, shared)
        b, conf_b = start_httpd(work, "b", intro_port, shared)
        c, conf_c = start_httpd(work, "c", intro_port, None)
        confs += [conf_a, conf_b, conf_c]

        fresh = iter(f"{TOKEN}-{i}" for i in range(10 * N + 100))
        warm = [next(fresh) for _ in range(20)]
        timed(a, warm), timed(b, warm), timed(c, warm)  # connections, children, curl handles

        local_tok = next(fresh)
        timed(b, [local_tok])
        local = timed(b, [local_tok] * N)

        remote_toks = [next(fresh) for _ in range(N)]
        timed(a, remote_toks)  # A asks the IdP and writes redis
        before = idp_count(intro_port)
        remote = timed(b, remote_toks)
        remote_calls = idp_count(intro_port) - before

        before = idp_count(intro_port)
        idp_plain = timed(c, [next(fresh) for _ in range(N)])
        plain_calls = idp_count(intro_port) - before

        before = idp_count(intro_port)
        idp_shared = timed(b, [next(fresh) for _ in range(N)])
        shared_calls = idp_count(intro_port) - before

        print(f"N = {N} requests per case, one at a time, keep-alive; static file behind the module")
        print("| path | median ms | p90 ms | mean ms |")
        print("|---|---|---|---|")
        print(row("local hit (shared memory)", local))
        print(row("remote hit (redis)", remote))
        print(row("IdP call, no shared cache", idp_plain))
        print(row("IdP call, shared cache miss", idp_shared))
        print(f"IdP calls: remote-hit case {remote_calls} (of {N}), no-shared case {plain_calls}, "
              f"shared-miss case {shared_calls}")
        info = subprocess.run(["redis-cli", "-p", str(redis_port), "info", "stats"], capture_output=True,
                              text=True).stdout
        conns = [ln for ln in info.splitlines() if ln.startswith(("total_connections_received", "total_commands"))]
        print("redis: " + ", ".join(c.strip() for c in conns))
    finally:
        for conf in confs:
            subprocess.run(["/usr/sbin/apache2", "-f", conf, "-k", "stop"], capture_output=True)
        for p in procs:
            p.terminate()
            p.wait(timeout=10)
        time.sleep(0.5)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
