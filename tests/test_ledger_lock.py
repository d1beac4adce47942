"""The estate lock: one holder at a time, across processes, and never held by the dead."""

from __future__ import annotations

import multiprocessing
import os
import sqlite3
import subprocess
import sys
from datetime import UTC, datetime
from multiprocessing.synchronize import Barrier, Event
from pathlib import Path

import pytest

from bot.errors import InfrabotError, LockHeld
from bot.ledger import EstateLock

T0 = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


def lock(tmp_path: Path) -> EstateLock:
    return EstateLock(tmp_path / "ledger.db", clock=lambda: T0)


def test_acquire_is_exclusive_and_reentrant(tmp_path: Path) -> None:
    estate = lock(tmp_path)
    first = estate.acquire(5)
    assert (first.holder, first.reentered, first.since) == (5, False, T0)
    assert estate.acquire(5).reentered
    with pytest.raises(
        LockHeld, match=r"^the estate lock is held by PR #5 since 2026-01-02 03:04:05"
    ):
        estate.acquire(6)
    holder = estate.holder()
    assert holder is not None and holder.holder == 5


def test_release_by_a_non_holder_is_a_no_op_and_release_is_idempotent(tmp_path: Path) -> None:
    estate = lock(tmp_path)
    estate.acquire(5)
    estate.release(6)
    assert estate.holder() is not None
    estate.release(5)
    estate.release(5)
    assert estate.holder() is None
    assert estate.acquire(6).holder == 6


def test_unlock_releases_a_lock_without_a_process_and_says_so(tmp_path: Path) -> None:
    estate = lock(tmp_path)
    nothing = estate.unlock()
    assert (nothing.state, nothing.released) == (None, False)
    estate.acquire(5)
    done = estate.unlock()
    assert done.released and done.state is not None and done.state.holder == 5
    assert "without a running process" in done.why
    assert estate.holder() is None


def test_unlock_never_releases_the_lock_of_a_running_apply(tmp_path: Path) -> None:
    estate = lock(tmp_path)
    with estate.held(5):  # this process is alive: an apply in progress
        kept = estate.unlock()
        assert not kept.released and "running" in kept.why
        assert estate.holder() is not None
    assert estate.holder() is None


def test_unlock_releases_the_lock_of_a_dead_process(tmp_path: Path) -> None:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    estate = lock(tmp_path)
    estate.acquire(5, pid=child.pid)
    done = estate.unlock()
    assert done.released and f"process {child.pid} is gone" in done.why


def test_unlock_leaves_another_machines_lock_alone(tmp_path: Path) -> None:
    EstateLock(tmp_path / "ledger.db", hostname="runner-7").acquire(5, pid=os.getpid())
    kept = lock(tmp_path).unlock()
    assert not kept.released and "runner-7" in kept.why


def test_held_releases_even_on_an_exception(tmp_path: Path) -> None:
    estate = lock(tmp_path)
    with pytest.raises(RuntimeError, match="apply blew up"), estate.held(5) as state:
        assert state.pid == os.getpid()
        raise RuntimeError("apply blew up")
    assert estate.holder() is None


def test_nested_held_leaves_the_outer_owner_in_charge(tmp_path: Path) -> None:
    estate = lock(tmp_path)
    estate.acquire(5)  # e.g. held across commands, without a process
    with estate.held(5) as state:
        assert state.reentered
    holder = estate.holder()
    assert holder is not None and holder.holder == 5 and holder.pid is None


def test_a_lock_whose_process_is_gone_is_taken_over_and_says_so(tmp_path: Path) -> None:
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    estate = lock(tmp_path)
    estate.acquire(3, pid=dead.pid)
    assert estate.holder() is None  # nobody live holds it
    state = estate.acquire(8, pid=os.getpid())
    assert state.holder == 8
    assert state.taken_over_from == 3
    assert f"process {dead.pid}" in state.note and "is gone" in state.note


def test_a_live_process_keeps_its_lock(tmp_path: Path) -> None:
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        estate = lock(tmp_path)
        estate.acquire(3, pid=live.pid)
        with pytest.raises(LockHeld, match="PR #3"):
            estate.acquire(8)
    finally:
        live.kill()
        live.wait()
    assert lock(tmp_path).acquire(8).taken_over_from == 3


def test_a_reused_pid_does_not_keep_a_lock_alive(tmp_path: Path) -> None:
    estate = lock(tmp_path)
    estate.acquire(3, pid=os.getpid())
    with sqlite3.connect(tmp_path / "ledger.db") as conn:  # as if recorded by an older process
        conn.execute("UPDATE locks SET pid_start = '1'")
    assert estate.acquire(8).taken_over_from == 3


def test_another_machines_lock_is_never_taken_over(tmp_path: Path) -> None:
    there = EstateLock(tmp_path / "ledger.db", hostname="other-host")
    there.acquire(3, pid=999_999_999)
    with pytest.raises(LockHeld, match="PR #3"):
        lock(tmp_path).acquire(8)


def _contend(db: str, holder: int, barrier: Barrier, done: Event, results: dict[int, str]) -> None:
    estate = EstateLock(Path(db))
    barrier.wait()
    try:
        estate.acquire(holder, pid=os.getpid())
        results[holder] = "won"
    except LockHeld:
        results[holder] = "held"
    done.wait(20)  # stay alive so the winner's lock stays live while the others try


def test_processes_contending_for_the_lock_get_exactly_one_winner(tmp_path: Path) -> None:
    ctx = multiprocessing.get_context("fork")
    n = 6
    barrier, done = ctx.Barrier(n), ctx.Event()
    with ctx.Manager() as manager:
        results = manager.dict()
        procs = [
            ctx.Process(target=_contend, args=(str(tmp_path / "l.db"), h, barrier, done, results))
            for h in range(1, n + 1)
        ]
        for p in procs:
            p.start()
        deadline = 200
        while len(results) < n and deadline:
            done.wait(0.05)
            deadline -= 1
        outcome = dict(results)
        done.set()
        for p in procs:
            p.join(20)
    assert sorted(outcome.values()) == ["held"] * (n - 1) + ["won"]
    winner = next(h for h, r in outcome.items() if r == "won")
    # the winner's process has exited: its lock is stale now, and the next comer takes it over
    assert EstateLock(tmp_path / "l.db").acquire(99).taken_over_from == winner


def test_a_newer_schema_is_refused_with_one_clear_line(tmp_path: Path) -> None:
    lock(tmp_path).acquire(1)
    with sqlite3.connect(tmp_path / "ledger.db") as conn:
        conn.execute("UPDATE schema_version SET version = 2")
    with pytest.raises(InfrabotError, match="has schema version 2; this infrabot knows version 1"):
        lock(tmp_path).holder()


HOLD_AND_WAIT = """\
import sys
from pathlib import Path
from bot.ledger import EstateLock
with EstateLock(Path(sys.argv[1])).held(5):
    print("held", flush=True)
    sys.stdin.read()
"""


def test_a_second_process_applying_the_same_pr_is_refused_not_reentered(tmp_path: Path) -> None:
    """`/apply` in `infrabot serve` while an operator runs `infrabot pr apply` on the same
    PR (or a redelivered event racing the first): two processes, one PR. Re-entry is for
    the process that holds the lock; another process must wait, or both run Ansible."""
    first = subprocess.Popen(
        [sys.executable, "-c", HOLD_AND_WAIT, str(tmp_path / "ledger.db")],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert first.stdout is not None and first.stdout.readline() == "held\n"
        with (
            pytest.raises(
                LockHeld,
                match=rf"^PR #5 is already being applied by process {first.pid} on "
                r"\S+ since [-\d]+ [:\d]+ UTC: wait for it to finish$",
            ),
            lock(tmp_path).held(5),
        ):
            pass
        with pytest.raises(LockHeld, match=rf"process {first.pid}"):
            lock(tmp_path).acquire(5, pid=os.getpid())
        holder = lock(tmp_path).holder()
        assert holder is not None and holder.pid == first.pid  # the refusal changed nothing
    finally:
        first.communicate("")
    with lock(tmp_path).held(5) as state:  # once it is gone, the PR applies again
        assert state.pid == os.getpid() and not state.reentered


def test_a_process_applying_under_a_persistent_lock_makes_others_wait(tmp_path: Path) -> None:
    """A PR that holds the lock without a process (taken across commands) may apply; while
    it does, the lock records the applying process, so a second process of the same PR is
    refused; afterwards the lock is the PR's again, without a process."""
    lock(tmp_path).acquire(5)
    first = subprocess.Popen(
        [sys.executable, "-c", HOLD_AND_WAIT, str(tmp_path / "ledger.db")],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert first.stdout is not None and first.stdout.readline() == "held\n"
        with pytest.raises(LockHeld, match=rf"already being applied by process {first.pid}"):
            lock(tmp_path).acquire(5, pid=os.getpid())
        assert lock(tmp_path).acquire(5).reentered  # no process: it runs nothing
    finally:
        first.communicate("")
    holder = lock(tmp_path).holder()
    assert holder is not None and (holder.holder, holder.pid) == (5, None)
