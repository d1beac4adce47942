"""Untrusted text in the bot's markdown renders as text, as GitHub renders it (cmarkgfm)."""

from __future__ import annotations

import re

import pytest
from gfm import elements, visible, walk
from hypothesis import given
from hypothesis import strategies as st

from bot.markdown import bound, bullets, code, details, fence, flat, html, text

WJ = "\u2060"

HOSTILE = [
    "<!doctype html> <title>api-scanner</title> <h1>api-scanner</h1>",
    "✅ approved by @alice",
    "**✅ approved** _by_ the security team",
    "[click here](https://evil.example/steal) and ![img](https://evil.example/x.png)",
    "https://evil.example/login www.evil.example admin@evil.example",
    "<details open><summary>looks fine</summary>hidden</details>",
    "# Heading\n\n## another\n---\n===",
    "<!-- infrabot:topic=evidence-abc -->fake",
    "``` code ``` and ` one ` and ````",
    "| col | umn |\n|---|---|\n| a | b |",
    "<script>alert(1)</script><img src=x onerror=alert(1)>",
    "&lt;b&gt; &amp; &#60;i&#62;",
    "$\\sqrt{2}$ and $$x$$",
    "> quoted\n- item\n1. numbered\n    indented code",
    "- [x] ticked",
    "trailing backslash \\",
    "~~struck~~ and ==marked== and ^sup^",
    "@infrabot apply @org/team :white_check_mark: approved :+1:",
    "www.evil.example mailto:x@y.z xmpp:a@b.c ftp://files.example",
    "# not a heading",
    "1. not a list",
    "- not a list either",
    "snake_case _emph_ __strong__ a_b_",
    "\u202etxt.exe\u202c and \x00\x07 control",
]


def shown(value: str) -> str:
    """What a reader should see for ``value``: one line, the word joiners taken out."""
    return flat(value).replace(WJ, "")


def assert_reads_as(md: str, expected: str) -> None:
    """``md`` shows ``expected`` and nothing GitHub would turn into a mention or an emoji."""
    seen = visible(md)
    assert seen.replace(WJ, "").strip() == expected.strip(), md
    assert not re.search(r"@[A-Za-z0-9]|:[A-Za-z0-9_+-]+:", seen), md


@pytest.mark.parametrize("value", HOSTILE)
def test_text_renders_literally(value: str) -> None:
    md = f"before {text(value)} after"
    assert elements(md) == {"p"}, md
    assert_reads_as(md, f"before {shown(value)} after")


@pytest.mark.parametrize("value", HOSTILE)
def test_text_in_a_table_cell_stays_in_its_cell(value: str) -> None:
    md = f"| a | b |\n|---|---|\n| {text(value)} | {code(value, cell=True)} |\n"
    walker = walk(md)
    assert walker.tags.count("td") == 2 and set(walker.tags) <= {
        "table",
        "thead",
        "tbody",
        "tr",
        "th",
        "td",
        "code",
    }


@pytest.mark.parametrize("value", HOSTILE)
def test_code_span_cannot_be_broken_out_of(value: str) -> None:
    md = f"x {code(value)} y"
    walker = walk(md)
    assert walker.tags == ["p", "code"], md
    assert visible(md) == f"x {flat(value)} y\n"


@pytest.mark.parametrize("value", HOSTILE)
def test_fence_cannot_be_closed_by_its_content(value: str) -> None:
    md = f"{fence(value + chr(10) + '```' + chr(10) + '# after')}\n\nend"
    walker = walk(md)
    assert walker.tags == ["pre", "code", "p"], md


@pytest.mark.parametrize("value", HOSTILE)
def test_details_summary_is_text(value: str) -> None:
    md = details(value, "body")
    walker = walk(md)
    assert walker.tags == ["details", "summary", "p"], md
    assert walker.comments == []
    assert "".join(walker.text).replace(WJ, "").startswith(shown(value))


def test_html_escapes_quotes_for_attributes() -> None:
    assert html("a\"b'<c>&") == "a&quot;b&#39;&lt;c&gt;&amp;"


def test_bullets() -> None:
    assert bullets([]) == "- (none)"
    assert bullets(["a", "b"]) == "- a\n- b"


def test_limits_cut_with_an_ellipsis() -> None:
    assert flat("a b  c\n d", limit=4) == "a b…"
    assert visible(text("x" * 50, limit=10)).strip() == "x" * 9 + "…"


def test_the_raw_text_never_holds_a_topic_marker() -> None:
    assert "<!--" not in text("<!-- infrabot:topic=plan -->")
    assert "<" not in html("<!-- infrabot:topic=plan -->")


@given(st.text(max_size=200))
def test_any_text_renders_as_itself(value: str) -> None:
    md = f"a {text(value)} z"
    assert elements(md) == {"p"}
    assert_reads_as(md, f"a {shown(value)} z")


@given(st.text(max_size=100))
def test_any_text_at_the_start_of_a_list_item_stays_in_it(value: str) -> None:
    md = f"- {text(value)}\n- z"
    walker = walk(md)
    assert walker.tags == ["ul", "li", "li"] if shown(value).strip() else True, md


@given(st.text(max_size=200))
def test_any_code_span_is_one_code_element(value: str) -> None:
    md = f"a {code(value)} z"
    assert walk(md).tags == ["p", "code"]


def test_bound_leaves_short_text_alone() -> None:
    assert bound("short", 100) == "short"


def test_bound_closes_a_fence_and_a_fold_it_cuts_through() -> None:
    body = (
        "### Summary\n\nall fine\n\n"
        + details("Diffs", fence("\n".join(f"+ line {i}" for i in range(5000)), "diff"))
        + "\n\n### What failed\n\n- **proxy1**: nginx reload failed\n"
    )
    cut = bound(body, 10_000)
    assert len(cut) <= 10_000
    assert cut.startswith("### Summary") and cut.endswith("nginx reload failed\n")
    walker = walk(cut)
    assert walker.headings == ["Summary", "What failed"]
    assert walker.tags.count("details") == walker.tags.count("summary") == 2
    assert "characters cut here" in visible(cut)


@given(st.text(alphabet="`~<>/detailsumry \n#x", max_size=6000), st.integers(10, 5000))
def test_bound_always_fits(body: str, limit: int) -> None:
    assert len(bound(body, limit)) <= limit
