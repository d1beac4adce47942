"""JSON paths (``$.ports.http``, ``$.targets[0]``) for findings, from a sequence of keys."""

from __future__ import annotations

import re
from collections.abc import Iterable

from bot.validate.excerpt import quote

_PLAIN_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_-]{0,39}")


def json_path(parts: Iterable[str | int]) -> str:
    """``("ports", "http")`` -> ``$.ports.http``; odd keys are quoted, and only a prefix of a
    long one is shown (a key may be a pasted secret): ``$['a.b']``, ``$['ghp_abcd…']``."""
    out = "$"
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
        elif _PLAIN_KEY.fullmatch(part):
            out += f".{part}"
        else:
            out += "[" + quote(part) + "]"
    return out
