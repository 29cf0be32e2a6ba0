# SPDX-License-Identifier: Apache-2.0
"""Configuration: `apache2 -t` accepts the reference configuration and
refuses every mistake with a message that names the directive; the README,
conf/mcp_auth.conf and the module's command table list the same directives."""
import re
import subprocess

import pytest

from conftest import REPO_ROOT
from harness.httpd import config_location as location, configtest



def test_reference_configuration_is_valid(tmp_path, mcp_auth_so):
    r = configtest(tmp_path, mcp_auth_so, f"Include {REPO_ROOT}/conf/mcp_auth.conf")
    assert r.returncode == 0, r.stderr
    assert "Syntax OK" in r.stdout + r.stderr


def test_demo_style_jwks_file_with_quotes(tmp_path, mcp_auth_so, mcp_auth_cli):
    subprocess.run([str(mcp_auth_cli), "keygen", "--alg", "ES256", "--kid", "k", "--out", str(tmp_path / "keys")],
                   check=True, capture_output=True)
    r = configtest(tmp_path, mcp_auth_so,
                   location(f'MCPAuthIssuer https://idp.example jwks_file="{tmp_path}/keys/jwks.json"'))
    assert r.returncode == 0, r.stderr


BAD = {
    "alg-none": (["MCPAuthIssuer https://idp.example", "MCPAuthAlgorithms RS256 none"],
                 "MCPAuthAlgorithms"),
    "alg-unknown": (["MCPAuthIssuer https://idp.example", "MCPAuthAlgorithms RS257"], "RS257"),
    "alg-lowercase": (["MCPAuthIssuer https://idp.example", "MCPAuthAlgorithms rs256"], "MCPAuthAlgorithms"),
    "hs-without-secret": (["MCPAuthIssuer https://idp.example", "MCPAuthAlgorithms HS256"],
                          "MCPAuthHMACSecret"),
    "secret-too-short": (["MCPAuthIssuer https://idp.example", "MCPAuthHMACSecret 0123456789"],
                         "MCPAuthHMACSecret"),
    "secret-short-for-hs512": (["MCPAuthIssuer https://idp.example", "MCPAuthAlgorithms HS512",
                                "MCPAuthHMACSecret " + "x" * 40], "HS512"),
    "secret-short-for-hs384-reverse-order": (["MCPAuthIssuer https://idp.example", "MCPAuthHMACSecret " + "x" * 40,
                                              "MCPAuthAlgorithms HS256 HS384"], "HS384"),
    "issuer-not-url": (["MCPAuthIssuer idp.example"], "MCPAuthIssuer"),
    "issuer-ftp": (["MCPAuthIssuer ftp://idp.example"], "MCPAuthIssuer"),
    "jwks-uri-bad": (["MCPAuthIssuer https://idp.example jwks_uri=file:///etc/passwd"], "jwks_uri"),
    "unknown-option": (["MCPAuthIssuer https://idp.example jwks=https://idp.example/k"], "unknown option"),
    "option-without-value": (["MCPAuthIssuer https://idp.example jwks_uri"], "MCPAuthIssuer"),
    "jwks-file-missing": (["MCPAuthIssuer https://idp.example jwks_file=/nonexistent/jwks.json"], "jwks_file"),
    "jwks-uri-and-file": (["MCPAuthIssuer https://idp.example jwks_uri=https://idp.example/k "
                           "jwks_file=/etc/hostname"], "MCPAuthIssuer"),
    "skew-negative": (["MCPAuthIssuer https://idp.example", "MCPAuthClockSkew -1"], "MCPAuthClockSkew"),
    "skew-word": (["MCPAuthIssuer https://idp.example", "MCPAuthClockSkew soon"], "MCPAuthClockSkew"),
    "max-token-size": (["MCPAuthIssuer https://idp.example", "MCPAuthMaxTokenSize 0"], "MCPAuthMaxTokenSize"),
    "token-header-bad": (["MCPAuthIssuer https://idp.example", 'MCPAuthTokenHeader "X Token"'],
                         "MCPAuthTokenHeader"),
    "token-header-authorization": (["MCPAuthIssuer https://idp.example", "MCPAuthTokenHeader Authorization"],
                                   "MCPAuthTokenHeader"),
    "resource-relative": (["MCPAuthIssuer https://idp.example", "MCPAuthResource /mcp"], "MCPAuthResource"),
    "server-directive-in-location": (["MCPAuthIssuer https://idp.example", "MCPAuthHTTPTimeout 3"],
                                     "MCPAuthHTTPTimeout"),
}


@pytest.mark.parametrize("case", sorted(BAD))
@pytest.mark.slow
def test_mistakes_fail_configtest_naming_the_directive(tmp_path, mcp_auth_so, case):
    lines, needle = BAD[case]
    r = configtest(tmp_path, mcp_auth_so, location(*lines))
    out = r.stdout + r.stderr
    assert r.returncode != 0, f"{case}: configtest passed:\n{out}"
    assert needle in out, f"{case}: {needle!r} not in:\n{out}"
    assert "Syntax OK" not in out


@pytest.mark.parametrize("directive,value", [
    ("MCPAuthHTTPTimeout", "0"), ("MCPAuthHTTPTimeout", "x"), ("MCPAuthJWKSMaxSize", "10"),
    ("MCPAuthJWKSCacheTTL", "0"), ("MCPAuthJWKSRefreshCooldown", "-5"), ("MCPAuthJWKSMaxStale", "a"),
    ("MCPAuthCAFile", "/nonexistent.pem"), ("MCPAuthSSLVerify", "maybe"),
])
@pytest.mark.slow
def test_bad_server_values_fail_configtest(tmp_path, mcp_auth_so, directive, value):
    r = configtest(tmp_path, mcp_auth_so, f"{directive} {value}\n" + location("MCPAuthIssuer https://idp.example"))
    assert r.returncode != 0
    assert directive in r.stdout + r.stderr


def test_plain_http_idp_is_allowed_with_a_warning(tmp_path, mcp_auth_so):
    r = configtest(tmp_path, mcp_auth_so, location("MCPAuthIssuer http://idp.example"))
    out = r.stdout + r.stderr
    assert r.returncode == 0, out
    assert "http://idp.example" in out and "plain http" in out


def test_secret_is_never_echoed(tmp_path, mcp_auth_so):
    secret = "do-not-print-this-secret"
    r = configtest(tmp_path, mcp_auth_so, location("MCPAuthIssuer https://idp.example", f"MCPAuthHMACSecret {secret}"))
    assert r.returncode != 0
    assert secret not in r.stdout + r.stderr


# ---- documentation stays in sync with the command table -------------------

def command_table():
    src = (REPO_ROOT / "mod_mcp_auth.c").read_text()
    table = src[src.index("static const command_rec"):]
    table = table[:table.index("{NULL}")]
    return set(re.findall(r'"(MCPAuth\w+)"', table))


def test_readme_and_reference_conf_match_command_table():
    names = command_table()
    assert len(names) >= 18, names
    readme = (REPO_ROOT / "README.md").read_text()
    documented = set(re.findall(r"^\|\s*`(MCPAuth\w+)", readme, re.M))
    conf = (REPO_ROOT / "conf" / "mcp_auth.conf").read_text()
    in_conf = set(re.findall(r"^\s*#?\s*(MCPAuth\w+)\s", conf, re.M))
    assert documented == names, f"README table differs: missing {names - documented}, extra {documented - names}"
    assert in_conf == names, f"conf/mcp_auth.conf differs: missing {names - in_conf}, extra {in_conf - names}"


EXAMPLES = sorted(p.name for p in (REPO_ROOT / "conf" / "idp-examples").glob("*.conf"))


def test_idp_examples_cover_the_common_idps():
    assert {"okta.conf", "auth0.conf", "entra.conf", "cognito.conf", "keycloak.conf", "google.conf"} <= set(EXAMPLES)


@pytest.mark.parametrize("example", EXAMPLES)
@pytest.mark.slow
def test_idp_example_passes_configtest(tmp_path, mcp_auth_so, example):
    r = configtest(tmp_path, mcp_auth_so, f"Include {REPO_ROOT}/conf/idp-examples/{example}")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "Syntax OK" in r.stdout + r.stderr


@pytest.mark.slow
def test_audience_star_must_stand_alone(tmp_path, mcp_auth_so):
    r = configtest(tmp_path, mcp_auth_so, location("MCPAuthIssuer https://idp.example", "MCPAuthAudience * mcp"))
    assert r.returncode != 0 and "MCPAuthAudience" in r.stdout + r.stderr
    r = configtest(tmp_path, mcp_auth_so, location("MCPAuthIssuer https://idp.example", "MCPAuthAudience *"))
    assert r.returncode == 0, r.stdout + r.stderr


@pytest.mark.parametrize("line,needle", [
    ("MCPAuthClaimHeader X-User sub", "claim expression"),
    ("MCPAuthClaimHeader X-User $.", "claim expression"),
    ("MCPAuthClaimHeader X-User $.a..b", "claim expression"),
    ("MCPAuthClaimHeader Authorization $.sub", "MCPAuthClaimHeader"),
    ('MCPAuthClaimHeader "X User" $.sub', "MCPAuthClaimHeader"),
    ("MCPAuthClaimEnv USER.NAME $.sub", "MCPAuthClaimEnv"),
    ("MCPAuthToolScope delete_notes", "MCPAuthToolScope"),
    ("MCPAuthPassToken maybe", "MCPAuthPassToken"),
])
@pytest.mark.slow
def test_identity_and_tool_mistakes_fail_configtest(tmp_path, mcp_auth_so, line, needle):
    r = configtest(tmp_path, mcp_auth_so, location("MCPAuthIssuer https://idp.example", line))
    assert r.returncode != 0, r.stdout + r.stderr
    assert needle in r.stdout + r.stderr
