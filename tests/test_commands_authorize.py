"""Who may /apply or merge, and when: every requirement, alone and all together."""

from __future__ import annotations

from typing import Any

import pytest

from bot.commands import ApplyContext, Refusal, authorize_apply
from bot.commands.authorize import CheckFacts, Vote
from bot.forge.base import Permission

HEAD = "def5678aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
OLD = "abc1234bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
BASE = "0001111cccccccccccccccccccccccccccccccccc"
MOVED = "9998888dddddddddddddddddddddddddddddddddd"

W, R, A, N = Permission.WRITE, Permission.READ, Permission.ADMIN, Permission.NONE


def vote(who: str, state: str = "approved", sha: str = HEAD, perm: Permission = W) -> Vote:
    return Vote(reviewer=who, state=state, commit_sha=sha, permission=perm)  # type: ignore[arg-type]


def facts(**changes: Any) -> CheckFacts:
    data = {"head_sha": HEAD, "base_sha": BASE, "validation_ok": True, "dry_run_ok": True}
    return CheckFacts(**{**data, **changes})


GOOD: dict[str, Any] = {
    "commenter": "bob",
    "permission": W,
    "pr_author": "infrabot",
    "requester": "dave",
    "votes": (vote("alice"),),
    "approvals_required": 1,
    "head_sha": HEAD,
    "base_sha": BASE,
    "check": facts(),
    "lock_holder": None,
    "pr_number": 7,
    "freeze": None,
    "pr_state": "open",
}


def ctx(**changes: Any) -> ApplyContext:
    return ApplyContext(**{**GOOD, **changes})


ALLOWED = [
    {},
    {"permission": A},
    {"lock_holder": 7},
    {"commenter": "infrabot", "pr_author": "bob", "requester": None},
    {"votes": (vote("alice"), vote("carol", perm=A)), "approvals_required": 2},
    {"approvals_required": 0},
    # the requester may approve when the policy switch is off
    {"votes": (vote("dave"),), "requester_is_author": False},
    # a read-only user's "changes requested" does not block
    {"votes": (vote("alice"), vote("carol", "changes_requested", perm=R))},
    # a dismissed "changes requested" no longer blocks
    {"votes": (vote("alice"), vote("erin", "dismissed"))},
    # the PR author requesting changes on their own PR cannot block (and cannot happen)
    {"pr_author": "bob", "requester": None, "votes": (vote("alice"),)},
    # a fork's pull request is merged by a maintainer (then applied), never by command
    {"fork": True, "action": "merge"},
]


@pytest.mark.parametrize("changes", ALLOWED)
def test_allowed(changes: dict[str, Any]) -> None:
    assert authorize_apply(ctx(**changes)) is None


APPROVE = "ask a reviewer to approve the current head"
OTHERS = "by someone with write permission other than @dave or @infrabot"
REFUSED: list[tuple[dict[str, Any], str]] = [
    (
        {"commenter": "carol", "permission": R},
        "@carol has read permission; /apply needs write. Ask a maintainer.",
    ),
    (
        {"commenter": "mallory", "permission": N, "action": "merge"},
        "@mallory has no permission; merge needs write. Ask a maintainer.",
    ),
    ({"votes": ()}, f"needs 1 approval of the head def5678 {OTHERS}: {APPROVE}"),
    (
        {"votes": (vote("carol", perm=R),)},
        f"needs 1 approval of the head def5678 {OTHERS} (not counted: @carol has read "
        f"permission): {APPROVE}",
    ),
    (
        {"votes": (vote("mallory", perm=N), vote("carol", perm=R))},
        f"needs 1 approval of the head def5678 {OTHERS} (not counted: @mallory has no "
        f"permission; @carol has read permission): {APPROVE}",
    ),
    (
        {
            "votes": (
                vote("alice"),
                vote("erin", "changes_requested"),
                vote("bob", "changes_requested"),
            )
        },
        "@bob, @erin requested changes: this blocks until they approve the head or the review "
        "is dismissed",
    ),
    (
        {"votes": (vote("dave"),)},
        f"needs 1 approval of the head def5678 {OTHERS} (not counted: @dave is who asked "
        f"for the change): {APPROVE}",
    ),
    (
        {"pr_author": "bob", "requester": None, "votes": (vote("bob"),)},
        "needs 1 approval of the head def5678 by someone with write permission other than "
        f"@bob (not counted: @bob is the author): {APPROVE}",
    ),
    (
        {"votes": (vote("alice", sha=OLD),)},
        f"needs 1 approval of the head def5678 {OTHERS} (not counted: @alice approved "
        f"abc1234, not the head): {APPROVE}",
    ),
    (
        {"approvals_required": 3},
        f"needs 2 more approvals of the head def5678 {OTHERS}: {APPROVE}",
    ),
    (
        {"approvals_required": 0, "votes": ()},
        f"needs 1 approval of the head def5678 {OTHERS}: {APPROVE}",
    ),
    (
        {"votes": (vote("alice"), vote("dave", "changes_requested"))},
        "@dave requested changes: this blocks until they approve the head or the review is "
        "dismissed",
    ),
    (
        {"votes": (vote("alice"), vote("erin", "changes_requested", sha=OLD))},
        "@erin requested changes: this blocks until they approve the head or the review is "
        "dismissed",
    ),
    ({"check": None}, "the head def5678 has not been checked yet: comment /plan"),
    (
        {"check": facts(head_sha=OLD)},
        "the head def5678 has not been checked yet: comment /plan",
    ),
    (
        {"base_sha": MOVED},
        "main moved since this PR was checked (checked against 0001111, main is now "
        "9998888): comment /plan",
    ),
    (
        {"check": facts(mergeable=False)},
        "the head def5678 does not merge cleanly into main: rebase the branch, push, and "
        "comment /plan",
    ),
    (
        {"check": facts(validation_ok=False)},
        "validation is failing on def5678: fix the findings listed on the pull request, "
        "push, and comment /plan",
    ),
    (
        {"check": facts(dry_run_ok=False)},
        "the dry-run of def5678 failed: fix the change, push, and comment /plan",
    ),
    ({"lock_holder": 3}, "the estate lock is held by PR #3: wait for it to finish"),
    ({"lock_holder": 0}, "the estate lock is held by a reconcile: wait for it to finish"),
    (
        {"freeze": "release week until Friday"},
        "a change freeze is active (release week until Friday): wait until it ends",
    ),
    (
        {"fork": True},
        "pull request #7 comes from a fork: a fork's pull request is never applied by "
        "command; a maintainer reviews it and merges it, and the merge is applied",
    ),
    (
        {"fork": True, "permission": A, "commenter": "alice"},
        "pull request #7 comes from a fork: a fork's pull request is never applied by "
        "command; a maintainer reviews it and merges it, and the merge is applied",
    ),
    (
        {"pr_state": "merged"},
        "pull request #7 is merged: only an open pull request can be applied; "
        "open a new one for further changes",
    ),
]


@pytest.mark.parametrize(("changes", "reason"), REFUSED)
def test_each_requirement(changes: dict[str, Any], reason: str) -> None:
    assert authorize_apply(ctx(**changes)) == Refusal(reasons=(reason,))


def test_every_missing_requirement_is_reported_at_once() -> None:
    refusal = authorize_apply(
        ctx(
            pr_state="closed",
            permission=R,
            votes=(vote("dave"), vote("erin", "changes_requested")),
            check=facts(validation_ok=False),
            lock_holder=3,
            freeze="holidays",
        )
    )
    assert refusal is not None
    topics = ["is closed", "permission", "approval", "requested changes", "validation", "lock"]
    topics.append("freeze")
    assert len(refusal.reasons) == len(topics)
    for reason, topic in zip(refusal.reasons, topics, strict=True):
        assert topic in reason


def test_an_approval_counts_only_with_write_permission_now() -> None:
    """Permission is judged when the gate is checked: a reviewer demoted since counts not."""
    demoted = ctx(votes=(vote("alice", perm=R),))
    assert authorize_apply(demoted) is not None
    assert authorize_apply(ctx(votes=(vote("alice", perm=A),))) is None
