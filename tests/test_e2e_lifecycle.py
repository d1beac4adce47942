"""Changes and removals end to end on a local estate that really runs: a container is
resized, then removed with everything that points at it, each through issue → plan → PR →
validation and dry-run → review → merge → apply → evidence."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from test_e2e_walkthrough import cli, namespaces, needs_netns, ns

from bot.demo import make_copy
from bot.flow.verify import http_get, resolve

pytestmark = [pytest.mark.e2e, pytest.mark.integration]
ROOT = Path(__file__).resolve().parent.parent


def opened_pr(capsys: pytest.CaptureFixture[str], request: str) -> tuple[int, str]:
    code, out = cli(capsys, "issue", "open", request, "--as", "alice", "--json")
    assert code == 0, out
    pr = json.loads(out)["pr"]
    assert pr is not None, out
    body = json.loads(cli(capsys, "pr", "show", str(pr), "--json")[1])["pull_request"]["body"]
    assert "Validation ✅ passed" in body and "Dry-run (check + diff) (successful)" in body, body
    return pr, body


def merged_evidence(capsys: pytest.CaptureFixture[str], pr: int) -> str:
    assert cli(capsys, "pr", "review", str(pr), "--approve", "--as", "bob")[0] == 0
    code, out = cli(capsys, "pr", "merge", str(pr), "--as", "alice")
    assert code == 0, out
    comments = json.loads(cli(capsys, "pr", "show", str(pr), "--json")[1])["comments"]
    return next(c["body"] for c in comments if c["body"].startswith("### Evidence"))


def at_main(repo: Path, path: str) -> str:
    return subprocess.run(
        ["git", "-C", str(repo), "show", f"main:{path}"], capture_output=True, text=True
    ).stdout


@needs_netns
def test_resize_then_remove_a_container_and_what_points_at_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    make_copy(ROOT, repo)
    monkeypatch.chdir(repo)
    assert cli(capsys, "estate", "up")[0] == 0
    try:
        hosts = {
            h["name"]: h for h in json.loads(cli(capsys, "estate", "status", "--json")[1])["hosts"]
        }
        dns_port = next(s["port"] for s in hosts["dns1"]["services"] if s["name"] == "dnsmasq")
        http_port = next(s["port"] for s in hosts["proxy1"]["services"] if s["name"] == "nginx")

        pr, body = opened_pr(capsys, "give the status-page container 1GB more memory")
        assert "| update | Container | `status-page` |" in body
        assert "512 MiB" not in body and "1536 MiB of memory" in body
        evidence = merged_evidence(capsys, pr)
        # the local provider has no memory to probe: the size criterion is honestly "not
        # verified", and nothing failed
        assert "✅ applied" in evidence and "❌" not in evidence, evidence
        assert "not verified: container status-page runs on pve1" in evidence
        container = at_main(repo, "infra/state/containers/status-page.yaml")
        assert "memory: 1536 # MiB" in container, "the round-trip edit keeps the comment"
        assert ns(repo, "status-page") in namespaces()

        pr, body = opened_pr(
            capsys, "Decommission the status-page container and everything that points at it"
        )
        for row in (
            "| delete | Container | `status-page` |",
            "| delete | Site | `status-page` |",
            "| delete | DnsRecord | `status.example.com` |",
            "| delete | MonitoringTarget | `status-page` |",
        ):
            assert row in body, row
        assert "risk **high**" in body
        evidence = merged_evidence(capsys, pr)
        assert "❌" not in evidence, evidence
        assert "site: status.example.com removed from proxy1" in evidence
        assert "dns: status.example.com removed from dns1" in evidence
        assert ns(repo, "status-page") not in namespaces()
        assert http_get("127.0.0.1", http_port, "status.example.com")[0] == 404
        assert resolve("status.example.com", dns_port) == []
        assert at_main(repo, "infra/state/containers/status-page.yaml") == ""
    finally:
        assert cli(capsys, "estate", "down")[0] == 0
    assert ns(repo, "status-page") not in namespaces()
