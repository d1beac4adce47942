"""``infrabot demo --alert``: the alert loop end to end in a throwaway copy.

A container of the local estate runs a service that exposes its memory metrics; its
workload grows until the ``container_memory_headroom`` invariant breaks; Debian's
Prometheus fires the generated rule (short windows through ``alerting.window_scale``);
Alertmanager posts it to ``infrabot serve``'s ``/alerts``; the bot opens the ticket and,
from the runbook's recommendation, the remediation PR; @bob approves, @alice merges, the
merge applies; the follow-up check closes the ticket once the headroom has held.  Every
process, namespace and file it starts is stopped or removed at the end (unless --keep).
"""

from __future__ import annotations

import os
import secrets
import subprocess
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from bot.alerts.catalog import require_catalog
from bot.alerts.check import run_check
from bot.alerts.monitoring import (
    Monitoring,
    Served,
    eventually,
    free_port,
    start_monitoring,
    start_serve,
)
from bot.alerts.prometheus import HttpPrometheus
from bot.alerts.rules import DEPLOYED_RULES, render_rules
from bot.alerts.services import PROMETHEUS_ENV, intake_services
from bot.demo import Narrator, scratch_copy
from bot.estate.edit import atomic_write
from bot.flow.apply import reconcile
from bot.flow.dispatch import merge_pr
from bot.flow.services import Services
from bot.forge.base import BOT_LOGIN
from bot.localestate import LocalEstate, render_status
from bot.wiring import conversation

WINDOW_SCALE = 60  # the invariant's 2m becomes 2 s: the demo takes a minute, not an hour
WORKLOAD_MIB = 450  # of the container's 512 MiB: 12% headroom, below the 20% it must keep


def run_alert_demo(*, keep: bool, directory: Path | None, quiet: bool) -> int:
    def scale_windows(dest: Path) -> None:
        slo = dest / "infra" / "slo.yaml"
        slo.write_text(slo.read_text() + f"\nalerting:\n  window_scale: {WINDOW_SCALE}\n")
        atomic_write(dest / DEPLOYED_RULES, render_rules(require_catalog(dest).slos))
        _commit(dest, f"Alert windows divided by {WINDOW_SCALE} for the demo")

    with scratch_copy(
        directory,
        prefix="infrabot-alert-demo-",
        keep=keep,
        quiet=quiet,
        what=", alert windows scaled down",
        prepare=scale_windows,
    ) as s:
        return _walk(s.svc, s.tell, s.estate, s.stops)


def _walk(
    svc: Services, tell: Narrator, estate: LocalEstate, stops: list[Callable[[], None]]
) -> int:
    root = svc.root
    tell.step("infrabot estate up, and the estate brought to main (the status-page container)")
    tell.say(render_status(estate.up()))
    reconcile(svc, BOT_LOGIN, ticket=False)
    runtime = svc.paths.estate_runtime
    work = svc.paths.home / "monitoring"
    work.mkdir(parents=True, exist_ok=True)
    rules = work / "infrabot-slo.rules.yml"
    atomic_write(rules, render_rules(require_catalog(root).slos))

    tell.step("infrabot serve (/alerts with a bearer token), Prometheus and Alertmanager")
    prom_port = free_port()
    prom_url = f"http://127.0.0.1:{prom_port}"
    token = secrets.token_urlsafe(24)
    env = {
        **os.environ,
        "INFRABOT_ALERTS_TOKEN": token,
        "INFRABOT_WEBHOOK_SECRET": secrets.token_urlsafe(24),
        PROMETHEUS_ENV: prom_url,
    }
    served: Served = start_serve(root, work / "serve.log", env)
    stops.append(served.stop)
    monitoring: Monitoring = start_monitoring(
        work,
        rules,
        f"{served.url}/alerts",
        token,
        file_sd=runtime / "mon1" / "prometheus" / "file_sd" / "scrape.json",
        prom_port=prom_port,
    )
    stops.append(monitoring.stop)
    tell.say(f"infrabot serve at {served.url}; Prometheus at {prom_url}")

    workload = runtime / "pve1" / "containers" / "status-page.workload"
    tell.step(f"The status-page workload grows to {WORKLOAD_MIB} MiB of its 512 MiB")
    workload.write_text(f"{WORKLOAD_MIB}\n")
    tell.say("waiting for the rule to fire and Alertmanager to post it to /alerts …")
    conv = conversation(svc)
    prs = eventually(lambda: conv.list_pull_requests(), timeout=180, every=1)
    issue = conv.list_issues()[0]
    tell.say(f"ticket #{issue.number}: {issue.title}")
    for line in issue.body.splitlines():
        if line.startswith(("### Acceptance", "### Runbook", "### Remediation", "- `", "> ")):
            tell.say(f"  {line}")
    pr = prs[0]
    check = eventually(lambda: svc.records.check(pr.number), timeout=180, every=1)
    tell.say(
        f"the bot opened PR #{pr.number}: validation "
        f"{'passed' if check.validation.ok else 'FAILED'}, dry-run {check.dry_run.status.value}"
    )

    tell.step(f"@bob approves PR #{pr.number}; @alice merges it: apply, verify, evidence")
    conv.add_review(pr.number, "bob", "approved")
    with _environ(PROMETHEUS_ENV, prom_url):
        merged = merge_pr(svc, pr.number, "alice")
    tell.say(merged.message)

    tell.step("Acceptance: the ticket closes once the headroom has held for its 2 s")
    tell.say("(right after the apply if it already had, else by the follow-up `infrabot check`)")
    api = HttpPrometheus(prom_url)

    def closed() -> bool:
        report = run_check(intake_services(svc, {PROMETHEUS_ENV: prom_url}), api)
        for verdict in report.acceptance:
            tell.say(f"ticket #{verdict.ticket}: {verdict.state}: {verdict.detail}")
        return svc.forge.issue(issue.number).state == "closed"

    ok = bool(eventually(closed, timeout=120, every=2))
    state = svc.forge.issue(issue.number).state
    tell.say(f"ticket #{issue.number} is {state}: {svc.forge.comments(issue.number)[-1].body}")
    return 0 if merged.ok and ok and state == "closed" else 1


@contextmanager
def _environ(name: str, value: str) -> Iterator[None]:
    before = os.environ.get(name)
    os.environ[name] = value
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = before


def _commit(repo: Path, message: str) -> None:
    git = ["git", "-c", "user.name=infrabot-demo", "-c", "user.email=demo@infrabot.local"]
    subprocess.run([*git, "-C", str(repo), "commit", "-qam", message], check=True)
