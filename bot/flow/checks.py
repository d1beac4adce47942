"""Validation and dry-run of a pull request's head (what `/plan` re-runs).

Theory of operation: the PR's *data* is validated and dry-run with the *Ansible content
and policy of the base branch*, so a PR cannot change the rules it is checked by nor
make the dry-run execute its own code.  The dry-run is limited to the hosts the change
touches (its blast radius) plus any host whose state a killed run left unknown.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from bot.estate import Estate, blast_radius, changed_pairs, write_inventory
from bot.execute import RunRequest
from bot.flow.records import PrCheck, Records
from bot.flow.render import render_plan, render_pr_body, render_run
from bot.flow.services import Services
from bot.flow.trees import estate_of, snapshot
from bot.forge.base import BOT_LOGIN
from bot.model import DryRun, RunStatus, ValidationReport
from bot.validate import validate_tree
from bot.validate.render import render_report_markdown


def check_pr(svc: Services, number: int) -> PrCheck:
    pr = svc.forge.pull_request(number)
    ticket = pr.issue or pr.number
    svc.progress(f"PR #{number}: validating {pr.head_sha[:7]}")
    changed = svc.git.changed_files(pr.base_sha, pr.head_sha)
    with snapshot(svc, pr.head_sha) as head, snapshot(svc, pr.base_sha) as base:
        _use_base_rules(base, head)
        report = validate_tree(head, changed_files=changed, now=svc.clock())
        svc.record(
            ticket,
            BOT_LOGIN,
            "validate",
            "ok" if report.ok else "failed",
            {"pr": number, "head": pr.head_sha},
            {"errors": [f.message for f in report.errors()][:20]},
        )
        _status(
            svc,
            pr.head_sha,
            "infrabot/validate",
            report.ok,
            "validation passed" if report.ok else f"{len(report.errors())} problem(s)",
        )
        before, after = estate_of(base), estate_of(head)
        envs = environments(before, after)
        run = _dry_run_or_skip(svc, number, report, base, (before, after), pr.head_sha, pr.base_sha)
    svc.record(
        ticket,
        BOT_LOGIN,
        "dryrun",
        run.status.value,
        {"pr": number, "head": pr.head_sha, "hosts": list(run.hosts)},
        {"changed": len(run.changed()), "unverified": len(run.unverified()), "log": run.log_path},
    )
    _status(svc, pr.head_sha, "infrabot/dry-run", run.ok, f"dry-run {run.status.value}")
    check = PrCheck(
        pr=number,
        head_sha=pr.head_sha,
        base_sha=pr.base_sha,
        validation=report,
        dry_run=run,
        environments=envs,
    )
    records = Records(svc.paths.runs)
    records.save_check(check)
    plan = records.plan(pr.issue) if pr.issue else None
    body = render_pr_body(
        render_plan(plan) if plan else "",
        svc.git.diff_stat(pr.base_sha, pr.head_sha),
        render_report_markdown(report),
        render_run(run, "Dry-run (check + diff)"),
        pr.issue,
    )
    svc.forge.update_pull_request(number, body=body)
    return check


def _use_base_rules(base: Path, head: Path) -> None:
    """Validate the head's data against the base's schemas, policy and lint config."""
    for rel in ("schemas", ".yamllint"):
        src, dst = base / rel, head / rel
        if dst.is_dir():
            shutil.rmtree(dst)
        elif dst.exists():
            dst.unlink()
        if src.is_dir():
            shutil.copytree(src, dst)
        elif src.exists():
            shutil.copy2(src, dst)


def _status(svc: Services, sha: str, context: str, ok: bool, description: str) -> None:
    svc.forge.set_status(sha, context, "success" if ok else "failure", description)


def environments(before: Estate, after: Estate) -> tuple[str, ...]:
    """Environments of what changed and of the hosts it lands on."""
    envs: set[str] = set()
    for pair in changed_pairs(before, after):
        for r in (r for r in pair if r is not None):
            envs.add(r.environment or "")
            for host in r.hosts():
                h = after.get("Host", host) or before.get("Host", host)
                envs.add(h.environment or "" if h else "")
    return tuple(sorted(e for e in envs if e))


def _dry_run_or_skip(
    svc: Services,
    number: int,
    report: ValidationReport,
    base: Path,
    estates: tuple[Estate, Estate],
    head_sha: str,
    base_sha: str,
) -> DryRun:
    if not report.ok:
        return DryRun(
            head_sha=head_sha,
            base_sha=base_sha,
            status=RunStatus.SKIPPED,
            hosts=(),
            error="validation failed, so the dry-run was not run: fix the problems "
            "above and comment /plan",
        )
    before, after = estates
    hosts = affected_hosts(svc, before, after)
    svc.progress(f"PR #{number}: dry-run on {', '.join(hosts) or 'no host'}")
    return dry_run(
        svc,
        f"pr-{number}",
        content=base,
        after=after,
        hosts=hosts,
        head_sha=head_sha,
        base_sha=base_sha,
    )


def affected_hosts(svc: Services, before: Estate, after: Estate) -> tuple[str, ...]:
    unknown = Records(svc.paths.runs).unknown_hosts() & {h.name for h in after.hosts()}
    return tuple(sorted(set(blast_radius(before, after)) | unknown))


def run_request(
    svc: Services,
    label: str,
    content: Path,
    after: Estate,
    hosts: tuple[str, ...],
    *,
    check: bool,
    sha: str,
    base_sha: str,
    extravars: dict[str, str] | None = None,
) -> RunRequest:
    """One run of ``content``'s Ansible on ``after`` (compiled to an inventory), on ``hosts``."""
    artifacts = svc.paths.artifacts / label
    inventory = write_inventory(
        after, svc.paths.estate_runtime, artifacts / "inventory.yml", only=hosts
    )
    return RunRequest(
        playbook_dir=content / "infra" / "ansible",
        inventory=inventory,
        limit=hosts,
        check=check,
        artifact_dir=artifacts,
        ident=f"{label}-{'dryrun' if check else 'apply'}-{sha[:7]}",
        head_sha=sha,
        base_sha=base_sha,
        extravars=extravars or {},
    )


def dry_run(
    svc: Services,
    label: str,
    *,
    content: Path,
    after: Estate,
    hosts: tuple[str, ...],
    head_sha: str,
    base_sha: str,
) -> DryRun:
    """ansible --check --diff of ``after`` with the Ansible content in ``content``.

    The same run renders, on the controller, the vhosts of the proxies it touches and returns
    them in its events; ``nginx -t`` then checks them in a scratch prefix (check mode cannot
    run a template's ``validate:``).
    """
    proxies = tuple(h.name for h in after.hosts_with_role("proxy") if h.name in hosts)
    request = run_request(
        svc,
        label,
        content,
        after,
        hosts,
        check=True,
        sha=head_sha,
        base_sha=base_sha,
        extravars={"infrabot_render_vhosts": "true"} if proxies else None,
    )
    run = svc.runner.run(request, svc.progress)
    if not proxies or run.status is not RunStatus.SUCCESSFUL:
        return run
    ok, output = _nginx_check(svc, run.rendered, proxies)
    return run.model_copy(update={"nginx_ok": ok, "nginx_check": output})


def _nginx_check(
    svc: Services, rendered: dict[str, str], proxies: tuple[str, ...]
) -> tuple[bool, str]:
    """``nginx -t`` on the vhosts the dry-run rendered for each proxy the change touches."""
    svc.paths.scratch.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="render-", dir=svc.paths.scratch) as scratch:
        results = []
        for proxy in proxies:
            if proxy not in rendered:
                results.append((proxy, False, "the dry-run rendered no vhosts for this proxy"))
                continue
            sites = Path(scratch) / proxy / "sites"
            sites.mkdir(parents=True)
            (sites / "all-vhosts.conf").write_text(rendered[proxy])
            results.append((proxy, *svc.nginx_test(sites)))
    ok = all(host_ok for _, host_ok, _ in results)
    return ok, "\n".join(f"{proxy}: {out.strip()}" for proxy, _, out in results)
