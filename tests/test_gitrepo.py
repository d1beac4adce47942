"""The git edge: branch work never touches the checkout; a merge that cannot happen
leaves the checkout as it was."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from bot.errors import InfrabotError
from bot.gitrepo import GitRepo

pytestmark = pytest.mark.integration


def git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@t", *args],
        capture_output=True,
        text=True,
        check=True,
    ).stdout


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    path = tmp_path / "r"
    path.mkdir()
    subprocess.run(["git", "init", "-q", "-b", "main", str(path)], check=True)
    (path / "a.txt").write_text("one\n")
    git(path, "add", "-A")
    git(path, "commit", "-q", "-m", "seed")
    return path


def edit(text: str):  # type: ignore[no-untyped-def]
    def write(tree: Path) -> list[str]:
        (tree / "a.txt").write_text(text)
        return ["a.txt"]

    return write


def test_a_branch_commit_leaves_the_checkout_alone(repo: Path, tmp_path: Path) -> None:
    g = GitRepo(repo)
    sha = g.commit_on_branch("b", "main", edit("two\n"), "change", "bot", tmp_path / "s")
    assert sha and g.sha("b") == sha
    assert (repo / "a.txt").read_text() == "one\n"
    assert g.changed_files("main", "b") == ["a.txt"]
    assert g.commit_on_branch("c", "main", edit("one\n"), "none", "bot", tmp_path / "s") is None
    assert not g.branch_exists("c")


def test_a_failing_edit_leaves_no_branch(repo: Path, tmp_path: Path) -> None:
    def boom(tree: Path) -> list[str]:
        raise InfrabotError("bad draft")

    g = GitRepo(repo)
    with pytest.raises(InfrabotError):
        g.commit_on_branch("b", "main", boom, "x", "bot", tmp_path / "s")
    assert not g.branch_exists("b")
    assert "wt-" not in git(repo, "worktree", "list")


def test_a_conflicting_merge_is_aborted_cleanly(repo: Path, tmp_path: Path) -> None:
    g = GitRepo(repo)
    g.commit_on_branch("b", "main", edit("two\n"), "change", "bot", tmp_path / "s")
    (repo / "a.txt").write_text("three\n")
    git(repo, "commit", "-q", "-am", "conflicting")
    head = g.sha("main")
    with pytest.raises(InfrabotError, match="does not merge cleanly"):
        g.merge("b", "main", "merge", "alice")
    assert g.sha("main") == head and not git(repo, "status", "--porcelain")


def test_merge_refuses_a_dirty_checkout(repo: Path, tmp_path: Path) -> None:
    g = GitRepo(repo)
    g.commit_on_branch("b", "main", edit("two\n"), "change", "bot", tmp_path / "s")
    (repo / "a.txt").write_text("local edit\n")
    with pytest.raises(InfrabotError, match="uncommitted changes"):
        g.merge("b", "main", "merge", "alice")
    assert (repo / "a.txt").read_text() == "local edit\n"
