"""Shared fixtures: throwaway copies of the repository's seed content."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from hypothesis import settings

from bot.demo import make_copy

ROOT = Path(__file__).resolve().parent.parent
SEED = ("infra", "capabilities", "schemas", "runbooks", "infrabot.yaml", ".yamllint")

# No wall-clock limit on a property test's example (hypothesis' default is 200 ms): the
# suite runs in parallel on a shared machine and under mutmut's trampolines, where a slow
# example is the machine, not the code (COMMON rule: no wall-clock limits in tests).
settings.register_profile("infrabot", deadline=None)
settings.load_profile("infrabot")


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


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Under pytest-xdist (``--dist loadgroup``, pyproject.toml) tests go to the workers one by
    one; the tests of a file that share a module-scoped fixture (a server, a dry-run) are kept
    on one worker, so that fixture is built once (docs/adr/0024-the-suite-in-parallel.md)."""
    for item in items:
        info = getattr(item, "_fixtureinfo", None)
        defs = getattr(info, "name2fixturedefs", {}) if info is not None else {}
        shared = any(d.scope in ("module", "package", "class") for ds in defs.values() for d in ds)
        if shared and item.get_closest_marker("xdist_group") is None:
            item.add_marker(pytest.mark.xdist_group(item.nodeid.split("::", 1)[0]))
