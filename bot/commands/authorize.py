"""Who may ``/apply``, and when: one pure decision over the facts the dispatcher gathered.

Every missing requirement is reported at once, each saying what is missing and how to
meet it, so a person fixes everything in one round instead of discovering the rules one
refusal at a time.  At least one approval by someone other than the PR's author is
always required, whatever ``approvals_required`` says (a configured 0 counts as 1).
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from bot.forge.base import Permission


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ApplyContext(_Frozen):
    commenter: str
    permission: Permission
    pr_author: str
    approvals: tuple[str, ...]
    """Approvers whose approval is on the current head (the author's own is ignored)."""
    approvals_required: int = 1
    validation_ok: bool
    dry_run_sha: str | None
    """The head commit the last dry-run ran on (None: never dry-run)."""
    dry_run_ok: bool = True
    head_sha: str
    lock_holder: int | None
    """PR number holding the estate lock (None: free)."""
    pr_number: int
    freeze: str | None = None
    """Why a change freeze is active (None: no freeze)."""
    pr_state: str = "open"


class Refusal(_Frozen):
    reasons: tuple[str, ...]


def authorize_apply(ctx: ApplyContext) -> Refusal | None:
    checks = (
        _pr_open,
        _permission,
        _approvals,
        _validation,
        _dry_run,
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


def _permission(ctx: ApplyContext) -> str | None:
    if ctx.permission.at_least(Permission.WRITE):
        return None
    has = "no" if ctx.permission is Permission.NONE else ctx.permission.value
    return f"@{ctx.commenter} has {has} permission; /apply needs write. Ask a maintainer."


def _approvals(ctx: ApplyContext) -> str | None:
    valid = {a for a in ctx.approvals if a != ctx.pr_author}
    missing = max(1, ctx.approvals_required) - len(valid)
    if missing <= 0:
        return None
    plural = "approval" if missing == 1 else "approvals"
    more = "more " if valid else ""
    note = " (an approval by the author does not count)" if ctx.pr_author in ctx.approvals else ""
    return (
        f"needs {missing} {more}{plural} on the head {_short(ctx.head_sha)} from someone other "
        f"than @{ctx.pr_author}{note}: ask a reviewer to approve the current head"
    )


def _validation(ctx: ApplyContext) -> str | None:
    if ctx.validation_ok:
        return None
    return (
        f"validation is failing on {_short(ctx.head_sha)}: fix the findings listed on the pull "
        "request, push, and comment /plan"
    )


def _dry_run(ctx: ApplyContext) -> str | None:
    if ctx.dry_run_sha is None:
        return f"there is no dry-run of the head {_short(ctx.head_sha)}: comment /plan"
    if ctx.dry_run_sha != ctx.head_sha:
        return (
            f"the last dry-run was for {_short(ctx.dry_run_sha)}, the head is "
            f"{_short(ctx.head_sha)}: comment /plan"
        )
    if not ctx.dry_run_ok:
        return (
            f"the dry-run of {_short(ctx.head_sha)} failed: fix the change, push, and comment /plan"
        )
    return None


def _lock(ctx: ApplyContext) -> str | None:
    if ctx.lock_holder is None or ctx.lock_holder == ctx.pr_number:
        return None
    return f"the estate lock is held by PR #{ctx.lock_holder}: wait for it, or /unlock there"


def _freeze(ctx: ApplyContext) -> str | None:
    if ctx.freeze is None:
        return None
    return f"a change freeze is active ({ctx.freeze}): wait until it ends"
