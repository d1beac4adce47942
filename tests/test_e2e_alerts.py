"""The alert commands as a user runs them: slo rules, runbook walk, alert ingest."""

from __future__ import annotations

import json
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pytest
from conftest_alerts import alert, payload

from bot.alerts.rules import DEPLOYED_RULES
from bot.cli import main
from bot.wiring import open_services

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parent.parent


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["-q", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def _checked_remedy(capsys: pytest.CaptureFixture[str], repo: Path, pr: int, *, ticket: int) -> str:
    """PR ``pr`` remedies ``ticket``, passed validation and its dry-run; its diff to main."""
    code, out, _ = run(capsys, "pr", "show", str(pr), "--json")
    assert code == 0, out
    shown = json.loads(out)
    assert shown["pull_request"]["issue"] == ticket
    statuses = {s["context"]: s["state"] for s in shown["statuses"]}
    assert statuses == {"infrabot/validate": "success", "infrabot/dry-run": "success"}
    return subprocess.run(
        ["git", "diff", "main", shown["pull_request"]["head_branch"]],
        cwd=repo,
        capture_output=True,
        text=True,
        check=True,
    ).stdout


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


class FakePrometheus:
    """A test-only stand-in for Prometheus's instant-query API over real HTTP: every query
    answers one sample for the status-page container (the real Prometheus is in
    test_alerts_prometheus.py and the loop test)."""

    def __init__(self, value: str) -> None:
        sample = {"metric": {"container": "status-page"}, "value": [0, value]}
        body = json.dumps(
            {"status": "success", "data": {"resultType": "vector", "result": [sample]}}
        ).encode()

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(body)

            do_POST = do_GET

            def log_message(self, *args: object) -> None:
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_port}"


MEMORY = {
    "alertname": "InvariantViolated",
    "invariant": "container_memory_headroom",
    "infrabot_kind": "invariant",
    "severity": "ticket",
    "container": "status-page",
}


def test_an_alert_whose_runbook_recommends_a_change_gets_a_checked_pr(
    capsys: pytest.CaptureFixture[str], repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    prometheus = FakePrometheus("0.1")
    monkeypatch.setenv("INFRABOT_PROMETHEUS_URL", prometheus.url)
    try:
        (repo / "alert.json").write_text(json.dumps(payload("mem", alert("m", **MEMORY))))
        code, out, _ = run(capsys, "alert", "ingest", "alert.json")
        assert code == 0 and out.startswith("ticket #1: remediation PR #2 opened"), out
        code, out, _ = run(capsys, "alert", "ingest", "alert.json")
        assert code == 0 and "already recorded" in out  # no second ticket, no second PR
    finally:
        prometheus.server.shutdown()
    diff = _checked_remedy(capsys, repo, 2, ticket=1)
    assert "-memory: 512" in diff and "+memory: 1024" in diff


def test_without_evidence_the_ticket_is_a_humans_and_no_pr_opens(
    capsys: pytest.CaptureFixture[str], repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("INFRABOT_PROMETHEUS_URL", raising=False)
    (repo / "alert.json").write_text(json.dumps(payload("mem", alert("m", **MEMORY))))
    code, out, _ = run(capsys, "alert", "ingest", "alert.json")
    assert code == 0 and out.startswith("opened ticket #1 (marked for a human)"), out
    code, out, _ = run(capsys, "issue", "show", "1", "--json")
    shown = json.loads(out)
    assert "needs-human" in shown["issue"]["labels"]
    code, out, _ = run(capsys, "pr", "list", "--json")
    assert json.loads(out) == []


class TightMemory:
    """A test-only Prometheus over real HTTP: queries about container memory answer that
    status-page has 10% headroom left (``value``); every other query is an empty vector."""

    def __init__(self) -> None:
        self.value = "0.1"
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                expr = parse_qs(urlparse(self.path).query).get("query", [""])[0]
                sample = {"metric": {"container": "status-page"}, "value": [0, outer.value]}
                found = [sample] if "container_memory" in expr else []
                body = json.dumps(
                    {"status": "success", "data": {"resultType": "vector", "result": found}}
                ).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_port}"


def test_check_drafts_its_tickets_pr_and_the_next_attempt_when_a_fix_does_not_stick(
    capsys: pytest.CaptureFixture[str], repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``infrabot check`` through the real flow (offline engine, validation, dry-run): the
    ticket it opens gets its remediation PR; the PR is merged and its apply recorded (the
    apply itself, with Ansible: test_e2e_alert_loop.py); the memory is still tight once the
    invariant's 2 s have passed, so the next check drafts the next attempt, once."""
    slo = repo / "infra" / "slo.yaml"
    slo.write_text(slo.read_text() + "\nalerting:\n  window_scale: 60\n")
    rules = repo / DEPLOYED_RULES  # regenerated with the SLOs, as validation asks
    assert run(capsys, "slo", "rules", "--output", str(rules))[0] == 0
    subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@x", "commit", "-qam", "short windows"],
        cwd=repo,
        check=True,
    )
    prometheus = TightMemory()
    monkeypatch.setenv("INFRABOT_PROMETHEUS_URL", prometheus.url)
    try:
        code, out, _ = run(capsys, "check", "--no-drift")
        assert code == 1 and "VIOLATED  invariant container_memory_headroom" in out, out
        assert "drafted   ticket #1: remediation PR #2 opened" in out, out

        svc = open_services(repo, lambda _: None)
        pr = svc.forge.pull_request(2)
        assert pr.issue == 1 and pr.state == "open"
        merged = svc.forge.merge(2, pr.head_sha, "alice")
        svc.record(1, "alice", "apply.finished", "successful", {"pr": 2, "sha": merged.merge_sha})
        time.sleep(2.2)  # the invariant's `for` (2m / 60) has passed since the apply

        code, out, _ = run(capsys, "check", "--no-drift", "--json")
        shown = json.loads(out)
        (verdict,) = shown["check"]["acceptance"]
        assert verdict["state"] == "failed" and verdict["pr"] == 3, verdict
        code, out, _ = run(capsys, "check", "--no-drift")  # PR #3 is open: nothing more
        assert "drafted" not in out and "did not stick" not in out, out
    finally:
        prometheus.server.shutdown()
    diff = _checked_remedy(capsys, repo, 3, ticket=1)
    assert "-memory: 1024" in diff and "+memory: 2048" in diff  # doubled again, from main
    code, out, _ = run(capsys, "issue", "show", "1", "--json")
    assert "The fix did not stick: the work is reopened" in out
    assert "is PR #3" in out
