#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""Memory of each httpd child, for bench/run (one TSV line per child).

Usage: rss.py LABEL PARENT_PID SEGMENT_BYTES

Per child of PARENT_PID (the httpd parent), from /proc/<pid>/status and
/proc/<pid>/smaps: VmRSS, RssAnon (private heap: the per-process caches),
RssShmem (shared memory pages this child has touched), and the mapped size
and resident size of mod_mcp_auth's verdict segment. That segment is
anonymous shared memory of MCPAuthCacheEntries x MCPAuthCacheEntrySize bytes
(SEGMENT_BYTES), created by the parent and inherited by every child; it is
found by its size (that many bytes plus APR's header page), so the figure
is "?" when no shared mapping has that size (or several have). Its resident pages are shared by all children:
they count once for the machine, not once per child.

Output columns: label pid vmrss_kb rssanon_kb rssshmem_kb seg_kb seg_rss_kb
"""
import os
import sys


def status(pid):
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            k, _, v = line.partition(":")
            if k in ("VmRSS", "RssAnon", "RssShmem"):
                out[k] = int(v.split()[0])
    return out


def segment(pid, want_kb):
    """(size_kb, rss_kb) of the one shared mapping of want_kb (+ header), or None."""
    found, cur = [], None
    with open(f"/proc/{pid}/smaps") as f:
        for line in f:
            parts = line.split()
            if "-" in parts[0] and len(parts) >= 5 and ":" not in parts[0]:
                lo, hi = (int(x, 16) for x in parts[0].split("-"))
                cur = {"shared": parts[1][3] == "s", "kb": (hi - lo) // 1024, "rss": 0}
                found.append(cur)
            elif parts[0] == "Rss:" and cur is not None:
                cur["rss"] = int(parts[1])
    # apr_shm_create adds a small header to the requested size: one page more
    match = [m for m in found if m["shared"] and want_kb <= m["kb"] <= want_kb + 64]
    return (match[0]["kb"], match[0]["rss"]) if len(match) == 1 else None


def main():
    label, parent, seg_bytes = sys.argv[1], sys.argv[2], int(sys.argv[3])
    want_kb = -(-seg_bytes // 4096) * 4  # whole pages
    kids = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                ppid = f.read().rsplit(")", 1)[1].split()[1]
        except OSError:
            continue
        if ppid == parent:
            kids.append(int(d))
    for pid in sorted(kids):
        try:
            st = status(pid)
            seg = segment(pid, want_kb)
        except OSError:
            continue
        print("\t".join(str(x) for x in (label, pid, st.get("VmRSS", "?"), st.get("RssAnon", "?"),
                                          st.get("RssShmem", "?"), seg[0] if seg else "?",
                                          seg[1] if seg else "?")))


if __name__ == "__main__":
    main()
