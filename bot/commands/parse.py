"""Comment commands: ``/plan``, ``/apply``, ``/unlock``, ``/help`` (or ``@infrabot plan``).

Theory of operation
-------------------
A comment is untrusted text.  ``parse_comment`` looks only at its first non-blank line
and returns one of three values: a ``Command`` to run, a ``Reply`` to post (an unknown
command or unexpected arguments, answered with the help text), or an ``Ignore`` (not
addressed to the bot, written by the bot itself, too large).  Nothing here does I/O or
decides permission; ``bot.commands.authorize`` does that for /apply.

A line like ``/etc/hosts is wrong`` is a path, not a command: only ``/word`` followed by
whitespace or the end of the line is.  Text echoed back is reduced to a short run of
safe characters so a reply can never carry mentions or markup from the comment.

Later lines may explain a ``/plan`` (``/plan`` + "because the head moved"), but not an
``/apply``: text below it could be a condition the bot cannot read ("only after the
freeze"), so an ``/apply`` that is not alone in its comment is answered, not run.
Whatever the text, the parser returns one of the three values and never raises
(``tests/test_commands_parse.py`` checks that with hypothesis).
"""

from __future__ import annotations

import re
from enum import StrEnum

from pydantic import BaseModel, ConfigDict

from bot.forge.base import BOT_LOGIN

MAX_COMMENT_BYTES = 64 * 1024


class CommandName(StrEnum):
    PLAN = "plan"
    APPLY = "apply"
    UNLOCK = "unlock"
    HELP = "help"


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Command(_Frozen):
    name: CommandName
    args: tuple[str, ...] = ()


class Reply(_Frozen):
    text: str


class Ignore(_Frozen):
    reason: str


# One line each; the order is the order of the help text.
_DESCRIPTIONS: dict[CommandName, str] = {
    CommandName.PLAN: "validate this pull request and dry-run it on the hosts it touches",
    CommandName.APPLY: "apply this pull request's head to the estate (alone in its comment; "
    "requirements below)",
    CommandName.UNLOCK: "release the estate lock held by this pull request",
    CommandName.HELP: "show this help",
}
# Arguments each command accepts: none yet.  A flag is added here, not in the parser.
_ALLOWED_ARGS: dict[CommandName, frozenset[str]] = {name: frozenset() for name in CommandName}

HELP_TEXT = (
    "**infrabot commands** (comment on the pull request; the first line is the command):\n\n"
    + "\n".join(f"- `/{name.value}`: {text}" for name, text in _DESCRIPTIONS.items())
    + "\n\n`/apply` needs all of:\n"
    "- a commenter with write permission on the repository;\n"
    "- an approval on the current head commit by someone other than the PR's author;\n"
    "- green validation and a dry-run of the current head (comment `/plan` after a push);\n"
    "- the estate lock free or held by this pull request, no change freeze, "
    "and the pull request open.\n\n"
    f"`@{BOT_LOGIN} plan` works as well as `/plan`."
)

_SLASH_WORD = re.compile(r"/([A-Za-z][A-Za-z0-9_-]*)")
_SAFE = re.compile(r"[^A-Za-z0-9_.-]")


def parse_comment(
    body: str, *, author: str, bot_login: str = BOT_LOGIN
) -> Command | Reply | Ignore:
    if _is_bot(author, bot_login):
        return Ignore(reason="comment by the bot itself")
    if len(body.encode("utf-8", errors="replace")) > MAX_COMMENT_BYTES:
        return Ignore(reason=f"comment is larger than {MAX_COMMENT_BYTES // 1024} KiB")
    words = _command_words(_first_line(body), bot_login)
    if words is None:
        return Ignore(reason="not a command")
    parsed = _resolve(words)
    if parsed == Command(name=CommandName.APPLY) and _has_more_than_one_line(body):
        return Reply(
            text="`/apply` must be alone in its comment: nothing was applied. Other text "
            "could be a condition I cannot read; comment `/apply` on its own when it holds."
        )
    return parsed


def _has_more_than_one_line(body: str) -> bool:
    return sum(1 for line in body.splitlines() if line.strip()) > 1


def _is_bot(author: str, bot_login: str) -> bool:
    login = bot_login.lower()
    return author.lower() in (login, f"{login}[bot]")


def _first_line(body: str) -> str:
    return next((line.strip() for line in body.splitlines() if line.strip()), "")


def _command_words(line: str, bot_login: str) -> list[str] | None:
    """The command word (with its leading slash) and its arguments, or None."""
    words = line.split()
    if not words:
        return None
    if words[0].lower() == f"@{bot_login.lower()}":
        rest = words[1:] or ["help"]
        return [rest[0] if rest[0].startswith("/") else f"/{rest[0]}", *rest[1:]]
    if _SLASH_WORD.fullmatch(words[0]):
        return words
    return None


def _resolve(words: list[str]) -> Command | Reply:
    word, args = words[0], tuple(words[1:])
    try:
        name = CommandName(word[1:])
    except ValueError:
        return Reply(text=f"unknown command `/{_echo(word[1:])}`.\n\n{HELP_TEXT}")
    unexpected = [a for a in args if a not in _ALLOWED_ARGS[name]]
    if unexpected:
        shown = " ".join(f"`{_echo(a)}`" for a in unexpected[:3])
        return Reply(
            text=f"unknown command `/{name.value}` with {shown}: "
            f"`/{name.value}` takes no arguments.\n\n{HELP_TEXT}"
        )
    return Command(name=name, args=args)


def _echo(text: str) -> str:
    """What of the commenter's text may appear in a reply: short, no markup, no mentions."""
    cleaned = _SAFE.sub("", text)[:40]
    return cleaned or "?"
