"""Fixtures of the hostile suite: a throwaway copy of the repository (main committed), and the
``infrabot`` command run in it as a user would."""

from __future__ import annotations

import pytest
from hostile_helpers import Cli

from bot.cli import main


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]) -> Cli:
    def run(*argv: str) -> tuple[int, str]:
        code = main(["-q", *argv])
        out, err = capsys.readouterr()
        return code, out + err

    return run
