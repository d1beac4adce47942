"""The delivery queue on a real SQLite file: dedup, claims, recovery, retention."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest

from bot.server.queue import Delivery, DeliveryQueue, Offer, QueueBusy


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def _delivery(id_: str, event: str = "issues") -> Delivery:
    return Delivery(
        source="github",
        id=id_,
        event=event,
        headers={"x-github-event": event, "x-github-delivery": id_},
        body=b'{"action": "opened"}',
        received_at=1.0,
    )


@pytest.fixture
def queue(tmp_path: Path) -> DeliveryQueue:
    return DeliveryQueue.open(tmp_path / "q.db")


def test_an_id_is_queued_once_and_survives_a_reopen(tmp_path: Path) -> None:
    queue = DeliveryQueue.open(tmp_path / "q.db")
    assert queue.offer(_delivery("a")) is Offer.QUEUED
    assert queue.offer(_delivery("a", event="push")) is Offer.DUPLICATE
    queue.close()
    queue = DeliveryQueue.open(tmp_path / "q.db")
    claimed = queue.claim()
    assert claimed is not None and claimed.event == "issues" and claimed.attempts == 1
    assert claimed.body == b'{"action": "opened"}' and claimed.headers["x-github-delivery"] == "a"
    assert queue.claim() is None


def test_claims_come_in_order_and_each_row_to_one_claimer(queue: DeliveryQueue) -> None:
    for n in range(200):
        queue.offer(_delivery(f"d{n}"))
    taken: list[str] = []

    def drain() -> None:
        while (item := queue.claim()) is not None:
            taken.append(item.id)

    threads = [threading.Thread(target=drain) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(taken) == sorted(f"d{n}" for n in range(200))
    assert queue.states() == {"queued": 0, "working": 200, "done": 0, "failed": 0}


def test_finish_keeps_the_key_and_drops_the_body(queue: DeliveryQueue, tmp_path: Path) -> None:
    queue.offer(_delivery("a"))
    queue.offer(_delivery("b"))
    a, b = queue.claim(), queue.claim()
    assert a is not None and b is not None
    assert queue.finish(a, "logged", ok=True)
    assert queue.finish(b, "error", ok=False)
    assert queue.outcome("github", "a") == ("done", "logged")
    assert queue.outcome("github", "b") == ("failed", "error")
    assert queue.offer(_delivery("a")) is Offer.DUPLICATE
    assert queue.depth() == 0


def test_a_stale_claim_cannot_finish(queue: DeliveryQueue) -> None:
    queue.offer(_delivery("a"))
    stale = queue.claim()
    assert stale is not None
    assert queue.recover(max_attempts=3).requeued == ("a",)
    fresh = queue.claim()
    assert fresh is not None and fresh.attempts == 2
    assert not queue.finish(stale, "logged", ok=True)
    assert queue.finish(fresh, "logged", ok=True)


def test_recovery_gives_up_after_max_attempts(queue: DeliveryQueue) -> None:
    queue.offer(_delivery("poison"))
    for attempt in (1, 2):
        assert queue.claim() is not None
        assert queue.recover(max_attempts=3).requeued == ("poison",), attempt
    assert queue.claim() is not None
    recovered = queue.recover(max_attempts=3)
    assert (recovered.requeued, recovered.failed) == ((), ("poison",))
    state, outcome = queue.outcome("github", "poison") or ("", "")
    assert state == "failed" and "gave up" in (outcome or "")


def test_prune_forgets_only_old_finished_rows(tmp_path: Path) -> None:
    clock = Clock()
    queue = DeliveryQueue.open(tmp_path / "q.db", clock=clock)
    for id_ in ("old", "new", "waiting"):
        queue.offer(_delivery(id_))
    old = queue.claim()
    assert old is not None and queue.finish(old, "logged", ok=True)
    clock.now += 100
    new = queue.claim()
    assert new is not None and queue.finish(new, "logged", ok=True)
    assert queue.prune(retention=50) == 1
    assert queue.offer(_delivery("old")) is Offer.QUEUED  # forgotten: new again
    assert queue.offer(_delivery("new")) is Offer.DUPLICATE


def test_alertmanager_deliveries_are_remembered_for_an_hour_not_two_weeks(
    tmp_path: Path,
) -> None:
    """A retry within the hour is a duplicate; the repeat of a still-firing group hours
    later is worked again, so intake can finish what a forge outage left pending."""
    clock = Clock()
    queue = DeliveryQueue.open(tmp_path / "q.db", clock=clock)
    alert = _delivery("sha").model_copy(update={"source": "alertmanager", "event": "alert"})
    queue.offer_many([alert, _delivery("gh")])
    for _ in range(2):
        claimed = queue.claim()
        assert claimed is not None and queue.finish(claimed, "ok", ok=True)
    clock.now += 1800
    assert queue.prune() == 0
    assert queue.offer(alert) is Offer.DUPLICATE
    clock.now += 1900
    assert queue.prune() == 1
    assert queue.offer(alert) is Offer.QUEUED
    assert queue.offer(_delivery("gh")) is Offer.DUPLICATE
    assert queue.queued_by_source() == {"github": 0, "alertmanager": 1}


def test_one_server_per_queue_file(queue: DeliveryQueue, tmp_path: Path) -> None:
    with pytest.raises(QueueBusy, match="another infrabot serve"):
        DeliveryQueue.open(tmp_path / "q.db")
    queue.close()
    DeliveryQueue.open(tmp_path / "q.db").close()


def test_a_file_that_is_not_sqlite_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "q.db").write_text("not a database, " * 100)
    with pytest.raises(Exception, match="not a usable SQLite file"):
        DeliveryQueue.open(tmp_path / "q.db")


def test_commits_leave_the_wal_to_the_workers_checkpoint(tmp_path: Path) -> None:
    queue = DeliveryQueue.open(tmp_path / "q.db")
    big = [_delivery(f"d{n}").model_copy(update={"body": b"x" * 8000}) for n in range(600)]
    queue.offer_many(big)  # about 1,200 pages: past SQLite's automatic checkpoint
    database = tmp_path / "q.db"
    assert database.stat().st_size < 100_000  # the commit checkpointed nothing: all in the WAL
    queue.checkpoint()
    assert database.stat().st_size > 4_000_000
    with sqlite3.connect(database) as other:
        busy, frames, done = other.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
    assert busy == 0 and frames == done > 0
    assert queue.depth() == 600
