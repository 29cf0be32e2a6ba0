# SPDX-License-Identifier: Apache-2.0
"""Every member of the per-directory configuration (mcp_dir_conf_t in
src/httpd/conf.h) is merged (mcp_merge_dir_conf in src/httpd/conf.c): a
member left out of the merge is silently lost by every nested section and
every request (httpd merges <Location> onto the server's defaults), a bug
no request-level test reliably sees. And what the merge treats as unset
(MCP_UNSET) is what mcp_create_dir_conf starts from. Reads the source, as
test/unit/test_policy.c does for the policy fingerprint; needs no httpd."""
import re
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]


def strip_comments(text):
    return re.sub(r"/\*.*?\*/|//[^\n]*", " ", text, flags=re.S)


def declared_members(header_text, type_name):
    """The member names of `typedef struct { ... } type_name;`."""
    text = strip_comments(header_text)
    end = text.index("} %s;" % type_name)
    body = text[text.rindex("{", 0, end) + 1:end]
    names = []
    for decl in body.split(";"):
        for part in decl.split(","):
            part = part.split("[")[0].strip()
            m = re.search(r"(\w+)\s*$", part)
            if m:
                names.append(m.group(1))
    return names


def function_body(source_text, name):
    """The text of a C function definition, from its name to its closing brace."""
    text = strip_comments(source_text)
    start = re.search(r"\b%s\s*\([^)]*\)\s*\{" % re.escape(name), text)
    assert start, name
    depth, i = 1, start.end()
    while depth:
        depth += {"{": 1, "}": -1}.get(text[i], 0)
        i += 1
    return text[start.end():i - 1]


def members_assigned(body, var="c"):
    """Members written as `var->member =` in body."""
    return set(re.findall(r"\b%s->(\w+)\s*=[^=]" % var, body))


def unmerged(header_text, source_text):
    members = declared_members(header_text, "mcp_dir_conf_t")
    merged = members_assigned(function_body(source_text, "mcp_merge_dir_conf"))
    return [m for m in members if m not in merged]


def conf_sources():
    return ((REPO_ROOT / "src" / "httpd" / "conf.h").read_text(),
            (REPO_ROOT / "src" / "httpd" / "conf.c").read_text())


def test_every_dir_conf_member_is_merged():
    header, source = conf_sources()
    members = declared_members(header, "mcp_dir_conf_t")
    assert len(members) >= 25, members
    missing = unmerged(header, source)
    assert not missing, (f"mcp_merge_dir_conf (src/httpd/conf.c) does not set {missing}: a nested section or a "
                         "request would lose them; merge each (README: Adding a directive)")


def test_the_check_sees_a_member_left_out():
    """The check above can fail: drop one merge line and it names the member."""
    header, source = conf_sources()
    line = "    c->token_header = MERGE(token_header, NULL);\n"
    assert line in source
    assert unmerged(header, source.replace(line, "")) == ["token_header"]


def test_unset_in_merge_is_unset_in_create():
    """A member merged as `MERGE(x, MCP_UNSET)` starts as MCP_UNSET, else a
    section that never wrote it would override its parent with 0."""
    _, source = conf_sources()
    merge = function_body(source, "mcp_merge_dir_conf")
    create = function_body(source, "mcp_create_dir_conf")
    merged_unset = set(re.findall(r"MERGE\((\w+),\s*MCP_UNSET\)", merge))
    created_unset = set(re.findall(r"\bc->(\w+)\s*=\s*MCP_UNSET\s*;", create))
    assert merged_unset, merge
    assert merged_unset == created_unset, (merged_unset, created_unset)
