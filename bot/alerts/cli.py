"""The alert commands of ``infrabot``: ``slo rules``, ``runbook walk``, ``alert ingest``,
``check``.  Thin: read the input, call the pure core, print."""

from __future__ import annotations

import argparse
import difflib
import json
import os
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

from bot.alerts.catalog import require_catalog
from bot.alerts.check import render_check, run_check
from bot.alerts.drift import DriftReport, check_drift
from bot.alerts.payload import dispatch_payload, parse_alert_group
from bot.alerts.prometheus import HttpPrometheus, PrometheusEvidence
from bot.alerts.rules import DEPLOYED_RULES, render_rules
from bot.alerts.runbooks import Walk, walk
from bot.alerts.services import intake_services
from bot.alerts.slo import Alerting
from bot.cli import emit, progress_printer
from bot.errors import InputError
from bot.estate.edit import atomic_write
from bot.events.models import Source
from bot.gitrepo import GitRepo
from bot.wiring import open_services

PROMETHEUS_ENV = "INFRABOT_PROMETHEUS_URL"


def add_alert_commands(top: Any) -> None:
    """Register the commands on ``infrabot``'s subparsers (``top``)."""
    slo = top.add_parser("slo", help="SLOs and invariants (infra/slo.yaml)")
    ssub = slo.add_subparsers(dest="action", metavar="ACTION", required=True)
    p = ssub.add_parser("rules", help="generate the Prometheus rules for every SLO and invariant")
    p.add_argument(
        "--window-scale",
        type=float,
        default=None,
        metavar="N",
        help="divide every window by N (short windows for tests)",
    )
    out = p.add_mutually_exclusive_group()
    out.add_argument("--output", type=Path, default=None, help="write here instead of stdout")
    out.add_argument(
        "--check",
        action="store_true",
        help=f"exit 1, with the difference, when {DEPLOYED_RULES} is not what would be generated",
    )
    p.set_defaults(handler=slo_rules)

    book = top.add_parser("runbook", help="runbooks: decision trees for known failure modes")
    bsub = book.add_subparsers(dest="action", metavar="ACTION", required=True)
    p = bsub.add_parser("walk", help="show the path a runbook takes for an alert, and why")
    p.add_argument("name")
    p.add_argument(
        "--alert",
        type=Path,
        required=True,
        help="an Alertmanager payload (its first alert) or a JSON object of labels",
    )
    _prometheus(p, required=False)
    p.add_argument("--json", action="store_true", help="print machine-readable JSON")
    p.set_defaults(handler=runbook_walk)

    alert = top.add_parser("alert", help="alert intake")
    asub = alert.add_subparsers(dest="action", metavar="ACTION", required=True)
    p = asub.add_parser("ingest", help="ingest an Alertmanager webhook payload ('-': stdin)")
    p.add_argument("file")
    p.add_argument("--json", action="store_true", help="print machine-readable JSON")
    p.set_defaults(handler=alert_ingest)

    p = top.add_parser(
        "check", help="query Prometheus for every invariant and SLO now, and look for drift"
    )
    _prometheus(p, required=True)
    p.add_argument(
        "--no-drift",
        action="store_true",
        help="skip the check run of the whole estate against the base branch",
    )
    p.add_argument(
        "--no-draft",
        action="store_true",
        help="judge, comment and escalate, but draft no remediation PR (for a job that holds "
        "no engine or push credentials); a later check that drafts catches up",
    )
    p.add_argument("--json", action="store_true", help="print machine-readable JSON")
    p.set_defaults(handler=check)


def _prometheus(p: argparse.ArgumentParser, *, required: bool) -> None:
    p.add_argument(
        "--prometheus",
        default=None,
        metavar="URL",
        help=f"Prometheus's base URL (default: ${PROMETHEUS_ENV}"
        + (", else http://127.0.0.1:9090)" if required else "; none: not evaluated)"),
    )


def _prometheus_url(args: argparse.Namespace, default: str | None) -> str | None:
    return args.prometheus or os.environ.get(PROMETHEUS_ENV) or default


def _root(args: argparse.Namespace) -> Path:
    return GitRepo(args.repo or Path.cwd()).path


def slo_rules(args: argparse.Namespace) -> int:
    root = _root(args)
    catalog = require_catalog(root)
    slos = catalog.slos
    if args.window_scale is not None:
        if args.window_scale <= 0:
            raise InputError("--window-scale must be a positive number")
        alerting = Alerting(tiers=slos.alerting.tiers, window_scale=args.window_scale)
        slos = slos.model_copy(update={"alerting": alerting})
    try:
        text = render_rules(slos)
    except ValueError as exc:  # a window scaled below a millisecond
        raise InputError(f"cannot generate the rules: {exc}") from exc
    if args.check:
        return _check_deployed(root, text)
    if args.output is None:
        sys.stdout.write(text)
    else:
        atomic_write(args.output, text)
        print(f"wrote {args.output}", file=sys.stderr)
    return 0


def _check_deployed(root: Path, text: str) -> int:
    path = root / DEPLOYED_RULES
    try:
        deployed = path.read_text(encoding="utf-8") if path.is_file() else ""
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read {DEPLOYED_RULES}: {exc}") from exc
    if deployed == text:
        print(f"{DEPLOYED_RULES} is up to date")
        return 0
    diff = difflib.unified_diff(
        deployed.splitlines(keepends=True),
        text.splitlines(keepends=True),
        f"{DEPLOYED_RULES} (committed)",
        f"{DEPLOYED_RULES} (generated)",
    )
    sys.stdout.writelines(diff)
    print(
        f"{DEPLOYED_RULES} is out of date: infrabot slo rules --output {DEPLOYED_RULES}",
        file=sys.stderr,
    )
    return 1


def _read_json(name: str) -> Any:
    try:
        text = sys.stdin.read() if name == "-" else Path(name).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read {name}: {exc}") from exc
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(f"{name}: not JSON: {exc}") from exc


def _alert_labels(name: str) -> dict[str, str]:
    data = dispatch_payload(_read_json(name))
    if isinstance(data, dict) and "alerts" in data:
        return dict(parse_alert_group(data).alerts[0].labels)
    if isinstance(data, dict) and all(isinstance(v, str) for v in data.values()):
        return {str(k): v for k, v in data.items()}
    raise InputError(f"{name}: expected an Alertmanager payload or a JSON object of labels")


def runbook_walk(args: argparse.Namespace) -> int:
    catalog = require_catalog(_root(args))
    book = catalog.runbook(args.name)
    if book is None:
        known = ", ".join(b.name for b in catalog.runbooks) or "none"
        raise InputError(f"no runbook {args.name!r} (known: {known})")
    labels = _alert_labels(str(args.alert))
    url = _prometheus_url(args, None)
    evidence = PrometheusEvidence(HttpPrometheus(url) if url else None)
    result = walk(book, labels, evidence)
    emit(
        args,
        {"matches": book.matches(labels), "walk": result},
        render_walk(result, matches=book.matches(labels)),
    )
    return 0


def render_walk(result: Walk, *, matches: bool) -> str:
    lines = [
        f"runbook {result.runbook}"
        + ("" if matches else " (note: it does not match this alert's labels)")
    ]
    for v in result.path:
        said = {True: "yes", False: "no", None: "unknown"}[v.answer]
        lines.append(f"  {v.step}: {v.question} → {said} ({v.why})")
    if result.action is not None:
        a = result.action
        cap = f", capability {a.capability}" if a.capability else ""
        lines.append(f"  → {result.step}: {a.action} (risk {a.risk}{cap})")
    lines.append(f"outcome: {result.outcome}: {result.reason}")
    lines.append(
        "a human's approval is needed" if result.needs_approval else "policy decides who approves"
    )
    return "\n".join(lines)


def alert_ingest(args: argparse.Namespace) -> int:
    """One delivery as an event through the router: intake, then the remediation PR."""
    from bot.alerts.flow import alert_event
    from bot.router import handle

    data = dispatch_payload(_read_json(args.file))
    group = parse_alert_group(data)
    source: Source = "actions" if os.environ.get("GITHUB_ACTIONS") == "true" else "cli"
    body = json.dumps(data, sort_keys=True).encode()
    svc = open_services(args.repo or Path.cwd(), progress_printer(args.quiet or args.json))
    outcome = handle(svc, alert_event(group, body, source))
    ticket = intake_services(svc).store.ticket(group.group_key)
    emit(args, {"ok": outcome.ok, "message": outcome.message, "ticket": ticket}, outcome.message)
    return 0 if outcome.ok else 1


def check(args: argparse.Namespace) -> int:
    svc = open_services(args.repo or Path.cwd(), progress_printer(args.quiet or args.json))
    url = _prometheus_url(args, "http://127.0.0.1:9090")
    assert url is not None
    from bot.alerts.flow import rework

    api = HttpPrometheus(url)
    # the runbook walked again after a failed fix asks the Prometheus this check queries
    intake = replace(intake_services(svc), evidence=PrometheusEvidence(api), prometheus=api)
    report = run_check(intake, api, rework(svc, draft=not args.no_draft))
    drift = None if args.no_drift else check_drift(svc, intake)
    text = render_check(report) + ("" if drift is None else "\n" + render_drift_line(drift))
    emit(args, {"check": report, "drift": drift}, text)
    return 0 if report.ok and (drift is None or drift.state == "none") else 1


def render_drift_line(drift: DriftReport) -> str:
    ticket = (
        f" (ticket #{drift.ticket}{', closed' if drift.closed else ''})" if drift.ticket else ""
    )
    if drift.state == "error":
        return f"{'ERROR':9} drift: {drift.message}"
    if drift.state == "none":
        return f"{'ok':9} drift: every host matches {drift.sha[:7]}{ticket}"
    return f"{'DRIFT':9} drift: {', '.join(drift.hosts)} differ from {drift.sha[:7]}{ticket}"
