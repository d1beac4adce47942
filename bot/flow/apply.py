"""Apply a commit to the estate under the lock, verify it, and post the evidence.

Theory of operation
-------------------
The lock is taken by the caller (merge, /apply and reconcile hold it around the whole
step), so a second apply cannot interleave.  Before the first task runs, the apply's
intent (commit, hosts, PR, ticket, process) is written durably; its outcome replaces it
when the run ends.  A run killed before its recap leaves its hosts marked unknown, and an
intent with no outcome whose process is gone is found by the next command
(``recover_interrupted``): it tells the PR and the ticket, marks the hosts unknown so the
next run includes them, and releases the lock.  ``Records.applied`` remembers the commit
the whole estate was last brought to, so a dry-run can tell drift from a change.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict

from bot.errors import InfrabotError
from bot.estate import Estate, changed_pairs
from bot.flow.checks import affected_hosts, dry_run, run_request
from bot.flow.render import render_apply_failure, render_evidence
from bot.flow.services import Services
from bot.flow.status import post_status
from bot.flow.trees import estate_of, snapshot
from bot.forge.base import BOT_LOGIN, PullRequest
from bot.ledger import ApplyIntent
from bot.model import DryRun, Evidence, Resource, RunStatus


def apply_commit(
    svc: Services, pr: PullRequest, target_sha: str, base_sha: str, actor: str
) -> Evidence:
    """Apply ``target_sha`` (the merge commit, or for /apply the checked merge result) to
    the hosts the change from ``base_sha`` touches, plus any host whose state is unknown."""
    ticket = pr.issue or pr.number
    post_status(svc, pr, "applying", f"Applying `{target_sha[:7]}`.")
    with snapshot(svc, base_sha) as base, snapshot(svc, target_sha) as target:
        before, after = estate_of(base, svc.cache), estate_of(target, svc.cache)
        hosts = affected_hosts(svc, before, after)
        run = _apply(svc, pr.number, ticket, actor, target, after, hosts, target_sha, base_sha)
        verifications = (
            svc.verifier.verify(
                after, changed_resources(before, after), removed_resources(before, after)
            )
            if run.status is RunStatus.SUCCESSFUL
            else []
        )
    evidence = Evidence(
        pr=pr.number,
        merge_sha=target_sha,
        apply=run,
        verifications=tuple(verifications),
        at=svc.clock(),
    )
    svc.record(
        ticket,
        BOT_LOGIN,
        "verify",
        "ok" if evidence.ok else "failed",
        {},
        {"checks": [v.model_dump() for v in verifications]},
    )
    _post(svc, pr, evidence)
    post_status(
        svc,
        pr,
        "applied" if evidence.ok else "apply failed",
        f"`{target_sha[:7]}`: {evidence.apply.status.value} on "
        f"{', '.join(evidence.apply.hosts) or 'no host'}.",
    )
    return evidence


def _apply(
    svc: Services,
    number: int,
    ticket: int,
    actor: str,
    tree: Path,
    after: Estate,
    hosts: tuple[str, ...],
    sha: str,
    base_sha: str,
) -> DryRun:
    """One apply with its intent recorded before and its outcome after."""
    problem = svc.preflight(after, hosts)
    if problem:
        return DryRun(
            head_sha=sha,
            base_sha=base_sha,
            status=RunStatus.FAILED,
            hosts=hosts,
            check_mode=False,
            error=problem,
        )
    intent = svc.intents.begin(pr=number, ticket=ticket, sha=sha, hosts=hosts, actor=actor)
    svc.record(
        ticket,
        actor,
        "apply.started",
        "running",
        {"pr": number, "sha": sha, "hosts": list(hosts)},
        {"intent": intent.id},
    )
    svc.progress(f"{_label(number)}: applying {sha[:7]} to {', '.join(hosts) or 'no host'}")
    request = run_request(
        svc, f"pr-{number}", tree, after, hosts, check=False, sha=sha, base_sha=base_sha
    )
    run = svc.runner.run(request, svc.progress)
    _remember(svc, run, sha)
    svc.intents.finish(intent, run.status.value)
    svc.record(
        ticket,
        actor,
        "apply.finished",
        run.status.value,
        {"pr": number, "sha": sha},
        {
            "changed": len(run.changed()),
            "failed": [t.task for t in run.failed()],
            "log": run.log_path,
            "error": run.error,
        },
    )
    return run


def _label(number: int) -> str:
    return f"PR #{number}" if number else "reconcile"


def _remember(svc: Services, run: DryRun, sha: str) -> None:
    """Hosts a killed run leaves unknown, and the commit the whole estate is now at."""
    records = svc.records
    unknown = records.unknown_hosts()
    if run.status is RunStatus.UNKNOWN:
        unknown |= set(run.hosts)
    elif run.status is RunStatus.SUCCESSFUL:
        unknown -= set(run.hosts)
    records.set_unknown_hosts(unknown)
    ok = run.status is RunStatus.SUCCESSFUL and not unknown
    records.set_applied(sha if ok else None)


def removed_resources(before: Estate, after: Estate) -> list[Resource]:
    """Resources the change deletes (verification checks they are really gone)."""
    return [old for old, new in changed_pairs(before, after) if new is None and old is not None]


def changed_resources(before: Estate, after: Estate) -> list[Resource]:
    """Resources created or edited between two estates (what verification probes)."""
    return [new for _, new in changed_pairs(before, after) if new is not None]


def _post(svc: Services, pr: PullRequest, evidence: Evidence) -> None:
    plan = svc.records.plan(pr.issue) if pr.issue else None
    criteria = plan.acceptance_criteria if plan else ()
    log = svc.log_link(evidence.apply.log_path)
    body = render_evidence(evidence, pr.issue, criteria, log)
    if not evidence.ok:
        body += "\n" + render_apply_failure(
            evidence, pr.number, merged=pr.state == "merged", issue=pr.issue
        )
    svc.forge.ensure_comment(pr.number, f"evidence-{evidence.merge_sha[:12]}", body)
    svc.record(
        pr.issue or pr.number,
        BOT_LOGIN,
        "evidence.posted",
        "ok" if evidence.ok else "failed",
        {"pr": pr.number},
    )


# -- interrupted applies --------------------------------------------------------------


def recover_interrupted(svc: Services) -> list[ApplyIntent]:
    """Report every apply that never ended: the PR and ticket are told, its hosts become
    unknown (the next run includes them), its lock is released.  Returns what it found."""
    found = svc.intents.interrupted()
    for intent in found:
        records = svc.records
        records.set_unknown_hosts(records.unknown_hosts() | set(intent.hosts))
        records.set_applied(None)
        hosts = ", ".join(intent.hosts) or "no host"
        text = (
            f"### ⚠️ Apply interrupted\n\nThe apply of `{intent.sha[:7]}` (started "
            f"{intent.started:%Y-%m-%d %H:%M:%S %Z} by @{intent.actor}) was interrupted: the "
            f"state of {hosts} is unknown. The next apply includes those hosts; "
            "`infrabot reconcile` brings the whole estate to the base branch now.\n"
        )
        topic = f"interrupted-{intent.id}"
        if intent.pr:
            svc.forge.ensure_comment(intent.pr, topic, text)
        if intent.ticket and intent.ticket != intent.pr:
            svc.forge.ensure_comment(intent.ticket, topic, text)
        holder = svc.lock.unlock()
        svc.intents.finish(intent, "interrupted")
        svc.record(
            intent.ticket or intent.pr,
            BOT_LOGIN,
            "apply.interrupted",
            "unknown",
            {"pr": intent.pr, "sha": intent.sha, "hosts": list(intent.hosts)},
            {"intent": intent.id, "lock_released": holder.released},
        )
    return found


# -- reconcile ------------------------------------------------------------------------


def drifted_hosts(svc: Services, tree: Path, estate: Estate, sha: str) -> DryRun:
    """A check run of the base branch on every host: the hosts it would change differ."""
    hosts = tuple(h.name for h in estate.hosts())
    return dry_run(
        svc, "reconcile", content=tree, after=estate, hosts=hosts, head_sha=sha, base_sha=sha
    )


class ReconcileResult(BaseModel):
    """What a reconcile found (``check``) and did (``apply``: None when nothing differed or
    it was a dry run), and the ticket that carries its evidence."""

    model_config = ConfigDict(frozen=True)

    sha: str
    check: DryRun
    apply: DryRun | None = None
    ticket: int | None = None
    evidence: Evidence | None = None

    @property
    def hosts(self) -> tuple[str, ...]:
        return self.apply.hosts if self.apply else ()

    @property
    def ok(self) -> bool:
        if self.check.status is not RunStatus.SUCCESSFUL:
            return False
        return self.evidence is None or self.evidence.ok


def reconcile(
    svc: Services, actor: str = BOT_LOGIN, *, dry: bool = False, ticket: bool = True
) -> ReconcileResult:
    """Bring the estate to the base branch: a check run finds the hosts that differ (and the
    unknown ones); those are applied under the lock, with intent, and the evidence goes on a
    ticket of its own (``ticket=False``: only returned, as when ``estate up`` bootstraps)."""
    recover_interrupted(svc)
    base = svc.config.base_branch
    sha = svc.git.sha(base)
    with snapshot(svc, sha) as tree:
        estate = estate_of(tree, svc.cache)
        every = tuple(h.name for h in estate.hosts())
        problem = svc.preflight(estate, every)
        if problem:
            raise InfrabotError(problem)
        with svc.lock.held(0):
            svc.progress(f"reconcile: dry-run of {base} ({sha[:7]}) on every host")
            check = drifted_hosts(svc, tree, estate, sha)
            if check.status is not RunStatus.SUCCESSFUL:
                return ReconcileResult(sha=sha, check=check)
            unknown = svc.records.unknown_hosts() & set(every)
            differ = {t.host for t in check.changed()} | unknown
            hosts = tuple(h for h in every if h in differ)
            if not hosts:
                svc.records.set_applied(sha)
            if dry or not hosts:
                return ReconcileResult(sha=sha, check=check)
            number = _reconcile_ticket(svc, actor, sha, hosts) if ticket else 0
            run = _apply(svc, 0, number, actor, tree, estate, hosts, sha, sha)
            resources = [r for r in estate.resources.values() if set(r.hosts()) & set(hosts)]
            verifications = (
                svc.verifier.verify(estate, resources, [])
                if run.status is RunStatus.SUCCESSFUL
                else []
            )
    evidence = Evidence(
        pr=0, merge_sha=sha, apply=run, verifications=tuple(verifications), at=svc.clock()
    )
    if not number:
        return ReconcileResult(sha=sha, check=check, apply=run, evidence=evidence)
    body = render_evidence(evidence, number, log=svc.log_link(run.log_path))
    svc.forge.ensure_comment(number, f"evidence-{sha[:12]}", body)
    svc.record(
        number,
        actor,
        "reconcile.finished",
        run.status.value,
        {"sha": sha},
        {"hosts": list(hosts), "ok": evidence.ok},
    )
    if evidence.ok:
        svc.forge.close_issue(number, f"The estate is at {base} ({sha[:7]}).")
    return ReconcileResult(sha=sha, check=check, apply=run, ticket=number, evidence=evidence)


def _reconcile_ticket(svc: Services, actor: str, sha: str, hosts: tuple[str, ...]) -> int:
    base = svc.config.base_branch
    issue = svc.forge.create_issue(
        f"Reconcile the estate to {base} ({sha[:7]})",
        f"{', '.join(hosts)} differ from {base} (drift, or an interrupted apply): "
        "infrabot applies the base branch to them.",
        actor,
        labels=("reconcile",),
    )
    svc.record(
        issue.number, actor, "reconcile.started", "running", {"sha": sha, "hosts": list(hosts)}
    )
    return issue.number
