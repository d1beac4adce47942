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

from bot.errors import InfrabotError
from bot.estate import Estate, blast_radius, changed_pairs, write_inventory
from bot.estate.documents import STATE_DIR
from bot.execute import RunRequest
from bot.flow.records import PrCheck
from bot.flow.remote import fetch_pull
from bot.flow.render import render_plan, render_pr_body, render_run
from bot.flow.services import Services
from bot.flow.status import post_status
from bot.flow.trees import estate_of, snapshot
from bot.forge.base import BOT_LOGIN, PullRequest
from bot.model import DryRun, Finding, RunStatus, TaskResult, ValidationReport
from bot.validate import validate_tree
from bot.validate.render import render_report_markdown


def check_pr(svc: Services, number: int) -> PrCheck:
    """Validate and dry-run the PR's head merged into its base's tip, and say so on the PR.

    Whatever happens, the head gets a status: an error half-way sets ``error`` statuses
    naming it before it propagates, so a PR is never left without a verdict.
    """
    pr = svc.forge.pull_request(number)
    try:
        fetch_pull(svc, pr)
        return _check(svc, pr)
    except InfrabotError as exc:
        for context in (VALIDATE, DRY_RUN):
            svc.forge.set_status(pr.head_sha, context, "error", f"check failed: {exc}"[:140])
        raise


VALIDATE, DRY_RUN = "infrabot/validate", "infrabot/dry-run"


def _check(svc: Services, pr: PullRequest) -> PrCheck:
    number, ticket = pr.number, pr.issue or pr.number
    for context in (VALIDATE, DRY_RUN):
        svc.forge.set_status(pr.head_sha, context, "pending", "checking")
    post_status(svc, pr, "checking")
    svc.progress(f"PR #{number}: validating {pr.head_sha[:7]} merged into {pr.base_sha[:7]}")
    merge_sha = svc.git.merge_result(
        pr.base_sha, pr.head_sha, f"infrabot check: PR #{number} into {pr.base_branch}"
    )
    if merge_sha is None:
        return _unmergeable(svc, pr)
    svc.git.keep(f"refs/infrabot/pr/{number}/merge", merge_sha)
    changed = svc.git.changed_files(pr.base_sha, pr.head_sha)
    # git's blob ids of both trees: cached verdicts are found without reading every file
    merged_ids, base_ids = (svc.git.blob_ids(sha, STATE_DIR) for sha in (merge_sha, pr.base_sha))
    with snapshot(svc, merge_sha) as merged, snapshot(svc, pr.base_sha) as base:
        _use_base_rules(base, merged)
        report = validate_tree(
            merged,
            changed_files=changed if pr.author == BOT_LOGIN else None,
            now=svc.clock(),
            cache=svc.cache,
            blobs=merged_ids,
        )
        report = _note_rules_changed(report, pr.author, changed)
        svc.record(
            ticket,
            BOT_LOGIN,
            "validate",
            "ok" if report.ok else "failed",
            {"pr": number, "head": pr.head_sha, "base": pr.base_sha},
            {"errors": [f.message for f in report.errors()][:20]},
        )
        _status(
            svc,
            pr.head_sha,
            VALIDATE,
            report.ok,
            "validation passed" if report.ok else f"{len(report.errors())} problem(s)",
        )
        before = estate_of(base, svc.cache, base_ids)
        after = estate_of(merged, svc.cache, merged_ids)
        envs = environments(before, after)
        run = _dry_run_or_skip(svc, number, report, base, (before, after), merge_sha, pr.base_sha)
        run = _separate_drift(svc, number, run, base, before)
    return _conclude(
        svc,
        pr,
        PrCheck(
            pr=number,
            head_sha=pr.head_sha,
            base_sha=pr.base_sha,
            merge_sha=merge_sha,
            merge_tree=svc.git.tree_of(merge_sha),
            validation=report,
            dry_run=run,
            environments=envs,
        ),
    )


def _unmergeable(svc: Services, pr: PullRequest) -> PrCheck:
    why = (
        f"{pr.head_branch} ({pr.head_sha[:7]}) does not merge cleanly into {pr.base_branch} "
        f"({pr.base_sha[:7]}): rebase it on {pr.base_branch}, push, and comment /plan"
    )
    report = ValidationReport(checks=("merge",), findings=(Finding(check="paths", message=why),))
    run = DryRun(
        head_sha=pr.head_sha,
        base_sha=pr.base_sha,
        status=RunStatus.SKIPPED,
        hosts=(),
        error="the head does not merge into the base, so nothing was dry-run",
    )
    svc.record(
        pr.issue or pr.number, BOT_LOGIN, "validate", "failed", {"pr": pr.number}, {"errors": [why]}
    )
    _status(svc, pr.head_sha, VALIDATE, False, "does not merge cleanly")
    check = PrCheck(
        pr=pr.number,
        head_sha=pr.head_sha,
        base_sha=pr.base_sha,
        validation=report,
        dry_run=run,
    )
    return _conclude(svc, pr, check)


def _note_rules_changed(
    report: ValidationReport, author: str, changed: list[str]
) -> ValidationReport:
    """A person's PR may change more than desired state; say what the check did not vouch
    for (it used the base's rules and Ansible content)."""
    if author == BOT_LOGIN:
        return report
    outside = [f for f in changed if not f.startswith("infra/state/")]
    if not outside:
        return report
    shown = ", ".join(outside[:10]) + (" …" if len(outside) > 10 else "")
    note = Finding(
        check="paths",
        severity="warning",
        message=f"this PR also changes {shown}: the check used {len(outside)} such file(s) "
        "from the base branch (schemas, policy, Ansible content), so review them yourself; "
        "the apply after merging runs them",
    )
    return report.model_copy(update={"findings": (*report.findings, note)})


def _conclude(svc: Services, pr: PullRequest, check: PrCheck) -> PrCheck:
    run = check.dry_run
    svc.record(
        pr.issue or pr.number,
        BOT_LOGIN,
        "dryrun",
        run.status.value,
        {"pr": pr.number, "head": pr.head_sha, "hosts": list(run.hosts)},
        {
            "changed": len(run.changed()),
            "drift": len(run.drift),
            "unverified": len(run.unverified()),
            "log": run.log_path,
        },
    )
    _status(svc, pr.head_sha, DRY_RUN, run.ok, f"dry-run {run.status.value}")
    records = svc.records
    records.save_check(check)
    plan = records.plan(pr.issue) if pr.issue else None
    body = render_pr_body(
        render_plan(plan) if plan else "",
        svc.git.diff_stat(pr.base_sha, pr.head_sha),
        render_report_markdown(check.validation),
        render_run(run, "Dry-run (check + diff)", svc.log_link(run.log_path)),
        pr.issue,
    )
    svc.forge.update_pull_request(pr.number, body=body)
    ok = check.validation.ok and run.ok
    post_status(svc, pr, "checked" if ok else "check failed", _summary(check))
    return check


def _summary(check: PrCheck) -> str:
    run, report = check.dry_run, check.validation
    validation = "passed" if report.ok else f"{len(report.errors())} problem(s)"
    hosts = ", ".join(run.hosts) or "no host"
    drift = f", {len(run.drift)} from drift" if run.drift else ""
    return (
        f"Validation {validation} · dry-run {run.status.value} on {hosts} "
        f"({len(run.changed())} change(s) predicted{drift}, {len(run.unverified())} unverified)"
    )


def _same(task: TaskResult) -> tuple[str, str, str, str]:
    """What makes two predicted changes the same change."""
    return (task.host, task.task, task.diff, task.message)


def _separate_drift(svc: Services, number: int, run: DryRun, base: Path, before: Estate) -> DryRun:
    """Tell the change's own predicted changes from drift: when the estate is not known to
    be at the base, the same hosts are dry-run at the base too, and what that run predicts
    as well is drift, not the change."""
    records = svc.records
    if run.status is not RunStatus.SUCCESSFUL or not run.changed():
        return run
    if records.applied() == run.base_sha and not records.unknown_hosts():
        return run
    svc.progress(f"PR #{number}: the estate may have drifted; dry-run of the base for contrast")
    at_base = dry_run(
        svc,
        f"pr-{number}-base",
        content=base,
        after=before,
        hosts=run.hosts,
        head_sha=run.base_sha,
        base_sha=run.base_sha,
    )
    if at_base.status is not RunStatus.SUCCESSFUL:
        return run
    drifted = {_same(t) for t in at_base.changed()}
    own = tuple(t for t in run.tasks if t.status != "changed" or _same(t) not in drifted)
    drift = tuple(t for t in run.tasks if t.status == "changed" and _same(t) in drifted)
    return run.model_copy(update={"tasks": own, "drift": drift})


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
    unknown = svc.records.unknown_hosts() & {h.name for h in after.hosts()}
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

    The same run renders, on the controller, the vhosts of the proxies and the DNS files of the
    DNS hosts it touches and returns them in its events; ``nginx -t`` and ``dnsmasq --test``
    then check them in a scratch folder (check mode cannot run a template's ``validate:``).
    """
    proxies = tuple(h.name for h in after.hosts_with_role("proxy") if h.name in hosts)
    dns = tuple(h.name for h in after.hosts_with_role("dns") if h.name in hosts)
    render = {"infrabot_render_vhosts": "true"} if proxies else {}
    render |= {"infrabot_render_dns": "true"} if dns else {}
    request = run_request(
        svc,
        label,
        content,
        after,
        hosts,
        check=True,
        sha=head_sha,
        base_sha=base_sha,
        extravars=render or None,
    )
    run = svc.runner.run(request, svc.progress)
    if run.status is not RunStatus.SUCCESSFUL:
        return run
    if proxies:
        ok, output = _nginx_check(svc, run.rendered, proxies)
        run = run.model_copy(update={"nginx_ok": ok, "nginx_check": output})
    if dns:
        ok, output = _dnsmasq_check(svc, run.rendered_dns, dns)
        run = run.model_copy(update={"dnsmasq_ok": ok, "dnsmasq_check": output})
    return run


def _dnsmasq_check(
    svc: Services, rendered: dict[str, dict[str, str]], servers: tuple[str, ...]
) -> tuple[bool, str]:
    """``dnsmasq --test`` on the DNS files the dry-run rendered for each DNS host it touches:
    the apply's own ``validate:`` comes too late (other hosts may have changed by then)."""
    results = [
        (host, *svc.dnsmasq_test(rendered[host]))
        if host in rendered
        else (host, False, "the dry-run rendered no DNS files for this host")
        for host in servers
    ]
    ok = all(host_ok for _, host_ok, _ in results)
    return ok, "\n".join(f"{host}: {out.strip() or 'ok'}" for host, _, out in results)


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
