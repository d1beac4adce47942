"""Who may /apply, and when: every requirement, alone and all together."""

from __future__ import annotations

from typing import Any

import pytest

from bot.commands import ApplyContext, Refusal, authorize_apply
from bot.forge.base import Permission

HEAD = "def5678aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
OLD = "abc1234bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"

GOOD: dict[str, Any] = {
    "commenter": "bob",
    "permission": Permission.WRITE,
    "pr_author": "infrabot",
    "approvals": ("alice",),
    "approvals_required": 1,
    "validation_ok": True,
    "dry_run_sha": HEAD,
    "head_sha": HEAD,
    "lock_holder": None,
    "pr_number": 7,
    "freeze": None,
    "pr_state": "open",
}


def ctx(**changes: Any) -> ApplyContext:
    return ApplyContext(**{**GOOD, **changes})


ALLOWED = [
    {},
    {"permission": Permission.ADMIN},
    {"lock_holder": 7},
    {"commenter": "infrabot", "pr_author": "bob", "approvals": ("alice",)},
    {"approvals": ("alice", "carol"), "approvals_required": 2},
    {"approvals_required": 0, "approvals": ("alice",)},
]


@pytest.mark.parametrize("changes", ALLOWED)
def test_allowed(changes: dict[str, Any]) -> None:
    assert authorize_apply(ctx(**changes)) is None


REFUSED: list[tuple[dict[str, Any], str]] = [
    (
        {"commenter": "carol", "permission": Permission.READ},
        "@carol has read permission; /apply needs write. Ask a maintainer.",
    ),
    (
        {"commenter": "mallory", "permission": Permission.NONE},
        "@mallory has no permission; /apply needs write. Ask a maintainer.",
    ),
    (
        {"approvals": ()},
        "needs 1 approval on the head def5678 from someone other than @infrabot: "
        "ask a reviewer to approve the current head",
    ),
    (
        {"pr_author": "bob", "approvals": ("bob",)},
        "needs 1 approval on the head def5678 from someone other than @bob (an approval by "
        "the author does not count): ask a reviewer to approve the current head",
    ),
    (
        {"approvals": ("alice",), "approvals_required": 3},
        "needs 2 more approvals on the head def5678 from someone other than @infrabot: "
        "ask a reviewer to approve the current head",
    ),
    (
        {"approvals_required": 0, "approvals": ()},
        "needs 1 approval on the head def5678 from someone other than @infrabot: "
        "ask a reviewer to approve the current head",
    ),
    (
        {"validation_ok": False},
        "validation is failing on def5678: fix the findings listed on the pull request, "
        "push, and comment /plan",
    ),
    ({"dry_run_sha": None}, "there is no dry-run of the head def5678: comment /plan"),
    (
        {"dry_run_sha": OLD},
        "the last dry-run was for abc1234, the head is def5678: comment /plan",
    ),
    (
        {"dry_run_ok": False},
        "the dry-run of def5678 failed: fix the change, push, and comment /plan",
    ),
    (
        {"lock_holder": 3},
        "the estate lock is held by PR #3: wait for it, or /unlock there",
    ),
    (
        {"freeze": "release week until Friday"},
        "a change freeze is active (release week until Friday): wait until it ends",
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
    everything_wrong = {k: v for changes, _ in REFUSED for k, v in changes.items()}
    refusal = authorize_apply(ctx(**everything_wrong))
    assert refusal is not None
    assert len(refusal.reasons) == 7
    topics = ["is merged", "permission", "approval", "validation", "dry-run", "lock", "freeze"]
    for reason, topic in zip(refusal.reasons, topics, strict=True):
        assert topic in reason
