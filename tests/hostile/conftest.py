"""Fixtures of the hostile suite: a throwaway copy of the repository (main committed), and the
``infrabot`` command run in it as a user would."""

from __future__ import annotations

from pathlib import Path

import pytest
from hostile_helpers import ROOT, Cli

from bot.cli import main
from bot.demo import make_copy


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "infra-repo"
    path.mkdir()
    make_copy(ROOT, path)
    monkeypatch.chdir(path)
    return path


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]) -> Cli:
    def run(*argv: str) -> tuple[int, str]:
        code = main(["-q", *argv])
        out, err = capsys.readouterr()
        return code, out + err

    return run
