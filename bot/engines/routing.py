"""Which capabilities a request asks for: intent (a verb and its object), aliases, or an
explicit ``capability:`` line.

Theory of operation: the words each capability answers to are declared in its markdown
(``## Aliases``: phrases that route on their own; ``## Words``: verbs and the objects they
must be about), never here.  The request is cut into clauses ("create a container",
"publish it at …", "don't set up monitoring"); in each clause the first verb that has one
of its capability's objects near it routes to that capability, the nearest object after the
verb deciding between capabilities that share a verb ("add 2 cores" vs "add a container").
A clause whose verb or object is negated ("don't", "no", "without") takes its capability
out instead.  A request that maps to nothing gets a question listing the library; it is
never mapped to the "closest" capability.  Pure functions.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from dataclasses import dataclass

from bot.engines.capabilities import Capability
from bot.engines.text import DOMAIN, IPV4, URL
from bot.model import Clarification

KIND_ORDER = ("Host", "Container", "Site", "DnsRecord", "MonitoringTarget")
CLAUSES = re.compile(r"[.;!?]+|,|\n\s*\n|\n\s*(?:[-*•]|\d+[.)])\s|\s+(?:and|then|also|plus|but)\s+")
NEGATION = re.compile(
    r"(?<![\w-])(?:don['\u2019]?t|do\s+not|does\s+not|doesn['\u2019]?t|no\s+need\s+to|not|never|"
    r"without|no|skip|except|instead\s+of)(?![\w-])"
)
UNDERSTOOD_NOTHING = "No capability's phrases match the request."


@functools.lru_cache(maxsize=4096)
def _phrase(words: str) -> re.Pattern[str]:
    body = r"\s+".join(re.escape(w) for w in words.split())
    return re.compile(rf"(?<![\w-]){body}(?![\w-])", re.IGNORECASE)


def alias_matches(alias: str, text: str) -> bool:
    return _phrase(alias).search(text) is not None


@dataclass(frozen=True)
class Hit:
    capability: Capability
    negated: bool
    start: int


def clauses(text: str) -> list[str]:
    """The request in lowercase clauses, with URLs, domains and addresses made opaque."""
    flat = URL.sub(" § ", text.lower())
    flat = DOMAIN.sub(" § ", flat)
    flat = IPV4.sub(" § ", flat)
    return [c.strip() for c in CLAUSES.split(flat) if c.strip()]


def _found(
    clause: str, capabilities: Sequence[Capability], attr: str
) -> list[tuple[int, int, str, Capability]]:
    """(start, end, phrase, capability) for every verb or object of every capability."""
    out = []
    for cap in capabilities:
        for word in getattr(cap, attr):
            out += [(m.start(), m.end(), word, cap) for m in _phrase(word).finditer(clause)]
    return out


def _longest(found: list[tuple[int, int, str, Capability]]) -> list[tuple[int, int, str]]:
    """Phrases at each position, the longest winning where they overlap ("set up" over "set")."""
    spans = sorted({(s, e, w) for s, e, w, _ in found}, key=lambda x: (x[0], -(x[1] - x[0])))
    kept: list[tuple[int, int, str]] = []
    for span in spans:
        if not kept or span[0] >= kept[-1][1]:
            kept.append(span)
    return kept


CORRECTIONS = re.compile(r"\bno[,\s]+(?:wait|sorry|actually)\b")
DETERMINERS = frozenset(
    ["the", "a", "an", "its", "their", "his", "her", "our", "my", "this", "that", "also"]
)


def _negated(clause: str, start: int) -> bool:
    """A negation among the three words before the phrase ("don't set up", "no monitoring")."""
    before = " ".join(CORRECTIONS.sub(" ", clause[:start]).split()[-3:])
    return NEGATION.search(before) is not None


def _intent(clause: str, capabilities: Sequence[Capability]) -> Hit | None:
    """The first verb of the clause with an object of its capability near it."""
    verbs = _found(clause, capabilities, "verbs")
    objects = _found(clause, capabilities, "objects")
    kept_objects = _longest(objects)
    for start, end, verb in _longest(verbs):
        owners = [c for s, _, w, c in verbs if (s, w) == (start, verb)]
        after = [o for o in kept_objects if o[0] >= end and o[0] != start]
        before = [o for o in reversed(kept_objects) if o[1] <= start]
        for _, _, word in after + before:
            fits = [c for c in owners if word in c.objects]
            if fits:
                best = min(fits, key=lambda c: (c.verbs.index(verb), c.name))
                return Hit(best, _negated(clause, start), start)
    return None


def _aliases(clause: str, capabilities: Sequence[Capability]) -> list[Hit]:
    hits = []
    for cap in capabilities:
        for alias in cap.aliases:
            match = _phrase(alias).search(clause)
            if match:
                hits.append(Hit(cap, _negated(clause, match.start()), match.start()))
    return hits


def _negated_objects(clause: str, capabilities: Sequence[Capability]) -> list[Hit]:
    """ "no monitoring", "without a site": an object negated with no verb of its own."""
    return [
        Hit(cap, True, start)
        for start, _, _, cap in _found(clause, capabilities, "objects")
        if _negated(clause, start)
    ]


def hits(text: str, capabilities: Sequence[Capability]) -> list[Hit]:
    out: list[Hit] = []
    last_verb = ""
    for clause in clauses(text):
        verbs = _longest(_found(clause, capabilities, "verbs"))
        if not verbs:
            negated = _negated_objects(clause, capabilities)
            if negated:
                out += negated
                continue
            if last_verb and _elliptic(clause, capabilities):
                clause = f"{last_verb} {clause}"  # "remove the site and [remove] the record"
        else:
            last_verb = verbs[0][2]
        found = _aliases(clause, capabilities)
        intent = _intent(clause, capabilities)
        out += found + ([intent] if intent else [])
    return out


def _elliptic(clause: str, capabilities: Sequence[Capability]) -> bool:
    """A clause that is only an object ("the DNS record"): it shares the verb before it."""
    first = clause.split()[0]
    return first in DETERMINERS or any(
        o.split()[0] == first for c in capabilities for o in c.objects
    )


def matching(text: str, capabilities: Sequence[Capability]) -> list[Capability]:
    found = hits(text, capabilities)
    unwanted = {h.capability.name for h in found if h.negated}
    wanted = {h.capability.name: h.capability for h in found if not h.negated}
    return [c for name, c in wanted.items() if name not in unwanted]


def declined(text: str, capabilities: Sequence[Capability]) -> list[str]:
    """Capabilities the request says not to use ("don't set up monitoring")."""
    return sorted({h.capability.name for h in hits(text, capabilities) if h.negated})


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
        return not_understood(capabilities, UNDERSTOOD_NOTHING)
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
    return Clarification(questions=(question,), reason=reason, understood=False)
