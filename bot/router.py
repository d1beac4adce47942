"""One router: ``handle(services, event) -> Outcome``.

Theory of operation
-------------------
Every entry point — the CLI, ``infrabot handle-event`` on a GitHub Actions runner,
``infrabot serve`` — builds an event (``bot.events``) and calls ``handle``.  A dispatch
table maps the event's type to one flow step; the intake is recorded once, here.

Handling the same event twice changes nothing more.  The server deduplicates deliveries
by id; beyond that, each step asks the forge whether its work is already done, so a
re-run workflow (same run id, fresh runner, no local memory) is idempotent too:

* an issue that already has the bot's plan or PR is not drafted again;
* a comment the bot already replied to (reply topic keyed on the comment id) is not
  acted on again;
* a PR head whose check is recorded for the same base is not checked again;
* a merge whose evidence is posted is not applied again;
* a direct push to the base branch whose commit carries ``infrabot/apply`` was handled.

Which event applies a merge (ADR 0015): on GitHub, the ``push`` to the base branch —
the apply workflow runs on it, in the protected environment that holds the estate's
secrets — so a ``pull_request`` closed-as-merged from GitHub is a logged no-op.  The
local CLI has no pushes: its merged event applies.  Both go through one idempotent step,
so the two events of one merge apply it once.  A push that no merged pull request made
(someone pushed to the base branch directly) is never applied: the commit gets a failing
``infrabot/apply`` status and a ticket asks a human to decide.

Bots (a login ending in ``[bot]`` or of type Bot, the bot itself included) are never
trusted as people: their comments and issues are ignored.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from bot.alerts.flow import handle_alert
from bot.errors import LockHeld
from bot.events import (
    AlertFired,
    CommentCreated,
    Event,
    IssueEdited,
    IssueOpened,
    PullRequestMerged,
    PullRequestUpdated,
    Pushed,
    ReviewDismissed,
    ReviewSubmitted,
    WorkflowDispatch,
)
from bot.flow.apply import reconcile, recover_interrupted
from bot.flow.checks import check_pr
from bot.flow.dispatch import Outcome, apply_merged, handle_comment
from bot.flow.remote import sync_base
from bot.flow.services import Services
from bot.flow.tickets import handle_issue
from bot.forge.base import BOT_LOGIN, PullRequest, bot_topics
from bot.markdown import code
from bot.markdown import text as md_text

Step = Callable[[Services, Any], Outcome]


def handle(svc: Services, event: Event) -> Outcome:
    """Run the flow step for ``event``; the one place every event comes in."""
    sync_base(svc)
    recover_interrupted(svc)
    if event.sender.is_bot and not isinstance(
        event, PullRequestMerged | PullRequestUpdated | Pushed | AlertFired
    ):
        return Outcome(True, f"ignored: {event.kind} by a bot (@{event.sender.login})")
    step: Step = _TABLE[type(event)]
    return step(svc, event)


def _issue_opened(svc: Services, event: IssueOpened) -> Outcome:
    if event.author.is_bot:
        return Outcome(True, "ignored: an issue opened by a bot")
    if bot_topics(svc.forge, event.number) & {"plan", "pr", "clarify", "failure"}:
        return Outcome(True, f"#{event.number} is already being worked on")
    svc.record(
        event.number,
        event.author.login,
        "ticket.opened",
        "ok",
        {"title": event.title[:200], "delivery": event.delivery},
    )
    outcome = handle_issue(svc, event.number)
    return Outcome(outcome.kind != "failed", outcome.message)


def _issue_edited(svc: Services, event: IssueEdited) -> Outcome:
    """An edit answers the bot's question as a reply would; otherwise it changes nothing."""
    topics = bot_topics(svc.forge, event.number)
    if "clarify" not in topics or "pr" in topics:
        return Outcome(True, f"#{event.number} edited: nothing to do")
    svc.record(event.number, event.sender.login, "ticket.replied", "resumed", {"edited": True})
    outcome = handle_issue(svc, event.number)
    return Outcome(outcome.kind != "failed", outcome.message)


def _comment(svc: Services, event: CommentCreated) -> Outcome:
    if event.author.is_bot or event.author.login == BOT_LOGIN:
        return Outcome(True, "ignored: a bot's comment")
    if f"reply-{event.comment_id}" in bot_topics(svc.forge, event.number):
        return Outcome(True, f"comment {event.comment_id} was already answered")
    return handle_comment(svc, event.number, event.body, event.author.login, event.comment_id)


def _review(svc: Services, event: ReviewSubmitted | ReviewDismissed) -> Outcome:
    """Reviews change what the gate will decide, not anything now: recorded only."""
    pr = svc.forge.pull_request(event.number)
    state = "dismissed" if isinstance(event, ReviewDismissed) else event.state
    svc.record(
        pr.issue or pr.number,
        event.author.login,
        "pr.reviewed",
        state,
        {"pr": event.number, "head": event.commit_sha, "delivery": event.delivery},
    )
    return Outcome(True, f"review by @{event.author.login} recorded ({state})")


def _pr_updated(svc: Services, event: PullRequestUpdated) -> Outcome:
    done = svc.records.check(event.number)
    if done and (done.head_sha, done.base_sha) == (event.head_sha, event.base_sha):
        return Outcome(True, f"PR #{event.number} at {event.head_sha[:7]} is already checked")
    check = check_pr(svc, event.number)
    ok = check.validation.ok and check.dry_run.ok
    return Outcome(ok, f"PR #{event.number}: checked {check.head_sha[:7]}")


def _pr_merged(svc: Services, event: PullRequestMerged) -> Outcome:
    if event.source != "cli":
        return Outcome(
            True,
            f"PR #{event.number} merged as {event.merge_sha[:7]}: the push to "
            f"{event.base_branch} applies it, not this event",
        )
    pr = svc.forge.pull_request(event.number)
    by = event.merged_by.login if event.merged_by else event.sender.login
    return _apply_merge(svc, pr, event.merge_sha, by)


def _pushed(svc: Services, event: Pushed) -> Outcome:
    base = svc.config.base_branch
    if event.branch != base:
        return Outcome(True, f"a push to {event.branch}: only merges into {base} are applied")
    pr = svc.forge.merged_pull_request(event.after)
    if pr is None:
        return _direct_push(svc, event)
    by = pr.merged_by or event.sender.login
    return _apply_merge(svc, pr, event.after, by)


def _apply_merge(svc: Services, pr: PullRequest, merge_sha: str, by: str) -> Outcome:
    """The one step both merged events reach: apply once per merge commit."""
    topic = f"evidence-{merge_sha[:12]}"
    mine = [c for c in svc.forge.comments(pr.number) if c.author == BOT_LOGIN]
    if any(c.topic in (topic, f"apply-skipped-{merge_sha[:12]}") for c in mine):
        return Outcome(True, f"the merge {merge_sha[:7]} was already handled")
    try:
        with svc.lock.held(pr.number):
            return apply_merged(svc, svc.forge.pull_request(pr.number), by)
    except LockHeld as exc:
        return Outcome(False, f"PR #{pr.number} merged; apply waits: {exc}")


def _direct_push(svc: Services, event: Pushed) -> Outcome:
    """A commit on the base branch that no merged pull request made: never applied."""
    sha, base = event.after, event.branch
    if any(s.context == "infrabot/apply" for s in svc.forge.statuses(sha)):
        return Outcome(True, f"the push of {sha[:7]} to {base} was already handled")
    who = event.sender.login
    ticket = svc.forge.create_issue(
        f"Pushed to {base} without a pull request: {sha[:7]}",
        f"{md_text('@' + who)} pushed {code(sha[:12])} to {code(base)} directly. "
        "infrabot applies only what a reviewed pull request merged, so it applied nothing."
        "\n\nA person must decide: "
        f"open a pull request that reverts it, or run `infrabot reconcile` to apply {base} "
        "as it now is.",
        BOT_LOGIN,
        labels=("needs-human",),
    )
    svc.forge.set_status(
        sha,
        "infrabot/apply",
        "error",
        f"pushed without a pull request: not applied, see #{ticket.number}",
    )
    svc.record(
        ticket.number,
        BOT_LOGIN,
        "apply.skipped",
        "refused",
        {"sha": sha, "branch": base, "delivery": event.delivery},
        {"reasons": ["a direct push, not a merged pull request"], "pusher": who},
    )
    return Outcome(
        False, f"{sha[:7]} was pushed to {base} directly: not applied, see #{ticket.number}"
    )


def _dispatch(svc: Services, event: WorkflowDispatch) -> Outcome:
    inputs = dict(event.inputs)
    if "pr" in inputs:  # infrabot-apply.yml, started after a merge that started no workflow
        return _dispatched_apply(svc, inputs["pr"], event.sender.login)
    if inputs.get("command", "reconcile") != "reconcile":
        return Outcome(False, f"unknown workflow_dispatch command {inputs.get('command')!r}")
    result = reconcile(svc, event.sender.login, dry=inputs.get("dry_run") == "true")
    return Outcome(result.ok, f"reconcile of {result.sha[:7]}: {'ok' if result.ok else 'failed'}")


def _dispatched_apply(svc: Services, raw: str, by: str) -> Outcome:
    if not raw.isdigit():
        return Outcome(False, f"workflow_dispatch input pr must be a number, not {raw!r}")
    pr = svc.forge.pull_request(int(raw))
    if pr.state != "merged" or pr.merge_sha is None:
        return Outcome(
            False, f"PR #{pr.number} is {pr.state}: only a merged pull request is applied"
        )
    return _apply_merge(svc, pr, pr.merge_sha, pr.merged_by or by)


def _alert(svc: Services, event: AlertFired) -> Outcome:
    """Alertmanager's delivery: intake (one ticket per group), then the remediation PR."""
    return handle_alert(svc, event)


_TABLE: dict[type, Step] = {
    IssueOpened: _issue_opened,
    IssueEdited: _issue_edited,
    CommentCreated: _comment,
    ReviewSubmitted: _review,
    ReviewDismissed: _review,
    PullRequestUpdated: _pr_updated,
    PullRequestMerged: _pr_merged,
    Pushed: _pushed,
    WorkflowDispatch: _dispatch,
    AlertFired: _alert,
}
