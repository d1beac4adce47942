"""The run guard: the parent of ansible-playbook, and the end of every process a run starts.

Theory of operation
-------------------
ansible-playbook's workers call ``setsid``, so a SIGKILL to ansible-playbook's process group
misses them and the task they run (a ``command:`` on a local connection goes on changing the
host).  So the bot does not start ansible-playbook itself: it starts this script (run by
path with the bot's Python, standard library only, so it starts fast), which

- makes itself a *child subreaper* (``prctl(PR_SET_CHILD_SUBREAPER)``): a process of the run
  whose parent dies is re-parented to the guard, not to init, so every live process the run
  started stays a descendant of the guard, whatever sessions or groups it made;
- asks for SIGTERM when the bot's thread that started it dies (``PR_SET_PDEATHSIG``), and
  also ends the run on SIGHUP (the bot's pty closing: the bot was killed) and SIGINT;
- starts ansible-playbook and reaps whatever is re-parented to it until ansible-playbook
  exits, then exits with its status.  A run that finishes leaves what it meant to leave (a
  daemon a task started) to init.

``end_tree`` is how a run is ended, by the guard on a signal or by the bot (a timeout, an
exception while waiting): stop every descendant with SIGSTOP, walking ``/proc`` by parent
pid again until no new one appears (a stopped process cannot fork, and an orphan comes back
to the stopped guard), then SIGKILL them all.  Only descendants of one guard are touched, so
another run's processes (another guard's) are never.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import sys
from pathlib import Path

PR_SET_PDEATHSIG = 1
PR_SET_CHILD_SUBREAPER = 36
_EXIT_ENDED = 250  # ansible-playbook did not finish: the guard ended the run


def _prctl(option: int, value: int) -> bool:
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return int(libc.prctl(option, value, 0, 0, 0)) == 0
    except (OSError, AttributeError):
        return False


def _parents() -> dict[int, int]:
    """pid -> parent pid of every process that is not a zombie, from /proc."""
    found: dict[int, int] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", encoding="utf-8", errors="replace") as fh:
                text = fh.read()
        except OSError:
            continue  # gone
        fields = text[text.rfind(")") + 2 :].split()
        if len(fields) > 1 and fields[0] not in ("Z", "X"):
            found[int(entry.name)] = int(fields[1])
    return found


def descendants(root: int) -> set[int]:
    """The live processes below ``root`` (not ``root`` itself)."""
    children: dict[int, list[int]] = {}
    for pid, ppid in _parents().items():
        children.setdefault(ppid, []).append(pid)
    found: set[int] = set()
    todo = [root]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def _signal(pid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError):  # already gone
        os.kill(pid, sig)


def end_tree(root: int, *, include_root: bool = True) -> set[int]:
    """SIGSTOP every process below ``root`` until no new one appears, then SIGKILL them
    (and ``root`` when ``include_root``).  Returns the pids signalled."""
    if include_root:
        _signal(root, signal.SIGSTOP)
    stopped: set[int] = set()
    while True:
        new = descendants(root) - stopped
        if not new:
            break
        for pid in new:
            _signal(pid, signal.SIGSTOP)
        stopped |= new
    for pid in stopped:
        _signal(pid, signal.SIGKILL)
    if include_root:
        _signal(root, signal.SIGKILL)
        stopped.add(root)
    return stopped


class _Ended(Exception):
    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


_ending: list[int] = []


def _raise_ended(signum: int, _frame: object) -> None:
    if not _ending:  # once: a second signal (SIGHUP and SIGTERM both come when the bot
        _ending.append(signum)  # dies) must not interrupt the ending itself
        raise _Ended(signum)


def main(argv: list[str]) -> int:
    """``guard.py TAG -- PROGRAM [ARG...]``: TAG names the run (the bot finds its guard by
    it); the exit status is PROGRAM's, or 250 when the guard ended the run on a signal."""
    if len(argv) < 4 or argv[2] != "--":
        print("usage: guard.py TAG -- PROGRAM [ARG...]", file=sys.stderr)
        return 2
    parent = os.getppid()
    _prctl(PR_SET_CHILD_SUBREAPER, 1)
    _prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    for signum in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):
        signal.signal(signum, _raise_ended)
    try:
        if os.getppid() != parent:  # the bot died before PDEATHSIG was set
            raise _Ended(signal.SIGTERM)
        child = os.fork()
        if child == 0:  # ansible-playbook, as ansible-runner meant it: ignoring SIGHUP
            signal.signal(signal.SIGHUP, signal.SIG_IGN)
            for signum in (signal.SIGTERM, signal.SIGINT):
                signal.signal(signum, signal.SIG_DFL)
            try:
                os.execvp(argv[3], argv[3:])
            except OSError as exc:
                print(f"guard: cannot run {argv[3]}: {exc}", file=sys.stderr)
            os._exit(127)
        while True:
            pid, status = os.wait()
            if pid == child:
                code = os.waitstatus_to_exitcode(status)
                if code < 0:  # killed: the run did not finish, its workers must not go on
                    end_tree(os.getpid(), include_root=False)
                return code
    except _Ended:
        end_tree(os.getpid(), include_root=False)  # init reaps them once the guard exits
        return _EXIT_ENDED


GUARD = str(Path(__file__).resolve())


def command(tag: str, program: list[str]) -> list[str]:
    """``program`` run under the guard, with this Python (isolated: it needs only the
    standard library and must not pick up the run's PYTHON* settings)."""
    return [sys.executable, "-I", GUARD, tag, "--", *program]


def find_guard(tag: str) -> int | None:
    """The pid of this process's guard child named ``tag``, if it is alive."""
    me = os.getpid()
    for pid, ppid in _parents().items():
        if ppid != me:
            continue
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as fh:
                args = fh.read().split(b"\0")
        except OSError:
            continue
        if args[2:4] == [GUARD.encode(), tag.encode()]:
            return pid
    return None


if __name__ == "__main__":
    code = main(sys.argv)
    if code < 0:  # ansible-playbook died of a signal: die of it too, so the bot sees it
        with contextlib.suppress(OSError, ValueError):  # SIGKILL has no handler to reset
            signal.signal(-code, signal.SIG_DFL)
        os.kill(os.getpid(), -code)
    sys.exit(code)
