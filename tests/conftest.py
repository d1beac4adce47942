"""Shared fixtures: throwaway copies of the repository's seed content."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from bot.demo import make_copy

ROOT = Path(__file__).resolve().parent.parent
SEED = ("infra", "capabilities", "schemas", "runbooks", "infrabot.yaml", ".yamllint")


def copy_seed(dest: Path) -> Path:
    for name in SEED:
        src = ROOT / name
        if src.is_dir():
            shutil.copytree(src, dest / name, ignore=shutil.ignore_patterns("__pycache__"))
        elif src.exists():
            shutil.copy2(src, dest / name)
    return dest


@pytest.fixture
def seed_tree(tmp_path: Path) -> Path:
    """The seed desired state, schemas and capabilities in a tmp dir (no git)."""
    return copy_seed(tmp_path / "repo")


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A git repository made from the project's seed content (``infrabot init``'s copy), and
    the working directory for the test, as a user's checkout would be."""
    path = tmp_path / "infra-repo"
    path.mkdir()
    make_copy(ROOT, path)
    monkeypatch.chdir(path)
    return path
