"""Each comment the bot posts: a snapshot, and how GitHub renders it (cmarkgfm) when every
value in it came from someone hostile — no injected element, heading, link or marker.

Snapshots live in ``tests/snapshots/``; after an intended change, regenerate them with
``INFRABOT_UPDATE_SNAPSHOTS=1 .venv/bin/python -m pytest tests/test_flow_render.py`` and
read the diff.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest
from gfm import ALLOWED, elements, headings, visible, walk

from bot.commands import HELP_TEXT
from bot.flow.render import (
    render_apply_failure,
    render_clarification,
    render_evidence,
    render_issue_summary,
    render_plan,
    render_pr_body,
    render_refusal,
    render_run,
    render_stopped,
)
from bot.forge.base import MAX_COMMENT, posted
from bot.model import (
    ChangeAction,
    Clarification,
    DryRun,
    Evidence,
    HostRecap,
    Plan,
    PlannedChange,
    RiskLevel,
    RunStatus,
    TaskResult,
    ValidationReport,
    Verification,
)
from bot.validate.render import render_report_markdown

SNAPSHOTS = Path(__file__).parent / "snapshots"
SECRET = "ghp_" + "Zz9Yy8Xx7Ww6Vv5Uu4Tt3Ss2"
EVIL = "<h1>✅ approved</h1> [click](https://evil.example) ![x](https://evil.example/i.png)"
MARKER = "<!-- infrabot:topic=evidence-0000000 -->"
AT = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
LOG_URL = "https://github.com/acme/infra/actions/runs/4242"


def plan(objective: str = "Expose api-scanner at api-scanner.example.com") -> Plan:
    return Plan(
        ticket=1,
        objective=objective,
        capabilities=("expose-site",),
        read=("infra/state/sites/status-page.yaml", "schemas/Site.schema.json"),
        assumptions=("owner: platform (from the issue)", "proxy: proxy1 (the only proxy)"),
        changes=(
            PlannedChange(
                action=ChangeAction.CREATE,
                kind="Site",
                name="api-scanner",
                path="infra/state/sites/api-scanner.yaml",
                hosts=("proxy1",),
            ),
        ),
        risk=RiskLevel.MEDIUM,
        validation_steps=("JSON Schema (schemas/<Kind>.schema.json) on every changed document",),
        acceptance_criteria=(
            "http://api-scanner.example.com/ through proxy1 answers with the service in "
            "container api-scanner",
            "api-scanner.example.com resolves to 127.0.0.1 on dns1",
        ),
        rollback="Revert the pull request.",
        engine="offline",
    )


def run(task: str = "Render the vhosts", message: str = "", diff: str = "") -> DryRun:
    return DryRun(
        head_sha="a" * 40,
        base_sha="b" * 40,
        status=RunStatus.SUCCESSFUL,
        hosts=("proxy1",),
        recap=(HostRecap(host="proxy1", ok=3, changed=1),),
        tasks=(
            TaskResult(
                host="proxy1",
                task=task,
                status="changed",
                diff=diff or "--- before\n+++ after\n+server_name api-scanner.example.com;\n",
                message=message,
            ),
            TaskResult(host="proxy1", task="Reload nginx", status="ok", unverified=True),
        ),
        nginx_check="nginx: configuration file test is successful",
        nginx_ok=True,
        log_path=".infrabot/artifacts/pr-2/dryrun.log",
        duration_s=1.5,
    )


def evidence(detail: str = "GET http://api-scanner.example.com:8080/ → 200") -> Evidence:
    return Evidence(
        pr=2,
        merge_sha="c" * 40,
        apply=run().model_copy(update={"check_mode": False, "nginx_check": None}),
        verifications=(
            Verification(
                check="site: api-scanner.example.com via proxy1",
                ok=True,
                detail=detail,
                criteria=(plan().acceptance_criteria[0],),
            ),
        ),
        at=AT,
    )


def failed_evidence(message: str) -> Evidence:
    apply = run().model_copy(
        update={
            "status": RunStatus.FAILED,
            "tasks": (
                TaskResult(
                    host="dns1", task="Render the A records", status="failed", message=message
                ),
            ),
        }
    )
    return Evidence(pr=2, merge_sha="c" * 40, apply=apply, at=AT)


COMMENTS: dict[str, Callable[[], str]] = {
    "plan": lambda: render_plan(plan()),
    "clarification": lambda: render_clarification(
        Clarification(questions=("Which port does it listen on?",), reason="No port was given.")
    ),
    "dry-run": lambda: render_run(run(), "Dry-run (check + diff)", LOG_URL),
    "dry-run-with-drift": lambda: render_run(
        run().model_copy(
            update={
                "drift": (TaskResult(host="dns1", task="Render the A records", status="changed"),)
            }
        ),
        "Dry-run (check + diff)",
    ),
    "pr-body": lambda: render_pr_body(
        render_plan(plan()),
        " infra/state/sites/api-scanner.yaml | 7 +++++++\n 1 file changed",
        render_report_markdown(ValidationReport(checks=("yaml", "schema"))),
        render_run(run(), "Dry-run (check + diff)", LOG_URL),
        1,
    ),
    "refusal": lambda: render_refusal("/apply", ["@carol has read permission: /apply needs write"]),
    "evidence": lambda: render_evidence(evidence(), 1, plan().acceptance_criteria, LOG_URL),
    "apply-failure": lambda: render_apply_failure(
        failed_evidence("permission denied"), 2, merged=True, issue=1
    ),
    "stopped": lambda: render_stopped("the change is already in the desired state"),
    "issue-summary": lambda: render_issue_summary(plan(), 2, "infrabot/1-expose-api-scanner"),
    "help": lambda: HELP_TEXT,
}


@pytest.mark.parametrize("name", sorted(COMMENTS))
def test_snapshot(name: str) -> None:
    body = COMMENTS[name]()
    path = SNAPSHOTS / f"{name}.md"
    if os.environ.get("INFRABOT_UPDATE_SNAPSHOTS"):
        path.parent.mkdir(exist_ok=True)
        path.write_text(body)
    assert body == path.read_text(), f"{name} changed: regenerate and review tests/snapshots/"


@pytest.mark.parametrize("name", sorted(COMMENTS))
def test_reads_right_on_github(name: str) -> None:
    md = COMMENTS[name]()
    walker = walk(md)
    assert set(walker.tags) - {"a"} <= ALLOWED, name
    assert set(walker.links) <= {LOG_URL}, name  # the one link the bot makes: the full log
    assert len(walker.headings) == len(set(walker.headings)), walker.headings
    shown = visible(md)
    for raw in ("&lt;", "&gt;", "&amp;", "\\[", "\\_", "**"):
        assert raw not in shown, (name, raw)


def test_the_pr_body_has_each_heading_once() -> None:
    assert headings(COMMENTS["pr-body"]()) == [
        "Plan for #1: Expose api-scanner at api-scanner.example.com",
        "Validation ✅ passed",
        "✅ Dry-run (check + diff) (successful) on proxy1 at aaaaaaa",
    ]


def test_schemas_kind_keeps_its_angle_brackets() -> None:
    assert "schemas/<Kind>.schema.json" in visible(render_plan(plan()))


def test_evidence_leads_with_each_acceptance_criterion() -> None:
    criteria = (*plan().acceptance_criteria, "mon1 probes http://api-scanner.example.com/")
    md = render_evidence(evidence(), 1, criteria)
    shown = visible(md)
    assert shown.index("Acceptance criteria") < shown.index("Verification")
    lines = [ln for ln in shown.splitlines() if "api-scanner.example.com" in ln][:3]
    assert lines[0].startswith("✅ http://api-scanner.example.com/ through proxy1")
    assert lines[1] == "⚪ not verified: api-scanner.example.com resolves to 127.0.0.1 on dns1"
    assert lines[2] == "⚪ not verified: mon1 probes http://api-scanner.example.com/"
    assert "2 acceptance criteria not verified" in headings(md)[0]


def test_all_criteria_verified_says_so() -> None:
    md = render_evidence(evidence(), 1, plan().acceptance_criteria[:1])
    assert headings(md)[0] == "Evidence: ✅ applied and verified"


HOSTILE_RENDERS: dict[str, Callable[[str], str]] = {
    "plan objective": lambda v: render_plan(plan(objective=v)),
    "clarification": lambda v: render_clarification(Clarification(questions=(v,), reason=v)),
    "task name": lambda v: render_run(run(task=v), "Dry-run"),
    "task message": lambda v: render_run(run(message=v), "Dry-run"),
    "diff": lambda v: render_run(run(diff=v), "Dry-run"),
    "drift task": lambda v: render_run(
        run().model_copy(update={"drift": (TaskResult(host="dns1", task=v, status="changed"),)}),
        "Dry-run",
    ),
    "refusal reason": lambda v: render_refusal("/apply", [v]),
    "service response": lambda v: render_evidence(evidence(detail=v), 1, ()),
    "failed task": lambda v: render_apply_failure(failed_evidence(v), 2, merged=True, issue=1),
    "stopped": render_stopped,
    "branch": lambda v: render_issue_summary(plan(), 2, v),
    "summary objective": lambda v: render_issue_summary(plan(objective=v), 2, "b"),
}
VALUES = [
    EVIL,
    f"{MARKER} {EVIL}",
    "text\n\n# ✅ approved by @alice\n\n```\n</details>\n<details open>",
    "`` ` ``` </code> ~~~",
    f"token: {SECRET} | cell | breaker",
]


@pytest.mark.parametrize("where", sorted(HOSTILE_RENDERS))
@pytest.mark.parametrize("value", VALUES, ids=range(len(VALUES)))
def test_hostile_values_render_as_text(where: str, value: str) -> None:
    md = HOSTILE_RENDERS[where](value)
    clean = HOSTILE_RENDERS[where]("harmless")
    walker = walk(md)
    assert set(walker.tags) <= ALLOWED, (where, md)
    assert walker.comments == [] and "<!-- infrabot:" not in md
    assert len(headings(md)) == len(headings(clean))
    assert elements(md).isdisjoint({"a", "img", "h1", "h2"})
    assert walker.tags.count("details") == walk(clean).tags.count("details")
    assert SECRET not in md and SECRET not in visible(md)


def test_advice_after_a_failed_apply_fits_where_the_pr_stands() -> None:
    failed = failed_evidence("permission denied")
    before_merge = visible(render_apply_failure(failed, 2, merged=False, issue=None))
    assert "still open and main is unchanged" in before_merge
    assert "infrabot pr revert" not in before_merge and "Issue" not in before_merge
    after_merge = visible(render_apply_failure(failed, 2, merged=True, issue=1))
    assert "infrabot pr revert 2" in after_merge and "Issue #1 stays open" in after_merge


# -- paths as they are on the host, the full log as a link, a cut that keeps the errors ----

LOCAL_DIFF = (
    "--- /home/me/repo/.infrabot/estate/proxy1/nginx/sites/infrabot-sites.conf\n"
    "+++ /home/me/repo/.infrabot/estate/proxy1/nginx/sites/infrabot-sites.conf\n"
    "@@ -1,1 +1,3 @@\n"
    " # Managed by infrabot\n"
    "+server {\n"
    "+}\n"
)


def test_the_dry_run_shows_paths_as_they_are_on_the_host() -> None:
    local = run(diff=LOCAL_DIFF).model_copy(
        update={
            "nginx_check": "proxy1: nginx: the configuration file "
            "/tmp/infrabot-nginx-qsz2shvi/nginx.conf syntax is ok",
            "tasks": (
                *run(diff=LOCAL_DIFF).tasks,
                TaskResult(
                    host="proxy1",
                    task="Reload nginx",
                    status="skipped",
                    message="condition is false: not ansible_check_mode",
                    unverified=True,
                ),
            ),
        }
    )
    md = render_run(local, "Dry-run", LOG_URL)
    shown = visible(md)
    assert ".infrabot" not in md and "/tmp/" not in md and "/home/me" not in md
    assert "+++ /var/lib/infrabot/nginx/sites/infrabot-sites.conf" in shown
    assert "the configuration file nginx.conf syntax is ok" in shown
    assert "proxy1 — 1 change, 2 unverified: Render the vhosts (+2 lines)" in shown
    assert "| Reload nginx *(unverified in check mode)* | skipped — runs only on apply |" in md


def test_the_full_log_is_a_link_never_a_local_path() -> None:
    md = render_run(run(), "Dry-run", LOG_URL)
    assert walk(md).links == [LOG_URL]
    assert ".infrabot/artifacts" not in md
    without = render_run(run(), "Dry-run")  # no place a reader could open: no line at all
    assert "Full log" not in without and ".infrabot/artifacts" not in without


def _many_hosts(n: int) -> DryRun:
    diff = "--- a\n+++ b\n" + "".join(f"+line {i} {'x' * 60}\n" for i in range(120))
    hosts = tuple(f"web{i:02}" for i in range(n))
    tasks = [
        TaskResult(host=h, task="Render the vhosts", status="changed", diff=diff) for h in hosts
    ]
    tasks[n // 2] = TaskResult(  # in the middle, where a cut falls
        host=hosts[n // 2],
        task="Reload nginx",
        status="failed",
        message="nginx: [emerg] bad listen",
    )
    return run().model_copy(
        update={
            "status": RunStatus.FAILED,
            "hosts": hosts,
            "recap": tuple(HostRecap(host=h, ok=2, changed=1) for h in hosts),
            "tasks": tuple(tasks),
        }
    )


def test_a_pr_body_over_githubs_limit_keeps_the_summary_and_the_errors() -> None:
    body = render_pr_body(
        render_plan(plan()),
        " infra/state/sites/api-scanner.yaml | 7 +++++++",
        render_report_markdown(ValidationReport(checks=("yaml", "schema"))),
        render_run(_many_hosts(30), "Dry-run (check + diff)", LOG_URL),
        1,
    )
    assert len(body) > MAX_COMMENT
    cut = posted(body)  # what every forge posts (bot.forge.base)
    assert len(cut) <= MAX_COMMENT
    shown = visible(cut)
    assert headings(cut)[0] == "Plan for #1: Expose api-scanner at api-scanner.example.com"
    assert "web15 — 0 changes, 1 failed: Reload nginx" in shown
    assert "nginx: [emerg] bad listen" in shown
    assert "characters cut here" in shown
    assert walk(cut).links == [LOG_URL]  # the end survives too
    walker = walk(cut)
    assert set(walker.tags) - {"a"} <= ALLOWED
    assert walker.tags.count("details") == cut.count("</details>")
