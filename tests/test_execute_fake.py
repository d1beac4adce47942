"""FakeRunner: the test double other parts use in place of Ansible."""

from __future__ import annotations

from pathlib import Path

from bot.execute import FakeRunner, PlaybookRunner, RunRequest
from bot.model import DryRun, RunStatus, TaskResult


def req(ident: str, *hosts: str, check: bool = True) -> RunRequest:
    return RunRequest(
        playbook_dir=Path("/p"),
        inventory=Path("/p/i.yml"),
        limit=hosts,
        check=check,
        artifact_dir=Path("/a"),
        ident=ident,
        head_sha="h" + ident,
        base_sha="b",
    )


def test_canned_results_come_in_order_with_the_request_laid_over_them() -> None:
    failed = DryRun(
        head_sha="",
        base_sha="",
        status=RunStatus.FAILED,
        hosts=(),
        error="boom",
        tasks=(TaskResult(host="web1", task="t", status="failed"),),
    )
    fake = FakeRunner(failed)
    runner: PlaybookRunner = fake
    seen: list[str] = []
    first = runner.run(req("one", "web1", check=False), seen.append)
    second = runner.run(req("two", "web1", "web2"))
    assert (first.status, first.error, first.hosts, first.head_sha, first.check_mode) == (
        RunStatus.FAILED,
        "boom",
        ("web1",),
        "hone",
        False,
    )
    assert seen == ["web1: t"]
    assert second.status is RunStatus.SUCCESSFUL and [r.host for r in second.recap] == [
        "web1",
        "web2",
    ]
    assert [r.ident for r in fake.requests] == ["one", "two"]


def test_respond_computes_an_answer_and_an_empty_limit_is_skipped() -> None:
    fake = FakeRunner(
        respond=lambda r: DryRun(
            head_sha=r.head_sha, base_sha="", hosts=r.limit, status=RunStatus.UNKNOWN
        )
    )
    assert fake.run(req("x", "web1")).status is RunStatus.UNKNOWN
    assert fake.run(req("y")).status is RunStatus.SKIPPED
    assert len(fake.requests) == 2
