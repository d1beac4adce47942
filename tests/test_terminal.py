"""The bot's markdown as the terminal shows it: rendered, folds as headed sections, no
escapes or entities, and no control characters from anyone's text."""

from __future__ import annotations

from test_flow_render import plan

from bot.flow.render import render_plan
from bot.markdown import details, fence, text
from bot.terminal import markdown, safe


def test_escapes_entities_and_folds_are_rendered() -> None:
    md = f"### Title {text('a <b> & c_d *e*')}\n\n" + details("Diffs <x>", fence("+ line"))
    shown = markdown(md, width=80)
    assert "Title a <b> & c_d *e*" in shown
    assert "▸ Diffs <x>" in shown and "+ line" in shown
    assert "<details>" not in shown and "&lt;" not in shown and "\\" not in shown


def test_a_plan_reads_as_text() -> None:
    shown = markdown(render_plan(plan()), width=120)
    assert "schemas/<Kind>.schema.json" in shown
    assert "▸ How I planned this" in shown and "Acceptance criteria" in shown


def test_control_characters_never_reach_the_terminal() -> None:
    hostile = "title \x1b]0;pwned\x07 \x1b[31mred\x1b[0m"
    assert "\x1b" not in safe(hostile) and "\x07" not in safe(hostile)
    assert "\x1b" not in markdown(hostile)
    assert "\x1b[" in markdown("**bold**", color=True)  # colour is the renderer's, on request
