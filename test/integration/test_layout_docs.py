# SPDX-License-Identifier: Apache-2.0
"""README's "Layout" section matches the tree: every top-level folder is in
its map and every folder the map names exists; every engine file (src/) and
every glue file (src/httpd/) is named in its text; the engine never includes
an httpd header. A file added without a word in README, or a map left behind
after a move, fails here."""
import re
from pathlib import Path

from conftest import REPO_ROOT

# Folders that are not the project's own layout: build output, the Node
# packages the tests install, git.
NOT_LAYOUT = {"build", "node_modules"}


def layout_section() -> str:
    text = (REPO_ROOT / "README.md").read_text()
    # The section up to its first subsection (the checklists after it name
    # functions and types, not files).
    m = re.search(r"^## Layout\n(.*?)^##", text, re.S | re.M)
    assert m, "README has no '## Layout' section"
    return m.group(1)


def layout_map(section: str) -> set:
    m = re.search(r"```\n(.*?)```", section, re.S)
    assert m, "the Layout section has no map (a fenced block)"
    return {line.split()[0] for line in m.group(1).splitlines() if line and not line[0].isspace()}


def named(section: str) -> set:
    return set(re.findall(r"`([A-Za-z0-9_.]+)`", section))


def test_every_top_level_folder_is_in_the_map_and_every_mapped_path_exists():
    mapped = layout_map(layout_section())
    folders = {p.name + "/" for p in REPO_ROOT.iterdir()
               if p.is_dir() and not p.name.startswith(".") and p.name not in NOT_LAYOUT}
    missing = sorted(f for f in folders if f not in mapped and f.rstrip("/") not in mapped)
    assert not missing, f"top-level folders missing from README's layout map: {missing}"
    stale = sorted(p for p in mapped if not (REPO_ROOT / p).exists())
    assert not stale, f"README's layout map names paths that do not exist: {stale}"


def test_every_engine_and_glue_source_is_named_in_the_layout_section():
    words = named(layout_section())
    for folder in ("src", "src/httpd"):
        for c in sorted((REPO_ROOT / folder).glob("*.c")):
            assert c.stem in words, f"{folder}/{c.name} is not named in README's Layout section"
    for h in sorted((REPO_ROOT / "src/httpd").glob("*.h")):
        if not (REPO_ROOT / "src/httpd" / (h.stem + ".c")).exists():
            assert h.name in words, f"src/httpd/{h.name} (a header without a .c) is not named in README's Layout"


def test_layout_names_nothing_that_is_gone():
    words = named(layout_section())
    sources = {c.stem for folder in ("src", "src/httpd", "tools") for c in (REPO_ROOT / folder).glob("*.[ch]")}
    sources |= {c.name for folder in ("src", "src/httpd") for c in (REPO_ROOT / folder).glob("*.h")}
    # Backquoted words that look like a source name (lower case, underscores)
    # must be one; directive names, headers and paths are told apart by shape.
    looks_like_source = {w for w in words if re.fullmatch(r"[a-z][a-z0-9_]*(\.h)?", w)}
    gone = sorted(looks_like_source - sources - {"mod_mcp_auth", "mcp_auth_token"})
    assert not gone, f"README's Layout section names sources that do not exist: {gone}"


def test_engine_includes_no_httpd_header():
    httpd_header = re.compile(r'#include\s*<(httpd|http_[a-z_]+|ap_[a-z_]+|mod_[a-z_]+|util_[a-z_]+)\.h>')
    own_header = re.compile(r'#include\s*"([^"]+)"')
    for f in sorted(list((REPO_ROOT / "src").glob("*.c")) + list((REPO_ROOT / "src").glob("*.h"))):
        text = f.read_text()
        m = httpd_header.search(text)
        assert not m, f"src/{f.name} includes {m.group(0)!r}: the engine must stay free of httpd (glue goes in src/httpd/)"
        for inc in own_header.findall(text):
            assert (REPO_ROOT / "src" / inc).parent == REPO_ROOT / "src" and (REPO_ROOT / "src" / inc).exists(), \
                f"src/{f.name} includes {inc!r}, which is not an engine header"
