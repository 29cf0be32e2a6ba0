#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""Markdown report for bench/run (reads the work directory named by BENCH_W).

Inputs written by bench/run: results.tsv (one line per timed wrk run),
passes.tsv (one line per pass over a token pool: the cold figures),
checks.tsv (correctness check), callgrind.tsv (Ir totals), rss.tsv (memory
of each httpd child), openssl-speed.txt, cg/annotate-mcp.txt,
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
BIG = E.get("BENCH_BIG_TOKENS", "?")
BIG_CACHE = E.get("BENCH_BIG_CACHE", "")
COOLDOWN = int(E.get("BENCH_JWKS_COOLDOWN", "30") or 30)
EDDSA_LOCS = (E.get("BENCH_EDDSA_LOCS") or "none mcp").split()
CASES = {
    1: "one repeated valid RS256 token",
    2: f"{TOKENS} distinct valid RS256 tokens in rotation",
    3: f"{TOKENS} distinct valid ES256 tokens in rotation",
    4: "one bad-signature RS256 token (401 expected except on /none)",
    5: "cached introspection (one opaque token)",
    6: f"{TOKENS} distinct valid EdDSA (Ed25519) tokens in rotation",
    7: f"{BIG} distinct valid RS256 tokens in rotation",
    8: "one RS256 token with an unknown kid (401 expected except on /none)",
    9: "one expired RS256 token with a valid signature (401 expected except on /none)",
}
DISTINCT = (2, 3, 6, 7)      # token pools: a pass over the pool precedes each timed run
REJECT = (4, 8, 9)           # 401 expected except on /none
ALG = {2: "RS256", 3: "ES256", 6: "EdDSA", 7: "RS256"}


def locs_for(case):
    if case == 5:
        return LOCS5
    if case == 6:
        return [l for l in LOCS if l in EDDSA_LOCS]
    if case == 7:
        return ["none", "mcp"]
    return LOCS


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
    by[(int(r["case"]), r["location"], r.get("config") or "default")].append(r)


def combined(case, loc, config="default"):
    """(rps, p99_ms, non2xx_total, requests_total, jwks_total, introspections) over the rounds."""
    rs = by.get((case, loc, config), [])
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
RESB = {(c, l): combined(c, l, "big") for c in (2, 7) for l in ("none", "mcp")}   # with BIG_CACHE


def rps(c, l):
    v = RES.get((c, l))
    return v["rps"] if v else None


def rpsb(c, l):
    v = RESB.get((c, l))
    return v["rps"] if v else None


# passes over a token pool: the first one (round 1) of each configuration is cold
passes = [dict(zip(rows[0], r)) for rows in [read_tsv("passes.tsv")] if rows for r in rows[1:]]
COLD = {(p_["config"], int(p_["case"]), p_["location"]): p_ for p_ in passes if p_["round"] == "1"}


def cold_rate(p_):
    """Verified tokens per second of a pass: answered requests / duration."""
    secs = num(p_["seconds"])
    return num(p_["rps"]) if not secs else int(p_["requests"]) / secs


def openssl_speed():
    """verify/s of one CPU for rsa2048, ecdsap256, ed25519 from `openssl speed`."""
    out = {}
    try:
        text = open(os.path.join(W, "openssl-speed.txt")).read()
    except OSError:
        return out
    for line in text.splitlines():
        m = re.match(r"\s*rsa 2048 bits\s+\S+s\s+\S+s\s+([\d.]+)\s+([\d.]+)", line)
        if m:
            out["RS256"] = float(m.group(2))
        m = re.match(r"\s*256 bits ecdsa \(nistp256\)\s+\S+s\s+\S+s\s+([\d.]+)\s+([\d.]+)", line)
        if m:
            out["ES256"] = float(m.group(2))
        m = re.match(r"\s*253 bits EdDSA \(Ed25519\)\s+\S+s\s+\S+s\s+([\d.]+)\s+([\d.]+)", line)
        if m:
            out["EdDSA"] = float(m.group(2))
    return out


SPEED = openssl_speed()
NCPU = os.cpu_count() or 1


def cold_bound(ceiling, verify_per_s):
    """Requests/s if a request costs the ceiling's work plus one signature
    verification spread over all CPUs: 1 / (1/ceiling + 1/(CPUs x verify/s))."""
    if not ceiling or not verify_per_s:
        return None
    return 1 / (1 / ceiling + 1 / (NCPU * verify_per_s))


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
  "httpd serving a static `jwks.json` (RSA 2048 `RS256`, EC P-256 `ES256` and Ed25519 `EdDSA` keys, each with "
  "`kid`, `use`, `alg`; the peers get the same file without the Ed25519 key, which their cjose cannot import). "
  "All three modules get the JWKS from that HTTPS URI and verify the same tokens; every "
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


def case_table(c, res, locs, config_note=""):
    if c == 5:
        p("| location | module | req/s | p99 ms | vs /none | vs mod_oauth2 | vs mod_auth_openidc | non-2xx | "
          "introspections | per 10,000 requests |")
        p("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    else:
        p("| location | module | req/s | p99 ms | vs /none | vs mod_oauth2 | vs mod_auth_openidc | non-2xx | JWKS fetches |")
        p("|---|---|---:|---:|---:|---:|---:|---:|---:|")

    def r_(l):
        v = res.get((c, l))
        return v["rps"] if v else None

    for loc in locs:
        v = res.get((c, loc))
        if not v:
            continue
        last = (f"{v['intro']} | {10000 * v['intro'] / v['requests']:.2f}" if c == 5 and v["requests"]
                else f"{v['intro']} | —" if c == 5 else f"{v['jwks']}")
        p(f"| /{loc} | {NAMES[loc]} | {fmt_rps(v['rps'])} | {fmt_ms(v['p99'])} | "
          f"{fmt_ratio(ratio(v['rps'], r_('none')))} | {fmt_ratio(ratio(v['rps'], r_(peer(c, 'oauth2'))))} | "
          f"{fmt_ratio(ratio(v['rps'], r_(peer(c, 'openidc'))))} | {v['non2xx']:,} of {v['requests']:,} | {last} |")
        where = f"case {c}{config_note} /{loc}"
        if v["errors"]:
            anomalies.append(f"{where}: {v['errors']} wrk socket errors")
        if c not in REJECT and v["non2xx"]:
            anomalies.append(f"{where}: {v['non2xx']} non-2xx answers to valid tokens")
        if c in REJECT and loc != "none" and v["non2xx"] != v["requests"]:
            anomalies.append(f"{where}: only {v['non2xx']} of {v['requests']} bad tokens refused")
    p("")


for c, title in CASES.items():
    if not any(RES.get((c, l)) for l in locs_for(c)):
        continue
    p(f"## Case {c}: {title}")
    p("")
    if c in DISTINCT:
        p("Steady state: before each timed run on an authenticating location, one pass sent every token of the "
          "pool once, so every token had been verified (and cached, where the cache holds the pool); the first "
          "of these passes is the cold figure under *First pass over each pool*.")
        p("")
    if c == 6:
        missing = [NAMES[l] for l in ("oauth2", "openidc") if l not in EDDSA_LOCS]
        if missing:
            p(f"Not measured: {', '.join(missing)} — the correctness check got a 401 for a valid EdDSA token. "
              "mod_oauth2 3.3.1 (liboauth2 1.4.5) and mod_auth_openidc 2.4.12 use cjose 0.6.2, which cannot import "
              "an Ed25519 (OKP) key (`cjose_jwk_import_json failed` in their logs when they are given one, "
              "`PEER_JWKS=full`); by default they get the JWKS without it.")
            p("")
    if c == 7:
        p(f"Only /none and /mcp (the target compares mod_mcp_auth with itself at {TOKENS} tokens; a pass over "
          f"{BIG} tokens takes the peers minutes). Default settings here; the same case with "
          f"`{BIG_CACHE or '(BIG_CACHE empty)'}` follows under *Case 7 with more cache*.")
        p("")
    case_table(c, RES, locs_for(c))

if any(RESB.values()):
    p(f"## Case 7 with more cache: `{BIG_CACHE}`")
    p("")
    p(f"The httpd stopped and started again with this server directive (new, empty shared memory), then the "
      f"same rounds of case 2 ({TOKENS} tokens) and case 7 ({BIG} tokens), on /none and /mcp, so that the "
      f"ratio compares figures of the same configuration and the same minutes.")
    p("")
    p("| case | location | req/s | p99 ms | vs /none | non-2xx | JWKS fetches |")
    p("|---|---|---:|---:|---:|---:|---:|")
    for c in (2, 7):
        for loc in ("none", "mcp"):
            v = RESB.get((c, loc))
            if not v:
                continue
            p(f"| {c} | /{loc} | {fmt_rps(v['rps'])} | {fmt_ms(v['p99'])} | {fmt_ratio(ratio(v['rps'], rpsb(c, 'none')))} | "
              f"{v['non2xx']:,} of {v['requests']:,} | {v['jwks']} |")
            if v["non2xx"]:
                anomalies.append(f"case {c} with {BIG_CACHE} /{loc}: {v['non2xx']} non-2xx answers to valid tokens")
            if v["errors"]:
                anomalies.append(f"case {c} with {BIG_CACHE} /{loc}: {v['errors']} wrk socket errors")
    p("")

p("\"non-2xx\", \"JWKS fetches\" and \"introspections\" are summed over all rounds; JWKS fetches are the IdP's "
  "access-log lines for the JWKS during the measured runs (the warm-up fetches are not counted).")
p("")

# ----------------------------------------------------------- cold passes --
if COLD:
    p("## First pass over each pool (cold: every token new)")
    p("")
    p("The first pass over a token pool, on a module that has never seen those tokens: every request "
      "verifies a signature. wrk (`bench/rotate.lua`, `ONCE=1`) sends each token of the pool once and ends "
      "when every thread has sent its share. *verified/s* = answered requests ÷ the pass's duration. "
      f"*openssl* is `openssl speed` verify/s on one CPU of this machine; *bound* = 1 / (1/ceiling + "
      f"1/({NCPU} CPUs × openssl verify/s)), the rate if a request cost only the ceiling's work plus one "
      "verification; *ceiling* is the case's /none figure (steady, same run).")
    p("")
    p("| configuration | case | alg | location | tokens sent / pool | seconds | verified/s | vs /none | openssl verify/s | bound | vs bound | non-2xx | JWKS fetches |")
    p("|---|---:|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for (cfg, c, loc), p_ in sorted(COLD.items(), key=lambda kv: (kv[0][0] != "default", kv[0][1], LOCS.index(kv[0][2]))):
        rate = cold_rate(p_)
        ceil = rps(c, "none") if cfg == "default" else rpsb(c, "none")
        sp = SPEED.get(ALG[c])
        bound = cold_bound(ceil, sp)
        pool_, fresh = int(p_["pool"] or 0), min(int(p_["fresh"] or 0), int(p_["pool"] or 0))
        note = "" if p_["exhausted"] == "1" else " (not all sent)"
        p(f"| {'default' if cfg == 'default' else BIG_CACHE} | {c} | {ALG[c]} | /{loc} | {fresh:,} / {pool_:,}{note} | "
          f"{num(p_['seconds']) or 0:.1f} | {fmt_rps(rate)} | {fmt_ratio(ratio(rate, ceil))} | "
          f"{fmt_rps(sp)} | {fmt_rps(bound)} | {fmt_ratio(ratio(rate, bound))} | {int(p_['non2xx']):,} | {p_['jwks_fetches']} |")
        if int(p_["non2xx"]):
            anomalies.append(f"first pass of case {c} /{loc}: {p_['non2xx']} non-2xx answers to valid tokens")
    p("")

if anomalies:
    p("**Anomalies:** " + "; ".join(anomalies) + ".")
    p("")

# --------------------------------------------------------------- memory ---
rss_rows = read_tsv("rss.tsv")
if rss_rows:
    p("## Memory per httpd child")
    p("")
    p("From `/proc/<pid>/status` and `/proc/<pid>/smaps` of each child of the benchmark httpd (which also "
      "loads the two peer modules). *RssAnon* is private memory (heap: per-process caches); *RssShmem* the "
      "shared-memory pages the child has touched (mod_mcp_auth's segment, mod_auth_openidc's shm cache, "
      "mod_ssl's session cache...). *mod_mcp_auth segment* is the verdict store, MCPAuthCacheEntries × "
      "MCPAuthCacheEntrySize bytes of shared memory mapped by every child: its resident pages are shared, "
      "they count once for the machine, not once per child (\"?\" when it could not be told by its size).")
    p("")
    p("| when | pid | VmRSS MiB | RssAnon MiB | RssShmem MiB | mod_mcp_auth segment: mapped MiB | resident MiB |")
    p("|---|---:|---:|---:|---:|---:|---:|")

    def mib(x):
        return f"{int(x) / 1024:,.1f}" if str(x).isdigit() else "?"

    for label, pid, rss, anon, shm, seg, segrss in rss_rows:
        p(f"| {label} | {pid} | {mib(rss)} | {mib(anon)} | {mib(shm)} | {mib(seg)} | {mib(segrss)} |")
    p("")


def rss_max(prefix):
    vals = [int(r[2]) for r in rss_rows if r[0].startswith(prefix) and "after the measurements" in r[0] and r[2].isdigit()]
    return max(vals) / 1024 if vals else None


# -------------------------------------------------------------- callgrind --
def cg_above():
    """Ir per request of /mcp above /none from callgrind.tsv, or None."""
    cg_ = {row[0]: row for row in read_tsv("callgrind.tsv")}
    if not ({"marker", "none", "mcp"} <= cg_.keys() and all(cg_[k][2] for k in ("marker", "none", "mcp"))):
        return None
    m = int(cg_["marker"][2])
    return (int(cg_["mcp"][2]) - m) / int(cg_["mcp"][1]) - (int(cg_["none"][2]) - m) / int(cg_["none"][1])


# ---------------------------------------------------------------- targets --
p("## Targets (issue 12)")
p("")
p("Ratios within this run (median of the rounds unless STAT=best). Informational: the script never fails "
  "on a figure.")
p("")
p("| target | measured | met |")
p("|---|---|---|")


def dur_secs(d):
    mult = {"s": 1, "m": 60, "h": 3600}
    return max(1, int(float(d[:-1]) * mult[d[-1]]) if d and d[-1] in mult else int(float(d or 1)))


def target(desc, value, ok):
    p(f"| {desc} | {value} | {'**yes**' if ok is True else '**no**' if ok is False else ok or '—'} |")


def meets(r, limit):
    return None if r is None else r >= limit


# 1. case 2: cold and steady
cp = COLD.get(("default", 2, "mcp"))
if cp:
    rate, sp = cold_rate(cp), SPEED.get("RS256")
    bound = cold_bound(rps(2, "none"), sp)
    r = ratio(rate, bound)
    target(f"case 2, first pass ({TOKENS} new RS256 tokens): limited only by RSA verification "
           "(≥ 0.75 × the bound: ceiling plus one verification per request)",
           f"{fmt_rps(rate)} verified/s; openssl: {fmt_rps(sp)} verify/s on one CPU; bound {fmt_rps(bound)}/s; "
           f"{fmt_ratio(r)} of the bound, {fmt_ratio(ratio(rate, rps(2, 'none')))} the ceiling", meets(r, 0.75))
cp7 = COLD.get(("default", 7, "mcp"))
if cp7:
    rate, sp = cold_rate(cp7), SPEED.get("RS256")
    bound = cold_bound(rps(7, "none"), sp)
    target(f"case 7, first pass ({BIG} new RS256 tokens): the same, over a longer pass",
           f"{fmt_rps(rate)} verified/s; bound {fmt_rps(bound)}/s; {fmt_ratio(ratio(rate, bound))} of the bound",
           meets(ratio(rate, bound), 0.75))
r = ratio(rps(2, "mcp"), rps(2, "none"))
target(f"case 2, steady state ({TOKENS} cached RS256 tokens): ≥ 0.75 × the no-auth ceiling", fmt_ratio(r), meets(r, 0.75))
r = ratio(rps(2, "mcp"), rps(2, "openidc"))
target("case 2, steady state: ≥ 2.5 × mod_auth_openidc", fmt_ratio(r), meets(r, 2.5))
# 2. 100k
r = ratio(rps(7, "mcp"), rps(2, "mcp"))
target(f"case 7 ({BIG} tokens), steady state, default settings: within 20 % of case 2 (≥ 0.80 ×)",
       fmt_ratio(r) + (f" ({fmt_rps(rps(7, 'mcp'))} vs {fmt_rps(rps(2, 'mcp'))} req/s)" if r else ""), meets(r, 0.80))
rb = ratio(rpsb(7, "mcp"), rpsb(2, "mcp"))
if BIG_CACHE and rb is not None:
    target(f"case 7 with one directive, `{BIG_CACHE}`: within 20 % of case 2 (same configuration)",
           f"{fmt_ratio(rb)} ({fmt_rps(rpsb(7, 'mcp'))} vs {fmt_rps(rpsb(2, 'mcp'))} req/s)", meets(rb, 0.80))
if rss_rows:
    d, b = rss_max("default"), rss_max(BIG_CACHE) if BIG_CACHE else None
    txt = "; ".join(x for x in (f"default: {d:,.0f} MiB" if d else "",
                                 f"`{BIG_CACHE}`: {b:,.0f} MiB" if b else "") if x) or "—"
    target("RSS per httpd child at the end of the measurements (VmRSS of the largest child; see *Memory per httpd child*)",
           txt, "reported")
# 3. case 1
r = ratio(rps(1, "mcp"), rps(1, "none"))
target("case 1 (one repeated token): ≥ 0.95 × the no-auth ceiling", fmt_ratio(r), meets(r, 0.95))
ir = cg_above()
target("case 1: ≤ 3,000 instructions per request above the ceiling (callgrind)",
       "—" if ir is None else f"{ir:,.0f} Ir", None if ir is None else ir <= 3000)
# 4. case 5
r = ratio(rps(5, "mcp-opaque"), rps(5, "none"))
target("case 5: cached introspection ≥ 0.90 × the no-auth ceiling", fmt_ratio(r), meets(r, 0.90))
v = RES.get((5, "mcp-opaque"))
per = 10000 * v["intro"] / v["requests"] if v and v["requests"] else None
target("case 5: ≤ 1 introspection call per 10,000 requests with one token (after the first)",
       "—" if per is None else f"{v['intro']} calls in {v['requests']:,} requests ({per:.2f} per 10,000)",
       None if per is None else per <= 1)
# 5. ES256, EdDSA beside RS256
if rps(3, "mcp") or rps(6, "mcp"):
    parts = [f"{a}: {fmt_rps(rps(c, 'mcp'))} req/s steady ({fmt_ratio(ratio(rps(c, 'mcp'), rps(2, 'mcp')))} RS256)"
             for c, a in ((3, "ES256"), (6, "EdDSA")) if rps(c, "mcp")]
    for c, a in ((3, "ES256"), (6, "EdDSA")):
        cp_ = COLD.get(("default", c, "mcp"))
        if cp_:
            parts.append(f"{a} first pass {fmt_rps(cold_rate(cp_))} verified/s (openssl {fmt_rps(SPEED.get(a))} verify/s)")
    missing = [NAMES[l] for l in ("oauth2", "openidc") if l not in EDDSA_LOCS]
    if missing and rps(6, "mcp"):
        parts.append(f"EdDSA not supported by {' and '.join(missing)}")
    target("ES256 and EdDSA distinct tokens reported beside RS256 (case 2)", "; ".join(parts), "reported")
# 6. rejections
runs_of = {c: [r_ for r_ in runs if int(r_["case"]) == c and r_["location"] == "mcp" and (r_.get("config") or "default") == "default"]
           for c in REJECT}
for c, what in ((4, "bad signature"), (8, "unknown kid"), (9, "expired")):
    a, b = rps(c, "mcp"), rps(2, "mcp")
    if not a:
        continue
    target(f"case {c} ({what}): rejecting costs no more than an accepted distinct token (req/s ≥ case 2 steady)",
           f"{fmt_rps(a)} vs {fmt_rps(b)} req/s ({fmt_ratio(ratio(a, b))})", None if not b else a >= b)
    v = RES.get((c, "mcp"))
    if c == 8:
        # at most one forced refetch per cooldown; each run may open a new window
        allowed = len(runs_of[c]) * -(-dur_secs(E.get("BENCH_DUR", "5s")) // COOLDOWN)
        target(f"case {c}: JWKS fetches from mod_mcp_auth ≤ the rate-limited refresh "
               f"(one per MCPAuthJWKSRefreshCooldown = {COOLDOWN} s per run: ≤ {allowed})",
               f"{v['jwks']} fetches in {v['requests']:,} requests", v["jwks"] <= allowed)
    else:
        target(f"case {c}: no IdP (JWKS) request from mod_mcp_auth", f"{v['jwks']} fetches", v["jwks"] == 0)
p("")
p("Earlier targets (issue 3), for comparison:")
p("")
p("| target | measured | met |")
p("|---|---|---|")
r = ratio(rps(1, "mcp"), rps(1, "oauth2"))
target("case 1: mod_mcp_auth ≥ 2 × mod_oauth2", fmt_ratio(r), meets(r, 2.0))
peers2 = [x for x in (rps(2, "oauth2"), rps(2, "openidc")) if x]
better = max(peers2) if peers2 else None
r = ratio(rps(2, "mcp"), better)
target("case 2: mod_mcp_auth ≥ 1.5 × the better peer", fmt_ratio(r) + (
    f" (better peer: {'mod_oauth2' if better == rps(2, 'oauth2') else 'mod_auth_openidc'})" if better else ""),
    meets(r, 1.5))
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
p("|---:|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
for r_ in runs:
    cfg = "" if (r_.get("config") or "default") == "default" else " (more cache)"
    p(f"| {r_['round']} | {r_['case']}{cfg} | /{r_['location']} | {fmt_rps(num(r_['rps']))} | {fmt_ms(num(r_['p99_ms']))} | "
      f"{int(r_['requests']):,} | {int(r_['non2xx']):,} | {r_['socket_errors']} | {r_['jwks_fetches']} | "
      f"{r_.get('introspections') or 0} | "
      f"{r_.get('other_cpu_pct', '?')} % |")
p("")

if passes:
    p("Passes over the token pools (round 1: cold; later rounds: warming the cache again before the timed run):")
    p("")
    p("| configuration | round | case | location | req/s | tokens sent / pool | seconds | non-2xx | JWKS fetches |")
    p("|---|---:|---:|---|---:|---:|---:|---:|---:|")
    for p_ in passes:
        p(f"| {'default' if p_['config'] == 'default' else BIG_CACHE} | {p_['round']} | {p_['case']} | /{p_['location']} | "
          f"{fmt_rps(num(p_['rps']))} | {min(int(p_['fresh'] or 0), int(p_['pool'] or 0)):,} / {int(p_['pool'] or 0):,} | "
          f"{num(p_['seconds']) or 0:.1f} | {int(p_['non2xx']):,} | {p_['jwks_fetches']} |")
    p("")

# --------------------------------------------------------------- error log --
tags = collections.Counter()
cache_full = collections.Counter()   # "Token cache full" warnings, by MCPAuthCacheEntries
try:
    for line in open(os.path.join(W, "logs", "error-full.log"), errors="replace"):
        m = re.search(r"\] \[([a-z0-9_]+:[a-z0-9]+)\]", line)
        tags[m.group(1) if m else "other"] += 1
        m = re.search(r"Token cache full: .*MCPAuthCacheEntries \(now (\d+)\)", line)
        if m:
            cache_full[m.group(1)] += 1
except OSError:
    pass
if cache_full:
    p("mod_mcp_auth's \"Token cache full: live entries are being evicted\" warnings (rate-limited, so a count "
      "of intervals with evictions, not of evictions): " +
      ", ".join(f"{n:,} with MCPAuthCacheEntries {k}" for k, n in sorted(cache_full.items(), key=lambda kv: int(kv[0]))) + ".")
    p("")
if tags:
    p("Error log of the benchmark httpd (LogLevel warn, as in production): " +
      ", ".join(f"`{t}` {n:,}" for t, n in tags.most_common(8)) + " lines.")
    p("")

print("\n".join(out))
