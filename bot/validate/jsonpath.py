"""JSON paths (``$.ports.http``, ``$.targets[0]``) for findings, from a sequence of keys."""

from __future__ import annotations

import re
from collections.abc import Iterable

_PLAIN_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*$")


def json_path(parts: Iterable[str | int]) -> str:
    """``("ports", "http")`` -> ``$.ports.http``; odd keys are quoted: ``$['a.b']``."""
    out = "$"
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
        elif _PLAIN_KEY.match(part):
            out += f".{part}"
        else:
            out += "[" + repr(part) + "]"
    return out
