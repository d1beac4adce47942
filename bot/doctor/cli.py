"""``infrabot doctor [--serve] [--json]``: thin; examine, diagnose, print."""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

from bot.cli import emit
from bot.doctor.checks import diagnose, needs_fixing, render_lines
from bot.doctor.probe import examine
from bot.execute.redact import redact


def add_doctor_command(top: Any) -> None:
    """Register ``doctor`` on ``infrabot``'s subparsers (``top``)."""
    p = top.add_parser(
        "doctor",
        help="check the setup (config, credentials, permissions, workflows, branch "
        "protection) and say what to fix",
    )
    p.add_argument(
        "--serve",
        action="store_true",
        help="check for infrabot serve (webhook secret; no workflows) instead of Actions",
    )
    p.add_argument("--json", action="store_true", help="print machine-readable JSON")
    p.set_defaults(handler=doctor)


def doctor(args: argparse.Namespace) -> int:
    root = args.repo or Path.cwd()
    setup = examine(root, "serve" if args.serve else "actions", os.environ)
    lines = diagnose(setup)
    emit(args, {"ok": not needs_fixing(lines), "checks": lines}, redact(render_lines(lines)))
    return 1 if needs_fixing(lines) else 0
