#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""The client and the arithmetic of test/perf-guard.sh (python3 stdlib only).

Drives an httpd -X that runs under callgrind with --dump-before=ap_get_loadavg:
each request for /cg-marker (mod_status, the only caller of that function)
makes callgrind write a dump part and zero its counters. Sequence: sanity
checks, warm-up, marker, marker (part 2: the marker's own cost), N x /none,
marker (part 3), N x /mcp, marker (part 4). Then

    Ir/request = (Ir of the part - Ir of part 2) / N

for /none (the ceiling) and /mcp (the repeated token), and the difference is
compared with the committed budget. A second interval (part 5) sends
MANY distinct HS256 tokens, each once and all already verified: four times
as many as a child's own cache holds, so nearly every lookup is a hit in the
shared store (SHA-256 of fingerprint and token, a lock-free copy, the
verdict decoded); its cost above the ceiling has its own budget. bench/run measures the same way; this
copy has no peers, no TLS and no network, so CI can run it in well under a
minute.

    perf_guard.py PORT TOKEN DUMP_PREFIX BUDGET_FILE N
Exit 0 within budget, 1 over budget, 2 when the measurement itself failed.
"""

import base64
import collections
import hashlib
import hmac
import http.client
import json
import os
import re
import sys
import time

BUDGET_KEY = "repeated_token_ir_above_ceiling"
MANY_KEY = "distinct_tokens_ir_above_ceiling"
MANY = int(os.environ.get("PERF_MANY", "4096"))
WARMUP = 20
TOP = int(os.environ.get("PERF_TOP", "15"))


class Broken(Exception):
    """The measurement is not meaningful (a wrong status, no dump)."""


def get(conn, path, token=None):
    hdr = {"Authorization": "Bearer " + token} if token else {}
    conn.request("GET", path, headers=hdr)
    r = conn.getresponse()
    r.read()
    return r.status


def repeat(port, path, n, token, want=200):
    """n sequential keep-alive GETs on one connection, every one answering want."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    try:
        for i in range(n):
            st = get(conn, path, token)
            if st != want:
                raise Broken(f"{path}: request {i + 1} of {n} answered {st}, expected {want}")
    finally:
        conn.close()


def sanity(port, token):
    """A guard that measured an unprotected /mcp would pass for the wrong
    reason: /mcp must refuse no token and a token with a broken signature."""
    head, payload, sig = token.split(".")
    broken = f"{head}.{payload}.{'A' if sig[0] != 'A' else 'B'}{sig[1:]}"
    for path, tok, want in (("/none", None, 200), ("/mcp", None, 401),
                            ("/mcp", broken, 401), ("/mcp", token, 200)):
        repeat(port, path, 1, tok, want)


def parts(prefix):
    d, base = os.path.split(prefix)
    pat = re.compile(re.escape(base) + r"\.(\d+)$")
    return sorted(int(m.group(1)) for m in map(pat.match, os.listdir(d)) if m)


def marker(port, prefix):
    """One mod_status request; wait for the dump part it causes."""
    before = len(parts(prefix))
    repeat(port, "/cg-marker?auto", 1, None)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if len(parts(prefix)) > before:
            return
        time.sleep(0.05)
    raise Broken("callgrind wrote no dump for the marker (is ap_get_loadavg still mod_status's?)")


def parse_callgrind(path):
    """Total and self cost (Ir) per (object, function) of one dump part.

    Cost lines right after a calls= line are the inclusive cost of that call
    and are skipped; everything else is self cost, so the per-function sums
    add up to the part's totals line."""
    names = {"ob": {}, "fn": {}}
    ob = fn = None
    per_fn = collections.Counter()
    skip = False
    total = None

    def name(kind, rest):
        m = re.match(r"\((\d+)\)(?:\s+(.*))?$", rest)
        if not m:
            return rest
        if m.group(2) is not None:
            names[kind][m.group(1)] = m.group(2)
        return names[kind].get(m.group(1), rest)

    with open(path, errors="replace") as f:
        for line in f:
            c = line[:1]
            if c.isdigit() or c in "+-*":
                if skip:
                    skip = False
                    continue
                fields = line.split()
                if len(fields) >= 2:
                    per_fn[(ob, fn)] += int(fields[1])
            elif line.startswith("ob="):
                ob = name("ob", line[3:].strip())
            elif line.startswith("fn="):
                fn = name("fn", line[3:].strip())
            elif line.startswith("cob="):
                name("ob", line[4:].strip())
            elif line.startswith("cfn="):
                name("fn", line[4:].strip())
            elif line.startswith("calls="):
                skip = True
            elif line.startswith(("summary:", "totals:")):
                total = int(line.split()[1])
    if total is None:
        raise Broken(f"{path}: no totals line")
    return total, per_fn


def read_budget(path, key=BUDGET_KEY):
    with open(path) as f:
        for line in f:
            fields = line.split("#", 1)[0].split()
            if len(fields) == 2 and fields[0] == key:
                return int(fields[1])
    raise Broken(f"{path}: no '{key} <n>' line")


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def hs256_tokens(n, issuer, secret_hex):
    """n distinct HS256 tokens shaped like bench/run's (same claims)."""
    key = secret_hex.encode()  # MCPAuthHMACSecret is the text itself
    head = b64url(json.dumps({"alg": "HS256", "typ": "JWT"}, separators=(",", ":")).encode())
    now = int(time.time())
    out = []
    for i in range(n):
        claims = {"iss": issuer, "aud": "mcp", "sub": f"bench-user-{i:06d}", "iat": now, "exp": now + 86400,
                  "jti": f"hs256-many-{i:06d}", "scope": "mcp:tools"}
        signing = head + "." + b64url(json.dumps(claims, separators=(",", ":")).encode())
        sig = hmac.new(key, signing.encode(), hashlib.sha256).digest()
        out.append(signing + "." + b64url(sig))
    return out


def each_once(port, path, tokens):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    try:
        for i, tok in enumerate(tokens):
            st = get(conn, path, tok)
            if st != 200:
                raise Broken(f"{path}: distinct token {i + 1} answered {st}, expected 200")
    finally:
        conn.close()


def report(prefix, n):
    """Ir/request of /none, /mcp and their difference; the top functions."""
    empty, _ = parse_callgrind(f"{prefix}.2")
    none_total, none_fn = parse_callgrind(f"{prefix}.3")
    mcp_total, mcp_fn = parse_callgrind(f"{prefix}.4")
    none_ir = (none_total - empty) / n
    mcp_ir = (mcp_total - empty) / n
    print(f"perf-guard: {n} requests each; empty marker interval {empty:,} Ir")
    print(f"perf-guard: /none (no auth, the ceiling) {none_ir:10,.0f} Ir/request")
    print(f"perf-guard: /mcp  (one repeated token)   {mcp_ir:10,.0f} Ir/request")

    by_ob = collections.Counter()
    for (ob, _), ir in mcp_fn.items():
        by_ob[ob] += ir
    for (ob, _), ir in none_fn.items():
        by_ob[ob] -= ir
    print("perf-guard: self Ir/request above the ceiling by object:")
    for ob, ir in sorted(by_ob.items(), key=lambda kv: -abs(kv[1])):
        if abs(ir) / n >= 20:
            print(f"  {ir / n:+9,.0f}  {os.path.basename(ob or '?')}")

    diff = collections.Counter(mcp_fn)
    diff.subtract(none_fn)
    print(f"perf-guard: top {TOP} functions by self Ir/request above the ceiling (/mcp - /none):")
    for (ob, fn), ir in diff.most_common(TOP):
        print(f"  {ir / n:+9,.0f}  {fn}  ({os.path.basename(ob or '?')})")
    return mcp_ir - none_ir, none_ir


def report_many(prefix, none_ir):
    empty, _ = parse_callgrind(f"{prefix}.2")
    total, _ = parse_callgrind(f"{prefix}.7")
    many_ir = (total - empty) / MANY
    print(f"perf-guard: /mcp-many ({MANY} distinct tokens, each cached) {many_ir:10,.0f} Ir/request")
    return many_ir - none_ir


def main(argv):
    port, token, prefix, budget_file, n = int(argv[1]), argv[2], argv[3], argv[4], int(argv[5])
    try:
        budget = read_budget(budget_file)
        many_budget = read_budget(budget_file, MANY_KEY)
        many = hs256_tokens(MANY, os.environ["PERF_ISSUER"], os.environ["PERF_HMAC_SECRET"])
        sanity(port, token)
        repeat(port, "/none", WARMUP, token)
        repeat(port, "/mcp", WARMUP, token)
        marker(port, prefix)                # part 1: startup, sanity, warm-up
        marker(port, prefix)                # part 2: the marker alone
        repeat(port, "/none", n, token)
        marker(port, prefix)                # part 3: /none
        repeat(port, "/mcp", n, token)
        marker(port, prefix)                # part 4: /mcp
        each_once(port, "/mcp-many", many)  # every token verified and cached
        marker(port, prefix)                # (part 5 is overwritten below)
        marker(port, prefix)
        each_once(port, "/mcp-many", many)
        marker(port, prefix)                # part 7: the distinct tokens, all cached
        above, none_ir = report(prefix, n)
        many_above = report_many(prefix, none_ir)
    except (Broken, OSError, ValueError, KeyError) as e:
        print(f"perf-guard: ERROR: {e}", file=sys.stderr)
        return 2
    rc = 0
    for what, got, limit, key in (("the repeated-token path", above, budget, BUDGET_KEY),
                                  ("the distinct-token path", many_above, many_budget, MANY_KEY)):
        if got > limit:
            print(f"perf-guard: FAILED: {what} costs {got:,.0f} Ir/request above "
                  f"the ceiling, over the budget of {limit:,} ({key}, {budget_file})", file=sys.stderr)
            rc = 1
        else:
            print(f"perf-guard: ok: {what}: {got:,.0f} Ir/request above the ceiling, "
                  f"within the budget of {limit:,} ({key})")
    return rc


if __name__ == "__main__":
    sys.exit(main(sys.argv))
