"""``bot.ledger.sqlite.Database``: one connection per thread and process, reused."""

from __future__ import annotations

import os
import threading
from pathlib import Path

from bot.ledger.sqlite import Database

SCHEMA = ("CREATE TABLE IF NOT EXISTS t (x INTEGER)",)


def db(tmp_path: Path) -> Database:
    return Database(tmp_path / "t.db", what="test database", schema=SCHEMA, version=1)


def test_a_thread_reuses_its_connection_and_another_thread_gets_its_own(tmp_path: Path) -> None:
    d = db(tmp_path)
    with d.transaction(write=True) as a:
        a.execute("INSERT INTO t VALUES (1)")
    with d.transaction() as b:
        assert b is a and b.execute("SELECT COUNT(*) FROM t").fetchone()[0] == 1
    seen: list[object] = []

    def other() -> None:
        with d.transaction() as c:
            seen.append(c)

    t = threading.Thread(target=other)
    t.start()
    t.join()
    assert seen and seen[0] is not a


def test_a_forked_child_opens_its_own_connection(tmp_path: Path) -> None:
    d = db(tmp_path)
    with d.transaction(write=True) as parent:
        parent.execute("INSERT INTO t VALUES (1)")
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child reports through its exit status
        try:
            with d.transaction(write=True) as child:
                child.execute("INSERT INTO t VALUES (2)")
        except BaseException:
            os._exit(4)
        os._exit(0 if child is not parent else 3)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    with d.transaction() as again:
        assert again is parent and again.execute("SELECT COUNT(*) FROM t").fetchone()[0] == 2


def test_a_failed_transaction_rolls_back_and_a_removed_file_is_made_again(
    tmp_path: Path,
) -> None:
    d = db(tmp_path)
    try:
        with d.transaction(write=True) as conn:
            conn.execute("INSERT INTO t VALUES (1)")
            raise RuntimeError("boom")
    except RuntimeError:
        pass
    with d.transaction() as conn:
        assert conn.execute("SELECT COUNT(*) FROM t").fetchone()[0] == 0
    d.close()
    for name in ("t.db", "t.db-wal", "t.db-shm"):
        (tmp_path / name).unlink(missing_ok=True)
    with d.transaction() as conn:
        assert conn.execute("SELECT COUNT(*) FROM t").fetchone()[0] == 0
