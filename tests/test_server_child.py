"""The server's work runs in a forked child: its outcomes, its failures and its death."""

from __future__ import annotations

import os

import pytest

from bot.errors import InfrabotError
from bot.server.child import ChildProcess, WorkCrashed
from bot.server.queue import Delivery


def _delivery(id_: str) -> Delivery:
    return Delivery(source="github", id=id_, event="issues", headers={}, body=b"{}", received_at=0)


def _process(delivery: Delivery) -> str:
    if delivery.id == "refused":
        raise InfrabotError("no such issue")
    if delivery.id == "bug":
        raise KeyError("oops")
    if delivery.id == "die":
        os._exit(3)
    return f"pid {os.getpid()} nice {os.nice(0)}"


def test_the_work_runs_in_a_niced_child_and_its_outcomes_come_back() -> None:
    work = ChildProcess(_process)
    try:
        done = work(_delivery("a"))
        pid = int(done.split()[1])
        assert pid != os.getpid() and int(done.split()[3]) >= os.nice(0) + 10
        with pytest.raises(InfrabotError, match="no such issue"):
            work(_delivery("refused"))
        with pytest.raises(WorkCrashed, match="KeyError"):
            work(_delivery("bug"))
        assert work(_delivery("b")) == done  # the same child goes on
        with pytest.raises(WorkCrashed, match="died"):
            work(_delivery("die"))
        assert int(work(_delivery("c")).split()[1]) != pid  # a new child for the next one
    finally:
        work.close(finished=True)
