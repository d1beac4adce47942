"""Data the bot keeps, hidden, at the end of one of its own comments (pure).

A trailer ``<!-- infrabot:data=BASE64 -->`` after the visible body: GitHub's markdown
renders an HTML comment as nothing, base64 can never close it (no ``--``), and the body
before it has passed ``posted``, which breaks any ``<!-- infrabot:`` a body could carry,
so the only trailer a bot comment can end with is the one the bot attached.  Whose
comment it is decides whether the data counts: the caller reads it only from the bot's
own comments (a person can paste a trailer into theirs; it is ignored).
"""

from __future__ import annotations

import re

_TRAILER = re.compile(r"\n?<!-- infrabot:data=([A-Za-z0-9+/=]{1,65000}) -->\Z")


def attach(raw: str, data: str | None) -> str:
    """``raw`` with ``data`` (base64 text) as its trailer; None: no trailer."""
    if data is None:
        return raw
    if not re.fullmatch(r"[A-Za-z0-9+/=]+", data):
        raise ValueError("hidden comment data must be base64 text")
    return f"{raw}\n{trailer(data)}"


def trailer(data: str) -> str:
    return f"<!-- infrabot:data={data} -->"


def detach(raw: str) -> tuple[str, str | None]:
    """(the comment without its trailer, the trailer's data or None)."""
    found = _TRAILER.search(raw)
    if found is None:
        return raw, None
    return raw[: found.start()], found.group(1)
