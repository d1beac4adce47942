"""Ticket → plan → branch → pull request.  The engine drafts; everything here is fixed."""

from __future__ import annotations

import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from pydantic import ValidationError

from bot.engines.base import EngineContext
from bot.engines.files import TreeFiles
from bot.errors import InfrabotError
from bot.estate import apply_changes
from bot.flow.checks import affected_hosts, check_pr, dry_run
from bot.flow.remote import publish
from bot.flow.render import (
    render_clarification,
    render_issue_summary,
    render_plan,
    render_stopped,
)
from bot.flow.services import Services
from bot.flow.trees import capabilities_of, estate_of, files_read, snapshot
from bot.forge.base import BOT_LOGIN, bot_topics
from bot.model import (
    ChangeAction,
    ChangeSet,
    Clarification,
    DryRun,
    EngineUsage,
    Finding,
    Plan,
    Stopped,
    Ticket,
    ValidationReport,
    parse_resource,
)
from bot.validate import validate_tree
from bot.validate.policy import load_policy, outside_allowed_paths


@dataclass(frozen=True)
class IssueOutcome:
    """What handling an issue came to: a question, a refusal, or a PR."""

    kind: str  # "asked" | "failed" | "pr"
    message: str
    pr: int | None = None


def load_ticket(svc: Services, number: int) -> Ticket:
    issue = svc.forge.issue(number)
    replies = tuple(c.body for c in svc.forge.comments(number) if c.author != BOT_LOGIN)
    return Ticket(
        number=issue.number,
        title=issue.title,
        body=issue.body,
        author=issue.author,
        replies=replies,
    )


def branch_name(ticket: Ticket) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", ticket.title.lower()).strip("-")[:40].strip("-")
    return f"infrabot/{ticket.number}-{slug or 'change'}"


def handle_issue(svc: Services, number: int, ticket: Ticket | None = None) -> IssueOutcome:
    """Draft and open the PR for issue ``number``; ``ticket``: what to draft from instead of
    the issue's text (an alert's ticket drafts its runbook's request)."""
    ticket = ticket or load_ticket(svc, number)
    base = svc.config.base_branch
    svc.progress(f"#{number}: reading the estate at {base}")
    with snapshot(svc, base) as tree:
        ctx = EngineContext(
            estate=estate_of(tree, svc.cache),
            capabilities=capabilities_of(tree),
            read=files_read(tree),
            files=TreeFiles(tree),
            checks=DraftChecks(svc, tree),
        )
        svc.progress(f"#{number}: drafting a plan ({svc.engine.name} engine)")
        plan = svc.engine.architect(ticket, ctx)
        _record_usage(svc, ticket, plan)
        if isinstance(plan, Clarification):
            return _ask(svc, ticket, plan)
        if isinstance(plan, Stopped):
            return _stopped(svc, ticket, plan)
        svc.progress(f"#{number}: drafting the change ({plan.engine} engine)")
        changes = svc.engine.implement(ticket, plan, ctx)
        _record_usage(svc, ticket, changes)
    if isinstance(changes, Clarification):
        return _ask(svc, ticket, changes)
    if isinstance(changes, Stopped):
        return _stopped(svc, ticket, changes)
    if changes.usage is not None:
        plan = plan.model_copy(update={"usage": (*plan.usage, changes.usage)})
    svc.records.save_plan(plan)
    return _open_pr(svc, ticket, plan, changes)


def _plan_posted(svc: Services, ticket: Ticket, plan: Plan, where: int) -> None:
    svc.record(
        ticket.number,
        svc.engine.name,
        "plan.posted",
        "ok",
        {"capabilities": list(plan.capabilities)},
        {"risk": plan.risk.value, "on": where},
    )


class DraftChecks:
    """validate and dry-run of an engine's draft on a scratch copy of the base tree."""

    def __init__(self, svc: Services, base: Path) -> None:
        self.svc, self.base = svc, base

    def _applied(self, changes: ChangeSet, scratch: Path) -> list[str]:
        shutil.copytree(self.base, scratch, symlinks=True)
        return apply_changes(scratch, changes)

    def validate(self, changes: ChangeSet) -> ValidationReport:
        self.svc.paths.scratch.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix="draft-", dir=self.svc.paths.scratch) as tmp:
            head = Path(tmp) / "tree"
            try:
                written = self._applied(changes, head)
            except InfrabotError as exc:
                return ValidationReport(
                    checks=("paths",), findings=(Finding(check="paths", message=str(exc)),)
                )
            return validate_tree(
                head, changed_files=written, now=self.svc.clock(), cache=self.svc.cache
            )

    def dry_run(self, changes: ChangeSet) -> DryRun:
        self.svc.paths.scratch.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix="draft-", dir=self.svc.paths.scratch) as tmp:
            head = Path(tmp) / "tree"
            self._applied(changes, head)
            before, after = estate_of(self.base, self.svc.cache), estate_of(head, self.svc.cache)
            return dry_run(
                self.svc,
                "draft",
                content=self.base,
                after=after,
                hosts=affected_hosts(self.svc, before, after),
                head_sha="draft",
                base_sha="base",
            )


def _record_usage(
    svc: Services, ticket: Ticket, result: Plan | ChangeSet | Clarification | Stopped
) -> None:
    """Which engine and role drafted, and what it spent (tokens, cost) in the trajectory."""
    usages: tuple[EngineUsage, ...] = ()
    if isinstance(result, Plan):
        usages = result.usage
    elif isinstance(result, ChangeSet | Stopped) and result.usage is not None:
        usages = (result.usage,)
    for usage in usages:
        svc.record(
            ticket.number,
            usage.engine,
            "engine.usage",
            "ok",
            {"role": usage.role, "model": usage.model},
            usage.model_dump(mode="json", exclude={"engine", "role", "model"}),
        )


def _stopped(svc: Services, ticket: Ticket, stopped: Stopped) -> IssueOutcome:
    message = (
        f"The drafting agent stopped before it finished: {stopped.reason}. Nothing was drafted "
        "and no pull request was opened. Comment /plan to try again, or narrow the request."
    )
    svc.forge.ensure_comment(ticket.number, "failure", render_stopped(message))
    svc.record(
        ticket.number, svc.engine.name, "engine.stopped", "failed", {}, {"reason": stopped.reason}
    )
    return IssueOutcome("failed", message)


def _ask(svc: Services, ticket: Ticket, question: Clarification) -> IssueOutcome:
    svc.forge.ensure_comment(ticket.number, "clarify", render_clarification(question))
    svc.record(
        ticket.number,
        svc.engine.name,
        "engine.clarify",
        "asked",
        {"replies": len(ticket.replies)},
        {"questions": list(question.questions)},
    )
    return IssueOutcome("asked", "\n".join(question.questions))


def drafting_problems(changes: ChangeSet) -> list[str]:
    """An engine's draft is input like any other: every document must be a valid resource
    whose kind and name match the change, before anything is written."""
    problems = []
    for change in changes.changes:
        if change.action is ChangeAction.DELETE:
            continue
        try:
            resource = parse_resource(change.data)
        except ValidationError as exc:
            err = exc.errors()[0]
            where = ".".join(str(p) for p in err["loc"])
            problems.append(f"{change.kind} {change.name!r}: {where}: {err['msg']}")
            continue
        if resource.key != (change.kind, change.name):
            problems.append(
                f"{change.kind} {change.name!r}: the document is "
                f"{resource.key[0]} {resource.key[1]!r}"
            )
    return problems


def _open_pr(svc: Services, ticket: Ticket, plan: Plan, changes: ChangeSet) -> IssueOutcome:
    """The full plan is posted once: in the PR's body, and the issue gets a summary and a
    link; only when no PR opens does the issue get the whole plan, beside why."""
    problems = drafting_problems(changes)
    if problems:
        return _fail_plan(
            svc,
            ticket,
            plan,
            "the drafted change is not valid desired state: " + "; ".join(problems),
        )
    base = svc.config.base_branch
    branch = branch_name(ticket)
    svc.progress(f"#{ticket.number}: writing {len(changes.changes)} change(s) on {branch}")
    existed = svc.git.branch_exists(branch)
    try:
        sha = svc.git.commit_on_branch(
            branch,
            base,
            lambda tree: apply_changes(tree, changes),
            f"{changes.summary}\n\nFor #{ticket.number}: {ticket.title}",
            BOT_LOGIN,
            svc.paths.scratch,
        )
    except InfrabotError as exc:
        return _fail_plan(svc, ticket, plan, f"I could not write the change: {exc}")
    if sha is None:
        return _fail_plan(
            svc, ticket, plan, "the change is already in the desired state: nothing to do"
        )
    with snapshot(svc, base) as tree:
        outside = outside_allowed_paths(load_policy(tree), svc.git.changed_files(base, branch))
    if outside:
        if not existed:
            svc.git.delete_branch(branch)
        return _fail_plan(
            svc,
            ticket,
            plan,
            f"the change touches paths outside the desired state: {', '.join(outside)}",
        )
    publish(svc, branch, sha)
    pr = svc.forge.open_pull_request(
        branch=branch,
        base=base,
        title=f"{ticket.title} (#{ticket.number})",
        body=render_plan(plan),
        issue=ticket.number,
        author=BOT_LOGIN,
    )
    svc.record(
        ticket.number,
        BOT_LOGIN,
        "pr.opened",
        "ok",
        {"branch": branch},
        {"pr": pr.number, "head": sha},
    )
    _plan_posted(svc, ticket, plan, pr.number)
    _summarize_on_issue(svc, ticket, plan, pr.number, branch)
    check_pr(svc, pr.number)
    return IssueOutcome("pr", f"opened PR #{pr.number}", pr=pr.number)


def _summarize_on_issue(svc: Services, ticket: Ticket, plan: Plan, pr: int, branch: str) -> None:
    """The issue's one comment about the work: the plan's summary and the PR's link (a full
    plan left by an earlier attempt that opened no PR is cut down to a pointer to it)."""
    if "plan" in bot_topics(svc.forge, ticket.number):
        note = f"_An earlier plan stood here; the current one is on pull request #{pr}._"
        svc.forge.ensure_comment(ticket.number, "plan", note)
    svc.forge.ensure_comment(ticket.number, "pr", render_issue_summary(plan, pr, branch))


def _fail_plan(svc: Services, ticket: Ticket, plan: Plan, message: str) -> IssueOutcome:
    svc.forge.ensure_comment(ticket.number, "plan", render_plan(plan))
    _plan_posted(svc, ticket, plan, ticket.number)
    return _fail(svc, ticket, message)


def _fail(svc: Services, ticket: Ticket, message: str) -> IssueOutcome:
    svc.forge.ensure_comment(ticket.number, "failure", render_stopped(message))
    svc.record(ticket.number, BOT_LOGIN, "pr.failed", "failed", {}, {"message": message})
    return IssueOutcome("failed", message)
