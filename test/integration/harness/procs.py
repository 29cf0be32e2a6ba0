# SPDX-License-Identifier: Apache-2.0
"""Processes under /proc: an httpd's children, their memory and CPU time."""

import os
import re
from pathlib import Path


def children_of(pid) -> list:
    """The pids whose parent is ``pid``."""
    kids = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        if ppid == pid:
            kids.append(int(d))
    return kids


def worker_rss(h) -> dict:
    """{pid: VmRSS kB} of the httpd worker children (not mod_cgid's daemon)."""
    out = {}
    for pid in children_of(h.pid):
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes()
            status = Path(f"/proc/{pid}/status").read_text()
        except OSError:
            continue
        if b"apache2" not in cmd:
            continue
        m = re.search(r"^VmRSS:\s+(\d+) kB", status, re.M)
        threads = re.search(r"^Threads:\s+(\d+)", status, re.M)
        # mod_cgid's daemon is single-threaded; the event MPM's children are not.
        if m and threads and int(threads.group(1)) > 1:
            out[pid] = int(m.group(1))
    return out


def cpu_ticks(pids) -> dict:
    """{pid: utime + stime} in clock ticks (pids that are gone are left out)."""
    out = {}
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            out[pid] = int(fields[11]) + int(fields[12])
        except OSError:
            pass
    return out
