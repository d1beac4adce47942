"""Markdown the bot posts: plans, questions, PR bodies, dry-runs, refusals, evidence.

Pure functions of typed values.  Text the bot did not write — titles, names, YAML values,
task names, Ansible output, a service's answer — goes through ``bot.markdown`` (``text``,
``code``, ``fence``) so it reads as text, never as markup.  Each comment leads with one
line a reviewer can scan; detail folds into ``<details>``.  Sizes are bounded here per
section (diffs, rows), and the forge bounds and redacts the whole body again when it
posts (``bot.forge.base.posted``); the full logs stay in artifacts.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from bot.estate.inventory import REMOTE_ROOT
from bot.markdown import bullets, code, details, fence, text
from bot.model import (
    Clarification,
    DryRun,
    Evidence,
    Plan,
    RunStatus,
    TaskResult,
    Verification,
)

MAX_DIFF = 6000
MAX_ROWS = 40


_RUNTIME_HOST = re.compile(r"(?:[^\s'\"`]*/)?\.infrabot/estate/[A-Za-z0-9][A-Za-z0-9._-]*/")
_SCRATCH = re.compile(r"/tmp/infrabot-(?:nginx|dnsmasq|runner)-[A-Za-z0-9_]+/")


def on_host(value: str) -> str:
    """``value`` with paths as they are on the host, not where the controller keeps them.

    The local provider keeps each host's ``/var/lib/infrabot`` under
    ``.infrabot/estate/<host>/`` (``bot.estate.inventory``), so a diff header reads
    ``/work/repo/.infrabot/estate/proxy1/nginx/sites/…``; a remote host has the file at
    ``/var/lib/infrabot/nginx/sites/…``.  Config checks run in a scratch folder
    (``/tmp/infrabot-nginx-…/``) that nobody can open: only the file name is kept.
    """
    return _SCRATCH.sub("", _RUNTIME_HOST.sub(REMOTE_ROOT + "/", value))


def clip(value: str, limit: int) -> str:
    if len(value) <= limit:
        return value
    return value[:limit] + f"\n… ({len(value) - limit} more characters in the full log)"


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def render_plan(plan: Plan) -> str:
    hosts = sorted({h for c in plan.changes for h in c.hosts})
    rows = "\n".join(
        f"| {c.action.value} | {text(c.kind)} | {code(c.name, cell=True)} "
        f"| {code(c.path, cell=True)} | {text(', '.join(c.hosts)) or '—'} |"
        for c in plan.changes
    )
    criteria = "\n".join(f"- [ ] {text(c)}" for c in plan.acceptance_criteria) or "- (none)"
    more = (
        f"**What I read**\n{bullets(text(r) for r in plan.read)}\n\n"
        f"**Assumptions**\n{bullets(text(a) for a in plan.assumptions)}\n\n"
        f"**Validation**\n{bullets(text(v) for v in plan.validation_steps)}\n\n"
        f"**Engine:** {text(plan.engine)} · "
        f"**Capabilities:** {text(', '.join(plan.capabilities))}"
    )
    fold = (
        f"How I planned this: {_plural(len(plan.read), 'file')} read, "
        f"{_plural(len(plan.assumptions), 'assumption')}, "
        f"{_plural(len(plan.validation_steps), 'validation step')}"
    )
    return f"""### Plan for #{plan.ticket}: {text(plan.objective)}

**{_plural(len(plan.changes), "change")}** on {text(", ".join(hosts)) or "no host"} · \
risk **{plan.risk.value}**

| action | kind | name | file | hosts |
|---|---|---|---|---|
{rows}

**Acceptance criteria**
{criteria}

**Rollback:** {text(plan.rollback)}
{_declined(plan)}
{details(fold, more)}

{render_drafted_by(plan)}"""


def _declined(plan: Plan) -> str:
    if not plan.declined:
        return ""
    return f"\n**What I will not do**\n{bullets(text(d) for d in plan.declined)}\n"


def render_drafted_by(plan: Plan) -> str:
    """The plan's footer: which engine and role drafted it, and what that cost."""
    if not plan.usage:
        engine = text(plan.engine)
        return f"_Drafted by the {engine} engine (architect and implementer)._\n"
    parts = []
    for u in plan.usage:
        tokens = (
            f"{u.input_tokens} in, {u.cache_read_tokens} cache read, "
            f"{u.cache_write_tokens} cache write, {u.output_tokens} out"
        )
        parts.append(
            f"{u.role}: {text(u.engine)} {text(u.model)} · {u.turns} turn(s) · {tokens} · "
            f"${u.cost_usd:.4f}"
        )
    total = sum(u.cost_usd for u in plan.usage)
    return f"_Drafted by {'; '.join(parts)} · total ${total:.4f}_\n"


def render_clarification(question: Clarification) -> str:
    asks = "\n".join(f"{i}. {text(q)}" for i, q in enumerate(question.questions, 1))
    return f"""### I need a little more before I can plan this

{text(question.reason)}

{asks}

Reply on this issue; I will pick the work up from your answer.
"""


def render_stopped(message: str) -> str:
    """The bot gave up on a ticket: say why, as text."""
    return f"### I stopped\n\n{text(message, 4000)}\n"


def render_issue_summary(plan: Plan, pr: int, branch: str) -> str:
    """What the issue gets once the pull request holds the full plan: its first line, the
    acceptance criteria it will be judged by, and the link."""
    hosts = sorted({h for c in plan.changes for h in c.hosts})
    criteria = "\n".join(f"- [ ] {text(c)}" for c in plan.acceptance_criteria) or "- (none)"
    return f"""### Plan for #{plan.ticket}: {text(plan.objective)}

**{_plural(len(plan.changes), "change")}** on {text(", ".join(hosts)) or "no host"} · \
risk **{plan.risk.value}** · pull request #{pr} ({code(branch)})

**Acceptance criteria**
{criteria}

The full plan, the validation and the dry-run are on #{pr}: review it there. Once it is \
approved, `/apply` or a merge applies it, and the evidence is posted here.
"""


def _task_row(task: TaskResult) -> str:
    note = " *(unverified in check mode)*" if task.unverified else ""
    message = on_host(task.message)
    if task.status == "skipped" and "ansible_check_mode" in message:
        message = "runs only on apply"  # the role skips it in a dry-run, on purpose
    msg = f" — {text(message, 200)}" if message else ""
    return f"| {text(task.task, 120)}{note} | {task.status}{msg} |"


def _line_counts(diff: str) -> str:
    """`` (+15 -2 lines)`` of a unified diff (headers not counted); '' when empty."""
    lines = diff.splitlines()
    added = sum(1 for x in lines if x.startswith("+") and not x.startswith("+++"))
    removed = sum(1 for x in lines if x.startswith("-") and not x.startswith("---"))
    parts = [f"+{added}"] * bool(added) + [f"-{removed}"] * bool(removed)
    lines_word = "line" if added + removed == 1 else "lines"
    return f" ({' '.join(parts)} {lines_word})" if parts else ""


def _host_summary(host: str, tasks: Sequence[TaskResult]) -> str:
    """``proxy1 — 1 change, 1 unverified: Render the vhosts``."""
    changed = [t for t in tasks if t.status == "changed"]
    failed = [t for t in tasks if t.status in ("failed", "unreachable")]
    parts = [_plural(len(changed), "change")]
    if failed:
        parts.append(f"{len(failed)} failed")
    unverified = sum(t.unverified for t in tasks)
    if unverified:
        parts.append(f"{unverified} unverified")
    names = ", ".join(dict.fromkeys(t.task for t in (failed or changed)))
    counts = _line_counts("\n".join(t.diff for t in changed))
    return f"{host} — {', '.join(parts)}" + (f": {names}" if names else "") + counts


def _host_section(host: str, tasks: Sequence[TaskResult]) -> str:
    notable = [t for t in tasks if t.status not in ("ok", "skipped") or t.unverified]
    rows = "\n".join(_task_row(t) for t in notable[:MAX_ROWS])
    hidden = len(notable) - MAX_ROWS
    table = f"| task | result |\n|---|---|\n{rows}" if rows else "No task changes anything."
    if hidden > 0:
        table += f"\n\n… and {hidden} more in the full log"
    diffs = on_host("\n".join(t.diff for t in tasks if t.status == "changed" and t.diff))
    body = table + (f"\n\n{fence(clip(diffs, MAX_DIFF), 'diff')}" if diffs else "")
    summary = _host_summary(host, tasks)
    return details(summary if len(summary) <= 300 else summary[:299] + "…", body)


def render_run(run: DryRun, title: str, log: str | None = None) -> str:
    """A dry-run or an apply; ``log`` is where the full log can be read (``full_log``)."""
    if run.status is RunStatus.SKIPPED:
        why = run.error or "no host is affected by this change"
        return f"#### {title}: not run\n\n{text(why)}\n"
    icon = "✅" if run.ok else ("⚠️" if run.status is RunStatus.UNKNOWN else "❌")
    recap = "\n".join(
        f"| {text(h.host)} | {h.ok} | {h.changed} | {h.failed} | {h.skipped} | {h.unreachable} |"
        for h in run.recap
    )
    parts = [
        f"#### {icon} {title} ({run.status.value}) on {text(', '.join(run.hosts))} "
        f"at {code(run.head_sha[:7])}",
    ]
    if run.error:
        parts.append(f"**{text(on_host(run.error), 1000)}**")
    parts.append(
        "| host | ok | changed | failed | skipped | unreachable |\n|---|---|---|---|---|---|\n"
        + recap
    )
    hosts = list(dict.fromkeys([*run.hosts, *(t.host for t in run.tasks)]))
    failing = {t.host for t in run.tasks if t.status in ("failed", "unreachable")}
    hosts.sort(key=lambda h: h not in failing)  # errors first: a cut keeps the head
    parts += [
        _host_section(h, [t for t in run.tasks if t.host == h])
        for h in hosts
        if any(t.host == h for t in run.tasks)
    ]
    if run.unverified():
        parts.append(
            "Check mode cannot vouch for the tasks marked *unverified* (commands, probes, "
            "a template's `validate:`): they run for real only on apply."
        )
    if run.nginx_check is not None:
        verdict = "passes" if run.nginx_ok else "FAILS"
        parts.append(
            f"`nginx -t` on the rendered config {verdict}:\n\n"
            f"{fence(clip(on_host(run.nginx_check), 1500))}"
        )
    if run.dnsmasq_check is not None:
        verdict = "passes" if run.dnsmasq_ok else "FAILS"
        parts.append(
            f"`dnsmasq --test` on the rendered DNS files {verdict}:\n\n"
            f"{fence(clip(on_host(run.dnsmasq_check), 1500))}"
        )
    if run.drift:
        parts.append(_drift(run.drift))
    if log:
        parts.append(_full_log(log))
    return "\n\n".join(parts) + "\n"


def _full_log(log: str) -> str:
    if re.fullmatch(r"https?://[^\s<>()]+", log):
        return f"[Full log]({log})"
    return f"Full log: {code(log)}"  # the local forge: its reader has the repository


def _drift(tasks: Sequence[TaskResult]) -> str:
    """Changes the dry-run predicts that the change does not cause, kept apart from it."""
    rows = "\n".join(f"| {text(t.host)} {_task_row(t)}" for t in tasks[:MAX_ROWS])
    summary = (
        f"Drift: {len(tasks)} predicted change(s) this PR does not cause (the estate "
        "differs from the base branch; infrabot reconcile fixes it)"
    )
    return details(summary, f"| host | task | result |\n|---|---|---|\n{rows}")


def render_pr_body(
    plan_md: str, diffstat: str, validation_md: str, run_md: str, issue: int | None
) -> str:
    """The PR's description: plan, diff summary, validation and dry-run, each under its own
    heading (the sections bring theirs: none is repeated here)."""
    closes = f"Closes #{issue}.\n\n" if issue else ""
    plan = f"{plan_md.strip()}\n\n---\n" if plan_md.strip() else ""
    return f"""{closes}{plan}
{details("Diff summary", fence(clip(diffstat, 3000)))}

---
{validation_md.strip()}

---
{run_md.strip()}

Comment `/plan` to re-run validation and the dry-run, `/apply` to apply before merge, \
`/help` for more. Merging applies the change.
"""


def render_refusal(action: str, reasons: Sequence[str]) -> str:
    """Why an action was refused, one reason a line.  It opens with bold text, not a heading,
    so it reads right after a mention of who asked (``@bob: **`/apply` refused**``)."""
    return f"**{code(action)} refused**\n\n{bullets(text(r, 1000) for r in reasons)}\n"


def _criterion_line(criterion: str, checks: Sequence[Verification]) -> str:
    deciding = [v for v in checks if criterion in v.criteria]
    if not deciding:
        return f"- ⚪ not verified: {text(criterion)}"
    ok = all(v.ok for v in deciding)
    detail = "; ".join(v.detail for v in deciding)
    return f"- {'✅' if ok else '❌'} {text(criterion)} — {text(detail, 300)}"


def render_criteria(criteria: Sequence[str], checks: Sequence[Verification]) -> str:
    """The plan's acceptance criteria, one line each: ✅ / ❌ with what was seen, or
    "not verified".  Criteria a check decided that the plan did not state come after."""
    extra = [c for v in checks for c in v.criteria if c not in criteria]
    lines = [_criterion_line(c, checks) for c in (*criteria, *dict.fromkeys(extra))]
    return "\n".join(lines) or "- (no acceptance criteria)"


def verification_table(checks: Sequence[Verification]) -> str:
    rows = "\n".join(
        f"| {'✅' if v.ok else '❌'} | {text(v.check)} | {text(v.detail, 300)} |" for v in checks
    )
    return f"| | check | detail |\n|---|---|---|\n{rows or '| | (nothing to verify) | |'}"


def render_evidence(
    ev: Evidence, issue: int | None, criteria: Sequence[str] = (), log: str | None = None
) -> str:
    unverified = [c for c in criteria if not any(c in v.criteria for v in ev.verifications)]
    if not ev.ok:
        verdict = "❌ apply did not complete cleanly"
    elif unverified:
        n = len(unverified)
        verdict = f"✅ applied; {n} acceptance {'criterion' if n == 1 else 'criteria'} not verified"
    else:
        verdict = "✅ applied and verified"
    changed = (
        "\n".join(f"- {text(t.host)}: {text(t.task, 200)}" for t in ev.apply.changed()[:MAX_ROWS])
        or "- (nothing changed)"
    )
    return f"""### Evidence: {verdict}

Applied {code(ev.merge_sha[:7])} at {ev.at.isoformat(timespec="seconds")}.

**Acceptance criteria**
{render_criteria(criteria, ev.verifications)}

**Verification**

{verification_table(ev.verifications)}

**Changed tasks**
{changed}

{render_run(ev.apply, "Apply", log)}"""


def render_apply_failure(ev: Evidence, pr: int, *, merged: bool, issue: int | None) -> str:
    failed = ev.apply.failed()
    what = "\n".join(
        f"- {code(t.host)}: task **{text(t.task, 200)}** failed: "
        f"{text(clip(on_host(t.message), 400))}"
        for t in failed
    )
    if ev.apply.status is RunStatus.UNKNOWN:
        what = f"- {text(ev.apply.error or 'the run ended without a recap')}"
    bad = "\n".join(
        f"- {text(v.check)}: {text(v.detail, 300)}" for v in ev.verifications if not v.ok
    )
    return f"""### What failed
{what or "- (no task failed)"}
{bad}

{_next_steps(pr, merged=merged, issue=issue)}
"""


def _next_steps(pr: int, *, merged: bool, issue: int | None) -> str:
    """Advice that fits where the pull request stands."""
    if merged:
        advice = (
            f"**To roll back:** run `infrabot pr revert {pr}` to open a revert pull request; "
            "merging it applies the previous state. Or fix forward in a new PR."
        )
    else:
        advice = (
            "**Next:** the pull request is still open and main is unchanged: fix the change "
            "and push (then comment /plan), or run `infrabot reconcile` to bring the hosts "
            "back to main."
        )
    return advice + (f" Issue #{issue} stays open." if issue else "")


def summarize_run(run: DryRun) -> str:
    """One line per host: the recap, as a terminal shows it."""
    lines = [
        f"{run.status.value} in {run.duration_s:.1f}s" + (f": {run.error}" if run.error else "")
    ]
    lines += [
        f"{h.host:<12} ok={h.ok} changed={h.changed} failed={h.failed} unreachable={h.unreachable}"
        for h in run.recap
    ]
    return "\n".join(lines)
