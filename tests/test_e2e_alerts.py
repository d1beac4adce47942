"""The alert commands as a user runs them: slo rules, runbook walk, alert ingest."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest_alerts import alert, payload

from bot.cli import main
from bot.demo import make_copy

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "infra-repo"
    path.mkdir()
    make_copy(ROOT, path)
    monkeypatch.chdir(path)
    return path


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["-q", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_ingest_opens_one_ticket_and_a_redelivery_changes_nothing(
    capsys: pytest.CaptureFixture[str], repo: Path
) -> None:
    dispatch = {"action": "alertmanager", "client_payload": payload("g", alert("a"))}
    (repo / "alert.json").write_text(json.dumps(dispatch))
    code, out, _ = run(capsys, "alert", "ingest", "alert.json")
    assert code == 0 and out.startswith("opened ticket #1")
    code, out, _ = run(capsys, "alert", "ingest", "alert.json")
    assert code == 0 and "already recorded" in out
    code, out, _ = run(capsys, "issue", "show", "1", "--json")
    shown = json.loads(out)
    assert "Acceptance criteria" in json.dumps(shown)
    assert (repo / ".infrabot/alerts.db").exists()


def test_bad_payload_is_one_line_and_records_nothing(
    capsys: pytest.CaptureFixture[str], repo: Path
) -> None:
    (repo / "bad.json").write_text(json.dumps({"version": "4", "alerts": []}))
    code, _, err = run(capsys, "alert", "ingest", "bad.json")
    assert code == 2 and "not an Alertmanager webhook" in err and "Traceback" not in err
    assert not (repo / ".infrabot/alerts.db").exists()


def test_slo_rules_and_runbook_walk(capsys: pytest.CaptureFixture[str], repo: Path) -> None:
    code, out, _ = run(capsys, "slo", "rules", "--window-scale", "60")
    assert code == 0 and "slo:sli_error:ratio_rate1m" in out
    labels = {"alertname": "SLOErrorBudgetBurn", "slo": "availability", "service": "api"}
    (repo / "labels.json").write_text(json.dumps(labels))
    code, out, _ = run(capsys, "runbook", "walk", "error-budget-burn", "--alert", "labels.json")
    assert code == 0
    assert 'slo:sli_error:ratio_rate5m{slo="availability"}' in out
    assert "escalate to a human" in out
    code, _, err = run(capsys, "runbook", "walk", "nope", "--alert", "labels.json")
    assert code == 2 and "no runbook 'nope'" in err
