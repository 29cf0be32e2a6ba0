#!/usr/bin/python3
"""Markdown report for bench/run (reads the work directory named by BENCH_W).

Inputs written by bench/run: results.tsv (one line per wrk run), checks.tsv
(correctness check), callgrind.tsv (Ir totals), cg/annotate-mcp.txt,
logs/error-full.log. Settings arrive in BENCH_* environment variables.
"""
import collections
import csv
import datetime
import hashlib
import os
import platform
import re
import statistics
import subprocess

E = os.environ
W = E["BENCH_W"]
STAT = E.get("BENCH_STAT", "best")
LOCS = ["none", "mcp", "oauth2", "openidc"]
LOCS5 = ["none", "mcp-opaque", "oauth2-opaque", "openidc-opaque"]   # case 5: introspection
NAMES = {"none": "no auth (ceiling)", "mcp": "mod_mcp_auth",
         "oauth2": "mod_oauth2", "openidc": "mod_auth_openidc",
         "mcp-opaque": "mod_mcp_auth", "oauth2-opaque": "mod_oauth2", "openidc-opaque": "mod_auth_openidc"}
TOKENS = E.get("BENCH_TOKENS", "?")
CASES = {
    1: "one repeated valid RS256 token",
    2: f"{TOKENS} distinct valid RS256 tokens in rotation",
    3: f"{TOKENS} distinct valid ES256 tokens in rotation",
    4: "one bad-signature RS256 token (401 expected except on /none)",
    5: "cached introspection (one opaque token)",
}


def locs_for(case):
    return LOCS5 if case == 5 else LOCS


def peer(case, name):
    return name + "-opaque" if case == 5 else name


def sh(*cmd):
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=30).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def pkg(name):
    return sh("dpkg-query", "-W", "-f=${Version}", name) or "not installed"


def read_tsv(name):
    path = os.path.join(W, name)
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return list(csv.reader(f, delimiter="\t"))


def num(x):
    try:
        return float(x)
    except (TypeError, ValueError):
        return None


def fmt_rps(x):
    return "—" if x is None else f"{x:,.0f}"


def fmt_ms(x):
    return "—" if x is None else (f"{x:.2f}" if x < 10 else f"{x:.1f}")


def ratio(a, b):
    return None if not a or not b else a / b


def fmt_ratio(x):
    return "—" if x is None else f"{x:.2f}×"


# ---------------------------------------------------------------- results --
rows = read_tsv("results.tsv")
header, runs = rows[0], rows[1:]
runs = [dict(zip(header, r)) for r in runs]
by = collections.defaultdict(list)
for r in runs:
    by[(int(r["case"]), r["location"])].append(r)


def combined(case, loc):
    """(rps, p99_ms, non2xx_total, requests_total, jwks_total, introspections) over the rounds."""
    rs = by.get((case, loc), [])
    if not rs:
        return None
    non = sum(int(r["non2xx"]) for r in rs)
    req = sum(int(r["requests"]) for r in rs)
    jw = sum(int(r["jwks_fetches"]) for r in rs)
    intro = sum(int(r.get("introspections") or 0) for r in rs)
    err = sum(int(r["socket_errors"]) for r in rs)
    if STAT == "median":
        rps = statistics.median(num(r["rps"]) or 0 for r in rs)
        p99s = [num(r["p99_ms"]) for r in rs if num(r["p99_ms"]) is not None]
        p99 = statistics.median(p99s) if p99s else None
    else:
        best = max(rs, key=lambda r: num(r["rps"]) or 0)
        rps, p99 = num(best["rps"]), num(best["p99_ms"])
    return {"rps": rps, "p99": p99, "non2xx": non, "requests": req, "jwks": jw, "errors": err, "intro": intro}


RES = {(c, l): combined(c, l) for c in CASES for l in locs_for(c)}


def rps(c, l):
    v = RES.get((c, l))
    return v["rps"] if v else None


# --------------------------------------------------------------- machine ---
def cpu_model():
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def os_name():
    try:
        for line in open("/etc/os-release"):
            if line.startswith("PRETTY_NAME="):
                return line.split("=", 1)[1].strip().strip('"')
    except OSError:
        pass
    return "unknown"


def mem_total():
    try:
        for line in open("/proc/meminfo"):
            if line.startswith("MemTotal:"):
                return f"{int(line.split()[1]) / 1048576:.1f} GiB"
    except OSError:
        pass
    return "?"


def module_desc():
    so, repo = E["BENCH_MCP_SO"], E["BENCH_REPO"]
    try:
        digest = hashlib.sha256(open(so, "rb").read()).hexdigest()[:12]
        mtime = datetime.datetime.fromtimestamp(os.path.getmtime(so), datetime.timezone.utc)
        built = mtime.strftime("%Y-%m-%d %H:%M UTC")
    except OSError:
        digest, built = "?", "?"
    head = sh("git", "-C", repo, "rev-parse", "--short", "HEAD") or "?"
    dirty = sh("git", "-C", repo, "status", "--porcelain", "--untracked-files=no")
    return f"`{os.path.relpath(so, repo) if so.startswith(repo) else so}` built {built}, sha256 {digest}…, " \
           f"tree at commit {head}{' + uncommitted changes' if dirty else ''}"


out = []
p = out.append
stamp = E.get("BENCH_STAMP", "")
p(f"# mod_mcp_auth benchmark — {stamp}")
p("")
quick = " (QUICK=1 smoke run: indicative only)" if E.get("BENCH_QUICK") == "1" else ""
p(f"wrk `-t{E['BENCH_THREADS']} -c{E['BENCH_CONN']} -d{E['BENCH_DUR']} --latency`, "
  f"{E['BENCH_ROUNDS']} interleaved round(s) per case and location{quick}. "
  + ("Figures are the **best round** (highest requests/s; its p99 comes from that same run)."
     if STAT != "median" else "Figures are the **median over rounds** (requests/s and p99 separately).")
  + f" Total run time {int(E['BENCH_ELAPSED']) // 60} min {int(E['BENCH_ELAPSED']) % 60} s.")
p("")
fc, avail = num(E.get("BENCH_FOREIGN_CPU")), num(E.get("BENCH_CPU_AVAIL"))
noise = (f"Load average {E.get('BENCH_LOAD_START', '?')} at the start of the measurements, "
         f"{E.get('BENCH_LOAD_END', '?')} at the end; other processes used "
         f"{fc if fc is not None else '?'} CPU-seconds of the {avail if avail is not None else '?'} available "
         f"while wrk ran")
if fc is not None and avail:
    noise += f" ({100 * fc / avail:.1f}%)"
noise += "."
if E.get("BENCH_FOREIGN_HTTPD", "0") not in ("", "0"):
    noise += f" {E['BENCH_FOREIGN_HTTPD']} other apache2 process(es) were running when the benchmark started."
noisy = [r for r in runs if (num(r.get("other_cpu_pct")) or 0) > 5]
if noisy:
    noise += (f" In {len(noisy)} of {len(runs)} wrk runs other processes took more than 5 % of the CPU "
              f"(column \"other processes' CPU\" under *All runs*).")
if fc is not None and avail and fc / avail > 0.05:
    noise += " **The machine was not quiet: treat these throughput figures with care.**"
p(noise)
p("")
p("## Machine")
p("")
p("| | |")
p("|---|---|")
p(f"| CPU | {cpu_model()}, {os.cpu_count()} logical CPUs (`nproc` = {sh('nproc') or '?'}) |")
p(f"| memory | {mem_total()} |")
p(f"| OS / kernel | {os_name()} / {platform.release()} |")
p(f"| httpd | {sh('/usr/sbin/apache2', '-v').splitlines()[0].split(':', 1)[-1].strip() if sh('/usr/sbin/apache2', '-v') else '?'} "
  f"(apache2-bin {pkg('apache2-bin')}), event MPM |")
p(f"| OpenSSL | {sh('openssl', 'version')} (libssl3 {pkg('libssl3')}) |")
p(f"| mod_mcp_auth | {module_desc()} |")
p(f"| mod_oauth2 | libapache2-mod-oauth2 {pkg('libapache2-mod-oauth2')}, liboauth2 {pkg('liboauth2-0')} |")
p(f"| mod_auth_openidc | libapache2-mod-auth-openidc {pkg('libapache2-mod-auth-openidc')}, libcjose {pkg('libcjose0')} |")
p(f"| load generator | wrk {pkg('wrk')}, on the same machine (shares the CPUs with httpd) |")
p(f"| callgrind | valgrind {pkg('valgrind')} |")
p("")

# ------------------------------------------------------------------ setup --
p("## Setup")
p("")
p("One httpd (event MPM, StartServers 2, ThreadsPerChild 25, MaxRequestWorkers 100, keep-alive) "
  "serves the same 3-byte static file at four locations, and the IdP: a TLS virtual host of the same "
  "httpd serving a static `jwks.json` (RSA 2048 `RS256` key and EC P-256 `ES256` key, each with `kid`, "
  "`use`, `alg`). All three modules get the JWKS from that HTTPS URI and verify the same tokens; every "
  "module runs with its default caches and LogLevel warn. mod_mcp_auth also checks `iss`, `aud` and "
  "requires `exp` and `sub`; the peers, configured with a JWKS URI only, check the signature and `exp` "
  "when present (they accept any `iss` or `aud`, and a token without `exp`).")
p("")
p("Case 5 adds an RFC 7662 introspection endpoint (`bench/introspect_server.py`, Python stdlib, threaded, "
  "HTTPS with the IdP's certificate because mod_auth_openidc refuses an http endpoint) that requires "
  "`client_secret_basic` for client `bench`, answers `active: true` (`sub`, `client_id`, `scope`, `exp` one day "
  "ahead) for one opaque token and `active: false` for anything else, and counts its calls. /mcp-opaque "
  "(`MCPAuthIntrospection ... cache=300`) and /oauth2-opaque (`OAuth2TokenVerify introspect`, default cache) are "
  "locations of the site vhost; mod_auth_openidc's `OIDCOAuthIntrospectionEndpoint` is a server/vhost setting "
  "(and the site vhost already verifies JWTs for /openidc), so /openidc-opaque is in a second vhost of the same "
  "httpd, on another port, with its default cache. \"introspections\" are the endpoint's counted calls "
  "during the measured runs (the first call for the token happens in the correctness check and warm-up).")
extra = [f"`{k}={E[k]}`" for k in ("MCP_DIR_EXTRA", "MCP_SERVER_EXTRA") if E.get(k)]
if extra:
    p("")
    p("Extra mod_mcp_auth directives for this run: " + ", ".join(extra) + ".")
p("")
try:
    conf = open(os.path.join(W, "conf", "full.conf")).read()
    keep = []
    for line in conf.splitlines():
        if re.match(r"\s*(MCPAuth|OIDC|OAuth2|AuthType|Require valid|<Location /(none|mcp|oauth2|openidc)|<VirtualHost|</VirtualHost|LoadModule (mcp_auth|oauth2|auth_openidc))", line):
            keep.append(line.rstrip().replace(W, "$W"))
    keep = [re.sub(r"OIDCCryptoPassphrase .*", "OIDCCryptoPassphrase <random>", l) for l in keep]
    p("<details><summary>The relevant configuration lines</summary>")
    p("")
    p("```apache")
    p("\n".join(keep))
    p("```")
    p("</details>")
    p("")
except OSError:
    pass

# ------------------------------------------------------------ correctness --
p("## Correctness check (before any measurement)")
p("")
p("| location | request | expected | got | ok |")
p("|---|---|---|---|---|")
for loc, what, exp, got, ok in read_tsv("checks.tsv"):
    p(f"| /{loc} | {what} | {exp} | {got} | {ok} |")
p("")

# ------------------------------------------------------------------ cases --
anomalies = []
for c, title in CASES.items():
    if not any(RES.get((c, l)) for l in locs_for(c)):
        continue
    p(f"## Case {c}: {title}")
    p("")
    if c == 5:
        p("| location | module | req/s | p99 ms | vs /none | vs mod_oauth2 | vs mod_auth_openidc | non-2xx | "
          "introspections | per 10,000 requests |")
        p("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    else:
        p("| location | module | req/s | p99 ms | vs /none | vs mod_oauth2 | vs mod_auth_openidc | non-2xx | JWKS fetches |")
        p("|---|---|---:|---:|---:|---:|---:|---:|---:|")
    for loc in locs_for(c):
        v = RES.get((c, loc))
        if not v:
            continue
        last = (f"{v['intro']} | {10000 * v['intro'] / v['requests']:.2f}" if c == 5 and v["requests"]
                else f"{v['intro']} | —" if c == 5 else f"{v['jwks']}")
        p(f"| /{loc} | {NAMES[loc]} | {fmt_rps(v['rps'])} | {fmt_ms(v['p99'])} | "
          f"{fmt_ratio(ratio(v['rps'], rps(c, 'none')))} | {fmt_ratio(ratio(v['rps'], rps(c, peer(c, 'oauth2'))))} | "
          f"{fmt_ratio(ratio(v['rps'], rps(c, peer(c, 'openidc'))))} | {v['non2xx']:,} of {v['requests']:,} | {last} |")
        if v["errors"]:
            anomalies.append(f"case {c} /{loc}: {v['errors']} wrk socket errors")
        if (c < 4 or c == 5) and v["non2xx"]:
            anomalies.append(f"case {c} /{loc}: {v['non2xx']} non-2xx answers to valid tokens")
        if c == 4 and loc != "none" and v["non2xx"] != v["requests"]:
            anomalies.append(f"case {c} /{loc}: only {v['non2xx']} of {v['requests']} bad tokens refused")
    p("")
p("\"non-2xx\", \"JWKS fetches\" and \"introspections\" are summed over all rounds; JWKS fetches are the IdP's "
  "access-log lines for `/jwks.json` during the measured runs (the warm-up fetches are not counted).")
p("")
if anomalies:
    p("**Anomalies:** " + "; ".join(anomalies) + ".")
    p("")

# ---------------------------------------------------------------- targets --
p("## Targets")
p("")
p("Informational: the script never fails on a figure.")
p("")
p("| target | measured | met |")
p("|---|---|---|")


def target(desc, value, ok):
    p(f"| {desc} | {value} | {'**yes**' if ok else '**no**' if ok is not None else '—'} |")


r = ratio(rps(1, "mcp"), rps(1, "none"))
target("case 1: mod_mcp_auth ≥ 0.90 × no-auth ceiling", fmt_ratio(r), None if r is None else r >= 0.90)
r = ratio(rps(1, "mcp"), rps(1, "oauth2"))
target("case 1: mod_mcp_auth ≥ 2 × mod_oauth2", fmt_ratio(r), None if r is None else r >= 2.0)
peers2 = [x for x in (rps(2, "oauth2"), rps(2, "openidc")) if x]
better = max(peers2) if peers2 else None
r = ratio(rps(2, "mcp"), better)
target("case 2: mod_mcp_auth ≥ 1.5 × the better peer", fmt_ratio(r) + (
    f" (better peer: {'mod_oauth2' if better == rps(2, 'oauth2') else 'mod_auth_openidc'})" if better else ""),
    None if r is None else r >= 1.5)
a, b = rps(4, "mcp"), rps(2, "mcp")
target("case 4: mod_mcp_auth rejects at least as fast as it accepts in case 2",
       f"{fmt_rps(a)} vs {fmt_rps(b)} req/s ({fmt_ratio(ratio(a, b))})", None if not a or not b else a >= b)
v = RES.get((4, "mcp"))
target("case 4: no IdP (JWKS) request from mod_mcp_auth", f"{v['jwks']} fetches" if v else "—",
       None if not v else v["jwks"] == 0)
r = ratio(rps(5, "mcp-opaque"), rps(5, "none"))
target("case 5: cached introspection ≥ 0.90 × no-auth ceiling", fmt_ratio(r), None if r is None else r >= 0.90)
v = RES.get((5, "mcp-opaque"))
per = 10000 * v["intro"] / v["requests"] if v and v["requests"] else None
target("case 5: ≤ 1 introspection call per 10,000 requests with one token (after the first)",
       "—" if per is None else f"{v['intro']} calls in {v['requests']:,} requests ({per:.2f} per 10,000)",
       None if per is None else per <= 1)
p("")

# -------------------------------------------------------------- callgrind --
def parse_callgrind(path):
    """Self cost (Ir) per object and per (object, function) of one dump part.

    Cost lines directly after a calls= line are the inclusive cost of that
    call and are skipped; everything else is self cost, so the per-object
    sums add up to the part's summary/totals line."""
    obs, fns = {}, {}
    ob = fn = None
    per_ob, per_fn = collections.Counter(), collections.Counter()
    skip = False
    total = None

    def name(table, rest):
        m = re.match(r"\((\d+)\)(?:\s+(.*))?$", rest)
        if not m:
            return rest
        if m.group(2) is not None:
            table[m.group(1)] = m.group(2)
        return table.get(m.group(1), rest)

    with open(path, errors="replace") as f:
        for line in f:
            line = line.rstrip("\n")
            if not line:
                continue
            c = line[0]
            if c.isdigit() or c in "+-*":
                if skip:
                    skip = False
                    continue
                parts = line.split()
                if len(parts) >= 2:
                    ir = int(parts[1])
                    per_ob[ob] += ir
                    per_fn[(ob, fn)] += ir
            elif line.startswith("ob="):
                ob = name(obs, line[3:])
            elif line.startswith("fn="):
                fn = name(fns, line[3:])
            elif line.startswith("cob="):
                name(obs, line[4:])
            elif line.startswith("cfn="):
                name(fns, line[4:])
            elif line.startswith("calls="):
                skip = True
            elif line.startswith(("summary:", "totals:")):
                total = int(line.split()[1])
    return total, per_ob, per_fn


def short_ob(o):
    return os.path.basename(o or "?")


cg = {row[0]: row for row in read_tsv("callgrind.tsv")}
p("## Instructions per request (callgrind, case 1 token)")
p("")
if {"marker", "none", "mcp"} <= cg.keys() and all(cg[k][2] for k in ("marker", "none", "mcp")):
    n = int(cg["none"][1])
    marker = int(cg["marker"][2])
    ir = {loc: (int(cg[loc][2]) - marker) / int(cg[loc][1]) for loc in ("none", "mcp")}
    p(f"httpd `-X` (one process, event MPM) under `valgrind --tool=callgrind --trace-children=no`, "
      f"in a configuration with only mod_mcp_auth (plus mod_ssl for the IdP vhost and mod_status for "
      f"the interval marker; no peer modules, so /none pays no foreign hooks). After 20 warm-up "
      f"requests per location (the first /mcp request fetches the JWKS), {n} sequential keep-alive "
      f"requests with the same RS256 token go to /none, then {n} to /mcp. Interval boundaries come from "
      f"`--dump-before=ap_get_loadavg`: a request for mod_status's page (`/cg-marker`) makes callgrind dump "
      f"and zero its counters. Ir/request = (Ir of the interval − Ir of an empty marker-to-marker "
      f"interval, {marker:,}) / {n}; Ir counts every thread of the process, so the listener's idle "
      f"wake-ups are in it too (small). Instruction counts do not depend on machine load.")
    p("")
    p("| location | Ir / request |")
    p("|---|---:|")
    p(f"| /none (no auth) | {ir['none']:,.0f} |")
    p(f"| /mcp (mod_mcp_auth) | {ir['mcp']:,.0f} |")
    p(f"| **mod_mcp_auth cost** (/mcp − /none) | **{ir['mcp'] - ir['none']:,.0f}** |")
    p(f"| /mcp ÷ /none | {ir['mcp'] / ir['none']:.2f}× |")
    p("")
    try:
        _, ob_none, _ = parse_callgrind(cg["none"][3])
        _, ob_mcp, fn_mcp = parse_callgrind(cg["mcp"][3])
        objs = sorted(set(ob_none) | set(ob_mcp), key=lambda o: -(ob_mcp[o] - ob_none[o]))
        p("Where the difference goes (self Ir per request by shared object):")
        p("")
        p("| object | /none | /mcp | difference |")
        p("|---|---:|---:|---:|")
        shown = 0
        for o in objs:
            d = (ob_mcp[o] - ob_none[o]) / n
            if abs(d) < 50 or shown >= 10:
                continue
            shown += 1
            p(f"| {short_ob(o)} | {ob_none[o] / n:,.0f} | {ob_mcp[o] / n:,.0f} | {d:+,.0f} |")
        p("")
        top = [(k, v) for k, v in fn_mcp.most_common() if v / n >= 100][:15]
        p("<details><summary>Top functions by self Ir per request in the /mcp interval</summary>")
        p("")
        p("| Ir / request | function | object |")
        p("|---:|---|---|")
        for (o, f), v in top:
            p(f"| {v / n:,.0f} | `{f}` | {short_ob(o)} |")
        p("")
        p("Unnamed `0x…` functions are in stripped Debian libraries (no debug symbols installed).")
        p("</details>")
        p("")
    except (OSError, ValueError, KeyError) as e:
        p(f"(breakdown unavailable: {e})")
        p("")
else:
    p("Not run (CALLGRIND=0)." if not cg else "Incomplete: " + repr(cg))
    p("")

# ------------------------------------------------------------ all rounds ---
p("## All runs")
p("")
p("| round | case | location | req/s | p99 ms | requests | non-2xx | socket errors | JWKS fetches | introspections | other processes' CPU |")
p("|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|")
for r_ in runs:
    p(f"| {r_['round']} | {r_['case']} | /{r_['location']} | {fmt_rps(num(r_['rps']))} | {fmt_ms(num(r_['p99_ms']))} | "
      f"{int(r_['requests']):,} | {int(r_['non2xx']):,} | {r_['socket_errors']} | {r_['jwks_fetches']} | "
      f"{r_.get('introspections') or 0} | "
      f"{r_.get('other_cpu_pct', '?')} % |")
p("")

# --------------------------------------------------------------- error log --
tags = collections.Counter()
try:
    for line in open(os.path.join(W, "logs", "error-full.log"), errors="replace"):
        m = re.search(r"\] \[([a-z0-9_]+:[a-z0-9]+)\]", line)
        tags[m.group(1) if m else "other"] += 1
except OSError:
    pass
if tags:
    p("Error log of the benchmark httpd (LogLevel warn, as in production): " +
      ", ".join(f"`{t}` {n:,}" for t, n in tags.most_common(8)) + " lines.")
    p("")

print("\n".join(out))
