# SPDX-License-Identifier: Apache-2.0
"""The Debian package's sources agree with the code, without building the
package (make -f apxs.mk deb-check does that): debian/changelog carries
MCP_AUTH_VERSION, so a version bump that forgets the package fails here;
mcp_auth.load declares slotmem_shm for a2enmod; the mods-available conf
the package ships enables nothing by itself and still passes configtest on
a server without a ServerName (Debian's stock apache2.conf has none); the
manual page names every option of the CLI's usage."""
import re
import subprocess

from conftest import REPO_ROOT
from harness.httpd import configtest

PACKAGE = "libapache2-mod-mcp-auth"


def code_version() -> str:
    m = re.search(r'^#define MCP_AUTH_VERSION "([^"]+)"', (REPO_ROOT / "src" / "version.h").read_text(), re.M)
    assert m, "src/version.h defines no MCP_AUTH_VERSION"
    return m.group(1)


def changelog_version(text: str) -> str:
    m = re.match(rf"{re.escape(PACKAGE)} \(([^)]+)\) ", text)
    assert m, "debian/changelog does not start with a libapache2-mod-mcp-auth entry"
    return m.group(1)


def test_changelog_version_is_mcp_auth_version():
    text = (REPO_ROOT / "debian" / "changelog").read_text()
    assert changelog_version(text) == code_version(), \
        "debian/changelog's newest entry must carry MCP_AUTH_VERSION (add an entry when the version moves)"
    # The neighbour: the same file with another version is told apart.
    assert changelog_version(text.replace(code_version(), "0.0.1", 1)) != code_version()


def test_native_package_with_the_version_debian_names():
    assert (REPO_ROOT / "debian" / "source" / "format").read_text().strip() == "3.0 (native)"
    # A native version has no Debian revision ("-1").
    assert "-" not in code_version()


def test_load_file_declares_slotmem_shm_and_the_module_path():
    load = (REPO_ROOT / "conf" / "mcp_auth.load").read_text()
    assert re.search(r"^# Depends: slotmem_shm$", load, re.M), "a2enmod reads '# Depends:' to enable slotmem_shm"
    assert re.search(r"^LoadModule mcp_auth_module /usr/lib/apache2/modules/mod_mcp_auth\.so$", load, re.M)
    shipped = (REPO_ROOT / "debian" / f"{PACKAGE}.apache2").read_text().split("\n")
    assert "mod conf/mcp_auth.load" in shipped, "debian/*.apache2 must ship conf/mcp_auth.load"


def debian_conf(tmp_path):
    """The mods-available conf as debian/rules makes it (apxs.mk's rule)."""
    build = tmp_path / "b"
    subprocess.run(["make", "-s", "-f", "apxs.mk", f"BUILD={build}", f"{build}/debian/mcp_auth.conf"],
                   cwd=REPO_ROOT, check=True, capture_output=True, timeout=60)
    return build / "debian" / "mcp_auth.conf"


def active_lines_in_sections(text: str) -> list:
    """Uncommented lines inside a <Location>/<Directory>/<VirtualHost> (or a commented-out opener's block)."""
    out, inside = [], False
    for line in text.splitlines():
        bare = line.lstrip("#").strip()
        if re.match(r"<(Location|LocationMatch|Directory|VirtualHost|Files)\b", bare):
            inside = True
        if inside and line.strip() and not line.lstrip().startswith("#"):
            out.append(line)
        if re.match(r"</(Location|LocationMatch|Directory|VirtualHost|Files)>", bare):
            inside = False
    return out


def test_shipped_conf_protects_nothing_by_itself(tmp_path):
    conf = debian_conf(tmp_path).read_text()
    assert active_lines_in_sections(conf) == [], "the shipped mcp_auth.conf must not protect a location when enabled"
    # The reference it comes from does protect /mcp: the check sees it.
    assert active_lines_in_sections((REPO_ROOT / "conf" / "mcp_auth.conf").read_text())
    # Every directive is still there to read (commented or at its default).
    names = lambda t: set(re.findall(r"^\s*#*\s*(MCPAuth\w+)\s", t, re.M))
    assert names(conf) == names((REPO_ROOT / "conf" / "mcp_auth.conf").read_text())


def test_shipped_conf_passes_configtest_without_a_servername(tmp_path, mcp_auth_so):
    conf = debian_conf(tmp_path)
    r = configtest(tmp_path, mcp_auth_so, f"Include {conf}", server_name="")
    assert r.returncode == 0, r.stderr
    assert "Syntax OK" in r.stdout + r.stderr


def usage_options(cli) -> set:
    r = subprocess.run([str(cli), "--help"], capture_output=True, text=True, timeout=10)
    assert r.returncode == 2 and "usage:" in r.stderr, r
    return set(re.findall(r"--[a-z][a-z-]*", r.stderr))


def test_manual_page_names_every_option_and_the_version(mcp_auth_cli):
    page = (REPO_ROOT / "doc" / "mcp-auth-token.1").read_text().replace("\\-", "-")
    options = usage_options(mcp_auth_cli)
    assert len(options) >= 15, options
    # Described: a .TP entry of the OPTIONS section opens with the option
    # (the SYNOPSIS alone does not count).
    section = page[page.index(".SH OPTIONS"):page.index(".SH EXIT STATUS")]
    described = set(re.findall(r"^\.TP\n\.B[IR]? (--[a-z][a-z-]*)", section, re.M))
    described |= set(re.findall(r"^\.SS (--[a-z][a-z-]*)", section, re.M))
    missing = sorted(options - described)
    assert not missing, f"doc/mcp-auth-token.1 does not describe {missing}"
    for command in ("verify", "keygen", "sign"):
        assert re.search(rf"^\.B mcp-auth-token {command}$", page, re.M), command
    m = re.search(r'^\.TH MCP-AUTH-TOKEN 1 "[^"]*" "mod_mcp_auth ([^"]+)"', page, re.M)
    assert m and m.group(1) == code_version(), "the manual page's header names another version"
