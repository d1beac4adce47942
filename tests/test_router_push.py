"""Which event applies a merge (ADR 0015), decided before anything is applied: a push to
another branch and GitHub's merged ``pull_request`` change nothing; a direct push to the
base branch is never applied and is said once.  (The applying path runs end to end in
``test_e2e_github*.py``.)"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from bot.events import Actor, PullRequestMerged, Pushed
from bot.router import handle
from bot.wiring import conversation, open_services

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.e2e
ALICE = Actor(login="alice")


def _push(branch: str, after: str, delivery: str = "d1") -> Pushed:
    return Pushed(
        source="webhook",
        delivery=delivery,
        sender=ALICE,
        branch=branch,
        before="0" * 40,
        after=after,
    )


def test_a_push_elsewhere_and_githubs_merged_event_apply_nothing(repo: Path) -> None:
    svc = open_services(repo, lambda _m: None)
    sha = svc.git.sha("main")
    outcome = handle(svc, _push("feature", sha))
    assert outcome.ok and outcome.message == "a push to feature: only merges into main are applied"
    merged = PullRequestMerged(
        source="webhook",
        delivery="d2",
        sender=ALICE,
        number=7,
        author=ALICE,
        head_branch="f",
        head_sha="a" * 40,
        base_branch="main",
        base_sha="b" * 40,
        merge_sha=sha,
        merged_by=ALICE,
        fork=False,
    )
    outcome = handle(svc, merged)  # #7 does not even exist: nothing is read
    assert outcome.ok and outcome.message.endswith("the push to main applies it, not this event")
    assert svc.forge.statuses(sha) == []


def test_a_direct_push_to_main_is_never_applied_and_said_once(repo: Path) -> None:
    git = ["git", "-c", "user.name=a", "-c", "user.email=a@example.com", "-C", str(repo)]
    subprocess.run([*git, "commit", "-q", "--allow-empty", "-m", "direct"], check=True)
    svc = open_services(repo, lambda _m: None)
    sha = svc.git.sha("main")
    first = handle(svc, _push("main", sha))
    assert not first.ok and "pushed to main directly: not applied" in first.message
    (status,) = svc.forge.statuses(sha)
    assert (status.context, status.state) == ("infrabot/apply", "error")
    again = handle(svc, _push("main", sha, delivery="d2"))
    assert again.ok and again.message.endswith("was already handled")
    tickets = [i for i in conversation(svc).list_issues("open") if sha[:7] in i.title]
    assert len(tickets) == 1 and tickets[0].labels == ("needs-human",)
    assert svc.records.applied() is None
