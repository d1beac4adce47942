"""``infrabot doctor``: check a setup and say what to fix (see ``checks.py``)."""

from bot.doctor.checks import Line, Setup, diagnose, needs_fixing, render_lines
from bot.doctor.probe import examine

__all__ = ["Line", "Setup", "diagnose", "examine", "needs_fixing", "render_lines"]
