#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""The SPDX licence line of every source file: `check` lists the files
without it (exit 1 if any), `fix` adds it where it is missing (idempotent).

C files and headers carry `/* SPDX-License-Identifier: Apache-2.0 */` as
their first line; scripts, Python, make files `# ...`, JavaScript and Go
`// ...`, Lua `-- ...`, as the first line or right after a `#!` line.
Data (corpora, vectors, JSON, .conf, Markdown) carries none."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ID = "SPDX-License-Identifier: Apache-2.0"
LINES = {
    ".c": f"/* {ID} */", ".h": f"/* {ID} */",
    ".py": f"# {ID}", ".sh": f"# {ID}", ".mk": f"# {ID}",
    ".mjs": f"// {ID}", ".js": f"// {ID}", ".go": f"// {ID}", ".lua": f"-- {ID}",
}
# Sources by place; shell scripts without a suffix by name.
PLACES = ("mod_mcp_auth.c", "apxs.mk", "Makefile", ".ci/run", "src/", "tools/", "test/", "demo/", "bench/", "conf/")
SCRIPTS = {"Makefile": f"# {ID}", ".ci/run": f"# {ID}", "bench/run": f"# {ID}"}
SKIP = ("/corpus/", "/vectors/", "jsonrpc_corpus/", "node_modules/", "bench/results/")


def wanted_line(rel):
    if rel in SCRIPTS:
        return SCRIPTS[rel]
    if rel.startswith("conf/") and not rel.endswith(".sh"):
        return None
    return LINES.get(Path(rel).suffix)


def sources():
    out = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard", "--", *PLACES],
                         cwd=ROOT, capture_output=True, text=True, check=True).stdout.split("\n")
    for rel in sorted(set(filter(None, out))):
        if any(s in "/" + rel for s in SKIP) or not (ROOT / rel).is_file():
            continue
        line = wanted_line(rel)
        if line:
            yield rel, line


def has_line(text, line):
    head = text.split("\n", 2)
    return head[0] == line or (head[0].startswith("#!") and len(head) > 1 and head[1] == line)


def add_line(text, line):
    if text.startswith("#!"):
        first, _, rest = text.partition("\n")
        return f"{first}\n{line}\n{rest}"
    return f"{line}\n{text}"


def main(argv):
    if len(argv) != 2 or argv[1] not in ("check", "fix"):
        sys.exit("usage: spdx.py check|fix")
    missing = []
    for rel, line in sources():
        path = ROOT / rel
        text = path.read_text()
        if has_line(text, line):
            continue
        if argv[1] == "fix":
            path.write_text(add_line(text, line))
            print(f"spdx: added to {rel}")
        else:
            missing.append(rel)
            print(f"{rel}:1: missing '{line}'")
    if missing:
        print(f"spdx: {len(missing)} file(s) without the licence line (make -f apxs.mk spdx adds it)")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
