"""The apply gate, attacked end to end through the ``infrabot`` command on a real local
estate: each test asserts what a user would check — main did not move, no marker file
appeared, the estate still serves what it served, no lock is left — not wording."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.cli import main
from bot.flow.verify import http_get
from bot.forge.local import LocalForge
from bot.ledger import EstateLock
from bot.localestate import netns_available

pytestmark = [pytest.mark.e2e, pytest.mark.integration]
ROOT = Path(__file__).resolve().parents[2]
needs_netns = pytest.mark.skipif(
    netns_available() is not None, reason=f"network namespaces: {netns_available()}"
)
API = (
    "Create a container on pve1 for the API scanner and make it accessible at "
    "api-scanner.example.com"
)
METRICS = (
    "Create a container on pve1 for the metrics gateway and make it accessible at "
    "metrics.example.com"
)


@pytest.fixture
def live(repo: Path, capsys: pytest.CaptureFixture[str]) -> Iterator[Path]:
    """The copy with its local estate up (and reconciled to main)."""
    if netns_available() is not None:
        pytest.skip(f"network namespaces: {netns_available()}")
    code, out = cli(capsys, "estate", "up")
    assert code == 0, out
    try:
        yield repo
    finally:
        cli(capsys, "estate", "down")


def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    code = main(["-q", *argv])
    out, err = capsys.readouterr()
    return code, out + err


def git(repo: Path, *args: str, who: str = "mallory") -> str:
    env = os.environ | {
        "GIT_AUTHOR_NAME": who,
        "GIT_AUTHOR_EMAIL": f"{who}@x",
        "GIT_COMMITTER_NAME": who,
        "GIT_COMMITTER_EMAIL": f"{who}@x",
    }
    done = subprocess.run(
        ["git", "-C", str(repo), *args], capture_output=True, text=True, env=env, check=True
    )
    return done.stdout.strip()


def open_issue(capsys: pytest.CaptureFixture[str], title: str, user: str = "alice") -> int:
    code, out = cli(capsys, "issue", "open", title, "--as", user, "--json")
    assert code == 0, out
    pr = json.loads(out[: out.rindex("}") + 1])["pr"]
    assert pr is not None, out
    return int(pr)


def pr_json(capsys: pytest.CaptureFixture[str], number: int) -> dict:  # type: ignore[type-arg]
    code, out = cli(capsys, "pr", "show", str(number), "--json")
    assert code == 0, out
    return json.loads(out)  # type: ignore[no-any-return]


def ports(capsys: pytest.CaptureFixture[str]) -> int:
    hosts = {
        h["name"]: h for h in json.loads(cli(capsys, "estate", "status", "--json")[1])["hosts"]
    }
    return int(next(s["port"] for s in hosts["proxy1"]["services"] if s["name"] == "nginx"))


def serves(port: int, domain: str) -> bool:
    return http_get("127.0.0.1", port, domain)[0] == 200


def push_evil_commit(repo: Path, branch: str, marker: Path) -> str:
    """Mallory pushes to the PR's branch: a play that runs on the controller, for real."""
    tree = repo.parent / "evil-wt"
    git(repo, "worktree", "add", "-q", str(tree), branch)
    site = tree / "infra/ansible/site.yml"
    site.write_text(
        "- hosts: localhost\n  gather_facts: false\n  tasks:\n"
        f"    - ansible.builtin.copy: {{dest: '{marker}', content: pwned}}\n"
        "      delegate_to: localhost\n      check_mode: false\n" + site.read_text()
    )
    git(tree, "commit", "-qam", "tweak")
    sha = git(tree, "rev-parse", "HEAD")
    git(repo, "worktree", "remove", "--force", str(tree))
    return sha


def open_intent(repo: Path, pr: int) -> bool:
    """An apply of ``pr`` has started and not ended (its intent has no outcome yet)."""
    for path in (repo / ".infrabot/intents").glob("*.json"):
        try:
            intent = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if intent["pr"] == pr and intent["outcome"] is None:
            return True
    return False


def no_lock(repo: Path) -> bool:
    return EstateLock(repo / ".infrabot/ledger.db").holder() is None


# -- 1. only the reviewed commit is merged ---------------------------------------------


@needs_netns
def test_a_commit_pushed_after_the_approval_never_lands(
    live: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    repo, marker = live, tmp_path / "marker"
    pr = open_issue(capsys, API)
    assert cli(capsys, "pr", "review", str(pr), "--approve", "--as", "bob")[0] == 0
    main_before = git(repo, "rev-parse", "main")
    branch = pr_json(capsys, pr)["pull_request"]["head_branch"]
    push_evil_commit(repo, branch, marker)

    for argv in (("pr", "merge", str(pr)), ("pr", "comment", str(pr), "/apply")):
        code, out = cli(capsys, *argv, "--as", "alice")
        assert code == 1, out
    assert git(repo, "rev-parse", "main") == main_before
    assert not marker.exists() and no_lock(repo)


@needs_netns
def test_a_push_while_the_merge_starts_is_not_merged(
    live: Path,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The race: the branch moves between the decision and the merge.  The forge merges
    the authorised commit or nothing."""
    repo, marker = live, tmp_path / "marker"
    pr = open_issue(capsys, API)
    assert cli(capsys, "pr", "review", str(pr), "--approve", "--as", "bob")[0] == 0
    branch = pr_json(capsys, pr)["pull_request"]["head_branch"]
    main_before = git(repo, "rev-parse", "main")
    real_merge = LocalForge.merge

    def racing_merge(self: LocalForge, number: int, expected: str, by: str) -> object:
        push_evil_commit(repo, branch, marker)
        return real_merge(self, number, expected, by)

    monkeypatch.setattr(LocalForge, "merge", racing_merge)
    code, out = cli(capsys, "pr", "merge", str(pr), "--as", "alice")
    assert code == 1, out
    assert git(repo, "rev-parse", "main") == main_before
    assert not marker.exists() and no_lock(repo)


# -- 2. who may approve ------------------------------------------------------------------


def test_read_only_self_and_requester_approvals_do_not_count(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pr = open_issue(capsys, API, user="bob")  # bob asked for it
    main_before = git(repo, "rev-parse", "main")
    assert cli(capsys, "pr", "review", str(pr), "--approve", "--as", "carol")[0] == 0  # read
    assert cli(capsys, "pr", "review", str(pr), "--approve", "--as", "bob")[0] == 0  # requester
    for who in ("alice", "bob"):
        code, out = cli(capsys, "pr", "merge", str(pr), "--as", who)
        assert code == 1 and "approval" in out, out
    assert git(repo, "rev-parse", "main") == main_before
    reasons = [e for e in pr_trajectory(capsys, 1) if e["step"] == "apply.refused"]
    assert len(reasons) == 2 and no_lock(repo)


def test_changes_requested_by_a_writer_blocks_until_dismissed(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pr = open_issue(capsys, API)  # alice asked
    assert cli(capsys, "pr", "review", str(pr), "--approve", "--as", "bob")[0] == 0
    assert cli(capsys, "pr", "review", str(pr), "--request-changes", "--as", "alice")[0] == 0
    code, out = cli(capsys, "pr", "comment", str(pr), "/apply", "--as", "bob")
    assert code == 1 and "requested changes" in out
    assert cli(capsys, "pr", "review", str(pr), "--dismiss", "alice", "--as", "carol")[0] == 2
    assert cli(capsys, "pr", "review", str(pr), "--dismiss", "alice", "--as", "bob")[0] == 0
    code, out = cli(capsys, "pr", "comment", str(pr), "/apply", "--as", "bob")
    assert "requested changes" not in out  # (the estate is down: refused for that only)
    assert "not running" in out


def pr_trajectory(capsys: pytest.CaptureFixture[str], issue: int) -> list[dict]:  # type: ignore[type-arg]
    return json.loads(cli(capsys, "issue", "show", str(issue), "--json")[1])["trajectory"]  # type: ignore[no-any-return]


# -- 3. fresh against the base -----------------------------------------------------------


@needs_netns
def test_two_prs_from_the_same_main_never_leave_main_invalid_or_roll_back(
    live: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = live
    first, second = open_issue(capsys, API), open_issue(capsys, METRICS)
    for pr in (first, second):
        assert cli(capsys, "pr", "review", str(pr), "--approve", "--as", "bob")[0] == 0
    code, out = cli(capsys, "pr", "merge", str(first), "--as", "alice")
    assert code == 0, out
    port = ports(capsys)
    assert serves(port, "api-scanner.example.com")
    after_first = git(repo, "rev-parse", "main")

    # The second was checked against the old main: applying it now would roll the first
    # back (and both drafted the same vmid and address).
    for argv in (("pr", "comment", str(second), "/apply"), ("pr", "merge", str(second))):
        code, out = cli(capsys, *argv, "--as", "alice")
        assert code == 1 and "moved since this PR was checked" in out, out
    assert git(repo, "rev-parse", "main") == after_first
    assert serves(port, "api-scanner.example.com")

    # /plan re-drafts it on the new main; after a fresh approval it applies without
    # touching the first change, and main stays valid.
    code, out = cli(capsys, "pr", "comment", str(second), "/plan", "--as", "bob")
    assert code == 0, out
    assert cli(capsys, "pr", "review", str(second), "--approve", "--as", "bob")[0] == 0
    code, out = cli(capsys, "pr", "comment", str(second), "/apply", "--as", "alice")
    assert code == 0, out
    assert serves(port, "api-scanner.example.com") and serves(port, "metrics.example.com")
    code, out = cli(capsys, "pr", "merge", str(second), "--as", "alice")
    assert code == 0, out
    assert cli(capsys, "validate")[0] == 0
    assert serves(port, "api-scanner.example.com") and serves(port, "metrics.example.com")
    assert no_lock(repo)


# -- 4. locks that protect ---------------------------------------------------------------


def test_unlock_never_breaks_a_running_apply(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pr = open_issue(capsys, API)
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from pathlib import Path; from bot.ledger import EstateLock\n"
            "with EstateLock(Path(sys.argv[1])).held(99):\n"
            "    print('held', flush=True); time.sleep(60)\n",
            str(repo / ".infrabot/ledger.db"),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        code, out = cli(capsys, "pr", "comment", str(pr), "/unlock", "--as", "carol")
        assert code == 1 and "write" in out
        code, out = cli(capsys, "pr", "comment", str(pr), "/unlock", "--as", "bob")
        assert code == 1 and "running" in out
        held = EstateLock(repo / ".infrabot/ledger.db").holder()
        assert held is not None and held.holder == 99
    finally:
        holder.kill()
        holder.wait()
    code, out = cli(capsys, "pr", "comment", str(pr), "/unlock", "--as", "bob")
    assert code == 0 and "Released" in out, out
    steps = [e["step"] for e in pr_trajectory(capsys, 1)]
    assert "lock.kept" in steps and "lock.released" in steps


# -- 5. interrupted applies --------------------------------------------------------------


@needs_netns
def test_a_killed_apply_is_reported_and_reconciled(
    live: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = live
    pr = open_issue(capsys, API)
    assert cli(capsys, "pr", "review", str(pr), "--approve", "--as", "bob")[0] == 0
    merge = subprocess.Popen(
        [sys.executable, "-m", "bot.cli", "-q", "pr", "merge", str(pr), "--as", "alice"],
        cwd=repo,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.monotonic() + 120
    while not open_intent(repo, pr):
        assert merge.poll() is None, "the merge ended before its apply started"
        assert time.monotonic() < deadline
        time.sleep(0.05)
    os.killpg(merge.pid, signal.SIGKILL)  # the machine dies: bot and ansible alike
    merge.wait()

    # Any command finds it: the PR and the issue are told, the hosts are unknown, no lock.
    shown = pr_json(capsys, pr)
    assert shown["pull_request"]["state"] == "merged"
    assert any("was interrupted" in c["body"] for c in shown["comments"])
    issue = json.loads(cli(capsys, "issue", "show", "1", "--json")[1])
    assert any("was interrupted" in c["body"] for c in issue["comments"])
    assert "apply.interrupted" in [e["step"] for e in issue["trajectory"]]
    assert no_lock(repo)
    unknown = json.loads((repo / ".infrabot/runs/unknown-hosts.json").read_text())
    assert "pve1" in unknown

    # reconcile brings the estate to main, with evidence on a ticket of its own.
    code, out = cli(capsys, "reconcile", "--as", "alice")
    assert code == 0, out
    assert serves(ports(capsys), "api-scanner.example.com")
    assert json.loads((repo / ".infrabot/runs/unknown-hosts.json").read_text()) == []
    code, out = cli(capsys, "reconcile", "--dry-run", "--as", "alice", "--json")
    assert code == 0 and json.loads(out)["check"]["status"] == "successful"
    assert not [t for t in json.loads(out)["check"]["tasks"] if t["status"] == "changed"]


# -- a merge that bypassed the gate ------------------------------------------------------


def test_a_merge_that_bypassed_the_gate_applies_nothing(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Someone merges the branch with git, not through the gate (on GitHub: an admin).
    The bot's reaction to the merge applies nothing and asks a human."""
    from bot.flow.dispatch import apply_merged
    from bot.wiring import open_services

    pr = open_issue(capsys, API)
    branch = pr_json(capsys, pr)["pull_request"]["head_branch"]
    push_evil_commit(repo, branch, repo.parent / "marker")
    git(repo, "merge", "--no-ff", "-qm", "admin merge", branch, who="admin")
    svc = open_services(repo, lambda _: None)
    merged = svc.forge.mark_merged(pr, git(repo, "rev-parse", "main"), "admin")
    outcome = apply_merged(svc, merged, "admin")
    assert not outcome.ok and "not applied" in outcome.message
    assert not (repo / ".infrabot/estate").exists()
    assert not (repo.parent / "marker").exists()
    titles = [i.title for i in svc.forge.list_issues("open")]
    assert any("without passing the gate" in t for t in titles)
