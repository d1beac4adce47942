"""The evaluation corpus and `infrabot eval`: the corpus is broad enough, the offline engine
meets its goal on it, and the command reports per case (text and --json)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fake_anthropic import Reply, serving, tool_use
from test_engines_claude import GOOD_PLAN, engine, implementer_script

from bot.cli import main
from bot.engines import OfflineEngine, load_capabilities
from bot.engines.routing import matching
from bot.evals import load_corpus, run_eval
from bot.evals.run import Case, render_table

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
    report = run_eval(OfflineEngine(), picked, ROOT)
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
    report = run_eval(OfflineEngine(), [wrong, question], ROOT)
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
    argv = ["-q", "--repo", str(ROOT), "eval", "--corpus", str(tmp_path)]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "resize-relative" in out and "pass rate 66.7%" in out and "cost $" in out
    assert main([*argv, "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["pass_rate"] == pytest.approx(2 / 3, abs=1e-3) and data["total"] == 3
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


def test_the_claude_engine_is_scored_with_turns_tokens_and_cost() -> None:
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
        report = run_eval(engine(url), [case], ROOT)
    (result,) = report.cases
    assert result.ok, result.why
    assert result.turns == 4 and result.tokens > 1000 and result.cost_usd > 0
