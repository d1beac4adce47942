"""Copies of the seed estate made at once (parallel tests, eval lanes, a demo) get
different container subnets, though none of them routes its subnet yet."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

import pytest

from bot import demo
from bot.errors import InfrabotError


@pytest.fixture(autouse=True)
def ledger(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "subnets"
    monkeypatch.setattr(demo, "SUBNET_LEDGER", path)
    return path


def test_copies_made_one_after_another_never_share_a_subnet_until_all_were_used() -> None:
    picked = [demo.pick_subnet("") for _ in range(254)]
    assert sorted(picked) == list(range(1, 255))
    assert demo.pick_subnet("") == picked[0]  # then the one handed out longest ago


def test_a_routed_subnet_is_never_picked() -> None:
    routes = "10.77.1.0/24 dev x\n" + "".join(f"10.77.{n}.0/24 dev y\n" for n in range(3, 255))
    assert {demo.pick_subnet(routes) for _ in range(5)} == {2}
    with pytest.raises(InfrabotError, match="estate down"):
        demo.pick_subnet(routes + "10.77.2.0/24 dev z\n")


def _pick_many(ledger: Path, n: int) -> list[int]:
    demo.SUBNET_LEDGER = ledger
    return [demo.pick_subnet("") for _ in range(n)]


def test_processes_picking_at_once_get_different_subnets(ledger: Path) -> None:
    with multiprocessing.get_context("fork").Pool(6) as pool:
        results = pool.starmap(_pick_many, [(ledger, 20)] * 6)
    picked = [n for r in results for n in r]
    assert len(picked) == 120 and len(set(picked)) == 120


def test_without_a_writable_ledger_a_free_subnet_is_still_picked(ledger: Path) -> None:
    ledger.write_text("not a directory")
    assert 1 <= demo.pick_subnet("") <= 254
