"""Render markdown as GitHub does (cmarkgfm, GitHub's fork of cmark) and look at the result.

Test helper: ``render`` gives the HTML, ``elements`` the tags in it, ``visible`` the text a
reader sees, ``headings`` the heading texts.  Raw HTML is rendered *unsafely* (kept), so a
tag that got through shows up here even though GitHub's sanitiser might drop some.
"""

from __future__ import annotations

from html.parser import HTMLParser

import cmarkgfm
from cmarkgfm.cmark import Options

_OPTIONS = Options.CMARK_OPT_UNSAFE | Options.CMARK_OPT_GITHUB_PRE_LANG


# The only elements the bot's own markdown makes; anything else was injected.
ALLOWED = {
    "h3",
    "h4",
    "p",
    "strong",
    "em",
    "code",
    "pre",
    "ul",
    "ol",
    "li",
    "input",
    "table",
    "thead",
    "tbody",
    "tr",
    "th",
    "td",
    "details",
    "summary",
    "hr",
}


def render(markdown: str) -> str:
    return cmarkgfm.github_flavored_markdown_to_html(markdown, options=_OPTIONS)


class _Walker(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[str] = []
        self.comments: list[str] = []
        self.text: list[str] = []
        self.headings: list[str] = []
        self.links: list[str] = []
        self._heading: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        if tag == "a":
            self.links.append(dict(attrs).get("href") or "")
        if tag in ("h1", "h2", "h3", "h4", "h5", "h6"):
            self._heading = []

    def handle_endtag(self, tag: str) -> None:
        if tag in ("h1", "h2", "h3", "h4", "h5", "h6") and self._heading is not None:
            self.headings.append("".join(self._heading).strip())
            self._heading = None

    def handle_data(self, data: str) -> None:
        self.text.append(data)
        if self._heading is not None:
            self._heading.append(data)

    def handle_comment(self, data: str) -> None:
        self.comments.append(data)


def walk(markdown: str) -> _Walker:
    walker = _Walker()
    walker.feed(render(markdown))
    walker.close()
    return walker


def elements(markdown: str) -> set[str]:
    return set(walk(markdown).tags)


def visible(markdown: str) -> str:
    return "".join(walk(markdown).text)


def headings(markdown: str) -> list[str]:
    return walk(markdown).headings
