# SPDX-License-Identifier: Apache-2.0
"""Documentation says what the code does: the defaults in README's directive
tables, in the help strings httpd prints (`apache2 -L`) and in the values
conf/mcp_auth.conf writes out are those of src/defaults.h; and README and
the reference configuration carry no sentence the code has outgrown.
(test_config.py checks that the same directive names appear everywhere.)"""
import os
import re
import subprocess
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
APACHE2 = os.environ.get("APACHE2", "/usr/sbin/apache2")
MODULES = os.environ.get("APACHE_MODULES_DIR", "/usr/lib/apache2/modules")

# defaults.h: #define MCP_DEFAULT_X <value>  /* MCPAuthY[ option=], ... */
DEFINE_RE = re.compile(r'^#define MCP_DEFAULT_\w+\s+("[^"]*"|\d+)\s*/\*\s*(MCPAuth\w+)(?:\s+(\w+)=)?', re.M)


def code_defaults(text=None):
    """{(directive, option or None): value as the README writes it}."""
    text = text if text is not None else (REPO_ROOT / "src" / "defaults.h").read_text()
    out = {}
    for value, directive, option in DEFINE_RE.findall(text):
        out[(directive, option or None)] = value.strip('"')
    return out


def readme_rows(text=None):
    """{directive: (syntax cell, default cell)} of README's directive tables."""
    text = text if text is not None else (REPO_ROOT / "README.md").read_text()
    rows = {}
    for line in text.splitlines():
        m = re.match(r"^\|\s*`(MCPAuth\w+)([^`]*)`\s*\|(.*?[^\\])\|", line)
        if m:
            rows[m.group(1)] = (m.group(2), m.group(3).strip())
    return rows


def as_written(directive_syntax, value):
    """A flag's 1/0 is On/Off in a configuration file."""
    if "On\\|Off" in directive_syntax or "On|Off" in directive_syntax:
        return {"1": "On", "0": "Off"}[value]
    return value


def first_code_span(cell):
    m = re.search(r"`([^`]*)`", cell)
    return m.group(1) if m else None


def mismatches(defaults, rows):
    """What README's tables say otherwise than defaults.h, in words."""
    bad = []
    for (directive, option), value in sorted(defaults.items(), key=lambda kv: (kv[0][0], kv[0][1] or "")):
        if directive not in rows:
            bad.append(f"{directive}: in src/defaults.h, no row in README")
            continue
        syntax, cell = rows[directive]
        want = as_written(syntax, value)
        if option:
            # MCPAuthIntrospection ... | auth `client_secret_basic`, POST, `token`, cache `300` |
            if f"`{want}`" not in cell:
                bad.append(f"{directive} {option}=: README default cell {cell!r} lacks `{want}`")
        elif first_code_span(cell) != want:
            bad.append(f"{directive}: README says {cell!r}, src/defaults.h says {want}")
    return bad


def test_readme_defaults_are_the_codes():
    defaults, rows = code_defaults(), readme_rows()
    assert len(defaults) >= 18, defaults
    assert not mismatches(defaults, rows), "\n".join(mismatches(defaults, rows))


def test_every_number_or_flag_readme_names_as_default_is_in_defaults_h():
    """A new directive whose README default is a number or On/Off has its
    constant in src/defaults.h, where the code reads it."""
    defaults = {d for d, _ in code_defaults()}
    rows = readme_rows()
    missing = [d for d, (_, cell) in rows.items()
               if re.fullmatch(r"\d+|On|Off", first_code_span(cell) or "") and d not in defaults]
    assert not missing, f"README gives a default the code does not name in src/defaults.h: {missing}"


def test_the_check_sees_a_wrong_default():
    """The comparison above can fail: a README that says 60 for the skew,
    Off for the metadata or 600 for the introspection cache is caught."""
    defaults = code_defaults()
    readme = (REPO_ROOT / "README.md").read_text()
    for old, new in [("| `MCPAuthClockSkew <seconds>` | `30` |", "| `MCPAuthClockSkew <seconds>` | `60` |"),
                     ("| `MCPAuthResourceMetadata On\\|Off` | `On` |", "| `MCPAuthResourceMetadata On\\|Off` | `Off` |"),
                     ("cache `300` |", "cache `600` |")]:
        assert old in readme, old
        assert mismatches(defaults, readme_rows(readme.replace(old, new))), new
    assert mismatches(defaults, readme_rows(readme.replace("| `MCPAuthHTTPTimeout", "| `MCPAuthHTTPTimeoutX"))), \
        "a directive of defaults.h without a README row goes unnoticed"


def test_reference_conf_writes_the_defaults():
    """conf/mcp_auth.conf: "Everything below is commented or shows the
    default" -- each directive it writes out with a number or a flag has
    the code's default."""
    defaults = code_defaults()
    rows = readme_rows()
    conf = (REPO_ROOT / "conf" / "mcp_auth.conf").read_text()
    written = re.findall(r"^[ \t]*(MCPAuth\w+)[ \t]+(.+?)[ \t]*$", conf, re.M)
    checked = 0
    for directive, value in written:
        if (directive, None) in defaults:
            assert value == as_written(rows[directive][0], defaults[(directive, None)]), (directive, value)
            checked += 1
    assert checked >= 17, written


def help_strings(tmp_path, so):
    conf = tmp_path / "httpd.conf"
    conf.write_text(f"""
ServerRoot "{tmp_path}"
ServerName 127.0.0.1
Listen 127.0.0.1:1
PidFile "{tmp_path}/httpd.pid"
ErrorLog "{tmp_path}/error.log"
LoadModule mpm_event_module {MODULES}/mod_mpm_event.so
LoadModule authn_core_module {MODULES}/mod_authn_core.so
LoadModule authz_core_module {MODULES}/mod_authz_core.so
LoadModule mcp_auth_module {so}
""")
    r = subprocess.run([APACHE2, "-L", "-f", str(conf)], capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    return dict(re.findall(r"^(MCPAuth\w+) \(mod_mcp_auth\.c\)\n\t(.*)$", r.stdout, re.M))


def test_help_strings_give_the_readme_defaults(tmp_path, mcp_auth_so):
    """`apache2 -L`: a help string that names a number or On/Off as the
    default names README's (they are built from src/defaults.h)."""
    helps, rows = help_strings(tmp_path, mcp_auth_so), readme_rows()
    assert len(helps) >= 18, helps
    compared = 0
    for directive, text in helps.items():
        m = re.search(r"\(default:? (\d+|On|Off)\b", text)
        if not m:
            continue
        assert first_code_span(rows[directive][1]) == m.group(1), (directive, text, rows[directive][1])
        compared += 1
    assert compared >= 15, helps


@pytest.mark.parametrize("path,outgrown", [
    ("README.md", r"not (yet )?implemented|is not supported yet"),
    ("conf/mcp_auth.conf", r"not (yet )?implemented|verified every time"),
])
def test_no_outgrown_sentences(path, outgrown):
    """Introspection is implemented; since issue 12 a verdict that does not
    fit a shared slot is kept in the child's own cache, and refusals are
    remembered: nothing is "verified every time"."""
    text = (REPO_ROOT / path).read_text()
    found = [line for line in text.splitlines() if re.search(outgrown, line, re.I)]
    assert not found, found
