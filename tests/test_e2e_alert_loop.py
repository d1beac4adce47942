"""The alert loop with the real thing, as a user would see it: a container of the local
estate exposes metrics; its workload exhausts its memory; the generated rules (short
windows through infra/slo.yaml's ``alerting.window_scale``) fire in Debian's Prometheus;
Alertmanager posts to ``infrabot serve``'s ``/alerts``; the ticket appears with its runbook
and acceptance criteria and the bot opens the remediation PR (double the memory); a person
approves and merges it; the merge applies; and the follow-up ``infrabot check`` closes the
ticket once the headroom has held for the required time."""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from serverkit import SECRET, start

from bot.alerts.monitoring import eventually, free_port, start_monitoring
from bot.alerts.rules import DEPLOYED_RULES
from bot.cli import main
from bot.demo import make_copy
from bot.forge.local import LocalForge
from bot.localestate import netns_available

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.integration,
    pytest.mark.skipif(
        not (shutil.which("prometheus") and shutil.which("prometheus-alertmanager")),
        reason="needs Debian's prometheus and prometheus-alertmanager (./scripts/setup)",
    ),
    pytest.mark.skipif(
        netns_available() is not None, reason=f"network namespaces: {netns_available()}"
    ),
]
ROOT = Path(__file__).resolve().parent.parent
TOKEN = "alertmanager-token"
SCALE = "60"  # the invariant's 2m `for` becomes 2 s


def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    code = main(["-q", *argv])
    out, err = capsys.readouterr()
    return code, out + err


def git(repo: Path, *args: str) -> None:
    who = ["-c", "user.name=test", "-c", "user.email=test@infrabot.local"]
    subprocess.run(["git", *who, "-C", str(repo), *args], check=True, capture_output=True)


def test_memory_pressure_to_closed_ticket(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    make_copy(ROOT, repo)
    slo = repo / "infra" / "slo.yaml"
    slo.write_text(slo.read_text() + f"\nalerting:\n  window_scale: {SCALE}\n")
    monkeypatch.chdir(repo)
    rules = repo / DEPLOYED_RULES  # regenerated with the SLOs, as validation asks
    assert cli(capsys, "slo", "rules", "--output", str(rules))[0] == 0
    git(repo, "commit", "-qam", "Short alert windows for this test")
    assert cli(capsys, "estate", "up")[0] == 0
    stops: list[Callable[[], object]] = []
    try:
        code, out = cli(capsys, "reconcile", "--as", "alice")
        assert code == 0, out
        estate = repo / ".infrabot" / "estate"
        prom_port = free_port()
        prom_url = f"http://127.0.0.1:{prom_port}"
        env = {
            "INFRABOT_WEBHOOK_SECRET": SECRET,
            "INFRABOT_ALERTS_TOKEN": TOKEN,
            "INFRABOT_PROMETHEUS_URL": prom_url,  # the runbook's checks when a ticket opens
        }
        srv = start([sys.executable, "-m", "bot.cli", "serve", "--port", "0"], repo, env)
        stops.append(srv.stop)
        monitoring = start_monitoring(
            tmp_path,
            rules,
            f"http://{srv.host}:{srv.port}/alerts",
            TOKEN,
            file_sd=estate / "mon1" / "prometheus" / "file_sd" / "scrape.json",
            prom_port=prom_port,
        )
        stops.append(monitoring.stop)
        monkeypatch.setenv("INFRABOT_PROMETHEUS_URL", prom_url)
        forge = LocalForge(repo / ".infrabot" / "forge.db", {}, repo)

        # The workload grows to 450 MiB of the container's 512: headroom 12% < 20%.
        (estate / "pve1" / "containers" / "status-page.workload").write_text("450\n")
        prs = eventually(lambda: forge.list_pull_requests(), timeout=120)
        (issue,) = forge.list_issues()
        assert issue.title == "Alert: InvariantViolated (container_memory_headroom)"
        for part in ("### Acceptance criteria", "holds for 2s", "`memory-pressure`", "→ **yes**"):
            assert part in issue.body, part
        (pr,) = prs
        assert pr.issue == issue.number

        assert cli(capsys, "pr", "review", str(pr.number), "--approve", "--as", "bob")[0] == 0
        code, out = cli(capsys, "pr", "merge", str(pr.number), "--as", "alice")
        assert code == 0, out
        # Right after the apply the criterion is measured: the ticket closes only if the
        # headroom already held for the whole 2 s with the alert resolved; otherwise it
        # stays open and the follow-up check closes it.
        held = "closed: its acceptance criteria held" in out
        assert held or "stays open until its acceptance criteria hold" in out, out
        assert forge.issue(issue.number).state == ("closed" if held else "open")

        def closed() -> bool:
            cli(capsys, "check", "--no-drift")
            return forge.issue(issue.number).state == "closed"

        eventually(closed, timeout=90, every=1)
        last = forge.comments(issue.number)[-1].body
        assert last.startswith("### Acceptance criteria met") and "it held for 2s" in last

        # Drift: the whole estate against main.  A hand edit on dns1 opens one ticket naming
        # the host and the difference (its deduplication: test_alerts_drift.py); once the
        # edit is undone (what `infrabot reconcile` would do; reconcile has its own tests)
        # the next check finds none and closes it.
        hosts_file = estate / "dns1" / "dns" / "hosts"
        applied = hosts_file.read_text()
        hosts_file.write_text(applied + "10.9.9.9 by-hand.example.com\n")
        code, out = cli(capsys, "check")
        assert code == 1 and "DRIFT     drift: dns1 differ" in out, out
        drift = max(forge.list_issues(), key=lambda i: i.number)
        assert drift.labels == ("drift",) and "`dns1`" in drift.body
        assert "by-hand.example.com" in drift.body and "infrabot reconcile" in drift.body
        hosts_file.write_text(applied)
        code, out = cli(capsys, "check")
        assert code == 0 and "drift: every host matches" in out, out
        assert f"(ticket #{drift.number}, closed)" in out, out
        assert forge.issue(drift.number).state == "closed"
    finally:
        for stop in reversed(stops):
            stop()
        cli(capsys, "estate", "down")
