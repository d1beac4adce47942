"""The evaluation corpus and `infrabot eval`: the corpus is broad enough, the offline engine
meets its goal on it, the command reports per case (text and --json), and at depth pr a
case is judged on its pull request: it fails when the PR's validation or dry-run does."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from fake_anthropic import Reply, serving, tool_use
from test_engines_claude import GOOD_PLAN, engine, implementer_script

from bot.cli import main
from bot.demo import COPIED
from bot.engines import OfflineEngine, load_capabilities
from bot.engines.routing import matching
from bot.evals import load_corpus, run_eval
from bot.evals.judge import Observed, judge
from bot.evals.run import Case, render_table
from bot.model import ChangeAction, DryRun, ResourceChange, RunStatus, ValidationReport

ROOT = Path(__file__).resolve().parent.parent
CORPUS = load_corpus(ROOT / "tests" / "evals")
CAPABILITIES = load_capabilities(ROOT / "capabilities")


def test_the_corpus_covers_every_capability_in_several_phrasings() -> None:
    assert len(CORPUS) >= 60
    kinds = {c.expect for c in CORPUS}
    assert kinds == {"pr", "question", "refusal"}
    for cap in CAPABILITIES:
        phrasings = [
            c for c in CORPUS if c.expect != "question" and cap in matching(c.request, CAPABILITIES)
        ]
        assert len(phrasings) >= 2, cap.name
    assert sum(c.expect == "question" for c in CORPUS) >= 12
    assert sum(c.id.startswith("inj-") for c in CORPUS) >= 6


def test_the_offline_engine_on_one_case_of_each_kind() -> None:
    """The whole corpus runs in CI (`infrabot eval --min-pass-rate 0.95` in .ci/run)."""
    picked = [next(c for c in CORPUS if c.expect == kind) for kind in ("pr", "question", "refusal")]
    report = run_eval(OfflineEngine(), picked, ROOT, depth="draft")
    assert [c.ok for c in report.cases] == [True, True, True], report.cases


def test_a_case_fails_when_the_draft_differs() -> None:
    wrong = Case.model_validate(
        {
            "id": "wrong-size",
            "request": "bump status-page to 2GB of RAM",
            "expect": "pr",
            "changes": [{"kind": "Container", "name": "status-page", "fields": {"memory": 4096}}],
        }
    )
    question = Case(id="should-ask", request="bump status-page to 2GB of RAM", expect="question")
    report = run_eval(OfflineEngine(), [wrong, question], ROOT, depth="draft")
    assert [c.ok for c in report.cases] == [False, False]
    assert "memory is 2048, not 4096" in report.cases[0].why
    assert report.questions_that_became_prs == 1
    assert "pass rate 0.0%" in render_table(report)


def test_eval_prints_a_table_and_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "few.yaml").write_text(
        "- {id: resize-relative, request: give status-page 2 more cores, expect: pr}\n"
        "- {id: vague, request: make it better, expect: question}\n"
        "- {id: wrong, request: make it better, expect: pr}\n"
    )
    argv = ["-q", "--repo", str(ROOT), "eval", "--depth", "draft", "--corpus", str(tmp_path)]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "resize-relative" in out and "pass rate 66.7%" in out and "cost $" in out
    assert "depth draft" in out and "no dry-run" in out
    assert main([*argv, "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["pass_rate"] == pytest.approx(2 / 3, abs=1e-3) and data["total"] == 3
    assert data["depth"] == "draft" and data["cpu_seconds"] > 0
    assert {"id", "turns", "tokens", "cost_usd", "seconds", "ok"} <= set(data["cases"][0])
    assert main([*argv, "--min-pass-rate", "0.95"]) == 1


def test_eval_refuses_a_malformed_corpus_and_claude_without_a_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "bad.yaml").write_text("- id: x\n  request: y\n  expect: maybe\n")
    assert main(["-q", "--repo", str(ROOT), "eval", "--corpus", str(tmp_path)]) == 2
    assert "bad.yaml: not a list of eval cases" in capsys.readouterr().err
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    assert main(["-q", "--repo", str(ROOT), "eval", "--engine", "claude"]) == 2
    assert "needs ANTHROPIC_API_KEY" in capsys.readouterr().err
    assert main(["-q", "--repo", str(ROOT), "eval", "--lanes", "0"]) == 2
    assert "--lanes must be at least 1" in capsys.readouterr().err


@pytest.mark.integration
def test_the_claude_engine_is_scored_with_turns_tokens_and_cost() -> None:
    """Through the fake Messages API, up to a validated, dry-run PR."""
    case = Case.model_validate(
        {
            "id": "claude-resize",
            "request": "status page could use more headroom, 1 GiB",
            "expect": "pr",
            "changes": [{"kind": "Container", "name": "status-page", "fields": {"memory": 1024}}],
        }
    )
    script = [Reply([tool_use("submit_plan", GOOD_PLAN)], cache_read=1000), *implementer_script()]
    with serving(script) as (_, url):
        report = run_eval(engine(url), [case], ROOT, depth="pr", estate=False)
    (result,) = report.cases
    assert result.ok and result.pr is not None, result.why
    assert result.turns == 4 and result.tokens > 1000 and result.cost_usd > 0


def repo_with_traps(dest: Path) -> Path:
    """The seed repository where two drafts the offline engine makes correctly still end in
    a failed PR: the Container schema caps memory at 1 GiB (validation fails), and the node
    role refuses a container named ``doomed`` (the dry-run fails)."""
    for name in COPIED:
        src = ROOT / name
        if src.is_dir():
            shutil.copytree(src, dest / name, ignore=shutil.ignore_patterns("__pycache__"))
        elif src.exists():
            shutil.copy2(src, dest / name)
    schema_path = dest / "schemas" / "Container.schema.json"
    schema = json.loads(schema_path.read_text())
    schema["properties"]["memory"]["maximum"] = 1024
    schema_path.write_text(json.dumps(schema, indent=2))
    role = dest / "infra" / "ansible" / "roles" / "node" / "tasks" / "main.yml"
    role.write_text(
        role.read_text()
        + """
- name: Refuse the doomed container (an eval test's trap)
  ansible.builtin.fail:
    msg: the doomed container cannot be made on this node
  when: "'doomed' in (infrabot_containers | map(attribute='name'))"
"""
    )
    return dest


def container(case_id: str, request: str, name: str, memory: int) -> Case:
    return Case.model_validate(
        {
            "id": case_id,
            "request": request,
            "expect": "pr",
            "changes": [
                {
                    "action": "create",
                    "kind": "Container",
                    "name": name,
                    "fields": {"memory": memory},
                }
            ],
            "only": True,
        }
    )


RESIZE = Case.model_validate(
    {
        "id": "resize",
        "request": "bump status-page to 1GB of RAM",
        "expect": "pr",
        "changes": [
            {
                "action": "update",
                "kind": "Container",
                "name": "status-page",
                "fields": {"memory": 1024, "ip": "10.77.0.10/24"},
            }
        ],
        "untouched": [["Site", "status-page"]],
        "only": True,
    }
)


@pytest.mark.integration
def test_at_depth_pr_a_case_fails_when_its_pr_fails_validation_or_the_dry_run(
    tmp_path: Path,
) -> None:
    root = repo_with_traps(tmp_path / "repo")
    cases = [
        container("too-big", "new ct big, 1 core, 2GB ram", "big", 2048),
        container("doomed", "new ct doomed, 1 core, 256MB", "doomed", 256),
        Case(id="vague", request="make it better", expect="question"),
        RESIZE,
    ]
    drafts = run_eval(OfflineEngine(), cases, root, depth="draft")
    # the draft depth sees the schema but not the Ansible content: "doomed" passes there
    assert [c.ok for c in drafts.cases] == [False, True, True, True], drafts.cases

    report = run_eval(OfflineEngine(), cases, root, depth="pr", estate=False)
    too_big, doomed, vague, resize = report.cases
    # read from the PR's diff in git; the copy's containers live in another /24 than the
    # seed's (the case's address moved with them), and the site was not touched
    assert resize.ok and resize.pr is not None, resize.why
    assert not too_big.ok and too_big.got == "pr" and too_big.pr is not None
    assert too_big.why.startswith("validation failed:") and "1024" in too_big.why, too_big.why
    assert not doomed.ok and doomed.got == "pr" and doomed.pr is not None
    assert doomed.why.startswith("dry-run: failed: pve1:"), doomed.why
    assert "doomed container cannot be made" in doomed.why
    assert vague.ok and vague.got == "question" and vague.pr is None
    assert report.depth == "pr" and "no local estate (asked for none)" in report.estate
    assert "depth pr" in render_table(report) and "pass rate 50.0%" in render_table(report)


TLS = Case.model_validate(
    {
        "id": "tls",
        "request": "enable tls on the status-page site",
        "expect": "pr",
        "changes": [{"action": "update", "kind": "Site", "name": "status-page"}],
    }
)
SITE = ResourceChange(action=ChangeAction.UPDATE, kind="Site", name="status-page")
PASSED = ValidationReport(checks=("schema",))
FAILED = ValidationReport.model_validate(
    {"checks": ["schema"], "findings": [{"check": "schema", "message": "memory: too big"}]}
)


def run(status: RunStatus, nginx_ok: bool | None = None) -> DryRun:
    return DryRun(
        head_sha="h",
        base_sha="b",
        status=status,
        hosts=("proxy1",),
        nginx_ok=nginx_ok,
        nginx_check="proxy1: cannot load certificate",
    )


@pytest.mark.parametrize(
    ("case", "seen", "verdict"),
    [
        (TLS, Observed(got="pr", changes=(SITE,), validation=PASSED), (True, "")),
        (
            TLS,
            Observed(got="pr", changes=(SITE,), validation=FAILED, dry_run=None),
            (False, "validation failed: memory: too big"),
        ),
        (
            TLS,
            Observed(
                got="pr",
                changes=(SITE,),
                validation=PASSED,
                dry_run=run(RunStatus.SUCCESSFUL, nginx_ok=False),
            ),
            (False, "dry-run: nginx -t failed: proxy1: cannot load certificate"),
        ),
        (
            TLS.model_copy(update={"dry_run": "fails"}),
            Observed(
                got="pr",
                changes=(SITE,),
                validation=PASSED,
                dry_run=run(RunStatus.SUCCESSFUL, nginx_ok=False),
            ),
            (True, ""),
        ),
        (
            TLS.model_copy(update={"dry_run": "fails"}),
            Observed(
                got="pr", changes=(SITE,), validation=PASSED, dry_run=run(RunStatus.SUCCESSFUL)
            ),
            (False, "the dry-run was expected to fail and successful"),
        ),
        (
            TLS,
            Observed(got="pr", changes=(SITE,), validation=None),
            (False, "the PR was not validated"),
        ),
        (TLS, Observed(got="stopped", said="the turn cap (8)"), (False, "the turn cap (8)")),
        (TLS, Observed(got="failed", said="nothing to do"), (False, "nothing to do")),
    ],
)
def test_the_judge_reads_the_checks_of_the_pr(
    case: Case, seen: Observed, verdict: tuple[bool, str]
) -> None:
    assert judge(case, seen) == verdict


def test_a_case_moves_with_the_copy_s_addresses() -> None:
    case = Case.model_validate(
        {
            "id": "repoint",
            "request": "point status-page at http://10.77.0.12:8080",
            "expect": "pr",
            "changes": [
                {
                    "kind": "Site",
                    "name": "status-page",
                    "fields": {"upstream": "http://10.77.0.12:8080"},
                }
            ],
        }
    )
    moved = case.renumbered("10.77.0.", "10.77.42.")
    assert moved.request == "point status-page at http://10.77.42.12:8080"
    assert moved.changes[0].fields == {"upstream": "http://10.77.42.12:8080"}
    assert case.renumbered("10.77.0.", "10.77.0.") is case
