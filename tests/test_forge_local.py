"""What only the local forge does: SQLite on disk, several processes, git refs, bad files."""

from __future__ import annotations

import multiprocessing
import sqlite3
from pathlib import Path

import git
import pytest

from bot.errors import InfrabotError, InputError
from bot.forge.base import BOT_LOGIN
from bot.forge.local import LocalForge

USERS = {"alice": "admin", "bob": "write", "carol": "read"}


@pytest.fixture
def repo(tmp_path: Path) -> git.Repo:
    repo = git.Repo.init(tmp_path / "repo", initial_branch="main")
    actor = git.Actor("t", "t@example.com")
    repo.index.commit("root", author=actor, committer=actor)
    repo.create_head("feature")
    return repo


def _forge(tmp_path: Path) -> LocalForge:
    return LocalForge(tmp_path / ".infrabot" / "forge.db", USERS, tmp_path / "repo")


@pytest.mark.integration
def test_state_survives_a_new_forge_on_the_same_file(tmp_path: Path, repo: git.Repo) -> None:
    first = _forge(tmp_path)
    issue = first.create_issue("Add a site", "body", "alice", labels=["infra"])
    first.ensure_comment(issue.number, "plan", "the plan")
    again = _forge(tmp_path)
    assert again.issue(issue.number).labels == ("infra",)
    assert [c.body for c in again.comments(issue.number)] == ["the plan"]
    with sqlite3.connect(tmp_path / ".infrabot" / "forge.db") as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("SELECT version FROM schema_version").fetchall() == [(1,)]


def test_unknown_users_are_refused_with_the_known_ones_named(tmp_path: Path) -> None:
    forge = _forge(tmp_path)
    with pytest.raises(InputError, match=r"unknown user 'mallory'; known users: alice, bob, carol"):
        forge.create_issue("t", "b", "mallory")
    issue = forge.create_issue("t", "b", "carol")
    with pytest.raises(InputError, match="unknown user 'mallory'"):
        forge.add_comment(issue.number, "hi", "mallory")


@pytest.mark.integration
def test_a_pull_request_needs_its_branch_in_the_repository(tmp_path: Path, repo: git.Repo) -> None:
    forge = _forge(tmp_path)
    with pytest.raises(InputError, match=r"no branch 'nope' in the git repository"):
        forge.open_pull_request(
            branch="nope", base="main", title="t", body="", issue=None, author=BOT_LOGIN
        )
    with pytest.raises(InputError, match=r"no branch '../../config'"):
        forge.open_pull_request(
            branch="../../config", base="main", title="t", body="", issue=None, author=BOT_LOGIN
        )
    assert forge.list_pull_requests() == []


@pytest.mark.integration
def test_head_and_base_are_the_branch_tips(tmp_path: Path, repo: git.Repo) -> None:
    forge = _forge(tmp_path)
    pr = forge.open_pull_request(
        branch="feature", base="main", title="t", body="", issue=None, author=BOT_LOGIN
    )
    assert pr.head_sha == repo.heads.feature.commit.hexsha
    assert pr.base_sha == repo.heads.main.commit.hexsha
    repo.git.pack_refs("--all")  # tips read from packed-refs as well as loose refs
    assert forge.pull_request(pr.number).head_sha == repo.heads.feature.commit.hexsha


@pytest.mark.integration
def test_refresh_head_sets_the_shas_of_a_branch_git_no_longer_has(
    tmp_path: Path, repo: git.Repo
) -> None:
    forge = _forge(tmp_path)
    pr = forge.open_pull_request(
        branch="feature", base="main", title="t", body="", issue=None, author=BOT_LOGIN
    )
    repo.delete_head("feature", force=True)
    forge.refresh_head(pr.number, "a" * 40, "b" * 40)
    got = forge.pull_request(pr.number)
    assert got.head_sha == "a" * 40  # kept: git has no branch to follow any more
    assert got.base_sha == repo.heads.main.commit.hexsha  # main still exists: followed


def test_a_newer_schema_is_refused_with_one_clear_line(tmp_path: Path) -> None:
    _forge(tmp_path).create_issue("t", "b", "alice")
    with sqlite3.connect(tmp_path / ".infrabot" / "forge.db") as conn:
        conn.execute("UPDATE schema_version SET version = 7")
    with pytest.raises(InfrabotError, match="has schema version 7; this infrabot knows version 1"):
        _forge(tmp_path).issue(1)


def test_a_file_that_is_not_a_database_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / ".infrabot").mkdir()
    (tmp_path / ".infrabot" / "forge.db").write_text("not sqlite at all " * 100)
    with pytest.raises(InfrabotError, match=r"forge database .*forge\.db"):
        _forge(tmp_path).issue(1)


def _ensure_many(root: str, number: int, worker: int) -> None:
    forge = _forge(Path(root))
    for i in range(10):
        forge.ensure_comment(number, "status", f"worker {worker} round {i}")


def test_concurrent_ensure_comment_leaves_one_comment(tmp_path: Path) -> None:
    issue = _forge(tmp_path).create_issue("t", "b", "alice")
    ctx = multiprocessing.get_context("fork")
    procs = [
        ctx.Process(target=_ensure_many, args=(str(tmp_path), issue.number, w)) for w in range(6)
    ]
    for p in procs:
        p.start()
    for p in procs:
        p.join(30)
    assert [p.exitcode for p in procs] == [0] * 6
    comments = _forge(tmp_path).comments(issue.number)
    assert len(comments) == 1
    assert comments[0].body.endswith("round 9")
