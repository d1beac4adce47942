"""``infrabot plan``: validate and dry-run the working tree against the base branch."""

from __future__ import annotations

from bot.flow.checks import affected_hosts, dry_run
from bot.flow.services import Services
from bot.flow.trees import estate_of, snapshot
from bot.model import DryRun, RunStatus
from bot.validate import validate_tree


def plan_working_tree(svc: Services, *, all_hosts: bool = False) -> DryRun:
    base = svc.config.base_branch
    base_sha = svc.git.sha(base)
    report = validate_tree(svc.root, cache=svc.cache)
    if not report.ok:
        first = report.errors()[0]
        return DryRun(
            head_sha="working-tree",
            base_sha=base_sha,
            status=RunStatus.SKIPPED,
            hosts=(),
            error=f"validation failed ({len(report.errors())} problem(s), "
            f"first: {first.location()} {first.message}): run `infrabot validate`",
        )
    after = estate_of(svc.root, svc.cache)
    with snapshot(svc, base) as tree:
        before = estate_of(tree, svc.cache)
    hosts = (
        tuple(h.name for h in after.hosts()) if all_hosts else affected_hosts(svc, before, after)
    )
    return dry_run(
        svc,
        "working-tree",
        content=svc.root,
        after=after,
        hosts=hosts,
        head_sha="working-tree",
        base_sha=base_sha,
    )
