"""Trajectories: append-only JSON lines that survive torn writes and never hold secrets."""

from __future__ import annotations

import json
import multiprocessing
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from bot.ledger import STEPS, Event, Trajectory, render_event_catalogue
from bot.ledger.trajectory import MASK, MAX_STRING, mask_obvious_secrets

T0 = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
ROOT = Path(__file__).resolve().parent.parent


def event(step: str = "validate", ticket: int = 4, **fields: Any) -> Event:
    base: dict[str, Any] = {
        "time": T0,
        "ticket": ticket,
        "actor": "infrabot",
        "step": step,
        "inputs": {},
        "outcome": "ok",
    }
    return Event(**{**base, **fields})


def upper(text: str) -> str:
    return text.replace("hunter2", "[REDACTED]")


def test_events_round_trip_in_order(tmp_path: Path) -> None:
    traj = Trajectory(tmp_path / "t", redact=upper)
    first = event("ticket.opened", inputs={"title": "Add a site"})
    second = event("plan.posted", outcome="ok", detail={"changes": 2, "hosts": ["web1"]})
    traj.append(first)
    traj.append(second)
    assert traj.read(4) == [first, second]
    assert traj.read(5) == []
    assert traj.tickets() == [4]
    assert (tmp_path / "t" / "4.jsonl").read_text().count("\n") == 2


def test_unknown_steps_are_rejected_and_nothing_is_written(tmp_path: Path) -> None:
    traj = Trajectory(tmp_path, redact=upper)
    with pytest.raises(ValueError, match=r"unknown trajectory step 'made.up'"):
        traj.append(event("made.up"))
    assert not (tmp_path / "4.jsonl").exists()


def test_a_torn_last_line_is_skipped_and_the_next_event_starts_fresh(tmp_path: Path) -> None:
    traj = Trajectory(tmp_path, redact=upper)
    traj.append(event("validate"))
    with (tmp_path / "4.jsonl").open("a") as f:
        f.write('{"time": "2026-01-02T03:04:05Z", "ticket": 4, "act')  # the crash
    assert [e.step for e in traj.read(4)] == ["validate"]
    traj.append(event("dryrun"))
    assert [e.step for e in traj.read(4)] == ["validate", "dryrun"]


def test_garbage_lines_anywhere_never_crash_a_reader(tmp_path: Path) -> None:
    traj = Trajectory(tmp_path, redact=upper)
    traj.append(event("validate"))
    with (tmp_path / "4.jsonl").open("ab") as f:
        f.write(b"\x00\xff not json\n[]\n{}\n")
    traj.append(event("dryrun"))
    assert [e.step for e in traj.read(4)] == ["validate", "dryrun"]


def test_inputs_and_detail_are_redacted_before_they_are_written(tmp_path: Path) -> None:
    traj = Trajectory(tmp_path, redact=upper)
    traj.append(
        event(
            inputs={"cmd": "login with hunter2", "nested": [{"note": "hunter2"}]},
            detail={"db_password": "whatever", "api_key": 12345, "passed": 3, "log": "ok"},
            outcome="failed: hunter2",
        )
    )
    raw = (tmp_path / "4.jsonl").read_text()
    assert "hunter2" not in raw and "whatever" not in raw and "12345" not in raw
    got = traj.read(4)[0]
    assert got.inputs == {"cmd": "login with [REDACTED]", "nested": [{"note": "[REDACTED]"}]}
    assert got.detail == {"db_password": MASK, "api_key": MASK, "passed": 3, "log": "ok"}
    assert got.outcome == "failed: [REDACTED]"


def test_values_that_are_not_json_become_text_and_long_text_is_clipped(tmp_path: Path) -> None:
    traj = Trajectory(tmp_path, redact=upper)
    traj.append(event(detail={"path": Path("/srv/x"), "when": T0, "log": "y" * (MAX_STRING + 5)}))
    got = traj.read(4)[0].detail
    assert got["path"] == "/srv/x"
    assert got["when"] == "2026-01-02T03:04:05Z"
    assert got["log"].endswith("… (5 more characters)")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Authorization: Bearer abc.def", f"Authorization: Bearer {MASK}"),
        ("password=s3cret rest", f"password={MASK} rest"),
        ("token: ghp_abcdefghijklmnopqrstuvwxyz", f"token: {MASK}"),
        ("key sk-ant-api03-abcdefghijk", f"key sk-ant-{MASK}"),
        ("nothing secret here", "nothing secret here"),
    ],
)
def test_the_fallback_redactor_masks_obvious_secrets(text: str, expected: str) -> None:
    assert mask_obvious_secrets(text) == expected


def _append_many(directory: str, worker: int) -> None:
    traj = Trajectory(Path(directory), redact=upper)
    for i in range(50):
        traj.append(event("command.received", inputs={"worker": worker, "i": i, "pad": "x" * 3000}))


def test_concurrent_appenders_never_interleave_lines(tmp_path: Path) -> None:
    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=_append_many, args=(str(tmp_path), w)) for w in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(30)
    lines = (tmp_path / "4.jsonl").read_text().splitlines()
    assert len(lines) == 200
    assert all(json.loads(line)["step"] == "command.received" for line in lines)


def test_the_flow_step_names_are_in_the_catalogue() -> None:
    used = ["apply.started", "apply.finished", "verify", "evidence.posted", "plan.posted"]
    used += ["engine.clarify", "pr.opened", "pr.failed", "validate", "dryrun"]
    assert set(used) <= set(STEPS)


def test_docs_events_md_is_rendered_from_the_catalogue() -> None:
    doc = (ROOT / "docs" / "events.md").read_text(encoding="utf-8")
    assert doc == render_event_catalogue(), (
        "docs/events.md is out of date: run `python -m bot.ledger > docs/events.md`"
    )
    for step in STEPS:
        assert f"| `{step}` |" in doc
