"""Comment commands, reviews and merges on pull requests.

Theory of operation
-------------------
Authorisation, the lock and statuses live here, once.  Every way to apply (``/apply`` and
merge) takes the estate lock *first*, re-reads the pull request once under it, and decides
on that one read (``_authorize``): so nothing can move between the decision and the act.
What is applied is a commit, never a branch name: ``/apply`` applies the merge result the
check validated and dry-ran; a merge asks the forge to merge exactly the authorised head
(the forge refuses if it moved), and ``apply_merged`` applies the merge commit only if its
tree is the one the check passed.  Expected refusals are results (posted on the PR as a
reply to the command that asked), not exceptions.
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
from bot.commands.authorize import CheckFacts, Vote
from bot.errors import InfrabotError, InputError, LockHeld
from bot.flow.apply import apply_commit, recover_interrupted
from bot.flow.checks import check_pr
from bot.flow.records import PrCheck
from bot.flow.remote import fetch_pull
from bot.flow.render import render_refusal
from bot.flow.services import Services
from bot.flow.status import post_status
from bot.flow.tickets import handle_issue
from bot.flow.trees import estate_of, snapshot
from bot.flow.verify import alert_acceptance_after_apply
from bot.forge.base import BOT_LOGIN, Permission, PullRequest, bot_topics
from bot.markdown import code
from bot.markdown import text as md_text
from bot.model import Evidence
from bot.validate.policy import active_freeze, approvals_required, load_policy


@dataclass(frozen=True)
class Outcome:
    ok: bool
    message: str
    evidence: Evidence | None = None


def handle_comment(
    svc: Services, number: int, body: str, author: str, comment_id: int | None = None
) -> Outcome:
    """A person commented on issue or PR ``number`` (``comment_id``: the comment, so the
    bot's reply to it is edited, not repeated, when the same event arrives twice)."""
    recover_interrupted(svc)
    if not _is_pr(svc, number):
        return _issue_reply(svc, number, body, author)
    parsed = parse_comment(body, author=author, bot_login=BOT_LOGIN)
    if isinstance(parsed, Ignore):
        return Outcome(True, f"not a command ({parsed.reason})")
    pr = svc.forge.pull_request(number)
    fetch_pull(svc, pr)
    svc.record(
        pr.issue or number,
        author,
        "command.received",
        "parsed",
        {"pr": number, "command": body.strip()[:200], "comment": comment_id},
    )
    reply = _reply_topic(comment_id, "command", author, pr.head_sha)
    if isinstance(parsed, Reply):
        svc.forge.ensure_comment(number, reply, f"@{author}: {parsed.text}")
        return Outcome(False, parsed.text)
    return _COMMANDS[parsed.name](svc, pr, parsed, author, reply)


def _reply_topic(comment_id: int | None, action: str, author: str, head: str) -> str:
    """One reply per person's command: keyed on the comment it answers (or, for a merge
    from the command line, on who asked for which head)."""
    if comment_id is not None:
        return f"reply-{comment_id}"
    return f"reply-{action}-{author}-{head[:12]}"


def _is_pr(svc: Services, number: int) -> bool:
    try:
        svc.forge.pull_request(number)
    except InputError:
        return False
    return True


def _issue_reply(svc: Services, number: int, body: str, author: str) -> Outcome:
    """A reply on an issue resumes the work if the bot is waiting on it."""
    issue = svc.forge.issue(number)
    mine = bot_topics(svc.forge, number)
    waiting, opened = "clarify" in mine, "pr" in mine
    if issue.state != "open" or not waiting or opened:
        return Outcome(True, "comment recorded")
    svc.record(number, author, "ticket.replied", "resumed", {"chars": len(body)})
    outcome = handle_issue(svc, number)
    return Outcome(outcome.kind != "failed", outcome.message)


def _plan(svc: Services, pr: PullRequest, _: Command, author: str, reply: str) -> Outcome:
    if pr.state != "open":
        return _refuse(svc, pr, "/plan", [f"PR #{pr.number} is {pr.state}"], author, reply)
    if _stale_bot_draft(svc, pr):
        assert pr.issue is not None
        svc.progress(f"PR #{pr.number}: {pr.base_branch} moved; re-drafting #{pr.issue} on it")
        drafted = handle_issue(svc, pr.issue)
        text = (
            f"{code(pr.base_branch)} moved since this change was drafted, so I drafted it "
            f"again on it: {md_text(drafted.message)}"
        )
        svc.forge.ensure_comment(pr.number, reply, f"@{author}: {text}")
        return Outcome(drafted.kind == "pr", text)
    check = check_pr(svc, pr.number)
    ok = check.validation.ok and check.dry_run.ok
    text = (
        f"checked {check.head_sha[:7]} merged into {pr.base_branch} "
        f"({check.base_sha[:7]}): validation {'passed' if check.validation.ok else 'failed'}, "
        f"dry-run {check.dry_run.status.value}"
    )
    svc.forge.ensure_comment(pr.number, reply, f"@{author}: {text}. See the PR description.")
    return Outcome(ok, text)


def _stale_bot_draft(svc: Services, pr: PullRequest) -> bool:
    """A bot-drafted PR whose base moved since it was drafted, with no one else's commits on
    it: re-drafting on the new base re-picks vmids and addresses instead of colliding."""
    if pr.author != BOT_LOGIN or pr.issue is None:
        return False
    if svc.git.merge_base(pr.base_sha, pr.head_sha) == pr.base_sha:
        return False
    return svc.git.authors_since(pr.base_sha, pr.head_sha) == {BOT_LOGIN}


def _apply(svc: Services, pr: PullRequest, _: Command, author: str, reply: str) -> Outcome:
    try:
        with svc.lock.held(pr.number):
            pr = svc.forge.pull_request(pr.number)  # the one read the decision rests on
            check = _remembered_check(svc, pr)
            reasons = _authorize(svc, pr, author, "/apply", check)
            if reasons or check is None or check.merge_sha is None:
                return _refuse(svc, pr, "/apply", reasons, author, reply)
            svc.record(pr.issue or pr.number, author, "lock.acquired", "ok", {"pr": pr.number})
            _say(svc, pr, reply, author, f"applying {check.head_sha[:7]} …")
            evidence = apply_commit(svc, pr, check.merge_sha, check.base_sha, author)
    except LockHeld as held:
        reasons = _authorize(svc, pr, author, "/apply", svc.records.check(pr.number))
        return _refuse(svc, pr, "/apply", _with_lock(held, reasons), author, reply)
    svc.record(pr.issue or pr.number, author, "lock.released", "ok", {"pr": pr.number})
    text = f"applied {check.head_sha[:7]}: " + (
        "verified" if evidence.ok else "see the evidence comment"
    )
    _say(svc, pr, reply, author, text)
    return Outcome(evidence.ok, text, evidence)


def _unlock(svc: Services, pr: PullRequest, _: Command, author: str, reply: str) -> Outcome:
    if not svc.forge.permission(author).at_least(Permission.WRITE):
        return _refuse(
            svc, pr, "/unlock", [f"@{author} needs write permission to unlock"], author, reply
        )
    result = svc.lock.unlock()
    held = result.state
    holder = "a reconcile" if held and held.holder == 0 else f"PR #{held.holder}" if held else ""
    if result.released:
        text = f"Released the estate lock held by {holder}: {result.why}."
    elif held is None:
        text = "The estate lock was not held."
    else:
        text = f"The estate lock held by {holder} stays: {result.why}."
    svc.forge.ensure_comment(pr.number, reply, f"@{author}: {text}")
    svc.record(
        pr.issue or pr.number,
        author,
        "lock.released" if result.released else "lock.kept",
        "forced" if result.released else "refused",
        {"pr": pr.number},
        {"holder": held.holder if held else None, "why": result.why},
    )
    return Outcome(result.released or held is None, text)


def _help(svc: Services, pr: PullRequest, _: Command, author: str, reply: str) -> Outcome:
    svc.forge.ensure_comment(pr.number, reply, f"@{author}:\n\n{HELP_TEXT}")
    return Outcome(True, HELP_TEXT)


_COMMANDS = {
    CommandName.PLAN: _plan,
    CommandName.APPLY: _apply,
    CommandName.UNLOCK: _unlock,
    CommandName.HELP: _help,
}


def _authorize(
    svc: Services, pr: PullRequest, user: str, action: str, check: PrCheck | None
) -> list[str]:
    """Every reason ``user`` may not ``action`` this PR now (empty: allowed)."""
    with snapshot(svc, svc.config.base_branch) as base:
        policy = load_policy(base)  # the rules of the base branch, never the PR's own
    holder = svc.lock.holder()
    freeze = active_freeze(policy, svc.clock())
    ctx = ApplyContext(
        action="merge" if action == "merge" else "/apply",
        commenter=user,
        permission=svc.forge.permission(user),
        pr_number=pr.number,
        pr_state=pr.state,
        pr_author=pr.author,
        requester=_requester(svc, pr),
        requester_is_author=policy.requester_is_author,
        votes=tuple(
            Vote(
                reviewer=r.author,
                state=r.state,
                commit_sha=r.commit_sha,
                permission=svc.forge.permission(r.author),
            )
            for r in pr.latest_reviews()
        ),
        approvals_required=approvals_required(policy, check.environments if check else ()),
        head_sha=pr.head_sha,
        base_sha=pr.base_sha,
        base_branch=pr.base_branch,
        check=_facts(check),
        lock_holder=holder.holder if holder else None,
        freeze=f"{freeze.reason} (until {freeze.end.isoformat()})" if freeze else None,
        fork=pr.fork,
    )
    refusal = authorize_apply(ctx)
    reasons = list(refusal.reasons) if refusal else []
    if not reasons and check is not None and check.merge_sha and check.dry_run.hosts:
        with snapshot(svc, check.merge_sha) as merged:
            problem = svc.preflight(estate_of(merged, svc.cache), check.dry_run.hosts)
        if problem:
            reasons.append(problem)  # refuse before merging: a merge that cannot apply
    return reasons


def _with_lock(held: LockHeld, reasons: list[str]) -> list[str]:
    """The refusal of a command that could not take the lock names the lock: the rules
    name another PR's lock, but not this PR's, held by another process applying it."""
    return reasons if any("estate lock" in r for r in reasons) else [str(held), *reasons]


def _remembered_check(svc: Services, pr: PullRequest) -> PrCheck | None:
    """The PR's last check; where none is remembered (a fresh runner, a lost state file)
    the head is checked now, against the current base, before anything is decided."""
    check = svc.records.check(pr.number)
    if check is None and pr.state == "open":
        check = check_pr(svc, pr.number)
    return check


def _requester(svc: Services, pr: PullRequest) -> str | None:
    """Who asked for a bot-drafted change: the ticket's author."""
    if pr.author != BOT_LOGIN or pr.issue is None:
        return None
    return svc.forge.issue(pr.issue).author


def _facts(check: PrCheck | None) -> CheckFacts | None:
    if check is None:
        return None
    return CheckFacts(
        head_sha=check.head_sha,
        base_sha=check.base_sha,
        mergeable=check.merge_sha is not None,
        validation_ok=check.validation.ok,
        dry_run_ok=check.dry_run.ok,
    )


def _say(svc: Services, pr: PullRequest, reply: str, author: str, text: str) -> None:
    svc.forge.ensure_comment(pr.number, reply, f"@{author}: {text}")


def _refuse(
    svc: Services, pr: PullRequest, action: str, reasons: list[str], author: str, reply: str
) -> Outcome:
    reasons = reasons or ["the pull request has no successful check: comment /plan"]
    svc.forge.ensure_comment(pr.number, reply, f"@{author}: " + render_refusal(action, reasons))
    if pr.state == "open":
        post_status(
            svc, pr, "refused", f"{action} by @{author}: {len(reasons)} requirement(s) missing."
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
    """Merge = apply: authorised under the lock like /apply, the exact authorised head
    merged by the forge, the merge commit applied, evidence posted."""
    recover_interrupted(svc)
    pr = svc.forge.pull_request(number)
    reply = _reply_topic(None, "merge", user, pr.head_sha)
    try:
        with svc.lock.held(number):
            pr = svc.forge.pull_request(number)  # the one read the decision rests on
            check = _remembered_check(svc, pr)
            reasons = _authorize(svc, pr, user, "merge", check)
            if reasons:
                return _refuse(svc, pr, "merge", reasons, user, reply)
            svc.record(pr.issue or number, user, "lock.acquired", "ok", {"pr": number})
            try:
                merged = svc.forge.merge(number, pr.head_sha, user)
            except InfrabotError as exc:
                return _refuse(svc, pr, "merge", [str(exc)], user, reply)
            svc.record(
                pr.issue or number,
                user,
                "pr.merged",
                "ok",
                {"pr": number},
                {"sha": merged.merge_sha, "head": pr.head_sha},
            )
            outcome = apply_merged(svc, merged, user)
    except LockHeld as held:
        reasons = _authorize(svc, pr, user, "merge", svc.records.check(number))
        return _refuse(svc, pr, "merge", _with_lock(held, reasons), user, reply)
    svc.record(pr.issue or number, user, "lock.released", "ok", {"pr": number})
    return outcome


def apply_merged(svc: Services, pr: PullRequest, actor: str) -> Outcome:
    """React to a merged pull request (from any forge; the caller holds the lock): apply the
    merge commit only if it is what passed the gate — its tree is the checked merge of the
    checked head into the checked base, and the approvals hold.  Otherwise apply nothing,
    say so, and open a ticket for a human."""
    sha = pr.merge_sha
    if sha is None:
        raise InfrabotError(f"pull request #{pr.number} has no merge commit")
    check = svc.records.check(pr.number)
    problems = _merge_problems(svc, pr, actor, check, sha)
    if problems or check is None:
        return _skip_apply(svc, pr, actor, sha, problems)
    evidence = apply_commit(svc, pr, sha, check.base_sha, actor)
    if not evidence.ok:
        if pr.issue:
            svc.forge.ensure_comment(
                pr.issue,
                "apply-failed",
                f"Merging PR #{pr.number} did not apply cleanly: see the evidence there. "
                "This issue stays open.",
            )
        return Outcome(
            False, f"merged as {sha[:7]} but the apply failed: see PR #{pr.number}", evidence
        )
    after = alert_acceptance_after_apply(svc, pr.issue, pr.number) if pr.issue else None
    if after is not None:  # an alert's ticket closes on its acceptance criteria, not here
        return Outcome(True, f"merged as {sha[:7]}, applied and verified; {after}", evidence)
    if pr.issue:
        svc.forge.close_issue(
            pr.issue,
            f"Applied and verified by PR #{pr.number} "
            f"(merge `{sha[:7]}`): see the evidence comment there.",
        )
        svc.record(pr.issue, BOT_LOGIN, "issue.closed", "ok", {"pr": pr.number})
    return Outcome(True, f"merged as {sha[:7]}, applied and verified", evidence)


def _merge_problems(
    svc: Services, pr: PullRequest, actor: str, check: PrCheck | None, sha: str
) -> list[str]:
    if check is None or check.merge_tree is None:
        return ["no check of this pull request exists"]
    if svc.git.tree_of(sha) != check.merge_tree:
        return [
            f"the merged tree of {sha[:7]} is not the one checked (head {check.head_sha[:7]} "
            f"into {check.base_sha[:7]})"
        ]
    as_open = pr.model_copy(
        update={"state": "open", "head_sha": check.head_sha, "base_sha": check.base_sha}
    )
    return _authorize(svc, as_open, actor, "merge", check)


def _skip_apply(
    svc: Services, pr: PullRequest, actor: str, sha: str, problems: list[str]
) -> Outcome:
    ticket = svc.forge.create_issue(
        f"Merged without passing the gate: PR #{pr.number}",
        f"PR #{pr.number} was merged as {code(sha[:7])} by {md_text('@' + actor)}, but the "
        "merged commit is not one that passed the gate, so infrabot applied nothing:\n\n"
        + "\n".join(f"- {md_text(p)}" for p in problems)
        + "\n\nA person must decide: revert the merge, or run `infrabot reconcile` to apply "
        "the base branch as it now is.",
        BOT_LOGIN,
        labels=("needs-human",),
    )
    text = render_refusal("apply after merge", problems) + (
        f"\nNothing was applied. A person must decide: see #{ticket.number}.\n"
    )
    svc.forge.ensure_comment(pr.number, f"apply-skipped-{sha[:12]}", text)
    svc.record(
        pr.issue or pr.number,
        BOT_LOGIN,
        "apply.skipped",
        "refused",
        {"pr": pr.number, "sha": sha},
        {"reasons": problems, "ticket": ticket.number},
    )
    return Outcome(False, f"merged as {sha[:7]} but not applied: " + "; ".join(problems))


def revert_pr(svc: Services, number: int, user: str) -> Outcome:
    """Open a pull request that reverts a merged one (the rollback path).  It is the asking
    person's pull request: a revert restores what people reviewed and merged before, so it
    may touch whatever the original touched, and someone else must approve it."""
    pr = svc.forge.pull_request(number)
    if not svc.forge.permission(user).at_least(Permission.WRITE):
        return Outcome(False, f"@{user} needs write permission to open a revert")
    if pr.state != "merged" or not pr.merge_sha:
        return Outcome(False, f"PR #{number} is {pr.state}: only a merged PR can be reverted")
    branch = f"infrabot/revert-{number}"
    svc.git.revert_on_branch(branch, pr.base_branch, pr.merge_sha, user, svc.paths.scratch)
    revert = svc.forge.open_pull_request(
        branch=branch,
        base=pr.base_branch,
        title=f"Revert #{number}: {pr.title}",
        body=f"Reverts #{number}.",
        issue=None,
        author=user,
    )
    svc.record(
        pr.issue or number, user, "revert.opened", "ok", {"pr": number}, {"revert": revert.number}
    )
    check_pr(svc, revert.number)
    return Outcome(True, f"opened revert PR #{revert.number}")
