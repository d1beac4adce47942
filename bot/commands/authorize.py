"""Who may ``/apply`` or merge, and when: one pure decision over the facts the dispatcher
gathered (under the estate lock, from one read of the pull request).

Theory of operation
-------------------
The promise is that exactly the commit that was reviewed, approved and dry-run is applied.
So every fact here is tied to a commit: the check names the head it validated *and the base
tip it merged that head into*; an approval counts only for the current head; and the base
must not have moved since the check (what main gained since would otherwise be rolled
back, or collide).  Reviewers count by their permission *now*, not when they reviewed.

Every missing requirement is reported at once, each saying what is missing and how to meet
it, so a person fixes everything in one round.  At least one approval by someone other than
the authors is always required, whatever ``approvals_required`` says (0 counts as 1).  For a
bot-drafted pull request the person who asked for the change is an author too (policy
``requester_is_author``, on by default), so two people are always involved.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict

from bot.forge.base import Permission, ReviewState


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Vote(_Frozen):
    """A reviewer's latest decisive review, with the permission they hold now."""

    reviewer: str
    state: ReviewState
    commit_sha: str
    permission: Permission


class CheckFacts(_Frozen):
    """What the last validation + dry-run of the pull request established."""

    head_sha: str
    base_sha: str
    mergeable: bool = True
    validation_ok: bool
    dry_run_ok: bool


class ApplyContext(_Frozen):
    action: Literal["/apply", "merge"] = "/apply"
    commenter: str
    permission: Permission
    pr_number: int
    pr_state: str = "open"
    pr_author: str
    requester: str | None = None
    """Who asked for a bot-drafted change (the ticket's author), if any."""
    requester_is_author: bool = True
    votes: tuple[Vote, ...] = ()
    approvals_required: int = 1
    head_sha: str
    base_sha: str
    """The base branch's tip now."""
    base_branch: str = "main"
    check: CheckFacts | None = None
    lock_holder: int | None = None
    """PR number holding the estate lock (None: free)."""
    freeze: str | None = None
    """Why a change freeze is active (None: no freeze)."""
    fork: bool = False
    """The head lives in another repository than the base (a fork's pull request)."""

    def authors(self) -> set[str]:
        found = {self.pr_author}
        if self.requester and self.requester_is_author:
            found.add(self.requester)
        return found


class Refusal(_Frozen):
    reasons: tuple[str, ...]


def authorize_apply(ctx: ApplyContext) -> Refusal | None:
    checks = (
        _pr_open,
        _fork,
        _permission,
        _approvals,
        _changes_requested,
        _checked,
        _lock,
        _freeze,
    )
    reasons = tuple(reason for check in checks if (reason := check(ctx)) is not None)
    return Refusal(reasons=reasons) if reasons else None


def _short(sha: str) -> str:
    return sha[:7]


def _pr_open(ctx: ApplyContext) -> str | None:
    if ctx.pr_state == "open":
        return None
    return (
        f"pull request #{ctx.pr_number} is {ctx.pr_state}: only an open pull request can be "
        "applied; open a new one for further changes"
    )


def _fork(ctx: ApplyContext) -> str | None:
    if not (ctx.fork and ctx.action == "/apply"):
        return None
    return (
        f"pull request #{ctx.pr_number} comes from a fork: a fork's pull request is never "
        "applied by command; a maintainer reviews it and merges it, and the merge is applied"
    )


def _permission(ctx: ApplyContext) -> str | None:
    if ctx.permission.at_least(Permission.WRITE):
        return None
    has = "no" if ctx.permission is Permission.NONE else ctx.permission.value
    return f"@{ctx.commenter} has {has} permission; {ctx.action} needs write. Ask a maintainer."


def _approval_problem(ctx: ApplyContext, vote: Vote) -> str | None:
    """Why an approval does not count (None: it counts)."""
    if vote.reviewer in ctx.authors():
        role = "the author" if vote.reviewer == ctx.pr_author else "who asked for the change"
        return f"@{vote.reviewer} is {role}"
    if not vote.permission.at_least(Permission.WRITE):
        has = "no" if vote.permission is Permission.NONE else vote.permission.value
        return f"@{vote.reviewer} has {has} permission"
    if vote.commit_sha != ctx.head_sha:
        return f"@{vote.reviewer} approved {_short(vote.commit_sha)}, not the head"
    return None


def _approvals(ctx: ApplyContext) -> str | None:
    approved = [v for v in ctx.votes if v.state == "approved"]
    valid = [v for v in approved if _approval_problem(ctx, v) is None]
    missing = max(1, ctx.approvals_required) - len(valid)
    if missing <= 0:
        return None
    plural = "approval" if missing == 1 else "approvals"
    more = "more " if valid else ""
    who = " or ".join(f"@{a}" for a in sorted(ctx.authors()))
    ignored = [p for v in approved if (p := _approval_problem(ctx, v)) is not None]
    note = f" (not counted: {'; '.join(ignored)})" if ignored else ""
    return (
        f"needs {missing} {more}{plural} of the head {_short(ctx.head_sha)} by someone with "
        f"write permission other than {who}{note}: ask a reviewer to approve the current head"
    )


def _changes_requested(ctx: ApplyContext) -> str | None:
    blocking = sorted(
        v.reviewer
        for v in ctx.votes
        if v.state == "changes_requested"
        and v.permission.at_least(Permission.WRITE)
        and v.reviewer != ctx.pr_author
    )
    if not blocking:
        return None
    names = ", ".join(f"@{r}" for r in blocking)
    return (
        f"{names} requested changes: this blocks until they approve the head or the review "
        "is dismissed"
    )


def _checked(ctx: ApplyContext) -> str | None:
    check = ctx.check
    if check is None or check.head_sha != ctx.head_sha:
        return f"the head {_short(ctx.head_sha)} has not been checked yet: comment /plan"
    if check.base_sha != ctx.base_sha:
        return (
            f"{ctx.base_branch} moved since this PR was checked (checked against "
            f"{_short(check.base_sha)}, {ctx.base_branch} is now {_short(ctx.base_sha)}): "
            "comment /plan"
        )
    if not check.mergeable:
        return (
            f"the head {_short(ctx.head_sha)} does not merge cleanly into {ctx.base_branch}: "
            "rebase the branch, push, and comment /plan"
        )
    if not check.validation_ok:
        return (
            f"validation is failing on {_short(ctx.head_sha)}: fix the findings listed on the "
            "pull request, push, and comment /plan"
        )
    if not check.dry_run_ok:
        return (
            f"the dry-run of {_short(ctx.head_sha)} failed: fix the change, push, and comment /plan"
        )
    return None


def _lock(ctx: ApplyContext) -> str | None:
    if ctx.lock_holder is None or ctx.lock_holder == ctx.pr_number:
        return None
    holder = "a reconcile" if ctx.lock_holder == 0 else f"PR #{ctx.lock_holder}"
    return f"the estate lock is held by {holder}: wait for it to finish"


def _freeze(ctx: ApplyContext) -> str | None:
    if ctx.freeze is None:
        return None
    return f"a change freeze is active ({ctx.freeze}): wait until it ends"
