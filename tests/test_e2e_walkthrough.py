"""The README's walk-through, as a new user would do it, against a local estate that
really runs: nginx, dnsmasq and a container namespace on this machine."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pytest

from bot.cli import main
from bot.demo import SEED_REQUEST, make_copy
from bot.flow.verify import http_get, resolve
from bot.localestate import netns_available

pytestmark = [pytest.mark.e2e, pytest.mark.integration]
ROOT = Path(__file__).resolve().parent.parent
needs_netns = pytest.mark.skipif(
    netns_available() is not None, reason=f"network namespaces: {netns_available()}"
)


def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    code = main(["-q", *argv])
    out, err = capsys.readouterr()
    return code, out + err


def namespaces() -> str:
    return subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout


def ns(repo: Path, name: str) -> str:
    """The namespace of container ``name`` in this estate (tagged by its state directory)."""
    state = repo / ".infrabot" / "estate" / "pve1" / "containers"
    return "ib" + hashlib.sha1(str(state.resolve()).encode()).hexdigest()[:4] + "-" + name


@needs_netns
def test_issue_to_evidence_as_a_user(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    make_copy(ROOT, repo)
    monkeypatch.chdir(repo)
    assert cli(capsys, "estate", "up")[0] == 0
    try:
        code, out = cli(
            capsys,
            "issue",
            "open",
            SEED_REQUEST,
            "--body",
            "and set up monitoring",
            "--as",
            "alice",
            "--json",
        )
        assert code == 0, out
        pr = json.loads(out)["pr"]
        code, out = cli(capsys, "pr", "show", str(pr), "--json")
        body = json.loads(out)["pull_request"]["body"]
        for part in (
            "### Plan for #1",
            "Acceptance criteria",
            "Validation ✅ passed",
            "Dry-run (check + diff) (successful)",
            "unverified in check mode",
            "nginx -t",
            "infrabot-sites.conf",
            "server_name api-scanner.example.com;",
        ):
            assert part in body, part

        code, out = cli(capsys, "pr", "comment", str(pr), "/apply", "--as", "carol")
        assert code == 1 and "read permission" in out
        code, out = cli(capsys, "pr", "comment", str(pr), "/apply", "--as", "bob")
        assert code == 1 and "approval" in out
        assert cli(capsys, "pr", "review", str(pr), "--approve", "--as", "bob")[0] == 0
        code, out = cli(capsys, "pr", "merge", str(pr), "--as", "alice")
        assert code == 0, out

        comments = json.loads(cli(capsys, "pr", "show", str(pr), "--json")[1])["comments"]
        evidence = next(c["body"] for c in comments if c["body"].startswith("### Evidence"))
        assert "applied and verified" in evidence and "❌" not in evidence
        issue = json.loads(cli(capsys, "issue", "show", "1", "--json")[1])
        assert issue["issue"]["state"] == "closed"
        steps = [e["step"] for e in issue["trajectory"]]
        for step in (
            "ticket.opened",
            "plan.posted",
            "pr.opened",
            "validate",
            "dryrun",
            "apply.refused",
            "pr.merged",
            "apply.finished",
            "verify",
            "evidence.posted",
            "issue.closed",
        ):
            assert step in steps, step

        hosts = {
            h["name"]: h for h in json.loads(cli(capsys, "estate", "status", "--json")[1])["hosts"]
        }
        dns_port = next(s["port"] for s in hosts["dns1"]["services"] if s["name"] == "dnsmasq")
        http_port = next(s["port"] for s in hosts["proxy1"]["services"] if s["name"] == "nginx")
        assert resolve("api-scanner.example.com", dns_port) == ["127.0.0.1"]
        status, page = http_get("127.0.0.1", http_port, "api-scanner.example.com")
        assert status == 200 and "container api-scanner" in page
        assert ns(repo, "api-scanner") in namespaces()

        code, out = cli(capsys, "pr", "revert", str(pr), "--as", "bob")
        assert code == 0 and "revert PR #" in out
        revert = int(out.split("#")[-1])
        # the revert is bob's pull request: someone else approves it
        assert cli(capsys, "pr", "review", str(revert), "--approve", "--as", "bob")[0] == 2
        assert cli(capsys, "pr", "review", str(revert), "--approve", "--as", "alice")[0] == 0
        code, out = cli(capsys, "pr", "merge", str(revert), "--as", "alice")
        assert code == 0, out
        comments = json.loads(cli(capsys, "pr", "show", str(revert), "--json")[1])["comments"]
        evidence = next(c["body"] for c in comments if c["body"].startswith("### Evidence"))
        assert "site: api-scanner.example.com removed from proxy1" in evidence
        assert "dns: api-scanner.example.com removed from dns1" in evidence
        assert "❌" not in evidence
        assert http_get("127.0.0.1", http_port, "api-scanner.example.com")[0] == 404
        assert ns(repo, "api-scanner") not in namespaces()
        assert ns(repo, "status-page") in namespaces()
    finally:
        assert cli(capsys, "estate", "down")[0] == 0
    assert ns(repo, "api-scanner") not in namespaces()
    assert ns(repo, "status-page") not in namespaces()


@needs_netns
def test_demo_runs_end_to_end(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "bot.cli", "-q", "demo", "--dir", str(tmp_path / "demo")],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "HTTP 200" in done.stdout and "container api-scanner" in done.stdout
    assert "is closed" in done.stdout
    assert not (tmp_path / "demo").exists()
    assert ns(tmp_path / "demo", "api-scanner") not in namespaces()
