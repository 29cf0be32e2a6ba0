# SPDX-License-Identifier: Apache-2.0
"""Unit test files follow the engine's source files one to one (issue 13,
section 3): test/unit/test_<name>.c tests src/<name>.c, and every engine
source has its file. A new engine file without unit tests, or a test file
named for no source (a catch-all), fails here. No httpd needed."""

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]


def _names(folder, prefix=""):
    return {p.stem[len(prefix):] for p in (REPO_ROOT / folder).glob(f"{prefix}*.c")}


def test_every_unit_test_file_names_an_engine_source():
    # A header-only module (src/defaults.h) may have its test file too.
    headers = {p.stem for p in (REPO_ROOT / "src").glob("*.h")}
    orphans = _names("test/unit", "test_") - _names("src") - headers
    assert not orphans, f"test/unit/test_<name>.c without src/<name>.c: {sorted(orphans)}"


def test_every_engine_source_has_its_unit_test_file():
    missing = _names("src") - _names("test/unit", "test_")
    assert not missing, f"src/<name>.c without test/unit/test_<name>.c: {sorted(missing)}"
