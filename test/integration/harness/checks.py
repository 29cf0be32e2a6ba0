# SPDX-License-Identifier: Apache-2.0
"""After every test: no httpd child crashed and no token reached an error log
(what httpd's own test suite does with env.check_error_log()).

Every httpd the harness started has its error log read from where the last
check stopped, so lines written while a module's fixtures started or stopped
a server are checked too (by the next test, or at the end of the session).

A test that means to put a token-like string into a log, or to crash a child,
says so with a marker and a reason:

    @pytest.mark.token_in_log("the test plants a token in a config file that httpd echoes")
    @pytest.mark.child_crash_expected("the test sends SIGSEGV to a child on purpose")
"""

import re

from .httpd import STARTED
from .tokens import ISSUED


# A child that died of a signal (httpd's AH00052 "child pid N exit signal
# Segmentation fault (11)"; SIGTERM/SIGKILL/graceful stops are not logged),
# the parent's AH00060 "seg fault or similar nasty error", and the
# sanitizers' reports (the ASan build writes them to the error log).
CRASH_RE = re.compile(r"exit signal|AH00052|AH00060|Segmentation fault|AddressSanitizer|LeakSanitizer|"
                      r"runtime error:")


def crash_lines(text: str) -> list:
    """The lines of an error log that tell of a crashed process."""
    return [line for line in text.splitlines() if CRASH_RE.search(line)]


def before_first_crash(text: str, n: int = 15) -> list:
    """The n lines before the first crash line: a child's last words
    (glibc's "double free", OpenSSL's assertion) are written to the error
    log just before the parent reports the signal, and the log itself is
    gone with the test's temporary directory."""
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if CRASH_RE.search(line):
            return lines[max(0, i - n):i]
    return []


MARKERS = {
    "token_in_log": "token_in_log(reason): the test puts a token-like string into an error log on purpose",
    "child_crash_expected": "child_crash_expected(reason): the test makes an httpd child die of a signal on purpose",
}


def _reason(item, name):
    mark = item.get_closest_marker(name)
    if mark is None:
        return None
    reason = mark.args[0] if mark.args else mark.kwargs.get("reason")
    assert isinstance(reason, str) and reason.strip(), f"@pytest.mark.{name} needs a reason"
    return reason


def _new_text(h) -> str:
    """The error log of ``h`` from where the last check stopped; advances the mark."""
    size = h.log_offset()
    if size < h.checked_offset:  # the log was removed or truncated meanwhile
        h.checked_offset = 0
    if size == h.checked_offset:
        return ""
    text = h.log_since(h.checked_offset)
    h.checked_offset = size
    return text


def problems(item=None) -> list:
    """The crash lines and leaked tokens in every started httpd's error log
    since the last check, as messages; [] when all is well."""
    allow_crash = item is not None and _reason(item, "child_crash_expected") is not None
    allow_token = item is not None and _reason(item, "token_in_log") is not None
    out = []
    for h in STARTED:
        text = _new_text(h)
        if not text:
            continue
        if not allow_crash:
            crashes = crash_lines(text)
            if crashes:
                context = "\n    ".join(before_first_crash(text))
                out.append(f"{h.error_log}: child crash lines: {crashes[:5]}\n  before the first:\n    {context}")
        if not allow_token:
            leaked = ISSUED.leaked(text)
            if leaked:
                out.append(f"{h.error_log}: {len(leaked)} token(s) the harness issued are in the log "
                           f"(signature / secret part starting {[p[:16] for p in leaked[:5]]})")
    return out
