"""How a finding may show a value from the desired state: a short prefix, then the redactor.

Theory of operation: a finding is posted on the PR, so anything it quotes is published.  A
value that fails validation is, more often than one would like, a secret pasted into the wrong
field (``gateway: ghp_…``).  So a finding never quotes more than ``PREFIX`` characters of a
value, control characters are named instead of shown, and every message passes
``bot.execute.redact`` on its way out (``safe_finding``), whichever check wrote it.
"""

from __future__ import annotations

import re
import unicodedata

from bot.execute.redact import redact
from bot.model import Finding

PREFIX = 8
"""Characters of a value a finding may quote."""
MAX_MESSAGE = 300

# The characters the schemas refuse in every string (see bot.model.resources.LINE_PATTERN).
_CONTROL = re.compile("[\u0000-\u001f\u007f-\u009f\u200b-\u200f\u2028-\u202e\u2060-\u206f\ufeff]")


def quote(value: object) -> str:
    """A short, safe rendering of a value for a message: ``'ghp_abcd…'``, ``a mapping``."""
    if isinstance(value, str):
        shown = _CONTROL.sub("", value[:PREFIX])
        more = "…" if len(value) > PREFIX else ""
        return f"'{shown}{more}'"
    if isinstance(value, bool) or value is None:
        return repr(value)
    if isinstance(value, int | float):
        text = str(value) if not isinstance(value, int) or value.bit_length() < 64 else "a number"
        return text if len(text) <= 2 * PREFIX else "a number"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list | tuple):
        return f"a list of {len(value)}"
    return f"a {type(value).__name__}"


def control_character(value: str) -> str | None:
    """``U+000A (LINE FEED) at character 16`` for the first character a string may not hold."""
    found = _CONTROL.search(value)
    if found is None:
        return None
    char = found.group()
    name = unicodedata.name(char, "") or _C0_NAMES.get(char, "control character")
    return f"U+{ord(char):04X} ({name}) at character {found.start() + 1}"


_C0_NAMES = {"\n": "LINE FEED", "\r": "CARRIAGE RETURN", "\t": "TAB", "\x00": "NUL"}


def safe_finding(finding: Finding) -> Finding:
    """The finding with its message, path and file name redacted, the message bounded."""
    message = redact(finding.message)
    if len(message) > MAX_MESSAGE:
        message = message[: MAX_MESSAGE - 1] + "…"
    path = redact(finding.path) if finding.path else finding.path
    file = redact(finding.file) if finding.file else finding.file
    if (message, path, file) == (finding.message, finding.path, finding.file):
        return finding
    return finding.model_copy(update={"message": message, "path": path, "file": file})
