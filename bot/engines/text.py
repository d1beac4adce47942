"""Reading a ticket's untrusted text into key lines, prose and the phrases the engine knows.

Theory of operation: the title, body and replies are data from anyone who can open an
issue.  Nothing here decides anything; it only finds *candidates*, which the resolver
validates against strict patterns and the estate before any becomes a value.  A line
carrying template syntax (``{{``, ``{%``, ``{#``) is dropped from the prose entirely, so
no fragment of it can end up in a value; a key line carrying it is kept only so the
resolver can refuse it with a question.  Pure functions, no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from bot.model import Ticket

TEMPLATE_MARKS = ("{{", "{%", "{#")
KEY_LINE = re.compile(r"^\s*(?:[-*]\s+)?`?([a-z][a-z_]*)\s*:\s*(.*?)`?\s*$")
URL = re.compile(r"https?://[^\s<>\"'`)]+")
DOMAIN = re.compile(
    r"(?<![\w.@/-])((?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z][a-z0-9-]{0,61}[a-z0-9])"
    r"(?![\w-]|\.[a-z0-9])"
)
FILE_SUFFIXES = frozenset({"yaml", "yml", "md", "json", "py", "txt", "sh", "toml", "ini", "j2"})
IPV4 = re.compile(r"(?<![\w.])(\d{1,3}(?:\.\d{1,3}){3})(?![\w/:]|\.\d)")
TOKEN = r"([a-z0-9][a-z0-9-]*[a-z0-9]|[a-z0-9])(?=[\s,;:!?)]|\.(?:\s|$)|$)"
STOP_WORDS = frozenset(  # words that end a "for the <words>" service name
    """and to at on in with that which so behind through via using from as please it by for
    under into running called named container site service""".split()  # noqa: SIM905
)
NOT_NAMES = STOP_WORDS | frozenset("the a an its this that is of me more some new".split())  # noqa: SIM905


def has_template(text: str) -> bool:
    return any(mark in text for mark in TEMPLATE_MARKS)


@dataclass(frozen=True)
class Request:
    """A ticket's text, split into what the engine reads."""

    keys: dict[str, str] = field(default_factory=dict)
    """``key: value`` lines of the body and replies with a known key (the last one wins)."""
    prose: str = ""
    """Every other line, minus the lines carrying template syntax."""
    dropped: int = 0
    """How many lines were dropped for carrying template syntax."""
    wording: str = ""
    """Every line but the key lines, template syntax included (for routing by alias only)."""


def read_request(ticket: Ticket, known_keys: Iterable[str]) -> Request:
    known = frozenset(known_keys)
    keys: dict[str, str] = {}
    prose: list[str] = []
    wording: list[str] = []
    for is_title, line in _lines(ticket):
        match = None if is_title else KEY_LINE.match(line)
        if match and match.group(1) in known and match.group(2):
            keys[match.group(1)] = match.group(2).strip()
            continue
        wording.append(line)
        if not has_template(line):
            prose.append(line)
    return Request(
        keys=keys,
        prose="\n".join(prose),
        dropped=len(wording) - len(prose),
        wording="\n".join(wording),
    )


def _lines(ticket: Ticket) -> list[tuple[bool, str]]:
    rest = [ticket.body, *ticket.replies]
    return [(True, ticket.title)] + [(False, line) for text in rest for line in text.splitlines()]


def unique(items: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(items))


def urls(prose: str) -> list[str]:
    return unique(u.rstrip(".,;:!?") for u in URL.findall(prose))


def _without_urls(prose: str) -> str:
    return URL.sub(" ", prose).lower()


def domains(prose: str) -> list[str]:
    """Hostnames with a dot (not inside URLs, not file names, not addresses)."""
    found = DOMAIN.findall(_without_urls(prose))
    return unique(d for d in found if d.rsplit(".", 1)[1] not in FILE_SUFFIXES)


def domains_after(prose: str, words: str) -> list[str]:
    """Hostnames right after one of the words, e.g. ``at`` in "accessible at x.example.com"."""
    pattern = rf"\b(?:{words})\s+" + DOMAIN.pattern
    found = re.findall(pattern, _without_urls(prose))
    return unique(d for d in found if d.rsplit(".", 1)[1] not in FILE_SUFFIXES)


def tokens_after(prose: str, words: str) -> list[str]:
    """Name-like tokens right after the words: "on pve1", "on node pve1", "via proxy1"."""
    pattern = rf"\b(?:{words})\s+(?:the\s+)?(?:(?:node|host|server)\s+)?" + TOKEN
    return unique(re.findall(pattern, _without_urls(prose)))


def tokens_around(prose: str, noun: str) -> list[str]:
    """Tokens in "<noun> <token>" and "the <token> <noun>", e.g. "container status-page"."""
    text = _without_urls(prose)
    after = re.findall(rf"\b(?:{noun})\s+" + TOKEN, text)
    before = re.findall(rf"\b(?:the|its|our|my)\s+([a-z0-9][a-z0-9-]*)\s+(?:{noun})\b", text)
    return unique([*after, *before])


def name_tokens(prose: str) -> list[str]:
    """Every name-like word of the text (domains, URLs and addresses left out)."""
    flat = IPV4.sub(" ", DOMAIN.sub(" ", _without_urls(prose)))
    return unique(re.findall(r"(?<![\w.-])([a-z0-9][a-z0-9-]*[a-z0-9])(?![\w-])", flat))


def ipv4s(prose: str) -> list[str]:
    return unique(IPV4.findall(URL.sub(" ", prose)))


def slug(words: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", words.lower()).strip("-")[:63].strip("-")


def service_phrase(prose: str) -> str | None:
    """The slug of "for the <words>", "named <name>" or "called <name>", if any."""
    named = re.search(r"\b(?:named|called)\s+[\"'`]?([A-Za-z0-9][\w-]*)", prose)
    if named:
        return slug(named.group(1))
    match = re.search(
        r"\bfor\s+the\s+(?!team\b)((?:[A-Za-z0-9][\w-]*)(?:[ \t]+[\w-]+){0,3})",
        prose,
        re.IGNORECASE,
    )
    if not match:
        bare = re.search(
            r"\bfor\s+(?!(?:the|team|a|an|it|me|us|them|now|later|testing|example|our|my)\b)"
            r"([a-z][a-z0-9-]*[a-z0-9])(?![\w.-])",
            prose,
            re.IGNORECASE,
        )
        return slug(bare.group(1)) if bare and bare.group(1).lower() not in STOP_WORDS else None
    words = []
    for word in match.group(1).split():
        if word.lower() in STOP_WORDS:
            break
        words.append(word)
    return slug(" ".join(words)) or None


def team(prose: str) -> str | None:
    match = re.search(
        r"\bfor\s+(?:the\s+)?team\s+@?([A-Za-z0-9][A-Za-z0-9_.-]*)", prose, re.IGNORECASE
    )
    return match.group(1).rstrip(".") if match else None


SIZE_UNITS = {"m": 1, "mb": 1, "mib": 1, "g": 1024, "gb": 1024, "gib": 1024}
NUMBER_PATTERNS: dict[str, tuple[str, ...]] = {
    "cores": (r"\b(\d{1,4})\s*(?:v?cpus?|cores?)\b",),
    "memory": (
        r"\b(\d{1,7})\s*(mb|mib|gb|gib|g|m)\s+(?:of\s+)?(?:memory|ram)\b",
        r"\b(?:memory|ram)\s+(?:of\s+)?(\d{1,7})\s*(mb|mib|gb|gib|g|m)\b",
    ),
    "disk": (
        r"\b(\d{1,6})\s*(gb|gib|g)\s+(?:of\s+)?disk\b",
        r"\bdisk\s+(?:of\s+)?(\d{1,6})\s*(gb|gib|g)\b",
    ),
    "service_port": (r"\bport\s+(\d{1,5})\b",),
    "ttl": (
        r"\bttl\s+(?:of\s+)?(\d{1,6})s?\b",
        r"\bttl\b[^\d\n]{0,60}?\b(?:to|=|:|at)\s*(\d{1,6})s?\b",
        r"\b(\d{1,6})\s*(?:s|sec|seconds?)?\s+ttl\b",
    ),
}


def numbers(prose: str, what: str) -> list[int]:
    """Numbers stated for a parameter ("2 cores", "2 GB of memory" → 2048, "port 9000")."""
    found: list[int] = []
    for pattern in NUMBER_PATTERNS.get(what, ()):
        for match in re.finditer(pattern, prose.lower()):
            value = int(match.group(1))
            if what == "memory":
                value *= SIZE_UNITS[match.group(2)]
            found.append(value)
    return list(dict.fromkeys(found))
