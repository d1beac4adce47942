"""The comment parser, table by table: command, reply or ignore."""

from __future__ import annotations

import pytest
from gfm import elements, visible
from hypothesis import given
from hypothesis import strategies as st

from bot.commands import (
    HELP_TEXT,
    MAX_COMMENT_BYTES,
    Command,
    CommandName,
    Ignore,
    Reply,
    parse_comment,
)
from bot.forge.base import BOT_LOGIN

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
    assert parse_comment("/plan\n" + "x" * 1000, author="bob") == PLAN


def test_a_comment_of_exactly_the_limit_is_still_read() -> None:
    at_limit = "/plan\n" + "é" * ((MAX_COMMENT_BYTES - 6) // 2)  # two bytes each in UTF-8
    assert len(at_limit.encode()) == MAX_COMMENT_BYTES
    assert parse_comment(at_limit, author="bob") == PLAN
    assert isinstance(parse_comment(at_limit + "x", author="bob"), Ignore)


REPLIES = [
    ("/Plan", "unknown command `/Plan`."),
    ("/deploy now", "unknown command `/deploy`."),
    ("/destroy-all", "unknown command `/destroy-all`."),
    ("@infrabot deploy", "unknown command `/deploy`."),
    ("@infrabot can you look?", "unknown command `/can`."),
    ("/apply -auto-approve", "unknown command `/apply` with `-auto-approve`"),
    ("/plan web1 web2", "unknown command `/plan` with `web1` `web2`:"),
    ("@infrabot plan web1 web2", "unknown command `/plan` with `web1` `web2`:"),
    ("/plan a b c d e", "unknown command `/plan` with `a` `b` `c`:"),  # three are enough
    ("/plan " + "w" * 60, "unknown command `/plan` with `" + "w" * 40 + "`:"),
    ("/plan <@>", "unknown command `/plan` with `?`:"),  # nothing safe left to echo
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


# Property-based: whatever a comment holds, the parser answers with one of its three values.

_COMMANDISH = st.sampled_from(
    ["/apply", "/plan", "/unlock", "/help", "@infrabot", "@InfraBot apply", "/APPLY", "/", "@"]
)
_BODIES = st.one_of(
    st.text(max_size=300),
    st.builds(
        lambda lead, cmd, rest: f"{lead}{cmd}{rest}",
        st.text(alphabet=" \t\n\r\x0b\x0c\u2028\u00a0", max_size=4),
        _COMMANDISH,
        st.text(max_size=80),
    ),
    st.binary(max_size=200).map(lambda b: b.decode("utf-8", "surrogateescape")),
)


@given(body=_BODIES, author=st.text(max_size=40))
def test_no_comment_makes_the_parser_raise(body: str, author: str) -> None:
    parsed = parse_comment(body, author=author)
    assert isinstance(parsed, Command | Reply | Ignore)
    if isinstance(parsed, Reply):
        shown = visible(parsed.text)
        assert elements(parsed.text) <= {"p", "code", "strong", "ul", "li"}
        assert "@" not in shown.replace(f"@{BOT_LOGIN}", "")  # no mention of anyone else


@given(body=_BODIES)
def test_apply_runs_only_when_it_is_the_whole_comment(body: str) -> None:
    if parse_comment(body, author="bob") == APPLY:
        lines = [line.strip() for line in body.splitlines() if line.strip()]
        assert len(lines) == 1
        assert lines[0].lower().split() in (
            ["/apply"],
            ["@infrabot", "apply"],
            ["@infrabot", "/apply"],
        )


@given(suffix=st.text(min_size=1, max_size=60).filter(lambda t: t.strip()))
def test_apply_with_anything_after_it_is_answered_not_run(suffix: str) -> None:
    for body in (f"/apply {suffix}", f"/apply\n{suffix}"):
        parsed = parse_comment(body, author="bob")
        assert isinstance(parsed, Reply), (body, parsed)
        assert "nothing was applied" in parsed.text or "takes no arguments" in parsed.text


def test_apply_with_an_explanation_below_is_answered() -> None:
    parsed = parse_comment("/apply\n\nonly after the freeze ends", author="bob")
    assert parsed == Reply(
        text="`/apply` must be alone in its comment: nothing was applied. Other text could be "
        "a condition I cannot read; comment `/apply` on its own when it holds."
    )
    assert parse_comment("/apply\n\n", author="bob") == APPLY
