"""Comment commands, reviews and merges on pull requests.

Authorisation, the lock and statuses live here, once: every way to apply (``/apply``
and merge) goes through ``_authorize`` and holds the estate lock for the whole apply.
Expected refusals are results (posted on the PR), not exceptions.
"""

from __future__ import annotations

from dataclasses import dataclass

from bot.commands import (
    HELP_TEXT,
    ApplyContext,
    Command,
    CommandName,
    Ignore,
    Reply,
    authorize_apply,
    parse_comment,
)
from bot.errors import InputError, LockHeld
from bot.flow.apply import apply_commit
from bot.flow.checks import check_pr
from bot.flow.records import Records
from bot.flow.render import render_refusal
from bot.flow.services import Services
from bot.flow.tickets import handle_issue
from bot.flow.trees import estate_of, snapshot
from bot.forge.base import BOT_LOGIN, Permission, PullRequest
from bot.validate.policy import active_freeze, approvals_required, load_policy


@dataclass(frozen=True)
class Outcome:
    ok: bool
    message: str


def handle_comment(svc: Services, number: int, body: str, author: str) -> Outcome:
    """A person commented on issue or PR ``number``."""
    if not _is_pr(svc, number):
        return _issue_reply(svc, number, body, author)
    parsed = parse_comment(body, author=author, bot_login=BOT_LOGIN)
    if isinstance(parsed, Ignore):
        return Outcome(True, f"not a command ({parsed.reason})")
    pr = svc.forge.pull_request(number)
    svc.record(
        pr.issue or number,
        author,
        "command.received",
        "parsed",
        {"pr": number, "command": body.strip()[:200]},
    )
    if isinstance(parsed, Reply):
        svc.forge.ensure_comment(number, "help", parsed.text)
        return Outcome(False, parsed.text)
    return _COMMANDS[parsed.name](svc, pr, parsed, author)


def _is_pr(svc: Services, number: int) -> bool:
    try:
        svc.forge.pull_request(number)
    except InputError:
        return False
    return True


def _issue_reply(svc: Services, number: int, body: str, author: str) -> Outcome:
    """A reply on an issue resumes the work if the bot is waiting on it."""
    issue = svc.forge.issue(number)
    mine = {c.topic for c in svc.forge.comments(number) if c.author == BOT_LOGIN}
    waiting, opened = "clarify" in mine, "pr" in mine
    if issue.state != "open" or not waiting or opened:
        return Outcome(True, "comment recorded")
    svc.record(number, author, "ticket.replied", "resumed", {"chars": len(body)})
    outcome = handle_issue(svc, number)
    return Outcome(outcome.kind != "failed", outcome.message)


def _plan(svc: Services, pr: PullRequest, _: Command, author: str) -> Outcome:
    if pr.state != "open":
        return _refuse(svc, pr, "/plan", [f"PR #{pr.number} is {pr.state}"], author)
    check = check_pr(svc, pr.number)
    ok = check.validation.ok and check.dry_run.ok
    return Outcome(
        ok,
        f"validation {'passed' if check.validation.ok else 'failed'}, "
        f"dry-run {check.dry_run.status.value}",
    )


def _apply(svc: Services, pr: PullRequest, _: Command, author: str) -> Outcome:
    reasons = _authorize(svc, pr, author)
    if reasons:
        return _refuse(svc, pr, "/apply", reasons, author)
    try:
        with svc.lock.held(pr.number):
            svc.record(pr.issue or pr.number, author, "lock.acquired", "ok", {"pr": pr.number})
            evidence = apply_commit(svc, pr, pr.head_sha, author)
    except LockHeld as exc:
        return _refuse(svc, pr, "/apply", [str(exc)], author)
    svc.record(pr.issue or pr.number, author, "lock.released", "ok", {"pr": pr.number})
    return Outcome(
        evidence.ok,
        f"applied {pr.head_sha[:7]}: {'verified' if evidence.ok else 'see the evidence comment'}",
    )


def _unlock(svc: Services, pr: PullRequest, _: Command, author: str) -> Outcome:
    if not svc.forge.permission(author).at_least(Permission.WRITE):
        return _refuse(svc, pr, "/unlock", [f"@{author} needs write permission to unlock"], author)
    state = svc.lock.force_release()
    text = (
        f"Released the estate lock held by PR #{state.holder}."
        if state
        else "The estate lock was not held."
    )
    svc.forge.ensure_comment(pr.number, "unlock", text)
    svc.record(pr.issue or pr.number, author, "lock.released", "forced", {"pr": pr.number})
    return Outcome(True, text)


def _help(svc: Services, pr: PullRequest, _: Command, __: str) -> Outcome:
    svc.forge.ensure_comment(pr.number, "help", HELP_TEXT)
    return Outcome(True, HELP_TEXT)


_COMMANDS = {
    CommandName.PLAN: _plan,
    CommandName.APPLY: _apply,
    CommandName.UNLOCK: _unlock,
    CommandName.HELP: _help,
}


def _authorize(svc: Services, pr: PullRequest, user: str) -> list[str]:
    check = Records(svc.paths.runs).check(pr.number)
    fresh = check is not None and check.head_sha == pr.head_sha
    with snapshot(svc, pr.base_sha) as base:
        policy = load_policy(base)
    holder = svc.lock.holder()
    freeze = active_freeze(policy, svc.clock())
    ctx = ApplyContext(
        commenter=user,
        permission=svc.forge.permission(user),
        pr_author=pr.author,
        approvals=pr.approvals(),
        approvals_required=approvals_required(policy, check.environments if check else ()),
        validation_ok=bool(fresh and check and check.validation.ok),
        dry_run_sha=check.head_sha if check else None,
        dry_run_ok=bool(check and check.dry_run.ok),
        head_sha=pr.head_sha,
        lock_holder=holder.holder if holder else None,
        pr_number=pr.number,
        freeze=f"{freeze.reason} (until {freeze.end.isoformat()})" if freeze else None,
        pr_state=pr.state,
    )
    refusal = authorize_apply(ctx)
    reasons = list(refusal.reasons) if refusal else []
    if check is not None and fresh and check.dry_run.hosts:
        with snapshot(svc, pr.head_sha) as head:
            problem = svc.preflight(estate_of(head), check.dry_run.hosts)
        if problem:
            reasons.append(problem)  # refuse before merging: a merge that cannot apply
    return reasons


def _refuse(
    svc: Services, pr: PullRequest, action: str, reasons: list[str], author: str
) -> Outcome:
    svc.forge.ensure_comment(
        pr.number, f"refusal-{action.strip('/')}", render_refusal(action, reasons)
    )
    svc.record(
        pr.issue or pr.number,
        author,
        "apply.refused",
        "refused",
        {"pr": pr.number, "action": action},
        {"reasons": reasons},
    )
    return Outcome(False, f"{action} refused: " + "; ".join(reasons))


def merge_pr(svc: Services, number: int, user: str) -> Outcome:
    """Merge = apply: authorised like /apply, serialised by the lock, evidence posted."""
    pr = svc.forge.pull_request(number)
    reasons = _authorize(svc, pr, user)
    if reasons:
        return _refuse(svc, pr, "merge", reasons, user)
    ticket = pr.issue or pr.number
    try:
        with svc.lock.held(number):
            svc.record(ticket, user, "lock.acquired", "ok", {"pr": number})
            sha = svc.git.merge(
                pr.head_branch, pr.base_branch, f"Merge PR #{number}: {pr.title}", user
            )
            merged = svc.forge.mark_merged(number, sha, user)
            svc.record(ticket, user, "pr.merged", "ok", {"pr": number}, {"sha": sha})
            evidence = apply_commit(svc, merged, sha, user)
    except LockHeld as exc:
        return _refuse(svc, pr, "merge", [str(exc)], user)
    svc.record(ticket, user, "lock.released", "ok", {"pr": number})
    if not evidence.ok:
        if pr.issue:
            svc.forge.ensure_comment(
                pr.issue,
                "apply-failed",
                f"Merging PR #{number} did not "
                "apply cleanly: see the evidence there. This issue stays "
                "open.",
            )
        return Outcome(False, f"merged as {sha[:7]} but the apply failed: see PR #{number}")
    if pr.issue:
        svc.forge.close_issue(
            pr.issue,
            f"Applied and verified by PR #{number} "
            f"(merge `{sha[:7]}`): see the evidence comment there.",
        )
        svc.record(ticket, BOT_LOGIN, "issue.closed", "ok", {"pr": number})
    return Outcome(True, f"merged as {sha[:7]}, applied and verified")


def revert_pr(svc: Services, number: int, user: str) -> Outcome:
    """Open a pull request that reverts a merged one (the rollback path)."""
    pr = svc.forge.pull_request(number)
    if not svc.forge.permission(user).at_least(Permission.WRITE):
        return Outcome(False, f"@{user} needs write permission to open a revert")
    if pr.state != "merged" or not pr.merge_sha:
        return Outcome(False, f"PR #{number} is {pr.state}: only a merged PR can be reverted")
    branch = f"infrabot/revert-{number}"
    svc.git.revert_on_branch(branch, pr.base_branch, pr.merge_sha, BOT_LOGIN, svc.paths.scratch)
    revert = svc.forge.open_pull_request(
        branch=branch,
        base=pr.base_branch,
        title=f"Revert #{number}: {pr.title}",
        body=f"Reverts #{number}.",
        issue=None,
        author=BOT_LOGIN,
    )
    svc.record(
        pr.issue or number, user, "revert.opened", "ok", {"pr": number}, {"revert": revert.number}
    )
    check_pr(svc, revert.number)
    return Outcome(True, f"opened revert PR #{revert.number}")
