"""Sizes people write ("4GB", "2 cores", "512MB of RAM", "1 GB more memory", "double the
memory") read into the container fields they are about.  Pure functions.

A number belongs to the field named right after it ("2 cores", "4 GB RAM"), else to the
field named closest before it in the same clause ("memory of the api container to 4096"),
else, for a bare memory unit, to memory ("4GB" → memory; a disk is always named).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from bot.engines.text import DOMAIN, IPV4, URL

FIELDS = {
    "cores": r"v?cpus?|cores?|processors?",
    "memory": r"memory|ram|mem",
    "disk": r"disk|storage|disk\s+space|rootfs|ssd",
}
UNITS = {  # MiB per unit
    "m": 1,
    "mb": 1,
    "mib": 1,
    "meg": 1,
    "megs": 1,
    "g": 1024,
    "gb": 1024,
    "gib": 1024,
    "gig": 1024,
    "gigs": 1024,
    "t": 1024**2,
    "tb": 1024**2,
    "tib": 1024**2,
}
NUMBER = re.compile(
    r"(?<![\w.:/-])(\d{1,7}(?:\.\d{1,3})?)\s*("
    + "|".join(sorted(UNITS, key=len, reverse=True))
    + r")?(?![\w.-]|\.\d)"
)
NOT_A_SIZE = re.compile(r"(?:port|vmid|ttl|id|pve|#|to\s+port)\s*$")
RELATIVE_AFTER = re.compile(r"^\s*(?:more|extra|additional)\b")
RELATIVE_BEFORE = re.compile(r"(?:\bby|\banother|\+|\badd|\bextra|\badditional)\s*$")
FACTORS = {"double": 2.0, "twice": 2.0, "triple": 3.0, "halve": 0.5, "half": 0.5}
CLAUSES = re.compile(r"[;\n]|,(?!\d)|\band\b|\bbut\b|\.(?!\d)")


@dataclass(frozen=True)
class Size:
    field: str
    value: int
    """In the field's unit: cores, MiB of memory, GiB of disk."""
    relative: bool = False
    """Added to the current value ("2 more cores", "by 1 GB")."""
    factor: float | None = None
    """Multiplies the current value ("double the memory")."""


def _field_at(text: str) -> str | None:
    for name, words in FIELDS.items():
        if re.match(rf"\s*(?:of\s+)?(?:more\s+|extra\s+)?(?:{words})\b", text):
            return name
    return None


def _field_before(text: str) -> str | None:
    best: tuple[int, str] | None = None
    for name, words in FIELDS.items():
        for m in re.finditer(rf"\b(?:{words})\b", text):
            if best is None or m.start() > best[0]:
                best = (m.start(), name)
    return best[1] if best else None


def _field_for(unit: str | None, *named: str | None) -> str | None:
    """The first named field a number with this unit can be; else what the unit implies."""
    fits = [f for f in named if f is not None and (unit is None or f != "cores")]
    if fits or unit is None:
        return fits[0] if fits else None
    return "disk" if UNITS[unit] >= 1024**2 else "memory"


def _in_unit(field: str, number: float, unit: str | None) -> int | None:
    if field == "cores":
        return int(number) if unit is None and number == int(number) else None
    mib = number * UNITS[unit] if unit else (number if field == "memory" else number * 1024)
    value = mib if field == "memory" else mib / 1024
    return int(value) if value == int(value) else None


def _clause_sizes(clause: str) -> list[Size]:
    out = []
    for match in NUMBER.finditer(clause):
        before, after = clause[: match.start()], clause[match.end() :]
        if NOT_A_SIZE.search(before):
            continue
        unit = match.group(2)
        field = _field_for(unit, _field_at(after), _field_before(before))
        if field is None:
            continue
        value = _in_unit(field, float(match.group(1)), unit)
        relative = bool(RELATIVE_AFTER.match(after) or RELATIVE_BEFORE.search(before))
        if value is not None:
            out.append(Size(field, value, relative))
    for word, factor in FACTORS.items():
        for m in re.finditer(rf"\b{word}\b", clause):
            field = _field_at(re.sub(r"^\s*(?:the|its)\s+", " ", clause[m.end() :]))
            if field:
                out.append(Size(field, 0, factor=factor))
    return out


def sizes(prose: str) -> list[Size]:
    """Every size stated in the text, in order (URLs, domains and addresses ignored)."""
    flat = IPV4.sub(" ", DOMAIN.sub(" ", URL.sub(" ", prose.lower())))
    return [s for clause in CLAUSES.split(flat) for s in _clause_sizes(clause)]


__all__ = ["Size", "sizes"]
