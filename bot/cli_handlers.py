"""One function per ``infrabot`` subcommand: open the services, call the pipeline, print."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Callable
from pathlib import Path

from pydantic import ValidationError

from bot import terminal
from bot.alerts.demo import run_alert_demo
from bot.alerts.flow import alert_event
from bot.alerts.payload import parse_alert_json
from bot.cli import emit, progress_printer, read_body
from bot.config import Paths, load_config
from bot.demo import run_demo
from bot.engines.base import Engine
from bot.engines.offline import OfflineEngine
from bot.errors import InputError
from bot.estate.documents import STATE_DIR
from bot.evals import load_corpus, run_eval
from bot.evals.run import render_table
from bot.events import Ignored, Refused, from_payload, parse_actions
from bot.flow.apply import ReconcileResult, reconcile, recover_interrupted
from bot.flow.checks import check_pr
from bot.flow.dispatch import Outcome, handle_comment, merge_pr, revert_pr
from bot.flow.localplan import plan_working_tree
from bot.flow.render import render_criteria, render_run, summarize_run, verification_table
from bot.flow.services import Services
from bot.flow.tickets import handle_issue
from bot.flow.trees import estate_of
from bot.forge.base import BOT_LOGIN, Comment
from bot.gitrepo import GitRepo
from bot.localestate import LocalEstate, render_status
from bot.model import RunStatus
from bot.router import handle
from bot.server.alerts import ALERTMANAGER, AlertCredentials
from bot.server.queue import Delivery
from bot.server.serve import serve as run_server
from bot.server.settings import SECRET_ENV, ServerSettings
from bot.validate import validate_tree
from bot.validate.cache import ValidationCache
from bot.validate.render import render_report_markdown
from bot.wiring import claude_engine, conversation, open_services


def _services(args: argparse.Namespace) -> Services:
    """The services, after reporting any apply that was interrupted (every command does)."""
    root = args.repo or Path.cwd()
    svc = open_services(root, progress_printer(args.quiet or getattr(args, "json", False)))
    recover_interrupted(svc)
    return svc


def _user(args: argparse.Namespace, svc: Services) -> str:
    user = args.user or os.environ.get("INFRABOT_USER")
    known = ", ".join(sorted(svc.config.users)) or "(none: add users to infrabot.yaml)"
    if not user:
        raise InputError(f"say who you are with --as USER (known users: {known})")
    if user not in svc.config.users:
        raise InputError(f"unknown user {user!r} (known users: {known})")
    return user


def _text(args: argparse.Namespace, inline: str | None, flag: str) -> str:
    """The text given inline or with --body-file (one or the other)."""
    if inline is not None and args.body_file is not None:
        raise InputError(f"give the text as {flag} or with --body-file, not both")
    if args.body_file is not None:
        return read_body(args.body_file)
    return inline or ""


def _show(args: argparse.Namespace, md: str) -> str:
    """A body of markdown as the terminal shows it (raw with --json)."""
    return terminal.markdown(md, color=sys.stdout.isatty())


def _comment_lines(args: argparse.Namespace, comments: list[Comment]) -> list[str]:
    lines = []
    for c in comments:
        lines += [f"--- @{terminal.safe(c.author)} ({c.created_at:%Y-%m-%d %H:%M}) ---"]
        lines += [_show(args, c.body), ""]
    return lines


def issue_open(args: argparse.Namespace) -> int:
    body = _text(args, args.body, "--body")
    svc = _services(args)
    user = _user(args, svc)
    issue = conversation(svc).create_issue(args.title, body, user)
    svc.record(issue.number, user, "ticket.opened", "ok", {"title": args.title[:200]})
    outcome = handle_issue(svc, issue.number)
    data = {
        "issue": issue.number,
        "outcome": outcome.kind,
        "message": outcome.message,
        "pr": outcome.pr,
    }
    lines = [f"Opened issue #{issue.number}: {args.title}"]
    if outcome.pr is not None:
        lines.append(_pr_summary(svc, outcome.pr))
        lines.append(f"Next: infrabot pr show {outcome.pr}")
    elif outcome.kind == "asked":
        lines.append("The bot needs more before it can plan this:")
        lines += [f"  {q}" for q in outcome.message.splitlines()]
        lines.append(f"Answer with: infrabot issue comment {issue.number} 'key: value'")
    else:
        lines.append(f"The bot stopped: {outcome.message}")
    emit(args, data, "\n".join(lines))
    return 0


def _pr_summary(svc: Services, number: int) -> str:

    check = svc.records.check(number)
    pr = svc.forge.pull_request(number)
    if check is None:
        return f"PR #{number} ({pr.head_branch})"
    run = check.dry_run
    val = "passed" if check.validation.ok else f"{len(check.validation.errors())} problem(s)"
    changed = sum(h.changed for h in run.recap)
    return (
        f"PR #{number} ({pr.head_branch}): validation {val}; dry-run {run.status.value} "
        f"on {', '.join(run.hosts) or 'no host'} ({changed} change(s) predicted, "
        f"{len(run.unverified())} unverified)"
    )


def issue_show(args: argparse.Namespace) -> int:
    svc = _services(args)
    issue = svc.forge.issue(args.number)
    comments = svc.forge.comments(args.number)
    events = svc.trajectory.read(args.number)
    data = {"issue": issue, "comments": comments, "trajectory": events}
    lines = [
        terminal.safe(f"#{issue.number} [{issue.state}] {issue.title}  (by @{issue.author})"),
        "",
    ]
    if issue.body:
        lines += [_show(args, issue.body), ""]
    lines += _comment_lines(args, comments)
    lines.append("Trajectory:")
    lines += [f"  {e.time:%H:%M:%S} {e.step:<16} {e.outcome:<10} @{e.actor}" for e in events]
    emit(args, data, "\n".join(lines))
    return 0


def issue_list(args: argparse.Namespace) -> int:
    svc = _services(args)
    issues = conversation(svc).list_issues(args.state)
    text = "\n".join(f"#{i.number:<4} {i.state:<7} {i.title}  (@{i.author})" for i in issues)
    emit(args, issues, text or "no issues")
    return 0


def comment(args: argparse.Namespace) -> int:
    body = _text(args, args.text, "TEXT")
    svc = _services(args)
    user = _user(args, svc)
    made = conversation(svc).add_comment(args.number, body, user)
    return _outcome(args, handle_comment(svc, args.number, body, user, made.id))


def pr_list(args: argparse.Namespace) -> int:
    svc = _services(args)
    prs = conversation(svc).list_pull_requests(args.state)
    text = "\n".join(f"#{p.number:<4} {p.state:<7} {p.title}  [{p.head_branch}]" for p in prs)
    emit(args, prs, text or "no pull requests")
    return 0


def pr_open(args: argparse.Namespace) -> int:
    svc = _services(args)
    user = _user(args, svc)
    if not svc.git.branch_exists(args.branch):
        raise InputError(f"no branch {args.branch!r} in {svc.root}")
    pr = svc.forge.open_pull_request(
        branch=args.branch,
        base=svc.config.base_branch,
        title=args.title or args.branch,
        body="",
        issue=args.issue,
        author=user,
    )
    svc.record(pr.issue or pr.number, user, "pr.opened", "ok", {"branch": args.branch})
    check_pr(svc, pr.number)
    emit(args, svc.forge.pull_request(pr.number), _pr_summary(svc, pr.number))
    return 0


def pr_show(args: argparse.Namespace) -> int:
    svc = _services(args)
    pr = svc.forge.pull_request(args.number)
    comments = svc.forge.comments(args.number)
    statuses = svc.forge.statuses(pr.head_sha)
    data = {"pull_request": pr, "statuses": statuses, "comments": comments}
    lines = [
        f"PR #{pr.number} [{pr.state}] {pr.title}",
        f"{pr.head_branch} → {pr.base_branch} at {pr.head_sha[:7]}  (by @{pr.author})",
    ]
    lines += [f"  {s.context}: {s.state} — {s.description}" for s in statuses]
    lines += [f"  review: @{r.author} {r.state} at {r.commit_sha[:7]}" for r in pr.reviews]
    lines = [terminal.safe(line) for line in lines]
    lines += ["", _show(args, pr.body), ""]
    lines += _comment_lines(args, comments)
    emit(args, data, "\n".join(lines))
    return 0


def pr_review(args: argparse.Namespace) -> int:
    svc = _services(args)
    user = _user(args, svc)
    if args.dismiss:
        dismissed = conversation(svc).dismiss_review(args.number, args.dismiss, user)
        pr = svc.forge.pull_request(args.number)
        svc.record(
            pr.issue or pr.number,
            user,
            "pr.reviewed",
            "dismissed",
            {"pr": args.number, "reviewer": args.dismiss},
        )
        emit(args, dismissed, f"@{user} dismissed @{args.dismiss}'s review of PR #{args.number}")
        return 0
    review = conversation(svc).add_review(args.number, user, args.state)
    pr = svc.forge.pull_request(args.number)
    svc.record(pr.issue or pr.number, user, "pr.reviewed", args.state, {"pr": args.number})
    emit(
        args,
        review,
        f"@{user} {args.state.replace('_', ' ')} PR #{args.number} at {review.commit_sha[:7]}",
    )
    return 0


def _outcome(args: argparse.Namespace, outcome: Outcome) -> int:
    emit(args, {"ok": outcome.ok, "message": outcome.message}, outcome.message)
    return 0 if outcome.ok else 1


def pr_merge(args: argparse.Namespace) -> int:
    svc = _services(args)
    outcome = merge_pr(svc, args.number, _user(args, svc))
    pr = svc.forge.pull_request(args.number)
    checks = list(outcome.evidence.verifications) if outcome.evidence else []
    plan = svc.records.plan(pr.issue) if pr.issue else None
    criteria = plan.acceptance_criteria if plan else ()
    data = {"ok": outcome.ok, "message": outcome.message, "verifications": checks}
    lines = [outcome.message]
    if outcome.evidence is not None:
        md = (
            f"**Acceptance criteria**\n\n{render_criteria(criteria, checks)}\n\n"
            f"**Verification**\n\n{verification_table(checks)}\n"
        )
        lines += ["", _show(args, md)]
    emit(args, data, "\n".join(lines))
    return 0 if outcome.ok else 1


def pr_revert(args: argparse.Namespace) -> int:
    svc = _services(args)
    return _outcome(args, revert_pr(svc, args.number, _user(args, svc)))


def validate(args: argparse.Namespace) -> int:

    repo = GitRepo(args.repo or Path.cwd())
    root, blobs = repo.path, repo.blob_ids(None, STATE_DIR)  # git's ids: no re-hashing
    report = validate_tree(root, cache=ValidationCache(Paths(root).validation_cache), blobs=blobs)
    emit(args, report, render_report_markdown(report))
    return 0 if report.ok else 1


def _root(args: argparse.Namespace) -> Path:

    return GitRepo(args.repo or Path.cwd()).path


def plan(args: argparse.Namespace) -> int:

    svc = _services(args)
    result = plan_working_tree(svc, all_hosts=args.all)
    emit(
        args,
        result,
        render_run(result, "Dry-run (check + diff) of the working tree", result.log_path),
    )
    return 0 if result.ok and not result.error else 1


def _local_estate(args: argparse.Namespace) -> LocalEstate:

    root = _root(args)
    hosts = [h for h in estate_of(root).hosts() if h.connection == "local"]
    return LocalEstate(Paths(root).estate_runtime, hosts)


def estate_up(args: argparse.Namespace) -> int:
    """Start the services, then reconcile: the estate matches main, so a PR's dry-run shows
    only that PR's changes."""
    status = _local_estate(args).up()
    svc = _services(args)
    result = reconcile(svc, BOT_LOGIN, ticket=False)
    text = render_status(status) + "\n" + _reconcile_text(svc, result)
    emit(args, {"status": status, "reconcile": result}, text)
    return 0 if result.ok else 1


def reconcile_cmd(args: argparse.Namespace) -> int:
    svc = _services(args)
    user = _user(args, svc)
    result = reconcile(svc, user, dry=args.dry_run)
    emit(args, result, _reconcile_text(svc, result, dry=args.dry_run))
    return 0 if result.ok else 1


def _reconcile_text(svc: Services, result: ReconcileResult, *, dry: bool = False) -> str:
    base = f"{svc.config.base_branch} ({result.sha[:7]})"
    if result.check.status is not RunStatus.SUCCESSFUL:
        return f"reconcile: the check run of {base} {result.check.status.value}: " + (
            result.check.error or summarize_run(result.check)
        )
    differ = sorted({t.host for t in result.check.changed()})
    if result.apply is None:
        if not differ:
            return f"reconcile: the estate matches {base}"
        lines = [f"reconcile (dry run): {', '.join(differ)} differ from {base}:"]
        lines += [f"  {t.host}: {t.task}" for t in result.check.changed()[:40]]
        return "\n".join(lines)
    verdict = "applied and verified" if result.ok else "did not complete cleanly"
    where = f" (evidence on issue #{result.ticket})" if result.ticket else ""
    return f"reconcile: {base} {verdict} on {', '.join(result.hosts)}{where}\n" + summarize_run(
        result.apply
    )


def estate_down(args: argparse.Namespace) -> int:
    status = _local_estate(args).down()
    emit(args, status, render_status(status))
    return 0


def estate_status(args: argparse.Namespace) -> int:
    status = _local_estate(args).status()
    emit(args, status, render_status(status))
    return 0


def demo(args: argparse.Namespace) -> int:
    """``infrabot demo``: the seed example; ``--alert``: the alert loop."""
    if args.alert:
        return run_alert_demo(keep=args.keep, directory=args.dir, quiet=args.quiet)
    return run_demo(keep=args.keep, directory=args.dir, quiet=args.quiet)


def serve(args: argparse.Namespace) -> int:
    root = args.repo or Path.cwd()
    try:
        settings = ServerSettings(
            host=args.host,
            port=args.port,
            queue_path=args.queue or Paths(root).home / "server" / "deliveries.db",
            secret=os.environ.get(SECRET_ENV) or None,
            grace=args.grace,
            max_body=args.max_body,
            logs_dir=Paths(root).artifacts,
            alerts=AlertCredentials.from_environ(os.environ),
        )
    except ValidationError as exc:
        err = exc.errors()[0]
        raise InputError(f"serve: --{err['loc'][0]}: {err['msg']}") from exc
    return run_server(settings, process=routed(root))


def routed(root: Path) -> Callable[[Delivery], str]:
    """The server's worker: the queued delivery (already authenticated and checked at the
    edge) becomes an event and goes through the router; the label is the outcome the
    metrics count.  GitHub's deliveries and Alertmanager's share this one worker, so an
    alert's intake and remediation PR never race a GitHub event on the estate or the lock."""

    def process(delivery: Delivery) -> str:
        if delivery.source == ALERTMANAGER:
            return _alert_work(root, delivery)
        try:
            data = json.loads(delivery.body)
        except ValueError:
            return "refused"
        parsed = from_payload(delivery.event, data, source="webhook", delivery=delivery.id)
        if isinstance(parsed, Ignored | Refused):
            return parsed.kind
        svc = open_services(root, lambda _m: None)
        recover_interrupted(svc)
        return "ok" if handle(svc, parsed).ok else "failed"

    return process


def handle_event(args: argparse.Namespace) -> int:
    """One GitHub Actions run: GITHUB_EVENT_NAME, GITHUB_RUN_ID and the event file at
    GITHUB_EVENT_PATH become an event for the router."""
    path = args.event_path or os.environ.get("GITHUB_EVENT_PATH")
    if not path:
        raise InputError(
            "no event: set GITHUB_EVENT_PATH (GitHub Actions does) or pass --event-path"
        )
    try:
        body = Path(path).read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read the event file {path}: {exc.strerror}") from exc
    environ = dict(os.environ)
    if args.event_name:
        environ["GITHUB_EVENT_NAME"] = args.event_name
    environ.setdefault("GITHUB_RUN_ID", f"local-{os.getpid()}")
    parsed = parse_actions(environ, body)
    if isinstance(parsed, Refused):
        raise InputError(f"the event was refused: {parsed.reason}")
    if isinstance(parsed, Ignored):
        emit(args, parsed, f"ignored: {parsed.reason}")
        return 0
    outcome = handle(_services(args), parsed)
    return _outcome(args, outcome)


def _alert_work(root: Path, delivery: Delivery) -> str:
    """An Alertmanager delivery off the queue: intake (durable dedupe by fingerprint and
    start), the ticket, and the runbook's remediation PR, through the router."""
    try:
        group = parse_alert_json(delivery.body)
    except InputError:  # checked before it was queued; a body that changed is not worked
        return "refused"
    svc = open_services(root, lambda _m: None)
    recover_interrupted(svc)
    outcome = handle(svc, alert_event(group, delivery.body, "webhook"))
    logging.getLogger("infrabot.server").info(
        "alert delivery %s (%s): %s", delivery.id[:12], group.group_key, outcome.message
    )
    return "ok" if outcome.ok else "failed"


def evaluate(args: argparse.Namespace) -> int:
    """``infrabot eval``: the pass rate, turns, tokens, cost and time per case."""
    root = _root(args)
    cases = load_corpus(args.corpus or root / "tests" / "evals")
    if not cases:
        raise InputError(f"no eval cases in {args.corpus or root / 'tests' / 'evals'}")
    engine: Engine = OfflineEngine()
    if args.engine == "claude":
        if not os.environ.get("ANTHROPIC_API_KEY"):
            raise InputError("infrabot eval --engine claude needs ANTHROPIC_API_KEY")
        engine = claude_engine(load_config(root), dict(os.environ))
    lanes = args.lanes if args.lanes is not None else min(os.cpu_count() or 1, 4)
    if lanes < 1:
        raise InputError("--lanes must be at least 1")
    report = run_eval(
        engine,
        cases,
        root,
        depth=args.depth,
        lanes=lanes,
        estate=not args.no_estate,
        progress=progress_printer(args.quiet or args.json),
    )
    emit(args, report.as_json(), render_table(report))
    return 0 if report.pass_rate >= args.min_pass_rate else 1
