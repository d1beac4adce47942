"""Which capabilities a request asks for: alias phrases, or an explicit ``capability:`` line.

Aliases match case-insensitively on word boundaries, with any run of whitespace between
their words.  A request that matches nothing gets a question listing what the library can
do; it is never mapped to the "closest" capability.  Pure functions.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from bot.engines.capabilities import Capability
from bot.model import Clarification

KIND_ORDER = ("Host", "Container", "Site", "DnsRecord", "MonitoringTarget")


def alias_matches(alias: str, text: str) -> bool:
    words = r"\s+".join(re.escape(w) for w in alias.split())
    return re.search(rf"(?<![\w-]){words}(?![\w-])", text, re.IGNORECASE) is not None


def matching(text: str, capabilities: Sequence[Capability]) -> list[Capability]:
    return [c for c in capabilities if any(alias_matches(a, text) for a in c.aliases)]


def in_order(capabilities: Sequence[Capability]) -> tuple[Capability, ...]:
    """Deletions last; otherwise the capability making the most basic kind first."""

    def key(cap: Capability) -> tuple[int, int, str]:
        rank = min((KIND_ORDER.index(k) for k in cap.kinds if k in KIND_ORDER), default=99)
        return (1 if cap.deletes else 0, rank, cap.name)

    return tuple(sorted(capabilities, key=key))


def route(
    text: str, explicit: str | None, capabilities: Sequence[Capability]
) -> tuple[Capability, ...] | Clarification:
    """The capabilities to use, or the question that lets a person say which."""
    if explicit is not None:
        return _explicit(explicit, capabilities)
    found = matching(text, capabilities)
    if not found:
        return not_understood(capabilities, "No capability's phrases match the request.")
    return in_order(found)


def _explicit(
    value: str, capabilities: Sequence[Capability]
) -> tuple[Capability, ...] | Clarification:
    by_name = {c.name: c for c in capabilities}
    names = [n.strip().lower() for n in value.split(",") if n.strip()]
    if not names or any(n not in by_name for n in names):
        return not_understood(capabilities, "The `capability:` line names no known capability.")
    return in_order([by_name[n] for n in dict.fromkeys(names)])


def not_understood(capabilities: Sequence[Capability], reason: str) -> Clarification:
    listing = "; ".join(f'`{c.name}` ("{c.aliases[0]}")' for c in capabilities)
    question = (
        "I could not tell which change you want. Reply with `capability: <name>` "
        f"(one of: {listing or 'none: the capability library is empty'}), "
        "or rephrase the request with one of those phrases."
    )
    return Clarification(questions=(question,), reason=reason)
