"""Markdown the bot writes around text it did not write.  Pure.

Theory of operation
-------------------
Everything the bot posts is its own markdown with other people's text *interpolated*:
service responses, issue titles, branch and user names, YAML values, command text, task
names and Ansible output.  Such text must read as text, never as markup — otherwise a
service that answers ``<h1>✅ approved</h1>`` or an issue titled ``[merge](https://…)``
writes into what reviewers take as the bot's word.  Each helper here produces one safe
piece of markdown (as GitHub renders it: CommonMark + GFM tables, autolinks, mentions,
``$math$``):

- ``text``: inline text.  Whitespace is flattened (no new block can start), ``&<>``
  become entities (no HTML, no entity tricks, and the raw text never holds ``<``), the
  characters that open inline markup are backslash-escaped (code, emphasis, links and
  images, strikethrough, table cells, math, ``https\\://`` and ``www\\.`` autolinks), as
  is a leading list or heading marker; ``@`` and the ``:`` of an ``:emoji:`` get an
  invisible word joiner, because GitHub links mentions and draws emoji *after* markdown,
  where no escape reaches.  Plain names stay readable (``api-scanner.example.com``).
- ``code``: an inline code span whose backtick fence is longer than any run inside it, so
  it cannot be closed early; ``cell=True`` escapes ``|`` for a table cell (GFM splits
  cells before it parses code spans).
- ``fence``: a fenced block that its content cannot close.
- ``html``: text for inside an HTML element (``<summary>``), where markdown is not parsed.
- ``details``: a fold with an escaped summary.

Every helper first masks credentials (``bot.execute.redact``): escaping would otherwise
hide a secret from the redactor that runs again where the forge posts (``ghp\\_…`` no
longer looks like a token, yet renders as one).  Control characters and bidirectional
overrides are replaced (U+FFFD) everywhere: they can reorder what a reviewer sees.

``bound`` cuts a long body to a size limit keeping its head (the summary) and its tail
(the errors), closing any fence or fold it cuts through.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from bot.execute.redact import redact

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\u200e\u200f]")
_WJ = "\u2060"  # WORD JOINER: invisible, breaks @mentions and :emoji: shortcodes
MARKER_START = "<!-- infrabot:"
"""How the hidden topic marker of a bot's comment starts (``bot.forge.base``)."""
_BROKEN_MARKER = MARKER_START.replace(":", _WJ + ":")
_INLINE = re.compile(
    r"(?P<always>[\\`*\[\]~|$])"  # code, emphasis, links/images, strike, cells, math
    r"|(?P<underscore>(?<![A-Za-z0-9])_|_(?![A-Za-z0-9]))"  # intraword _ is plain text
    r"|(?P<entity>[&<>])"  # no HTML, no entities, and the raw text never holds "<"
    r"|(?P<autolink>:(?=//)|(?i:(?<=mailto)|(?<=xmpp)):|(?i:(?<=www))\.)"
    r"|(?P<joined>@|:(?=[A-Za-z0-9_+-]+:))"  # mentions, e-mail autolinks, emoji
)
_LINE_START = re.compile(r"[#=+-]|\d{1,9}(?=[.)])")  # headings, setext, lists
_ENTITIES = {"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;"}
_EMOJI = re.compile(r"(@|:(?=[A-Za-z0-9_+-]+:))")
ELLIPSIS = "…"


def clean(value: object) -> str:
    """``value`` as text: credentials masked, control characters and overrides replaced, and
    no bot topic marker (``<!-- infrabot:``) left whole, even inside a code span."""
    value = redact(str(value).replace("\r\n", "\n")).replace(MARKER_START, _BROKEN_MARKER)
    return _CONTROL.sub("\ufffd", value)


def flat(value: object, limit: int | None = None) -> str:
    """One line: whitespace runs become one space; cut at ``limit`` characters."""
    line = " ".join(clean(value).split())
    if limit is not None and len(line) > limit:
        line = line[: max(limit - 1, 0)] + ELLIPSIS
    return line


def text(value: object, limit: int | None = None) -> str:
    """Inline markdown that renders exactly as ``value`` (flattened to one line)."""
    line = _INLINE.sub(_escape, flat(value, limit))
    start = _LINE_START.match(line)
    if start is None:
        return line
    if start.group().isdigit():  # "1." starts a list; "1\." does not
        return f"{start.group()}\\{line[start.end() :]}"
    return "\\" + line


def _escape(found: re.Match[str]) -> str:
    char = found.group()
    if found.lastgroup == "entity":
        return _ENTITIES[char]
    if found.lastgroup == "joined":
        return char + _WJ
    return "\\" + char


def code(value: object, limit: int | None = None, *, cell: bool = False) -> str:
    """An inline code span showing ``value`` (one line); ``cell`` when inside a table."""
    inner = flat(value, limit)
    if cell:
        inner = inner.replace("|", "\\|")
    if not inner:
        return "` `"
    ticks = "`" * (_longest_run(inner, "`") + 1)
    pad = " " if inner[0] in "` " or inner[-1] in "` " else ""
    return f"{ticks}{pad}{inner}{pad}{ticks}"


def fence(value: object, lang: str = "") -> str:
    """A fenced code block showing ``value`` verbatim (it cannot close the fence)."""
    body = clean(value).rstrip("\n")
    ticks = "`" * max(3, _longest_run(body, "`") + 1)
    info = re.sub(r"[^A-Za-z0-9_+-]", "", lang)
    return f"{ticks}{info}\n{body}\n{ticks}"


def html(value: object, limit: int | None = None) -> str:
    """Text for inside an HTML element such as ``<summary>`` (markdown is not parsed there)."""
    escaped = "".join(_ENTITIES.get(c, c) for c in flat(value, limit))
    return _EMOJI.sub(lambda m: m.group() + _WJ, escaped)


def details(summary: str, body: str) -> str:
    """A fold: ``summary`` is plain text (escaped here), ``body`` is markdown."""
    return f"<details><summary>{html(summary)}</summary>\n\n{body.strip()}\n\n</details>"


def bullets(items: Iterable[str], empty: str = "(none)") -> str:
    """A list of already-safe markdown items."""
    lines = [f"- {item}" for item in items]
    return "\n".join(lines) or f"- {empty}"


def _longest_run(value: str, char: str) -> int:
    runs = re.findall(f"{re.escape(char)}+", value)
    return max((len(r) for r in runs), default=0)


_FENCE_LINE = re.compile(r" {0,3}(`{3,}|~{3,})(.*)")
_OPEN_DETAILS = re.compile(r"<details\b", re.I)
_CLOSE_DETAILS = re.compile(r"</details\s*>", re.I)


def bound(markdown: str, limit: int) -> str:
    """``markdown`` cut to at most ``limit`` characters: its first two thirds and its end.

    A fenced block or ``<details>`` fold open at a cut is closed before the cut and opened
    again after it, so the cut never swallows the rest of the comment.
    """
    if len(markdown) <= limit:
        return markdown
    if limit < 2000:  # too small for a head, a note and an end
        return markdown[: limit - 1] + ELLIPSIS
    lines = markdown.splitlines(keepends=True)
    states = _block_states(lines)
    budget = limit - 400  # the note and the closers/openers
    head_end = _head(lines, states, budget * 2 // 3)
    start = _tail(lines, states, budget - sum(map(len, lines[:head_end])), head_end)
    cut = len(markdown) - sum(map(len, lines[:head_end])) - sum(map(len, lines[start:]))
    note = (
        f"\n\n**… {cut:,} characters cut here to fit the size limit of a comment; "
        "the full text is in the log.**\n\n"
    )
    head = "".join(lines[:head_end]) + _closers(states[head_end])
    out = head.rstrip("\n") + note + _openers(states[start]) + "".join(lines[start:])
    return out if len(out) <= limit else out[: limit - 1] + ELLIPSIS


_State = tuple[str | None, int]  # (the open fence, how many folds are open)


def _block_states(lines: list[str]) -> list[_State]:
    """The block state before each line (and after the last)."""
    fence: str | None = None
    depth = 0
    states: list[_State] = []
    for line in lines:
        states.append((fence, depth))
        found = _FENCE_LINE.fullmatch(line.rstrip("\n"))
        if fence is None and found:
            fence = found.group(1)
        elif fence is not None:
            if found and found.group(1)[0] == fence[0] and len(found.group(1)) >= len(fence):
                fence = None if not found.group(2).strip() else fence
        else:
            depth += len(_OPEN_DETAILS.findall(line)) - len(_CLOSE_DETAILS.findall(line))
            depth = max(depth, 0)
    states.append((fence, depth))
    return states


def _head(lines: list[str], states: list[_State], budget: int) -> int:
    size = 0
    for i, line in enumerate(lines):
        if size + len(line) + len(_closers(states[i + 1])) > budget:
            return i
        size += len(line)
    return len(lines)


def _tail(lines: list[str], states: list[_State], budget: int, first: int) -> int:
    """Where the kept end starts: the earliest line that fits, at a clean boundary if one does."""
    size, fits = 0, len(lines)
    for i in range(len(lines) - 1, first - 1, -1):
        size += len(lines[i])
        if size + len(_openers(states[i])) > budget:
            break
        fits = i
    clean = [i for i in range(fits, len(lines)) if states[i] == (None, 0)]
    return clean[0] if clean and clean[0] - fits < 40 else fits


def _closers(state: _State) -> str:
    fence, depth = state
    return (f"\n{fence}\n" if fence else "") + "\n</details>\n" * depth


def _openers(state: _State) -> str:
    fence, depth = state
    return "<details><summary>(continued)</summary>\n\n" * depth + (f"{fence}\n" if fence else "")
