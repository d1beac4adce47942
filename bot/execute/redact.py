"""Mask anything that looks like a credential before it leaves the run.

Theory of operation: each rule is a regular expression whose replacement is a fixed mask
(``***``) next to a non-secret anchor kept for readability (``ghp_***``, ``password=***``,
``Authorization: Bearer ***``).  A masked value never matches its rule again, so ``redact``
is idempotent: running it on already redacted text changes nothing.  Rules lean towards
masking too much; a log that hides an innocent value is better than one that leaks a key.
"""

from __future__ import annotations

import re
from collections.abc import Callable

MASK = "***"

_Rule = tuple[re.Pattern[str], str | Callable[[re.Match[str]], str]]

_SECRET_WORD = (
    r"password|passwd|passphrase|token|secret|api[_-]?key|access[_-]?key|private[_-]?key"
    r"|credentials?"
)
_KEY = rf"(?<![A-Za-z0-9_.-])[A-Za-z0-9_.-]*(?:{_SECRET_WORD})[A-Za-z0-9_.-]*"
"""A key naming a secret: a whole run of key characters, tried only from the run's start
(without the look-behind every position inside a long run retries it: quadratic time)."""
_QUOTED_OR_BARE = r"\"(?:[^\"\\\n]|\\.)*\"|'[^'\n]*'|[^\s\"',;&}\]]+"


def _mask_keeping_quotes(value: str) -> str:
    if value[:1] in ("'", '"'):
        return f"{value[0]}{MASK}{value[0]}"
    return MASK


def _private_key(m: re.Match[str]) -> str:
    kind = m.group(1)
    end = f"-----END {kind}PRIVATE KEY-----" if m.group(2) else ""
    return f"-----BEGIN {kind}PRIVATE KEY-----{MASK}{end}"


def _authorization(m: re.Match[str]) -> str:
    scheme = f"{m.group(2)} " if m.group(2) else ""
    return f"{m.group(1)}{scheme}{MASK}"


def _assignment(m: re.Match[str]) -> str:
    return f"{m.group(1)}{_mask_keeping_quotes(m.group(2))}"


_RULES: tuple[_Rule, ...] = (
    # A private key block, terminated or cut off by a size limit.
    (
        re.compile(
            r"-----BEGIN ([A-Z0-9 ]*)PRIVATE KEY-----(?:.*?(-----END \1PRIVATE KEY-----)|.*\Z)",
            re.DOTALL,
        ),
        _private_key,
    ),
    (re.compile(r"\bPVEAPIToken[= ][^\s\"',;]+"), f"PVEAPIToken={MASK}"),
    (
        re.compile(
            r"(?i)\b(authorization[\"']?\s*[:=]\s*[\"']?)(?:(bearer|basic|token|digest)\s+)?+"
            r"(?!\*\*\*)[^\s\"',;]+"
        ),
        _authorization,
    ),
    (re.compile(r"(?i)\b(bearer)\s+[A-Za-z0-9\-._~+/]+=*"), lambda m: f"{m.group(1)} {MASK}"),
    (re.compile(r"\b(gh[pousr]_)[A-Za-z0-9]{16,}"), rf"\1{MASK}"),
    (re.compile(r"\b(github_pat_)[A-Za-z0-9_]{16,}"), rf"\1{MASK}"),
    (re.compile(r"\b(sk-ant-)[A-Za-z0-9_\-]{8,}"), rf"\1{MASK}"),
    (re.compile(r"\b((?:AKIA|ASIA))[A-Z0-9]{16}\b"), rf"\1{MASK}"),
    (re.compile(rf"(?i)([\"']?{_KEY}[\"']?\s*[:=]\s*)({_QUOTED_OR_BARE})"), _assignment),
)


def redact(text: str) -> str:
    """``text`` with credentials masked; idempotent."""
    for pattern, replacement in _RULES:
        text = pattern.sub(replacement, text)
    return text
