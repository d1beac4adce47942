"""Markdown the bot posts: plans, questions, PR bodies, dry-runs, refusals, evidence.

Pure functions of typed values.  Everything passes ``redact`` and is bounded in size;
the full logs stay in artifacts, and comments link to them.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from bot.execute import redact
from bot.model import Clarification, DryRun, Evidence, Plan, RunStatus, TaskResult

MAX_DIFF = 6000
MAX_ROWS = 40


def clip(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    return text[:limit] + f"\n… ({len(text) - limit} more characters in the full log)"


def _bullets(items: Iterable[str]) -> str:
    return "\n".join(f"- {redact(i)}" for i in items) or "- (none)"


def render_plan(plan: Plan) -> str:
    rows = "\n".join(
        f"| {c.action.value} | {c.kind} | `{c.name}` | `{c.path}` | {', '.join(c.hosts)} |"
        for c in plan.changes
    )
    return f"""### Plan for #{plan.ticket}: {redact(plan.objective)}

**Capabilities:** {", ".join(plan.capabilities)} · **Risk:** {plan.risk.value} · \
**Engine:** {plan.engine}

**What I read**
{_bullets(plan.read)}

**Assumptions**
{_bullets(plan.assumptions)}

**Changes**

| action | kind | name | file | hosts |
|---|---|---|---|---|
{rows}

**Validation**
{_bullets(plan.validation_steps)}

**Acceptance criteria**
{_bullets(plan.acceptance_criteria)}

**Rollback:** {redact(plan.rollback)}
"""


def render_clarification(question: Clarification) -> str:
    asks = "\n".join(f"{i}. {redact(q)}" for i, q in enumerate(question.questions, 1))
    return f"""### I need a little more before I can plan this

{redact(question.reason)}

{asks}

Reply on this issue; I will pick the work up from your answer.
"""


def _task_row(task: TaskResult) -> str:
    note = " (unverified in check mode)" if task.unverified else ""
    msg = f" — {clip(redact(task.message), 200)}" if task.message else ""
    return f"| {task.host} | {redact(task.task)}{note} | {task.status}{msg} |"


def render_run(run: DryRun, title: str) -> str:
    if run.status is RunStatus.SKIPPED:
        why = run.error or "no host is affected by this change"
        return f"#### {title}: not run\n\n{redact(why)}\n"
    icon = "✅" if run.ok else ("⚠️" if run.status is RunStatus.UNKNOWN else "❌")
    recap = "\n".join(
        f"| {h.host} | {h.ok} | {h.changed} | {h.failed} | {h.skipped} | {h.unreachable} |"
        for h in run.recap
    )
    notable = [t for t in run.tasks if t.status not in ("ok", "skipped") or t.unverified]
    notable = notable[:MAX_ROWS]
    tasks = "\n".join(_task_row(t) for t in notable) or "| | (no changes) | |"
    diffs = "\n".join(t.diff for t in run.changed() if t.diff)
    parts = [
        f"#### {icon} {title} ({run.status.value}) on {', '.join(run.hosts)} "
        f"at `{run.head_sha[:7]}`",
        "| host | ok | changed | failed | skipped | unreachable |\n|---|---|---|---|---|---|\n"
        + recap,
        "| host | task | result |\n|---|---|---|\n" + tasks,
    ]
    if run.error:
        parts.append(f"**{redact(run.error)}**")
    if run.unverified():
        parts.append(
            "Check mode cannot vouch for the tasks marked *unverified* (commands, probes, "
            "a template's `validate:`): they run for real only on apply."
        )
    if run.nginx_check is not None:
        verdict = "passes" if run.nginx_ok else "FAILS"
        parts.append(
            f"`nginx -t` on the rendered config {verdict}:\n```\n"
            f"{clip(redact(run.nginx_check), 1500)}\n```"
        )
    if run.dnsmasq_check is not None:
        verdict = "passes" if run.dnsmasq_ok else "FAILS"
        parts.append(
            f"`dnsmasq --test` on the rendered DNS files {verdict}:\n```\n"
            f"{clip(redact(run.dnsmasq_check), 1500)}\n```"
        )
    if diffs:
        parts.append(
            f"<details><summary>Diffs</summary>\n\n```diff\n"
            f"{clip(redact(diffs), MAX_DIFF)}\n```\n</details>"
        )
    if run.drift:
        parts.append(_drift(run.drift))
    if run.log_path:
        parts.append(f"Full log: `{run.log_path}`")
    return "\n\n".join(parts) + "\n"


def _drift(tasks: Sequence[TaskResult]) -> str:
    """Changes the dry-run predicts that the change does not cause, kept apart from it."""
    rows = "\n".join(_task_row(t) for t in tasks[:MAX_ROWS])
    return (
        f"<details><summary>Drift: {len(tasks)} predicted change(s) this PR does not cause "
        "(the estate differs from the base branch; <code>infrabot reconcile</code> fixes it)"
        f"</summary>\n\n| host | task | result |\n|---|---|---|\n{rows}\n</details>"
    )


def render_pr_body(
    plan_md: str, diffstat: str, validation_md: str, run_md: str, issue: int | None
) -> str:
    closes = f"Closes #{issue}.\n\n" if issue else ""
    return f"""{closes}{plan_md}
---
### Diff summary
```
{clip(redact(diffstat), 3000)}
```

---
### Validation
{validation_md}

---
### Dry-run
{run_md}

Comment `/plan` to re-run validation and the dry-run, `/apply` to apply before merge, \
`/help` for more. Merging applies the change.
"""


def render_refusal(action: str, reasons: Sequence[str]) -> str:
    return f"### `{action}` refused\n\n{_bullets(reasons)}\n"


def render_evidence(ev: Evidence, issue: int | None) -> str:
    verdict = "✅ applied and verified" if ev.ok else "❌ apply did not complete cleanly"
    checks = "\n".join(
        f"| {'✅' if v.ok else '❌'} | {v.check} | {clip(redact(v.detail), 300)} |"
        for v in ev.verifications
    )
    changed = (
        "\n".join(f"- {t.host}: {redact(t.task)}" for t in ev.apply.changed()[:MAX_ROWS])
        or "- (nothing changed)"
    )
    return f"""### Evidence: {verdict}

Applied `{ev.merge_sha[:7]}` at {ev.at.isoformat(timespec="seconds")}.

{render_run(ev.apply, "Apply")}
**Changed tasks**
{changed}

**Verification**

| | check | detail |
|---|---|---|
{checks or "| | (nothing to verify) | |"}
"""


def render_apply_failure(ev: Evidence, pr: int, *, merged: bool, issue: int | None) -> str:
    failed = ev.apply.failed()
    what = "\n".join(
        f"- `{t.host}`: task **{redact(t.task)}** failed: {clip(redact(t.message), 400)}"
        for t in failed
    )
    if ev.apply.status is RunStatus.UNKNOWN:
        what = f"- {redact(ev.apply.error or 'the run ended without a recap')}"
    bad = "\n".join(
        f"- {v.check}: {clip(redact(v.detail), 300)}" for v in ev.verifications if not v.ok
    )
    return f"""### What failed
{what or "- (no task failed)"}
{bad}

{_next_steps(pr, merged=merged, issue=issue)}
"""


def _next_steps(pr: int, *, merged: bool, issue: int | None) -> str:
    """Advice that fits where the pull request stands."""
    if merged:
        text = (
            f"**To roll back:** run `infrabot pr revert {pr}` to open a revert pull request; "
            "merging it applies the previous state. Or fix forward in a new PR."
        )
    else:
        text = (
            "**Next:** the pull request is still open and main is unchanged: fix the change "
            "and push (then comment /plan), or run `infrabot reconcile` to bring the hosts "
            "back to main."
        )
    return text + (f" Issue #{issue} stays open." if issue else "")


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
