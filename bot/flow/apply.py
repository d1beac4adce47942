"""Apply a commit to the estate under the lock, verify it, and post the evidence.

The lock is taken by the caller (merge and /apply both hold it around the whole step),
so a second apply cannot interleave.  A run killed before its recap leaves its hosts
marked unknown; the next apply includes them, which reconciles them.
"""

from __future__ import annotations

from pathlib import Path

from bot.errors import InfrabotError
from bot.estate import Estate, changed_pairs
from bot.flow.checks import affected_hosts, run_request
from bot.flow.records import Records
from bot.flow.render import render_apply_failure, render_evidence
from bot.flow.services import Services
from bot.flow.trees import estate_of, snapshot
from bot.forge.base import BOT_LOGIN, PullRequest
from bot.model import DryRun, Evidence, Resource, RunStatus


def apply_commit(svc: Services, pr: PullRequest, target_sha: str, actor: str) -> Evidence:
    """Apply ``target_sha`` (the PR head for /apply, the merge commit after a merge)."""
    ticket = pr.issue or pr.number
    with snapshot(svc, pr.base_sha) as base, snapshot(svc, target_sha) as target:
        before, after = estate_of(base), estate_of(target)
        hosts = affected_hosts(svc, before, after)
        svc.record(
            ticket,
            actor,
            "apply.started",
            "running",
            {"pr": pr.number, "sha": target_sha, "hosts": list(hosts)},
        )
        problem = svc.preflight(after, hosts)
        if problem:
            run = DryRun(
                head_sha=target_sha,
                base_sha=pr.base_sha,
                status=RunStatus.FAILED,
                hosts=hosts,
                check_mode=False,
                error=problem,
            )
        else:
            run = _run(svc, pr.number, target, after, hosts, target_sha, pr.base_sha)
        _remember_unknown(svc, run)
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
        actor,
        "apply.finished",
        run.status.value,
        {"pr": pr.number, "sha": target_sha},
        {
            "changed": len(run.changed()),
            "failed": [t.task for t in run.failed()],
            "log": run.log_path,
            "error": run.error,
        },
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
    return evidence


def _run(
    svc: Services,
    number: int,
    tree: Path,
    after: Estate,
    hosts: tuple[str, ...],
    sha: str,
    base_sha: str,
) -> DryRun:
    svc.progress(f"PR #{number}: applying {sha[:7]} to {', '.join(hosts) or 'no host'}")
    request = run_request(
        svc, f"pr-{number}", tree, after, hosts, check=False, sha=sha, base_sha=base_sha
    )
    return svc.runner.run(request, svc.progress)


def _remember_unknown(svc: Services, run: DryRun) -> None:
    records = Records(svc.paths.runs)
    unknown = records.unknown_hosts()
    if run.status is RunStatus.UNKNOWN:
        unknown |= set(run.hosts)
    elif run.status is RunStatus.SUCCESSFUL:
        unknown -= set(run.hosts)
    records.set_unknown_hosts(unknown)


def removed_resources(before: Estate, after: Estate) -> list[Resource]:
    """Resources the change deletes (verification checks they are really gone)."""
    return [old for old, new in changed_pairs(before, after) if new is None and old is not None]


def changed_resources(before: Estate, after: Estate) -> list[Resource]:
    """Resources created or edited between two estates (what verification probes)."""
    return [new for _, new in changed_pairs(before, after) if new is not None]


def _post(svc: Services, pr: PullRequest, evidence: Evidence) -> None:
    body = render_evidence(evidence, pr.issue)
    if not evidence.ok:
        body += "\n" + render_apply_failure(evidence, pr.number)
    svc.forge.ensure_comment(pr.number, f"evidence-{evidence.merge_sha[:12]}", body)
    svc.record(
        pr.issue or pr.number,
        BOT_LOGIN,
        "evidence.posted",
        "ok" if evidence.ok else "failed",
        {"pr": pr.number},
    )


def reconcile(svc: Services, actor: str = BOT_LOGIN) -> DryRun:
    """Apply the base branch to every host (bootstrapping an estate, or after drift)."""
    base = svc.config.base_branch
    sha = svc.git.sha(base)
    with snapshot(svc, sha) as tree:
        after = estate_of(tree)
        hosts = tuple(h.name for h in after.hosts())
        problem = svc.preflight(after, hosts)
        if problem:
            raise InfrabotError(problem)
        with svc.lock.held(0):
            run = _run(svc, 0, tree, after, hosts, sha, sha)
        _remember_unknown(svc, run)
    return run
