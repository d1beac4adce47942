"""The bot's markdown as a terminal shows it (``pr show``, ``issue show``, ``pr merge``).

GitHub renders the comments; a terminal would show their raw markdown (escapes, entities,
``<details>``), so they are rendered here with rich.  rich drops raw HTML, so a fold
becomes a bold "▸ summary" line above its content.  Other people's text can carry
terminal escape sequences: control characters are replaced before anything is printed.
"""

from __future__ import annotations

import html
import io
import re
import shutil

from bot.markdown import text

_FOLD = re.compile(r"<details[^>]*>\s*<summary>(.*?)</summary>", re.S | re.I)
_FOLD_END = re.compile(r"</details\s*>", re.I)
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def safe(value: str) -> str:
    """``value`` without control characters (no escape sequence reaches the terminal)."""
    return _CONTROL.sub("?", value.replace("\r\n", "\n"))


def markdown(md: str, *, color: bool = False, width: int | None = None) -> str:
    """``md`` rendered for a terminal, as plain text (or with ANSI colour when ``color``)."""
    from rich.console import Console  # imported here: only the commands that show use it
    from rich.markdown import Markdown

    md = _FOLD.sub(lambda m: f"\n**▸ {text(html.unescape(m.group(1)))}**\n", safe(md))
    md = _FOLD_END.sub("", md)
    buffer = io.StringIO()
    console = Console(
        file=buffer,
        force_terminal=color,
        no_color=not color,
        width=width or min(shutil.get_terminal_size((100, 24)).columns, 120),
        highlight=False,
    )
    console.print(Markdown(md, hyperlinks=False))
    return "\n".join(line.rstrip() for line in buffer.getvalue().splitlines()).strip("\n")
