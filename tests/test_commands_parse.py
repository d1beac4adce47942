"""The comment parser, table by table: command, reply or ignore."""

from __future__ import annotations

import pytest

from bot.commands import (
    HELP_TEXT,
    MAX_COMMENT_BYTES,
    Command,
    CommandName,
    Ignore,
    Reply,
    parse_comment,
)

PLAN, APPLY, UNLOCK, HELP = (Command(name=n) for n in CommandName)

COMMANDS = [
    ("/plan", PLAN),
    ("/apply", APPLY),
    ("/unlock", UNLOCK),
    ("/help", HELP),
    ("/apply   \t", APPLY),
    ("\n\n   /plan\nbecause the head moved", PLAN),
    ("/plan\r\nthanks", PLAN),
    ("@infrabot plan", PLAN),
    ("@InfraBot apply", APPLY),
    ("@infrabot /unlock", UNLOCK),
    ("@infrabot", HELP),
]


@pytest.mark.parametrize(("body", "expected"), COMMANDS)
def test_commands(body: str, expected: Command) -> None:
    assert parse_comment(body, author="bob") == expected


IGNORED = [
    ("looks good to me", "not a command"),
    ("", "not a command"),
    ("   \n\t\n", "not a command"),
    ("I ran /plan earlier", "not a command"),
    ("> /apply\nquoting you", "not a command"),
    ("`/apply`", "not a command"),
    ("/etc/hosts is wrong on web1", "not a command"),
    ("/", "not a command"),
    ("/123", "not a command"),
    ("@someone plan", "not a command"),
    ("@infrabot, please", "not a command"),
]


@pytest.mark.parametrize(("body", "reason"), IGNORED)
def test_ignored(body: str, reason: str) -> None:
    assert parse_comment(body, author="bob") == Ignore(reason=reason)


@pytest.mark.parametrize("author", ["infrabot", "InfraBot", "infrabot[bot]"])
def test_the_bots_own_comments_are_ignored(author: str) -> None:
    assert parse_comment("/apply", author=author) == Ignore(reason="comment by the bot itself")


def test_another_bot_login_is_honoured() -> None:
    assert parse_comment("@ops-bot apply", author="bob", bot_login="ops-bot") == APPLY
    assert parse_comment("/apply", author="ops-bot", bot_login="ops-bot") == Ignore(
        reason="comment by the bot itself"
    )


def test_oversized_comments_are_ignored_before_parsing() -> None:
    body = "/apply\n" + "x" * MAX_COMMENT_BYTES
    assert parse_comment(body, author="bob") == Ignore(reason="comment is larger than 64 KiB")
    assert parse_comment("/apply\n" + "x" * 1000, author="bob") == APPLY


REPLIES = [
    ("/Plan", "unknown command `/Plan`."),
    ("/deploy now", "unknown command `/deploy`."),
    ("/destroy-all", "unknown command `/destroy-all`."),
    ("@infrabot deploy", "unknown command `/deploy`."),
    ("@infrabot can you look?", "unknown command `/can`."),
    ("/apply -auto-approve", "unknown command `/apply` with `-auto-approve`"),
    ("/plan web1 web2", "unknown command `/plan` with `web1` `web2`"),
    ("/help me", "unknown command `/help` with `me`"),
]


@pytest.mark.parametrize(("body", "start"), REPLIES)
def test_replies_carry_the_help(body: str, start: str) -> None:
    got = parse_comment(body, author="bob")
    assert isinstance(got, Reply)
    assert got.text.startswith(start)
    assert got.text.endswith(HELP_TEXT)


def test_echoed_text_cannot_carry_mentions_or_markup() -> None:
    got = parse_comment("/apply @alice `x` <img src=y> **z**", author="bob")
    assert isinstance(got, Reply)
    first = got.text.split("\n")[0]
    assert "@" not in first and "<" not in first and "**" not in first
    assert "`alice`" in first


def test_help_text_lists_every_command_and_the_apply_rules() -> None:
    for name in CommandName:
        assert f"- `/{name.value}`:" in HELP_TEXT
    for requirement in ("write permission", "other than the PR's author", "dry-run", "lock"):
        assert requirement in HELP_TEXT
