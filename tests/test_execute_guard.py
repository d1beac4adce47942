"""The run guard on its own: plain programs instead of ansible-playbook (fast; the real runs
are in test_execute_runner.py)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bot.execute import guard

# A program that leaves a detached process behind (in a session of its own, like an
# Ansible worker's task or a daemon) and writes its pid to argv[1], then does argv[2].
DETACH = """\
import subprocess, sys, time
child = subprocess.Popen(["sleep", "600"], start_new_session=True)
open(sys.argv[1], "w").write(str(child.pid))
exec(sys.argv[2])
"""


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state not in ("Z", "X")


def _wait_for(path: Path) -> int:
    deadline = time.monotonic() + 30
    while not (path.exists() and path.read_text()) and time.monotonic() < deadline:
        time.sleep(0.05)
    return int(path.read_text())


def _gone(pid: int) -> bool:
    deadline = time.monotonic() + 10
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    return not _alive(pid)


def _guarded(tmp_path: Path, then: str) -> tuple[subprocess.Popen[bytes], Path]:
    pidfile = tmp_path / "detached.pid"
    program = [sys.executable, "-c", DETACH, str(pidfile), then]
    return subprocess.Popen(guard.command("test-run", program)), pidfile


def test_the_exit_status_is_the_programs() -> None:
    assert subprocess.run(guard.command("t", ["sh", "-c", "exit 3"])).returncode == 3
    assert subprocess.run(guard.command("t", ["no-such-program-x"])).returncode == 127
    usage = subprocess.run(guard.command("t", [])[:-1], capture_output=True, text=True)
    assert usage.returncode == 2 and "usage" in usage.stderr


def test_a_run_that_finishes_leaves_what_it_started(tmp_path: Path) -> None:
    """A daemon a task starts is meant to outlive the run."""
    run, pidfile = _guarded(tmp_path, "pass")
    assert run.wait(30) == 0
    daemon = _wait_for(pidfile)
    try:
        assert _alive(daemon)
    finally:
        os.kill(daemon, signal.SIGKILL)


@pytest.mark.parametrize("how", ["SIGTERM to the guard", "the program killed"])
def test_a_run_that_does_not_finish_ends_its_detached_processes(tmp_path: Path, how: str) -> None:
    run, pidfile = _guarded(tmp_path, "time.sleep(600)")
    detached = _wait_for(pidfile)
    try:
        if how == "SIGTERM to the guard":
            run.terminate()
            assert run.wait(30) == 250
        else:
            (program,) = guard.descendants(run.pid) - {detached}
            os.kill(program, signal.SIGKILL)
            assert run.wait(30) == -signal.SIGKILL  # the guard dies of it too
        assert _gone(detached), "the detached process outlived its run"
    finally:
        run.kill()
        run.wait()
        if _alive(detached):
            os.kill(detached, signal.SIGKILL)


def test_end_tree_touches_only_the_tree_it_is_given(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    mine, my_pidfile = _guarded(tmp_path / "a", "time.sleep(600)")
    theirs, their_pidfile = _guarded(tmp_path / "b", "time.sleep(600)")
    try:
        my_task, their_task = _wait_for(my_pidfile), _wait_for(their_pidfile)
        assert guard.find_guard("test-run") in (mine.pid, theirs.pid)
        ended = guard.end_tree(mine.pid)
        assert my_task in ended and mine.pid in ended and their_task not in ended
        assert _gone(my_task) and _alive(their_task)
    finally:
        for run in (mine, theirs):
            if run.poll() is None:
                guard.end_tree(run.pid)  # its task too: killing the guard alone orphans it
            run.kill()
            run.wait()
        for pidfile in (my_pidfile, their_pidfile):
            if pidfile.exists() and pidfile.read_text() and _alive(int(pidfile.read_text())):
                os.kill(int(pidfile.read_text()), signal.SIGKILL)
